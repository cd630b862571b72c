//! Faults injected by an in-process proxy in front of a real `docker-registry`: 5xx, dropped
//! connections, 429 with Retry-After, corrupted and truncated bodies, interrupted pushes.

#[path = "support/registry_proxy.rs"]
mod registry_proxy;
#[path = "support/registry.rs"]
mod registry_support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln::oci::{BlobStore, Digest};
use kiln::registry::{
    CredentialStore, Reference, RegistryClient, RegistryError, RegistryOptions, RequestError,
    RetryPolicy, TransportOptions,
};
use registry_proxy::{Action, FaultProxy, Request};
use registry_support::{Flavor, TestImage, TestRegistry, build_image};

const BASE: &[(&str, &[u8])] = &[("etc/os-release", b"ID=debian\n")];
const DEPS: &[(&str, &[u8])] = &[("layers/deps/lib.txt", b"dependency\n")];
const APP: &[(&str, &[u8])] = &[("workspace/app.py", b"print('hi')\n")];

fn client(addrs: &[&str], max_attempts: u32) -> RegistryClient {
    let mut options = RegistryOptions::with_credentials(CredentialStore::anonymous());
    options.transport = TransportOptions {
        extra_ca: None,
        insecure_registries: addrs.iter().map(|addr| addr.to_string()).collect(),
    };
    options.retry = RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(3),
    };
    RegistryClient::new(options).unwrap()
}

fn reference(addr: &str, name: &str) -> Reference {
    Reference::parse(&format!("{addr}/{name}")).unwrap()
}

fn image_in(dir: &tempfile::TempDir) -> (BlobStore, TestImage) {
    let store = BlobStore::for_layout(dir.path());
    let image = build_image(&store, &[BASE, DEPS, APP]);
    (store, image)
}

/// A key per logical operation: method, path without upload-session ids, and the digest a
/// PUT completes, so each blob's upload counts separately across fresh sessions.
fn operation_key(request: &Request) -> String {
    let path = request.path();
    let path = match path.find("/uploads/") {
        Some(index) => &path[..index + "/uploads/".len()],
        None => path,
    };
    format!(
        "{} {path} {}",
        request.method,
        request.query("digest").unwrap_or_default()
    )
}

