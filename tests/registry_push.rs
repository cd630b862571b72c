//! Push and pull against a real `docker-registry` on 127.0.0.1, read back with skopeo.

#[path = "support/registry.rs"]
mod registry_support;

use std::process::Command;

use kiln::oci::{BlobStore, Digest};
use kiln::registry::{
    CredentialStore, Reference, RegistryClient, RegistryOptions, TransportOptions,
};
use registry_support::{Flavor, TestRegistry, build_image, run_ok};

fn client_for(registry: &TestRegistry) -> RegistryClient {
    client_with(registry, |_| {})
}

fn client_with(
    registry: &TestRegistry,
    tweak: impl FnOnce(&mut RegistryOptions),
) -> RegistryClient {
    let mut options = RegistryOptions::with_credentials(CredentialStore::anonymous());
    options.transport = TransportOptions {
        extra_ca: None,
        insecure_registries: vec![registry.addr.clone()],
    };
    tweak(&mut options);
    RegistryClient::new(options).unwrap()
}

fn reference(registry: &TestRegistry, name: &str) -> Reference {
    Reference::parse(&format!("{}/{name}", registry.addr)).unwrap()
}

const APP_V1: &[(&str, &[u8])] = &[("workspace/app.py", b"print('v1')\n")];
const APP_V2: &[(&str, &[u8])] = &[("workspace/app.py", b"print('v2')\n")];
const DEPS: &[(&str, &[u8])] = &[("layers/deps/lib.txt", b"a dependency layer\n")];
const BASE: &[(&str, &[u8])] = &[
    ("etc/os-release", b"ID=debian\n"),
    ("usr/bin/tool", b"#!/bin/sh\n"),
];

#[test]
fn pushed_manifest_reads_back_byte_for_byte_with_skopeo() {
    let registry = TestRegistry::start(Flavor::Plain);
    let layout = tempfile::tempdir().unwrap();
    let store = BlobStore::for_layout(layout.path());
    let image = build_image(&store, &[BASE, DEPS, APP_V1]);
    let client = client_for(&registry);
    let target = reference(&registry, "team/app:1");

    let report = client
        .push_image(
            &target,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    assert_eq!(report.manifest_digest, image.manifest_digest);
    assert_eq!(report.uploaded.len(), 4, "config + 3 layers: {report:?}");
    assert!(report.skipped.is_empty() && report.mounted.is_empty());

    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/team/app:1", registry.addr),
    ]));
    assert_eq!(
        raw, image.manifest_bytes,
        "the registry must hold our exact manifest bytes"
    );
    assert_eq!(Digest::of_bytes(&raw), image.manifest_digest);

    let copy = tempfile::tempdir().unwrap();
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/team/app:1", registry.addr),
        &format!("oci:{}:app", copy.path().display()),
    ]));
    let copied = BlobStore::for_layout(copy.path());
    for (digest, size) in &image.blobs {
        assert_eq!(
            copied.read_verified(digest, Some(*size)).unwrap(),
            store.read_verified(digest, Some(*size)).unwrap(),
            "blob {digest} differs after the round trip"
        );
    }
    assert_eq!(
        copied.read_verified(&image.manifest_digest, None).unwrap(),
        image.manifest_bytes
    );
}

