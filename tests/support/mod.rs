//! Helpers shared by integration tests: a kiln command with its own KILN_HOME, a busybox base
//! image made from Debian's busybox-static, and readers for what kiln writes.
#![allow(dead_code)]

pub mod jre;
pub mod maven;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln::layer::{Compression, LayerEntries, Owner, write_layer};
use kiln::oci::{BlobStore, Digest};

/// Pseudo-random, incompressible bytes (xorshift), the same for the same seed: stands for
/// wheels, binaries and other data that compression cannot shrink.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15 ^ seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Every entry of a layer in the local store as (path, whether it is a regular file), in
/// archive order.
pub fn layer_entries(kiln: &Kiln, layer: &kiln::oci::LayerRef) -> Vec<(String, bool)> {
    let blobs = BlobStore::for_layout(&kiln.store());
    let reader = kiln::oci::layer_reader::uncompressed_reader(&blobs, layer).unwrap();
    tar::Archive::new(reader)
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.header().entry_type().is_file(),
            )
        })
        .collect()
}

/// A free TCP port on the loopback interface (`kiln run` shares the host network).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 `GET /` on 127.0.0.1:`port`, waiting at most `read_timeout` for the answer:
/// the whole response, or the error when nothing (or nothing readable) answered.
pub fn http_get_once(port: u16, read_timeout: std::time::Duration) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(read_timeout))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// A kiln binary with a private data directory.
pub struct Kiln {
    pub home: tempfile::TempDir,
}

impl Kiln {
    pub fn new() -> Self {
        Self {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `kiln ARGS` with this home.
    pub fn cmd(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .env("KILN_HOME", self.home.path())
            .env_remove("SOURCE_DATE_EPOCH");
        command
    }

    /// Run and return the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("kiln runs")
    }

    /// Run, require success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "kiln {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The local store's OCI layout.
    pub fn store(&self) -> PathBuf {
        self.home.path().join("v1/store")
    }

    /// Tags in the local store.
    pub fn store_tags(&self) -> Vec<String> {
        match kiln::oci::Layout::open(&self.store()) {
            Ok(layout) => layout.tags().unwrap(),
            Err(_) => Vec::new(),
        }
    }
}

/// Which busybox applets the test base links.
const APPLETS: &[&str] = &[
    "sh", "echo", "id", "cat", "ls", "sleep", "env", "httpd", "wget", "printf", "test", "pwd",
    "true", "false", "kill", "ps",
];

/// A tiny base image from Debian's busybox-static in an OCI layout at `dir` (tag `latest`),
/// written by hand (not by kiln's image builder) with a CMD that must not leak into apps.
/// `variant` changes one base file so tests can make a second, different base.
pub fn busybox_base(dir: &Path, variant: &str) -> PathBuf {
    busybox_base_with(dir, variant, "amd64", &[])
}

/// [`busybox_base`] with another architecture label and extra config labels.
pub fn busybox_base_with(
    dir: &Path,
    variant: &str,
    arch: &str,
    labels: &[(&str, &str)],
) -> PathBuf {
    let busybox =
        std::fs::read("/bin/busybox").expect("busybox-static is installed (/bin/busybox)");
    let store = BlobStore::for_layout(dir);
    let mut entries = LayerEntries::new();
    entries
        .add_bytes("bin/busybox", busybox, 0o755, Owner::ROOT)
        .unwrap();
    for applet in APPLETS {
        entries
            .add_symlink(&format!("bin/{applet}"), "busybox", Owner::ROOT)
            .unwrap();
    }
    entries
        .add_bytes(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n".to_vec(),
            0o644,
            Owner::ROOT,
        )
        .unwrap();
    entries
        .add_bytes(
            "etc/group",
            b"root:x:0:\ncnb:x:1000:\n".to_vec(),
            0o644,
            Owner::ROOT,
        )
        .unwrap();
    entries
        .add_bytes(
            "etc/os-release",
            format!("ID=busybox\nVERSION_ID=1.36\nPRETTY_NAME=\"busybox test base {variant}\"\n")
                .into_bytes(),
            0o644,
            Owner::ROOT,
        )
        .unwrap();
    entries.add_dir("tmp", 0o1777, Owner::ROOT).unwrap();
    entries.add_dir("workspace", 0o755, Owner::CNB).unwrap();
    entries.add_missing_parents(0o755, Owner::ROOT);
    let layer = write_layer(&entries, Compression::Gzip, &store).unwrap();
    let mut label_map = serde_json::Map::new();
    label_map.insert("org.example.base".into(), variant.into());
    for (key, value) in labels {
        label_map.insert((*key).into(), (*value).into());
    }
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "BASE_VARIANT=".to_owned() + variant],
            "Cmd": ["sh", "-c", "echo BASE CMD LEAKED"],
            "Labels": label_map
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
        "history": [{"created_by": "busybox base", "created": "2020-01-01T00:00:00Z"}]
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = store.put_bytes(&config_bytes).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": layer.size}]
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = store.put_bytes(&manifest_bytes).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    dir.to_path_buf()
}

/// Write files (path → content) into a fresh app directory.
pub fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    dir
}

/// The manifest and config of the image tagged `tag` in the layout at `dir`.
pub fn read_image(dir: &Path, tag: &str) -> kiln::oci::Image {
    kiln::oci::Layout::open(dir)
        .unwrap()
        .read_image(Some(tag))
        .unwrap()
}

/// Diff ids of an image's layers.
pub fn diff_ids(image: &kiln::oci::Image) -> Vec<String> {
    image.diff_ids()
}

/// Validate every image in a layout with kiln's validator.
pub fn validate_layout(dir: &Path) {
    let layout = kiln::oci::Layout::open(dir).unwrap();
    kiln::oci::validate::validate_layout(&layout).unwrap();
}

/// Run a command, require success, return stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a tool is on PATH (tests that need it say so clearly when it is not).
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run scripts/test.sh, which installs the test tools"
    );
}

/// The sha256 of a file.
pub fn file_digest(path: &Path) -> Digest {
    Digest::of_bytes(&std::fs::read(path).unwrap())
}
