//! The Debian stack against the real archive (found through the host's apt configuration):
//! signatures, checksums, resolution, unpacking, and the errors users see.
//!
//! Downloads are shared through one cache under the target directory, so only the first
//! run of the suite (or a new Debian point release) downloads anything.

use std::path::Path;

use kiln::cache::Cache;
use kiln::stack::{Fetcher, MirrorOverrides, MirrorPlan, StackError, SuiteSetting, verify_inrelease};

/// One kiln home for every stack test of this run and the next.
fn shared_cache() -> Cache {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stack-kiln-home");
    Cache::open(&home).unwrap()
}

fn host_plan() -> MirrorPlan {
    MirrorPlan::load(Path::new("/"), MirrorOverrides::default()).unwrap()
}

fn suite(name: &str) -> SuiteSetting {
    SuiteSetting {
        name: name.to_owned(),
        mirror: None,
        keyring: None,
    }
}

/// The host's Debian source for `suite`, its InRelease bytes and URL.
fn fetch_inrelease(plan: &MirrorPlan, fetcher: &Fetcher, name: &str) -> (kiln::stack::SuiteSource, Vec<u8>, String) {
    for source in plan.sources_for(&suite(name), "main").unwrap() {
        let url = format!("{}/dists/{name}/InRelease", source.uri);
        let bytes = fetcher.get(&url).unwrap();
        if String::from_utf8_lossy(&bytes).contains("\nOrigin: Debian\n") {
            return (source, bytes, url);
        }
    }
    panic!("the host's apt sources have no Debian source for {name}");
}

#[test]
fn real_inrelease_files_verify_and_the_host_gpgv_agrees() {
    let cache = shared_cache();
    let fetcher = Fetcher::new(&cache);
    let plan = host_plan();
    for name in ["bookworm", "bookworm-security"] {
        let (source, bytes, url) = fetch_inrelease(&plan, &fetcher, name);
        let keyring = plan.keyring(&source.signed_by, name).unwrap();
        let text = verify_inrelease(&bytes, &keyring, &url).unwrap();
        assert!(text.contains(&format!("\nCodename: {name}\n")), "{name}");
        assert!(!text.contains("BEGIN PGP SIGNATURE"));
        // Oracle: the host's gpgv accepts the same file with the same keyring.
        if let kiln::stack::SignedBy::Keyrings(paths) = &source.signed_by {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("InRelease");
            std::fs::write(&file, &bytes).unwrap();
            let mut gpgv = std::process::Command::new("gpgv");
            for path in paths {
                gpgv.arg("--keyring").arg(path);
            }
            if let Ok(status) = gpgv.arg(&file).stderr(std::process::Stdio::null()).status() {
                assert!(status.success(), "gpgv rejects {url}");
            }
        }
    }
}

#[test]
fn inrelease_signed_by_another_key_or_altered_is_rejected() {
    use pgp::composed::{CleartextSignedMessage, KeyType, SecretKeyParamsBuilder};
    use pgp::types::Password;

    let cache = shared_cache();
    let fetcher = Fetcher::new(&cache);
    let plan = host_plan();
    let (source, bytes, url) = fetch_inrelease(&plan, &fetcher, "bookworm");
    let keyring = plan.keyring(&source.signed_by, "bookworm").unwrap();
    let signed_text = verify_inrelease(&bytes, &keyring, &url).unwrap();

    // The same text, signed by a throwaway key made here.
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("Not Debian <mallory@example.invalid>".into());
    let secret = params.build().unwrap().generate(rand::thread_rng()).unwrap();
    let forged = CleartextSignedMessage::sign(rand::thread_rng(), &signed_text, &secret.primary_key, &Password::empty())
        .unwrap()
        .to_armored_string(Default::default())
        .unwrap();
    let error = verify_inrelease(forged.as_bytes(), &keyring, &url).unwrap_err();
    assert!(matches!(error, StackError::BadSignature { signatures: 1, .. }), "{error}");

    // Debian's own signatures over a text with one checksum changed.
    let text = String::from_utf8(bytes).unwrap();
    let marker = " main/binary-amd64/Packages.xz";
    let line_start = text.find(&format!("{marker}\n")).map(|end| text[..end].rfind('\n').unwrap() + 1).unwrap();
    let mut altered = text.clone();
    altered.replace_range(line_start + 1..line_start + 2, if &text[line_start + 1..line_start + 2] == "0" { "1" } else { "0" });
    let error = verify_inrelease(altered.as_bytes(), &keyring, &url).unwrap_err();
    assert!(matches!(error, StackError::BadSignature { signatures: 3, .. }), "{error}");
    assert!(error.to_string().contains(&url));
}