#[test]
fn repushes_upload_only_what_changed_and_mount_across_repositories() {
    let registry = TestRegistry::start(Flavor::Plain);
    let layout = tempfile::tempdir().unwrap();
    let store = BlobStore::for_layout(layout.path());
    let client = client_for(&registry);
    let target = reference(&registry, "team/app:1");
    let v1 = build_image(&store, &[BASE, DEPS, APP_V1]);

    client
        .push_image(
            &target,
            &v1.manifest_bytes,
            &v1.media_type,
            &v1.blobs,
            &store,
            None,
        )
        .unwrap();
    registry.settle();
    assert_eq!(registry.blob_uploads(None), 4);

    // Same image again: every blob is already there.
    let again = client
        .push_image(
            &target,
            &v1.manifest_bytes,
            &v1.media_type,
            &v1.blobs,
            &store,
            None,
        )
        .unwrap();
    registry.settle();
    assert_eq!(again.uploaded, Vec::<Digest>::new());
    assert_eq!(again.skipped.len(), 4);
    assert_eq!(
        registry.blob_uploads(None),
        4,
        "a no-change push must upload nothing"
    );

    // Code-only change: the app layer and the config differ, nothing else.
    let v2 = build_image(&store, &[BASE, DEPS, APP_V2]);
    let changed = client
        .push_image(
            &target,
            &v2.manifest_bytes,
            &v2.media_type,
            &v2.blobs,
            &store,
            None,
        )
        .unwrap();
    registry.settle();
    let mut expected = vec![v2.config_digest.clone(), v2.layer_digests[2].clone()];
    expected.sort();
    let mut uploaded = changed.uploaded.clone();
    uploaded.sort();
    assert_eq!(uploaded, expected);
    assert_eq!(
        registry.blob_uploads(None),
        6,
        "one layer blob plus the config"
    );

    // Another repository on the same registry: layers are mounted, not sent.
    let other = reference(&registry, "team/other:1");
    let mounted = client
        .push_image(
            &other,
            &v2.manifest_bytes,
            &v2.media_type,
            &v2.blobs,
            &store,
            Some("team/app"),
        )
        .unwrap();
    registry.settle();
    assert_eq!(mounted.mounted.len(), 4, "{mounted:?}");
    assert!(mounted.uploaded.is_empty());
    assert_eq!(registry.blob_uploads(Some("team/other")), 0);
    assert_eq!(registry.blob_mounts(), 4);
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/team/other:1", registry.addr),
    ]));
    assert_eq!(raw, v2.manifest_bytes);
}

#[test]
fn chunked_upload_is_byte_exact() {
    let registry = TestRegistry::start(Flavor::Plain);
    let layout = tempfile::tempdir().unwrap();
    let store = BlobStore::for_layout(layout.path());
    // Incompressible content so the layer blob spans several 4 KiB chunks.
    let mut rng = fastrand::Rng::with_seed(7);
    let noise: Vec<u8> = (0..40_000).map(|_| rng.u8(..)).collect();
    let big: &[(&str, &[u8])] = &[("workspace/noise.bin", &noise)];
    let image = build_image(&store, &[big]);
    let client = client_with(&registry, |options| {
        options.chunked_threshold = 1024;
        options.chunk_size = 4096;
    });
    let target = reference(&registry, "chunked/app:1");
    client
        .push_image(
            &target,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    registry.settle();
    let patches = registry
        .requests()
        .iter()
        .filter(|(method, _, status)| method == "PATCH" && *status == 202)
        .count();
    assert!(
        patches >= 10,
        "expected several PATCH chunks, saw {patches}"
    );

    let fresh = tempfile::tempdir().unwrap();
    let fresh_store = BlobStore::for_layout(fresh.path());
    let pulled = client.pull_image(&target, &fresh_store).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    for (digest, size) in &image.blobs {
        assert_eq!(
            fresh_store.read_verified(digest, Some(*size)).unwrap(),
            store.read_verified(digest, Some(*size)).unwrap()
        );
    }
}

#[test]
fn pulls_what_skopeo_pushed_and_a_second_pull_transfers_nothing() {
    let registry = TestRegistry::start(Flavor::Plain);
    let source = tempfile::tempdir().unwrap();
    let source_store = BlobStore::for_layout(source.path());
    let image = build_image(&source_store, &[BASE, APP_V1]);
    // Make the directory a complete OCI layout so skopeo can read it.
    std::fs::write(
        source.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": image.media_type,
            "digest": image.manifest_digest.to_string(),
            "size": image.manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "v1"}
        }]
    });
    std::fs::write(
        source.path().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    source_store.put_bytes(&image.manifest_bytes).unwrap();
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", source.path().display()),
        &format!("docker://{}/pulled/app:v1", registry.addr),
    ]));

    let client = client_for(&registry);
    let target = reference(&registry, "pulled/app:v1");
    let cache = tempfile::tempdir().unwrap();
    let store = BlobStore::for_layout(cache.path());
    let first = client.pull_image(&target, &store).unwrap();
    assert_eq!(
        first.manifest_digest,
        Digest::of_bytes(&first.manifest_bytes)
    );
    assert_eq!(first.layers.len(), 2);
    assert_eq!(first.fetched.len(), 3, "config + 2 layers");
    for descriptor in std::iter::once(&first.config).chain(&first.layers) {
        store
            .verify(&descriptor.digest, Some(descriptor.size))
            .unwrap();
    }
    assert!(store.contains(&first.manifest_digest));
    registry.settle();
    let gets_before = blob_gets(&registry);

    let second = client.pull_image(&target, &store).unwrap();
    registry.settle();
    assert!(second.fetched.is_empty(), "{second:?}");
    assert_eq!(second.reused.len(), 3);
    assert_eq!(
        blob_gets(&registry),
        gets_before,
        "a second pull must not fetch any blob"
    );
}

