//! The Debian stack against the real archive (found through the host's apt configuration):
//! signatures, checksums, resolution, unpacking, and the errors users see.
//!
//! Downloads are shared through one cache under the target directory, so only the first
//! run of the suite (or a new Debian point release) downloads anything.

use std::path::{Path, PathBuf};

use kiln::cache::Cache;
use kiln::stack::{
    Fetcher, MirrorOverrides, MirrorPlan, StackError, SuiteSetting, verify_inrelease,
};

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
fn fetch_inrelease(
    plan: &MirrorPlan,
    fetcher: &Fetcher,
    name: &str,
) -> (kiln::stack::SuiteSource, Vec<u8>, String) {
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
    let secret = params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap();
    let forged = CleartextSignedMessage::sign(
        rand::thread_rng(),
        &signed_text,
        &secret.primary_key,
        &Password::empty(),
    )
    .unwrap()
    .to_armored_string(Default::default())
    .unwrap();
    let error = verify_inrelease(forged.as_bytes(), &keyring, &url).unwrap_err();
    assert!(
        matches!(error, StackError::BadSignature { signatures: 1, .. }),
        "{error}"
    );

    // Debian's own signatures over a text with one checksum changed.
    let text = String::from_utf8(bytes).unwrap();
    let marker = " main/binary-amd64/Packages.xz";
    let line_start = text
        .find(&format!("{marker}\n"))
        .map(|end| text[..end].rfind('\n').unwrap() + 1)
        .unwrap();
    let mut altered = text.clone();
    altered.replace_range(
        line_start + 1..line_start + 2,
        if &text[line_start + 1..line_start + 2] == "0" {
            "1"
        } else {
            "0"
        },
    );
    let error = verify_inrelease(altered.as_bytes(), &keyring, &url).unwrap_err();
    assert!(
        matches!(error, StackError::BadSignature { signatures: 3, .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&url));
}

// ---------------------------------------------------------------------------------------
// Run image and runtimes.

use std::sync::OnceLock;

use kiln::layer::{Compression, EntryKind, FileSource, LayerEntries, write_layer, write_tar};
use kiln::stack::{
    BuilderStack, LockMode, ResolvedPackage, RunImage, RuntimeRequest, assemble_run_image,
    assemble_runtime, plan_runtime,
};

fn builder_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("builders/bookworm/builder.toml")
}

/// The default builder with its lock kept at `lock_name` under the test directory.
fn default_stack(lock_name: &str) -> BuilderStack {
    let mut stack = BuilderStack::parse(
        &std::fs::read_to_string(builder_path()).unwrap(),
        &builder_path(),
        MirrorOverrides::default(),
    )
    .unwrap();
    stack.lock_file = Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join(lock_name));
    stack
}

/// The default run image, assembled once per test binary (from the lock when it matches).
fn shared_run_image() -> &'static (BuilderStack, RunImage) {
    static IMAGE: OnceLock<(BuilderStack, RunImage)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let stack = default_stack("stack-shared.lock.toml");
        let image = assemble_run_image(&stack, &shared_cache(), LockMode::Prefer).unwrap();
        (stack, image)
    })
}

fn version_of<'a>(packages: &'a [ResolvedPackage], name: &str) -> &'a ResolvedPackage {
    packages
        .iter()
        .find(|package| package.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the package set"))
}

fn file_text(entries: &LayerEntries, path: &str) -> String {
    match &entries
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .kind
    {
        EntryKind::File(FileSource::Bytes(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("{path} is {other:?}"),
    }
}

/// Extract layers in order into `root`, as an image runtime would (as root: owners kept).
fn extract(layers: &[&LayerEntries], root: &Path) {
    for entries in layers {
        let tar = write_tar(entries, Vec::new()).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_overwrite(true);
        archive.unpack(root).unwrap();
    }
}

/// Run `command` in `root` as 1000:1000 with /proc mounted in a private mount namespace.
fn run_in(root: &Path, command: &str) -> String {
    std::fs::create_dir_all(root.join("proc")).unwrap();
    let script = format!(
        "mount -t proc proc '{root}/proc' && exec chroot --userspec=1000:1000 '{root}' /bin/sh -c \"$0\"",
        root = root.display()
    );
    let output = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            command,
        ])
        .env_clear()
        .env("PATH", kiln::stack::RUN_IMAGE_PATH)
        .env("HOME", "/home/cnb")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "`{command}` failed: {stdout}\n{stderr}"
    );
    stdout + &stderr
}

