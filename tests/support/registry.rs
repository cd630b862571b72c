//! Real `docker-registry` processes for integration tests: plain HTTP, htpasswd basic auth, or
//! TLS with a throwaway CA; each on 127.0.0.1 with a free port and a temp storage root, killed
//! on drop. Blob uploads are counted from the registry's access log.
//!
//! Use from a test crate with `#[path = "support/registry.rs"] mod registry_support;`.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kiln::layer::{Compression, LayerEntries, Owner, write_layer};
use kiln::oci::{BlobStore, Digest, canonical};

/// How long a registry may take to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Which registry to start.
#[derive(Debug, Clone)]
pub enum Flavor {
    /// Anonymous plain HTTP.
    Plain,
    /// Plain HTTP with htpasswd basic auth for one user.
    Basic { username: String, password: String },
    /// HTTPS with a certificate for IP:127.0.0.1 signed by a fresh CA.
    Tls,
    /// HTTPS (as [`Flavor::Tls`]) with htpasswd basic auth: what CI registries look like.
    TlsBasic { username: String, password: String },
}

/// A running registry; killed when dropped.
pub struct TestRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// PEM of the CA that signed the TLS certificate (TLS flavor only).
    pub ca_path: Option<PathBuf>,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Install the Debian packages the registry tests need, once per test process.
pub fn ensure_tools() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let wanted = [
            ("docker-registry", "docker-registry"),
            ("htpasswd", "apache2-utils"),
            ("skopeo", "skopeo"),
            ("openssl", "openssl"),
        ];
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(binary, _)| !on_path(binary))
            .map(|(_, package)| *package)
            .collect();
        if missing.is_empty() {
            return;
        }
        let status = Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "--no-install-recommends",
            ])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("run apt-get");
        assert!(status.success(), "apt-get install {missing:?} failed");
    });
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false)
}

impl TestRegistry {
    /// Start a registry of this flavor and wait until it answers.
    pub fn start(flavor: Flavor) -> Self {
        ensure_tools();
        // A port picked free can be taken before the registry binds it; try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_start(&flavor) {
                Ok(registry) => return registry,
                Err(error) => last_error = error,
            }
        }
        panic!("cannot start docker-registry: {last_error}");
    }

    fn try_start(flavor: &Flavor) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut extra = String::new();
        let mut top_level = String::new();
        let mut ca_path = None;
        if let Flavor::TlsBasic { username, password } = flavor {
            top_level = htpasswd_auth(dir.path(), username, password)?;
            let (ca, cert, key) = make_tls_files(dir.path())?;
            extra.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            ca_path = Some(ca);
        }
        match flavor {
            Flavor::Plain | Flavor::TlsBasic { .. } => {}
            Flavor::Basic { username, password } => {
                let output = Command::new("htpasswd")
                    .args(["-Bbn", username, password])
                    .output()
                    .map_err(|e| e.to_string())?;
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, &output.stdout).map_err(|e| e.to_string())?;
                extra.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            Flavor::Tls => {
                let (ca, cert, key) = make_tls_files(dir.path())?;
                extra.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                ca_path = Some(ca);
            }
        }
        let (http_extra, top_extra) = if matches!(flavor, Flavor::Tls | Flavor::TlsBasic { .. }) {
            (extra, top_level)
        } else {
            (String::new(), extra)
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: kiln-test-secret\n{http_extra}{top_extra}",
            root = dir.path().join("storage").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let access_log =
            std::fs::File::create(dir.path().join("access.log")).map_err(|e| e.to_string())?;
        let error_log =
            std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(access_log)
            .stderr(error_log)
            .spawn()
            .map_err(|e| format!("spawn docker-registry: {e}"))?;
        let mut registry = Self {
            addr,
            ca_path,
            dir,
            child,
        };
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = registry.child.try_wait() {
                let log = std::fs::read_to_string(registry.dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(format!("docker-registry exited with {status}: {log}"));
            }
            if TcpStream::connect(&registry.addr).is_ok() {
                return Ok(registry);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = registry.child.kill();
        Err("docker-registry did not listen in time".to_owned())
    }

    /// The access log so far (Apache combined format, one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// `(method, path, status)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.access_log()
            .lines()
            .filter_map(|line| {
                let request = line.split('"').nth(1)?;
                let mut parts = request.split(' ');
                let method = parts.next()?.to_owned();
                let path = parts.next()?.to_owned();
                let status = line
                    .split('"')
                    .nth(2)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some((method, path, status))
            })
            .collect()
    }

    /// Blob uploads completed so far (a `PUT` closing an upload session with 201), optionally
    /// only for one repository.
    pub fn blob_uploads(&self, repository: Option<&str>) -> usize {
        self.requests()
            .iter()
            .filter(|(method, path, status)| {
                method == "PUT"
                    && *status == 201
                    && path.contains("/blobs/uploads/")
                    && repository.is_none_or(|repo| path.starts_with(&format!("/v2/{repo}/blobs/")))
            })
            .count()
    }

    /// Cross-repository mounts the registry granted (201) so far.
    pub fn blob_mounts(&self) -> usize {
        self.requests()
            .iter()
            .filter(|(method, path, status)| {
                method == "POST" && *status == 201 && path.contains("mount=")
            })
            .count()
    }

    /// Wait until the access log has at least `count` lines (it is written after responses).
    pub fn settle(&self) {
        // The access log is written when the handler returns, which can trail the response the
        // client saw by a moment.
        let before = self.access_log().len();
        std::thread::sleep(Duration::from_millis(50));
        let mut last = self.access_log().len();
        let started = Instant::now();
        while last != before && started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.access_log().len();
            if now == last {
                break;
            }
            last = now;
        }
    }

    /// The registry's own (error-level) log, for failure messages.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