#[test]
fn intermittent_500s_and_dropped_connections_push_succeeds_within_the_retry_bound() {
    let registry = TestRegistry::start(Flavor::Plain);
    let seen_per_operation: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let proxy = FaultProxy::start(&registry.addr, move |request| {
        let mut seen = seen_per_operation.lock().unwrap();
        let count = seen.entry(operation_key(request)).or_default();
        *count += 1;
        // Every operation fails twice, once each way, then works.
        match *count {
            1 => Action::status(500),
            2 => Action::Drop,
            _ => Action::Forward,
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image_in(&dir);
    let client = client(&[&proxy.addr], 4);
    let target = reference(&proxy.addr, "faulty/app:1");
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
    assert_eq!(report.uploaded.len(), 4);
    let faults = proxy
        .seen()
        .iter()
        .filter(|seen| seen.action != "forward")
        .count();
    assert!(
        faults >= 2 * 4,
        "every blob operation should have met faults, saw {faults}"
    );

    // The registry itself holds the exact image.
    let direct = client_for_registry(&registry);
    let fetched = direct
        .get_manifest(&reference(&registry.addr, "faulty/app:1"))
        .unwrap();
    assert_eq!(fetched.bytes, image.manifest_bytes);
    for (digest, _) in &image.blobs {
        assert!(
            direct
                .blob_exists(&reference(&registry.addr, "faulty/app"), digest)
                .unwrap()
        );
    }
}

#[test]
fn persistent_5xx_gives_up_after_exactly_the_bound() {
    let registry = TestRegistry::start(Flavor::Plain);
    let proxy = FaultProxy::start(&registry.addr, |_| Action::status(503));
    let error = client(&[&proxy.addr], 3)
        .get_manifest(&reference(&proxy.addr, "down/app:1"))
        .unwrap_err();
    match error.request_error() {
        Some(RequestError::Status {
            status: 503,
            attempts: 3,
            ..
        }) => {}
        other => panic!("expected a 503 after 3 attempts, got {other:?}"),
    }
    assert_eq!(proxy.seen().len(), 3);
}

#[test]
fn client_errors_other_than_429_are_never_retried() {
    let registry = TestRegistry::start(Flavor::Plain);
    let proxy = FaultProxy::start(&registry.addr, |_| Action::status(400));
    let error = client(&[&proxy.addr], 5)
        .blob_exists(&reference(&proxy.addr, "bad/app"), &Digest::of_bytes(b"x"))
        .unwrap_err();
    assert!(
        matches!(
            error.request_error(),
            Some(RequestError::Status { status: 400, .. })
        ),
        "{error:?}"
    );
    assert_eq!(proxy.seen().len(), 1, "a 400 must not be retried");
}

#[test]
fn retry_after_of_a_429_is_honoured() {
    let registry = TestRegistry::start(Flavor::Plain);
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image_in(&dir);
    client_for_registry(&registry)
        .push_image(
            &reference(&registry.addr, "busy/app:1"),
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    let requests = AtomicUsize::new(0);
    let proxy = FaultProxy::start(&registry.addr, move |_| {
        if requests.fetch_add(1, Ordering::SeqCst) == 0 {
            Action::Respond {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: Vec::new(),
            }
        } else {
            Action::Forward
        }
    });
    // Our own backoff is 5 ms here: only the server's Retry-After explains a 1 s pause.
    let started = Instant::now();
    let fetched = client(&[&proxy.addr], 3)
        .get_manifest(&reference(&proxy.addr, "busy/app:1"))
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fetched.digest, image.manifest_digest);
    assert_eq!(proxy.seen().len(), 2);
}

#[test]
fn corrupted_blob_is_rejected_and_nothing_is_stored() {
    let registry = TestRegistry::start(Flavor::Plain);
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image_in(&dir);
    client_for_registry(&registry)
        .push_image(
            &reference(&registry.addr, "evil/app:1"),
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    let victim = image.layer_digests[1].clone();
    let victim_path = format!("/blobs/{victim}");
    let proxy = FaultProxy::start(&registry.addr, move |request| {
        if request.method == "GET" && request.path().ends_with(&victim_path) {
            Action::ForwardCorrupted
        } else {
            Action::Forward
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let cache_store = BlobStore::for_layout(cache.path());
    let error = client(&[&proxy.addr], 3)
        .pull_image(&reference(&proxy.addr, "evil/app:1"), &cache_store)
        .unwrap_err();
    match &error {
        RegistryError::PulledBlobCorrupt { digest, .. } => {
            assert_eq!(*digest, image.layer_digests[1])
        }
        other => panic!("expected a corrupt-blob error, got {other:?}"),
    }
    assert!(!cache_store.contains(&image.layer_digests[1]));
    assert!(
        !cache_store.contains(&image.manifest_digest),
        "no manifest for an incomplete image"
    );
    assert_eq!(
        cache_store.remove_stale_temps().unwrap(),
        0,
        "no half-written temp files left"
    );
}

#[test]
fn corrupted_manifest_is_rejected() {
    let registry = TestRegistry::start(Flavor::Plain);
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image_in(&dir);
    client_for_registry(&registry)
        .push_image(
            &reference(&registry.addr, "evil/app:1"),
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    let proxy = FaultProxy::start(&registry.addr, |request| {
        if request.path().contains("/manifests/") {
            Action::ForwardCorrupted
        } else {
            Action::Forward
        }
    });
    let client = client(&[&proxy.addr], 3);
    // By tag: checked against the registry's Docker-Content-Digest.
    let error = client
        .get_manifest(&reference(&proxy.addr, "evil/app:1"))
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::ManifestDigestMismatch { .. }),
        "{error:?}"
    );
    // By digest: checked against the pinned digest.
    let pinned = reference(&proxy.addr, "evil/app").with_digest(image.manifest_digest.clone());
    let error = client.get_manifest(&pinned).unwrap_err();
    assert!(
        matches!(error, RegistryError::ManifestDigestMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn truncated_blob_download_is_retried() {
    let registry = TestRegistry::start(Flavor::Plain);
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image_in(&dir);
    client_for_registry(&registry)
        .push_image(
            &reference(&registry.addr, "flaky/app:1"),
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    let truncated = AtomicUsize::new(0);
    let proxy = FaultProxy::start(&registry.addr, move |request| {
        if request.method == "GET"
            && request.path().contains("/blobs/sha256:")
            && truncated.fetch_add(1, Ordering::SeqCst) == 0
        {
            Action::ForwardTruncated
        } else {
            Action::Forward
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let cache_store = BlobStore::for_layout(cache.path());
    let pulled = client(&[&proxy.addr], 3)
        .pull_image(&reference(&proxy.addr, "flaky/app:1"), &cache_store)
        .unwrap();
    assert_eq!(pulled.fetched.len(), 4);
    for (digest, size) in &image.blobs {
        cache_store.verify(digest, Some(*size)).unwrap();
    }
    assert!(
        proxy
            .seen()
            .iter()
            .any(|seen| seen.action == "forwardtruncated")
    );
}

#[test]
fn interrupted_push_leaves_no_tag_and_a_rerun_completes() {
    let registry = TestRegistry::start(Flavor::Plain);
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image_in(&dir);
    let doomed = image.layer_digests[2].to_string();
    // The network dies for one layer's upload, every time: the push must fail.
    let proxy = FaultProxy::start(&registry.addr, move |request| {
        if request.method == "PUT" && request.query("digest").as_deref() == Some(doomed.as_str()) {
            Action::Drop
        } else {
            Action::Forward
        }
    });
    let target_via_proxy = reference(&proxy.addr, "half/app:1");
    let error = client(&[&proxy.addr], 2)
        .push_image(
            &target_via_proxy,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap_err();
    match &error {
        RegistryError::UploadBlob { digest, .. } => assert_eq!(*digest, image.layer_digests[2]),
        other => panic!("expected the upload of the doomed layer to fail, got {other:?}"),
    }
    assert!(
        !proxy
            .seen()
            .iter()
            .any(|seen| seen.target.contains("/manifests/")),
        "the manifest must not be sent before every blob is in"
    );

    let direct = client_for_registry(&registry);
    let target = reference(&registry.addr, "half/app:1");
    let missing = direct.get_manifest(&target).unwrap_err();
    assert!(
        missing.is_not_found(),
        "no tag may point at an incomplete image: {missing:?}"
    );

    let report = direct
        .push_image(
            &target,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            None,
        )
        .unwrap();
    assert!(report.uploaded.contains(&image.layer_digests[2]));
    assert!(
        !report.skipped.is_empty(),
        "blobs sent before the interruption are reused: {report:?}"
    );
    let cache = tempfile::tempdir().unwrap();
    let pulled = direct
        .pull_image(&target, &BlobStore::for_layout(cache.path()))
        .unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
}

fn client_for_registry(registry: &TestRegistry) -> RegistryClient {
    client(&[&registry.addr], 3)
}
