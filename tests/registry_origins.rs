//! Pushing images whose blobs stay on registries ([`BlobOrigins`]): present blobs are skipped,
//! blobs of another repository on the same registry are mounted, blobs on another registry
//! are fetched and uploaded, and a blob known nowhere fails before any request.

#[path = "support/registry.rs"]
mod registry_support;

use kiln::oci::BlobStore;
use kiln::registry::{
    BlobOrigins, CredentialStore, Reference, RegistryClient, RegistryOptions, TransportOptions,
};
use registry_support::{Flavor, TestRegistry, build_image};

const BASE: &[(&str, &[u8])] = &[("etc/os-release", b"ID=debian\n")];
const APP: &[(&str, &[u8])] = &[("workspace/app.py", b"print('hi')\n")];

fn client(addrs: &[&str]) -> RegistryClient {
    let mut options = RegistryOptions::with_credentials(CredentialStore::anonymous());
    options.transport = TransportOptions {
        extra_ca: None,
        insecure_registries: addrs.iter().map(|addr| (*addr).to_owned()).collect(),
    };
    RegistryClient::new(options).unwrap()
}

#[test]
fn blobs_only_on_registries_are_mounted_or_carried_over() {
    let source = TestRegistry::start(Flavor::Plain);
    let other = TestRegistry::start(Flavor::Plain);
    let client = client(&[&source.addr, &other.addr]);
    let machine_a = tempfile::tempdir().unwrap();
    let store_a = BlobStore::for_layout(machine_a.path());
    let image = build_image(&store_a, &[BASE, APP]);
    let published = Reference::parse(&format!("{}/team/app:1", source.addr)).unwrap();
    client
        .push_image(
            &published,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store_a,
            None,
        )
        .unwrap();
    source.settle();
    let uploads = source.blob_uploads(None);

    // Machine B has only the config; the layers are known to be in team/app.
    let machine_b = tempfile::tempdir().unwrap();
    let store_b = BlobStore::for_layout(machine_b.path());
    let config = std::fs::read(store_a.path(&image.config_digest)).unwrap();
    store_b.put_bytes(&config).unwrap();
    let mut origins = BlobOrigins::new();
    origins.add_all(&image.layer_digests, &published);

    let same_registry = Reference::parse(&format!("{}/team/copy:1", source.addr)).unwrap();
    let report = client
        .push_image_with(
            &same_registry,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store_b,
            &origins,
        )
        .unwrap();
    assert_eq!(report.mounted, image.layer_digests);
    assert_eq!(report.uploaded, std::slice::from_ref(&image.config_digest));
    source.settle();
    assert_eq!(source.blob_uploads(None), uploads + 1);
    assert!(
        !store_b.contains(&image.layer_digests[0]),
        "nothing downloaded"
    );

    // Another registry cannot mount: the layers come down once and go up.
    let elsewhere = Reference::parse(&format!("{}/team/app:1", other.addr)).unwrap();
    let report = client
        .push_image_with(
            &elsewhere,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store_b,
            &origins,
        )
        .unwrap();
    assert_eq!(report.uploaded.len(), 3, "{report:?}");
    assert!(store_b.contains(&image.layer_digests[0]));

    // A blob neither local nor known anywhere fails before any request is made.
    let machine_c = tempfile::tempdir().unwrap();
    let store_c = BlobStore::for_layout(machine_c.path());
    store_c.put_bytes(&config).unwrap();
    other.settle();
    let before = other.requests().len();
    let error = client
        .push_image_with(
            &Reference::parse(&format!("{}/team/none:1", other.addr)).unwrap(),
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store_c,
            &BlobOrigins::new(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("cannot read blob"), "{error}");
    other.settle();
    assert_eq!(other.requests().len(), before);
}