/// An htpasswd file for one user and the registry config section using it.
fn htpasswd_auth(dir: &Path, username: &str, password: &str) -> Result<String, String> {
    let output = Command::new("htpasswd")
        .args(["-Bbn", username, password])
        .output()
        .map_err(|e| e.to_string())?;
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, &output.stdout).map_err(|e| e.to_string())?;
    Ok(format!(
        "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
        htpasswd.display()
    ))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A CA and a server certificate for IP:127.0.0.1 signed by it (rustls rejects a CA
/// certificate used directly as the server's).
fn make_tls_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let ca_key = dir.join("ca-key.pem");
    let ca = dir.join("ca.pem");
    let key = dir.join("server-key.pem");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .map_err(|e| e.to_string())?;
    let run = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    };
    let path = |p: &PathBuf| p.display().to_string();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &path(&ca_key),
        "-out",
        &path(&ca),
        "-days",
        "2",
        "-subj",
        "/CN=kiln test CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &path(&key),
        "-out",
        &path(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        &path(&csr),
        "-CA",
        &path(&ca),
        "-CAkey",
        &path(&ca_key),
        "-CAcreateserial",
        "-out",
        &path(&cert),
        "-days",
        "2",
        "-extfile",
        &path(&ext),
    ])?;
    Ok((ca, cert, key))
}

/// An image built in a test: blobs in a store, manifest bytes ready to push.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
    pub media_type: String,
    pub config_digest: Digest,
    pub layer_digests: Vec<Digest>,
    /// Config first, then layers.
    pub blobs: Vec<(Digest, u64)>,
}

/// Build an OCI image with one layer per entry of `layers` (each a list of files) into `store`.
pub fn build_image(store: &BlobStore, layers: &[&[(&str, &[u8])]]) -> TestImage {
    let mut written = Vec::new();
    for files in layers {
        let mut entries = LayerEntries::new();
        for (path, content) in files.iter() {
            entries
                .add_bytes(path, content.to_vec(), 0o644, Owner::CNB)
                .unwrap();
        }
        entries.add_missing_parents(0o755, Owner::CNB);
        written.push(write_layer(&entries, Compression::Gzip, store).unwrap());
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1980-01-01T00:00:01Z",
        "config": {"Env": ["PATH=/usr/bin"], "WorkingDir": "/workspace"},
        "rootfs": {"type": "layers", "diff_ids": written.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "history": written.iter().map(|_| serde_json::json!({"created": "1980-01-01T00:00:01Z", "created_by": "kiln test"})).collect::<Vec<_>>(),
    });
    let config_bytes = canonical::to_vec(&config).unwrap();
    let config_digest = store.put_bytes(&config_bytes).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": written.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type,
            "digest": l.digest.to_string(),
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = canonical::to_vec(&manifest).unwrap();
    let manifest_digest = Digest::of_bytes(&manifest_bytes);
    let mut blobs = vec![(config_digest.clone(), config_bytes.len() as u64)];
    blobs.extend(written.iter().map(|l| (l.digest.clone(), l.size)));
    TestImage {
        manifest_bytes,
        manifest_digest,
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        config_digest,
        layer_digests: written.iter().map(|l| l.digest.clone()).collect(),
        blobs,
    }
}

/// Run a command, panicking with its output when it fails; returns stdout.
pub fn run_ok(command: &mut Command) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Write an executable script.
pub fn write_script(path: &Path, body: &str) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(body.as_bytes()).unwrap();
    drop(file);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