#[test]
fn missing_manifest_is_a_clear_not_found() {
    let registry = TestRegistry::start(Flavor::Plain);
    let client = client_for(&registry);
    let error = client
        .get_manifest(&reference(&registry, "nothing/here:1"))
        .unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    let text = error_chain(&error);
    assert!(text.contains("nothing/here:1"), "{text}");
    assert!(text.contains("not found"), "{text}");
}

fn blob_gets(registry: &TestRegistry) -> usize {
    registry
        .requests()
        .iter()
        .filter(|(method, path, _)| method == "GET" && path.contains("/blobs/sha256:"))
        .count()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(" → ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn index_resolves_to_linux_amd64_and_docker_v2s2_manifests_are_read() {
    let registry = TestRegistry::start(Flavor::Plain);
    let layout = tempfile::tempdir().unwrap();
    let store = BlobStore::for_layout(layout.path());
    let client = client_for(&registry);
    let repository = reference(&registry, "multi/app");
    let amd64 = build_image(&store, &[BASE, APP_V1]);
    let arm64 = build_image(&store, &[BASE, APP_V2]);

    // The arm64 entry is a Docker v2s2 manifest, so both kinds are exercised.
    let docker_manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": arm64.blobs[0].0.to_string(),
            "size": arm64.blobs[0].1,
        },
        "layers": arm64.blobs[1..].iter().map(|(digest, size)| serde_json::json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": digest.to_string(),
            "size": size,
        })).collect::<Vec<_>>(),
    });
    let docker_bytes = kiln::oci::canonical::to_vec(&docker_manifest).unwrap();
    let docker_digest = Digest::of_bytes(&docker_bytes);
    for (image, bytes, media_type) in [
        (
            &amd64,
            amd64.manifest_bytes.clone(),
            amd64.media_type.as_str(),
        ),
        (
            &arm64,
            docker_bytes.clone(),
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let pinned = repository.with_digest(Digest::of_bytes(&bytes));
        client
            .push_image(&pinned, &bytes, media_type, &image.blobs, &store, None)
            .unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": docker_digest.to_string(),
             "size": docker_bytes.len(), "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": amd64.media_type, "digest": amd64.manifest_digest.to_string(),
             "size": amd64.manifest_bytes.len(), "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    });
    let index_bytes = kiln::oci::canonical::to_vec(&index).unwrap();
    let tagged = repository.with_tag("1").unwrap();
    let index_digest = client
        .put_manifest(
            &tagged,
            &index_bytes,
            "application/vnd.oci.image.index.v1+json",
        )
        .unwrap();

    let fetched = client.get_manifest(&tagged).unwrap();
    assert_eq!(
        fetched.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(fetched.digest, index_digest);

    let cache = tempfile::tempdir().unwrap();
    let cache_store = BlobStore::for_layout(cache.path());
    let pulled = client.pull_image(&tagged, &cache_store).unwrap();
    assert_eq!(
        pulled.manifest_digest, amd64.manifest_digest,
        "linux/amd64 is chosen"
    );
    assert_eq!(pulled.index_digest, Some(index_digest));

    let docker = client
        .get_manifest(&repository.with_digest(docker_digest.clone()))
        .unwrap();
    assert_eq!(
        docker.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let pulled_docker = client
        .pull_image(&repository.with_digest(docker_digest.clone()), &cache_store)
        .unwrap();
    assert_eq!(pulled_docker.manifest_digest, docker_digest);
    assert_eq!(pulled_docker.layers.len(), 2);
    assert_eq!(
        pulled_docker.reused.len(),
        1,
        "only the shared base layer was already there"
    );
}