#[test]
fn run_image_resolves_reproducibly_and_the_security_suite_changes_versions() {
    let cache = shared_cache();
    let with_security = default_stack("stack-repro.lock.toml");
    let first = assemble_run_image(&with_security, &cache, LockMode::Update).unwrap();
    let second = assemble_run_image(&with_security, &cache, LockMode::Update).unwrap();
    let from_lock = assemble_run_image(&with_security, &cache, LockMode::Frozen).unwrap();
    assert_eq!(first.packages, second.packages);
    assert_eq!(first.packages, from_lock.packages);
    let store = cache.blobs();
    let layer = |image: &RunImage| write_layer(&image.entries, Compression::Gzip, &store).unwrap();
    let (one, two, three) = (layer(&first), layer(&second), layer(&from_lock));
    assert_eq!(one.diff_id, two.diff_id);
    assert_eq!(one.digest, two.digest);
    assert_eq!(one.diff_id, three.diff_id);
    assert_eq!(first.labels, second.labels);

    let mut without = default_stack("stack-no-security.lock.toml");
    without
        .suites
        .retain(|suite| suite.name != "bookworm-security");
    let unpatched = assemble_run_image(&without, &cache, LockMode::Update).unwrap();
    // Security fixes (libssl3, tzdata, … at the time of writing) come from bookworm-security,
    // newer than the point release; every other package is the same in both sets.
    let parse = |text: &str| kiln::stack::DebVersion::parse(text).unwrap();
    let patched: Vec<&ResolvedPackage> = first
        .packages
        .iter()
        .filter(|package| package.suite == "bookworm-security")
        .collect();
    assert!(
        !patched.is_empty(),
        "no run-image package has a pending security update"
    );
    for package in &first.packages {
        let old = version_of(&unpatched.packages, &package.name);
        if package.suite == "bookworm-security" {
            assert_eq!(old.suite, "bookworm", "{}", package.name);
            assert!(
                parse(&package.version) > parse(&old.version),
                "{}: {} vs {}",
                package.name,
                package.version,
                old.version
            );
        } else {
            // Newest wins: an older copy in bookworm-security (libc6 today) never wins.
            assert_eq!(package, old);
        }
    }
    assert_ne!(first.package_set_digest, unpatched.package_set_digest);
    assert_ne!(layer(&unpatched).diff_id, one.diff_id);
}

#[test]
fn run_image_has_the_synthesized_system_and_runs_as_cnb() {
    let (_, image) = shared_run_image();
    let names: Vec<&str> = image
        .packages
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    for excluded in ["debconf", "perl-base", "dpkg", "mawk", "openssl"] {
        assert!(
            !names.contains(&excluded),
            "{excluded} must be excluded: {names:?}"
        );
    }
    for package in &image.packages {
        let stanza = file_text(
            &image.entries,
            &format!("var/lib/dpkg/status.d/{}", package.name),
        );
        assert!(
            stanza.contains(&format!("\nVersion: {}\n", package.version)),
            "{stanza}"
        );
        assert!(stanza.starts_with(&format!(
            "Package: {}\nStatus: install ok installed\n",
            package.name
        )));
    }
    assert!(file_text(&image.entries, "usr/lib/os-release").contains("VERSION_ID=\"12\""));
    assert!(
        file_text(&image.entries, "etc/passwd").contains("cnb:x:1000:1000:cnb:/home/cnb:/bin/sh")
    );
    let bundle = file_text(&image.entries, "etc/ssl/certs/ca-certificates.crt");
    assert!(bundle.matches("-----BEGIN CERTIFICATE-----").count() > 100);
    assert_eq!(image.labels["io.buildpacks.base.distro.name"], "debian");
    assert_eq!(image.labels["io.buildpacks.base.distro.version"], "12");
    assert!(
        image.labels["io.buildpacks.base.metadata"].contains(&image.package_set_digest.to_string())
    );
    for (path, _) in image.entries.iter() {
        let top = path.split('/').next().unwrap();
        assert!(
            !["bin", "sbin", "lib", "lib64"].contains(&top) || path == top,
            "{path} escaped usr-merge"
        );
    }

    let root = tempfile::tempdir().unwrap();
    extract(&[&image.entries], root.path());
    let output = run_in(
        root.path(),
        "id -u; ls -ld /workspace /tmp; /lib64/ld-linux-x86-64.so.2 --version",
    );
    let mut lines = output.lines();
    assert_eq!(lines.next(), Some("1000"));
    let listing = |path: &str| -> Vec<String> {
        let line = output
            .lines()
            .find(|line| line.ends_with(path))
            .unwrap_or_else(|| panic!("{output}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(
        listing("/workspace")[..4],
        ["drwxr-xr-x", "2", "cnb", "cnb"],
        "{output}"
    );
    assert_eq!(listing("/tmp")[0], "drwxrwxrwt", "{output}");
    assert!(output.contains("ld.so (Debian GLIBC"), "{output}");
}

/// Plan and assemble a runtime over the shared run image; returns the extracted root.
fn runtime_root(request: RuntimeRequest) -> (tempfile::TempDir, kiln::stack::RuntimeLayer) {
    let (stack, image) = shared_run_image();
    let cache = shared_cache();
    let plan = plan_runtime(stack, image, &request, &cache, LockMode::Prefer).unwrap();
    let again = plan_runtime(stack, image, &request, &cache, LockMode::Prefer).unwrap();
    assert_eq!(plan.key, again.key, "an unchanged runtime keeps its key");
    for package in &plan.packages {
        assert!(
            !image.packages.iter().any(|base| base.name == package.name),
            "{} is already in the run image",
            package.name
        );
    }
    let layer = assemble_runtime(stack, image, &plan, &cache).unwrap();
    assert_eq!(layer.key, plan.key);
    let root = tempfile::tempdir().unwrap();
    extract(&[&image.entries, &layer.entries], root.path());
    (root, layer)
}

#[test]
fn python_runtime_layer_runs_on_the_run_image() {
    let (root, layer) = runtime_root(RuntimeRequest {
        name: "python".to_owned(),
        packages: vec!["python3".to_owned()],
        exclude: Vec::new(),
    });
    assert!(layer.entries.contains("usr/bin/python3.11"));
    let output = run_in(
        root.path(),
        "python3 -c 'import ssl, json, sqlite3, ctypes; print(ssl.OPENSSL_VERSION)'",
    );
    assert!(output.starts_with("OpenSSL 3."), "{output}");
}

#[test]
fn node_runtime_layer_runs_on_the_run_image() {
    let (root, layer) = runtime_root(RuntimeRequest {
        name: "node".to_owned(),
        packages: vec!["nodejs".to_owned()],
        exclude: Vec::new(),
    });
    assert!(
        layer
            .packages
            .iter()
            .any(|package| package.name == "node-undici")
    );
    let output = run_in(
        root.path(),
        "node -e 'require(\"https\"); console.log(process.version)'",
    );
    assert!(output.starts_with("v18."), "{output}");
}

#[test]
fn java_runtime_layer_has_java_on_path_and_a_cacerts_keytool_reads() {
    let (root, layer) = runtime_root(RuntimeRequest {
        name: "java".to_owned(),
        packages: vec!["openjdk-17-jre-headless".to_owned()],
        exclude: java_exclude(),
    });
    assert!(layer.entries.contains(kiln::stack::JAVA_CACERTS));
    let output = run_in(root.path(), "java -version");
    assert!(output.contains("openjdk version \"17."), "{output}");
    let listing = run_in(root.path(), "keytool -list -cacerts -storepass changeit");
    assert!(listing.contains("Your keystore contains"), "{listing}");
    assert!(listing.contains("debian:isrg_root_x1.pem"), "{listing}");
}

/// What a headless server JRE can do without (as a buildpack would ask): desktop, printing,
/// sound and smart-card libraries that the JRE only loads on use.
fn java_exclude() -> Vec<String> {
    [
        "libcups2",
        "libasound2",
        "libpcsclite1",
        "libnss3",
        "util-linux",
    ]
    .iter()
    .map(|name| name.to_string())
    .collect()
}

// ---------------------------------------------------------------------------------------
// Errors users see, and tampering.

use kiln::diagnostic::{Diagnose, ErrorClass};
use kiln::stack::{Lock, LockedSet, ResolveError};

fn small_stack(packages: &[&str], lock: &Path) -> BuilderStack {
    let mut stack = default_stack("unused.lock.toml");
    stack.run_image_packages = packages.iter().map(|name| name.to_string()).collect();
    stack.lock_file = Some(lock.to_path_buf());
    stack
}

#[test]
fn unknown_packages_and_unsatisfiable_dependencies_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cache = shared_cache();
    let unknown = small_stack(&["kiln-no-such-package"], &dir.path().join("a.lock.toml"));
    let error = assemble_run_image(&unknown, &cache, LockMode::Prefer).unwrap_err();
    assert!(
        matches!(&error, StackError::Resolve(inner) if matches!(&**inner, ResolveError::UnknownPackage { request } if request == "kiln-no-such-package")),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::User);
    assert!(error.hint().is_some());
    assert!(
        !dir.path().join("a.lock.toml").exists(),
        "a failed resolution writes no lock"
    );

    // bookworm-security alone carries python3.11 but not what it depends on.
    let mut security_only = small_stack(&["python3.11"], &dir.path().join("b.lock.toml"));
    security_only
        .suites
        .retain(|suite| suite.name == "bookworm-security");
    let error = assemble_run_image(&security_only, &cache, LockMode::Prefer).unwrap_err();
    let StackError::Resolve(inner) = &error else {
        panic!("expected a resolution error, got {error}");
    };
    match &**inner {
        ResolveError::Unsatisfiable {
            package,
            dependency,
            ..
        } => {
            assert_eq!(package, "python3.11");
            assert_eq!(dependency, "media-types | mime-support");
        }
        other => panic!("expected an unsatisfiable dependency, got {other}"),
    }
}

#[test]
fn unreachable_mirror_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut stack = small_stack(&["netbase"], &dir.path().join("lock.toml"));
    stack.mirror_overrides = MirrorOverrides::from_lookup(|name| {
        (name == kiln::stack::MIRROR_ENV).then(|| format!("http://127.0.0.1:{port}/debian"))
    });
    let error = assemble_run_image(&stack, &shared_cache(), LockMode::Update).unwrap_err();
    assert!(matches!(error, StackError::Fetch { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("cannot download http://127.0.0.1:{port}/debian/dists/bookworm/InRelease")
    );
    assert!(error.hint().unwrap().contains("KILN_DEBIAN_MIRROR"));
}

/// The pinned netbase of a one-package stack, resolved through the shared cache.
fn pinned_netbase(lock: &Path) -> (BuilderStack, ResolvedPackage) {
    let stack = small_stack(&["netbase"], lock);
    let image = assemble_run_image(&stack, &shared_cache(), LockMode::Prefer).unwrap();
    assert_eq!(image.packages.len(), 1);
    (stack, image.packages[0].clone())
}

#[test]
fn a_pinned_package_gone_from_the_mirror_asks_for_update() {
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("lock.toml");
    let (stack, mut netbase) = pinned_netbase(&lock_path);
    // As if Debian had dropped the pinned version: the lock names a file the mirror lacks.
    netbase.filename = "pool/main/n/netbase/netbase_0.1-kiln-gone_all.deb".to_owned();
    netbase.version = "0.1-kiln-gone".to_owned();
    netbase.sha256 = "0".repeat(64);
    let lock = Lock {
        base: Some(LockedSet {
            inputs: stack.inputs_digest(&stack.run_image_packages, &[]),
            packages: vec![netbase],
        }),
        ..Lock::default()
    };
    lock.save(&lock_path).unwrap();
    let before = std::fs::read(&lock_path).unwrap();
    let error = assemble_run_image(&stack, &shared_cache(), LockMode::Frozen).unwrap_err();
    assert!(
        matches!(&error, StackError::PinnedPackageGone { package, .. } if package == "netbase"),
        "{error}"
    );
    assert!(error.to_string().contains("0.1-kiln-gone"));
    assert!(error.hint().unwrap().contains("--update"));
    assert_eq!(
        std::fs::read(&lock_path).unwrap(),
        before,
        "the lock is left as it was"
    );
}

#[test]
fn a_tampered_deb_in_the_cache_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("lock.toml");
    let (stack, netbase) = pinned_netbase(&lock_path);
    let fresh = Cache::open(&dir.path().join("home")).unwrap();
    let good = Fetcher::new(&shared_cache()).cached_path(&netbase.sha256);
    let planted = Fetcher::new(&fresh).cached_path(&netbase.sha256);
    let mut bytes = std::fs::read(good).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, bytes).unwrap();
    let error = assemble_run_image(&stack, &fresh, LockMode::Frozen).unwrap_err();
    match &error {
        StackError::CorruptDownload { path, expected, .. } => {
            assert_eq!(path, &planted);
            assert_eq!(expected, &netbase.sha256);
        }
        other => panic!("expected a corrupt download, got {other}"),
    }
    assert!(
        error
            .hint()
            .unwrap()
            .contains(&planted.display().to_string())
    );
}

/// A static HTTP server on 127.0.0.1 answering from `routes` (path → body, else 404). It
/// stops after a bounded number of connections or two minutes, whichever comes first.
fn serve_locally(routes: std::collections::HashMap<String, Vec<u8>>) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut served = 0;
        while served < 200 && std::time::Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            served += 1;
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let mut stream = reader.into_inner();
            let (status, body) = match routes.get(&path) {
                Some(body) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &b""[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(body));
        }
    });
    port
}

#[test]
fn the_debian_source_is_chosen_by_origin_and_a_tampered_index_is_rejected() {
    use pgp::composed::{CleartextSignedMessage, KeyType, SecretKeyParamsBuilder};
    use pgp::types::Password;

    // Real, signed bookworm metadata from the host's Debian source.
    let cache = shared_cache();
    let fetcher = Fetcher::new(&cache);
    let plan = host_plan();
    let (source, inrelease, url) = fetch_inrelease(&plan, &fetcher, "bookworm");
    let keyring = plan.keyring(&source.signed_by, "bookworm").unwrap();
    let release =
        kiln::stack::Release::parse(&verify_inrelease(&inrelease, &keyring, &url).unwrap(), &url)
            .unwrap();
    let index = &release.files["main/binary-amd64/Packages.xz"];
    let packages_xz = fetcher
        .fetch_verified(
            &[format!(
                "{}/dists/bookworm/main/binary-amd64/Packages.xz",
                source.uri
            )],
            kiln::stack::Expected {
                sha256: &index.sha256,
                size: Some(index.size),
                authority: "test",
            },
        )
        .unwrap();
    let mut tampered_xz = packages_xz.clone();
    tampered_xz[1000] ^= 0x01;

    // A third-party repository reusing the suite name, validly signed by its own key.
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("Third Party <apt@example.invalid>".into());
    let secret = params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap();
    let third_party = CleartextSignedMessage::sign(
        rand::thread_rng(),
        "Origin: NodeSource\nLabel: NodeSource\nCodename: bookworm\nArchitectures: amd64\nComponents: main\n",
        &secret.primary_key,
        &Password::empty(),
    )
    .unwrap()
    .to_armored_string(Default::default())
    .unwrap();

    let by_hash = format!("/main/binary-amd64/by-hash/SHA256/{}", index.sha256);
    let mut routes = std::collections::HashMap::new();
    routes.insert(
        "/third/dists/bookworm/InRelease".to_owned(),
        third_party.into_bytes(),
    );
    for (prefix, xz) in [("debian", &packages_xz), ("tampered", &tampered_xz)] {
        routes.insert(
            format!("/{prefix}/dists/bookworm/InRelease"),
            inrelease.clone(),
        );
        routes.insert(format!("/{prefix}/dists/bookworm{by_hash}"), xz.clone());
        routes.insert(
            format!("/{prefix}/dists/bookworm/main/binary-amd64/Packages.xz"),
            xz.clone(),
        );
    }
    let port = serve_locally(routes);

    // An apt configuration listing the third-party source first.
    let apt_root = tempfile::tempdir().unwrap();
    let sources = apt_root.path().join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&sources).unwrap();
    std::fs::write(
        sources.join("00third-party.list"),
        format!("deb [signed-by=/nonexistent/third-party.gpg] http://127.0.0.1:{port}/third bookworm main\n"),
    )
    .unwrap();
    let debian_source = |prefix: &str| {
        format!(
            "Types: deb\nURIs: http://127.0.0.1:{port}/{prefix}\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    };
    std::fs::write(sources.join("10debian.sources"), debian_source("debian")).unwrap();
    let local_plan = MirrorPlan::load(apt_root.path(), MirrorOverrides::default()).unwrap();
    let fresh_home = tempfile::tempdir().unwrap();
    let fresh = Fetcher::new(&Cache::open(fresh_home.path()).unwrap());
    let verified = kiln::stack::verify_suite(
        &local_plan,
        &fresh,
        &suite("bookworm"),
        &["main".to_owned()],
    )
    .unwrap();
    assert_eq!(
        verified.source.uri,
        format!("http://127.0.0.1:{port}/debian")
    );
    let files = kiln::stack::index_files(&verified, &["main".to_owned()]).unwrap();
    assert_eq!(
        files.len(),
        1,
        "bookworm lists `all` packages in the amd64 index"
    );
    let records = kiln::stack::load_index(&fresh, &files[0]).unwrap();
    assert!(records.iter().any(|record| record.name == "dash"));

    // The same signed Release served with an altered Packages.xz.
    std::fs::write(sources.join("10debian.sources"), debian_source("tampered")).unwrap();
    let tampered_plan = MirrorPlan::load(apt_root.path(), MirrorOverrides::default()).unwrap();
    let other_home = tempfile::tempdir().unwrap();
    let other = Fetcher::new(&Cache::open(other_home.path()).unwrap());
    let verified = kiln::stack::verify_suite(
        &tampered_plan,
        &other,
        &suite("bookworm"),
        &["main".to_owned()],
    )
    .unwrap();
    let files = kiln::stack::index_files(&verified, &["main".to_owned()]).unwrap();
    let error = kiln::stack::load_index(&other, &files[0]).unwrap_err();
    match &error {
        StackError::DigestMismatch {
            url,
            authority,
            expected,
            ..
        } => {
            assert!(
                url.contains("/tampered/dists/bookworm/main/binary-amd64/by-hash/"),
                "{url}"
            );
            assert!(authority.contains("signed Release"), "{authority}");
            assert_eq!(expected, &index.sha256);
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(
        !other.cached_path(&index.sha256).exists(),
        "nothing unverified enters the cache"
    );

    // Only the third-party source left: no Debian source for the suite.
    std::fs::remove_file(sources.join("10debian.sources")).unwrap();
    let third_only = MirrorPlan::load(apt_root.path(), MirrorOverrides::default()).unwrap();
    let error = kiln::stack::verify_suite(
        &third_only,
        &other,
        &suite("bookworm"),
        &["main".to_owned()],
    )
    .unwrap_err();
    assert!(
        matches!(error, StackError::NoDebianSource { .. }),
        "{error}"
    );
}
