//! Test images and a way to run them in a separate process (optionally as another user).
//!
//! The runner subprocess is this test binary itself: `runner_subprocess` (a test that does
//! nothing unless `KILN_TEST_RUN_REQUEST` names a request file) calls `kiln::run::run` and
//! exits with its result, so no extra binary target is needed until the CLI has `kiln run`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln::cache::Cache;
use kiln::layer::{Compression, Entry, EntryKind, FileSource, LayerEntries, Owner, write_layer};
use kiln::oci::BlobStore;
use kiln::run::{RunCommand, RunLayer, RunSpec};
use oci_spec::image::{
    Arch, ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder, Os, RootFsBuilder,
};

/// Environment variable naming the request file of the runner subprocess.
pub const REQUEST_VAR: &str = "KILN_TEST_RUN_REQUEST";
/// Host busybox from Debian's `busybox-static` (statically linked, so it runs in any rootfs).
const HOST_BUSYBOX: &str = "/bin/busybox";
/// Applets linked in the test base image.
const APPLETS: [&str; 17] = [
    "sh", "id", "echo", "sleep", "httpd", "cat", "ls", "test", "rm", "head", "grep", "wc", "touch",
    "mkdir", "true", "env", "pwd",
];
/// The unprivileged user tests run the runner as.
pub const NOBODY: u32 = 65534;

/// What the runner subprocess should run.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub home: PathBuf,
    pub layout: PathBuf,
    pub layers: Vec<RunLayer>,
    pub config: ImageConfiguration,
    pub command: RunCommand,
    pub env: Vec<(String, String)>,
}

/// A test image: layers in a blob store under a temp dir, plus its config.
pub struct TestImage {
    pub dir: tempfile::TempDir,
    pub layers: Vec<RunLayer>,
    pub config: ImageConfiguration,
}

impl TestImage {
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    pub fn blobs(&self) -> BlobStore {
        BlobStore::for_layout(&self.layout())
    }

    /// A kiln home inside the image's temp dir (one per name, so tests can share or not).
    pub fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn spec(&self, command: RunCommand) -> RunSpec {
        RunSpec {
            layers: self.layers.clone(),
            blobs: self.blobs(),
            config: self.config.clone(),
            command,
            env: Vec::new(),
        }
    }

    /// Add a layer written from `entries`.
    pub fn push_entries(&mut self, entries: &LayerEntries, compression: Compression) {
        let written = write_layer(entries, compression, &self.blobs()).expect("write layer");
        self.layers.push(RunLayer::from(&written));
        self.refresh_config();
    }

    /// Add an uncompressed layer from raw tar bytes (for entries `LayerEntries` refuses).
    pub fn push_raw_tar(&mut self, tar: &[u8]) {
        let digest = self.blobs().put_bytes(tar).expect("store tar");
        self.layers.push(RunLayer {
            digest: digest.clone(),
            diff_id: digest,
            media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
        });
        self.refresh_config();
    }

    fn refresh_config(&mut self) {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|layer| layer.diff_id.to_string())
            .collect();
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(diff_ids)
            .build()
            .unwrap();
        self.config.set_rootfs(rootfs);
    }

    /// Give the whole directory to `uid` (so an unprivileged runner can read blobs, which
    /// are written 0600, and own its kiln home).
    pub fn give_to(&self, uid: u32) {
        for entry in walkdir::WalkDir::new(self.dir.path()) {
            let entry = entry.unwrap();
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid)).unwrap();
        }
    }
}

fn file(bytes: &[u8], mode: u32, owner: Owner) -> Entry {
    Entry {
        kind: EntryKind::File(FileSource::Bytes(Arc::new(bytes.to_vec()))),
        mode,
        owner,
    }
}

/// busybox, users root and cnb (1000:1000), a marker file for whiteout tests, /www.
pub fn base_entries() -> LayerEntries {
    let busybox = std::fs::canonicalize(HOST_BUSYBOX).expect("busybox-static is installed");
    let size = std::fs::metadata(&busybox).unwrap().len();
    let mut entries = LayerEntries::new();
    let root = Owner::ROOT;
    entries.add_dir("bin", 0o755, root).unwrap();
    entries
        .insert(
            "bin/busybox",
            Entry {
                kind: EntryKind::File(FileSource::Path {
                    path: busybox,
                    size,
                }),
                mode: 0o755,
                owner: root,
            },
        )
        .unwrap();
    for applet in APPLETS {
        entries
            .add_symlink(&format!("bin/{applet}"), "busybox", root)
            .unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n";
    entries
        .insert("etc/passwd", file(passwd, 0o644, root))
        .unwrap();
    entries
        .insert("etc/group", file(b"root:x:0:\ncnb:x:1000:\n", 0o644, root))
        .unwrap();
    entries
        .insert("etc/base-marker", file(b"from the base\n", 0o644, root))
        .unwrap();
    entries
        .insert("opq/old", file(b"lower\n", 0o644, root))
        .unwrap();
    entries
        .insert("www/index.html", file(b"hello from kiln\n", 0o644, root))
        .unwrap();
    entries.add_dir("tmp", 0o1777, root).unwrap();
    entries.add_dir("root", 0o700, root).unwrap();
    entries.add_dir("home/cnb", 0o755, Owner::CNB).unwrap();
    entries.add_missing_parents(0o755, root);
    entries
}

const ORPHAN_SCRIPT: &str = r#"#!/bin/sh
orphan=$(sh -c 'sleep 0.6 >/dev/null 2>&1 & echo $!')
sleep 0.2
read -r line < /proc/$orphan/stat
rest=${line##*) }
set -- $rest
echo "orphan-parent=$2"
sleep 1
[ -e /proc/$orphan ] || echo orphan-gone
zombies=0
for stat in /proc/[0-9]*/stat; do
  read -r line < "$stat" || continue
  rest=${line##*) }
  set -- $rest
  [ "$1" = Z ] && zombies=$((zombies + 1))
done
echo "app-pid=$$"
echo "zombies=$zombies"
"#;

/// CNB-style process launchers and a workspace owned by cnb.
pub fn app_entries() -> LayerEntries {
    let cnb = Owner::CNB;
    let processes: [(&str, &str); 6] = [
        (
            "web",
            "#!/bin/sh\necho \"web process says $GREETING from $(pwd)\"\n",
        ),
        ("worker", "#!/bin/sh\necho worker process running\n"),
        (
            "httpd",
            "#!/bin/sh\nexec httpd -f -p 127.0.0.1:$PORT -h /www\n",
        ),
        (
            "graceful",
            "#!/bin/sh\ntrap 'echo stopping gracefully; exit 3' TERM\necho ready\nwhile true; do sleep 0.1; done\n",
        ),
        ("orphans", ORPHAN_SCRIPT),
        ("fail", "#!/bin/sh\necho failing on purpose\nexit 42\n"),
    ];
    let mut entries = LayerEntries::new();
    for (name, script) in processes {
        entries
            .insert(
                &format!("cnb/process/{name}"),
                file(script.as_bytes(), 0o755, cnb),
            )
            .unwrap();
    }
    entries
        .insert("cnb/not-executable", file(b"#!/bin/sh\n", 0o644, cnb))
        .unwrap();
    entries.add_dir("workspace", 0o755, cnb).unwrap();
    entries.add_missing_parents(0o755, Owner::ROOT);
    entries
}

/// Config of a kiln app image: user `cnb` by name, default process as Entrypoint.
fn app_config() -> ImageConfiguration {
    let config = ConfigBuilder::default()
        .user("cnb")
        .env(vec!["PATH=/bin".to_owned(), "GREETING=hi".to_owned()])
        .entrypoint(vec!["/cnb/process/web".to_owned()])
        .working_dir("/workspace")
        .build()
        .unwrap();
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(Vec::<String>::new())
        .build()
        .unwrap();
    ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs)
        .build()
        .unwrap()
}

/// Base only (gzip).
pub fn base_image() -> TestImage {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut image = TestImage {
        dir,
        layers: Vec::new(),
        config: app_config(),
    };
    image.push_entries(&base_entries(), Compression::Gzip);
    image
}

/// Base (gzip) + app layer (zstd).
pub fn app_image() -> TestImage {
    let mut image = base_image();
    image.push_entries(&app_entries(), Compression::Zstd);
    image
}

/// A raw tar entry, written without the tar crate's path checks.
pub enum RawEntry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// Build an uncompressed tar from raw entries (paths may contain `..` or be absolute).
pub fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        let (path, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match entry {
            RawEntry::File(path, data) => (path, tar::EntryType::Regular, data, None),
            RawEntry::Dir(path) => (path, tar::EntryType::Directory, b"", None),
            RawEntry::Symlink(path, target) => (path, tar::EntryType::Symlink, b"", Some(target)),
            RawEntry::HardLink(path, target) => (path, tar::EntryType::Link, b"", Some(target)),
        };
        let old = header.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_size(data.len() as u64);
        header.set_mtime(315_532_801);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// How to start the runner subprocess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// The test's own user.
    Caller,
    /// uid/gid 65534 without supplementary groups, via setpriv.
    Nobody,
    /// Inside a user namespace that maps no ids (`unshare --user`), where the kernel refuses
    /// to create nested ones: the way to see kiln without user namespaces.
    UnmappedNamespace,
}

/// Start the runner subprocess for `request`, stdout and stderr piped.
pub fn spawn_runner(
    request: &Request,
    request_dir: &Path,
    who: As,
    extra_env: &[(&str, &str)],
) -> Child {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = request_dir.join(format!(
        "request-{}.json",
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, serde_json::to_vec(request).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut command = match who {
        As::Caller => Command::new(&exe),
        As::Nobody => {
            let mut command = Command::new("setpriv");
            command.args([
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".to_owned(),
            ]);
            command.arg(&exe);
            command
        }
        As::UnmappedNamespace => {
            let mut command = Command::new("unshare");
            command.arg("--user").arg(&exe);
            command
        }
    };
    command
        .args([
            "runner_subprocess",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(REQUEST_VAR, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command.spawn().expect("start the runner subprocess")
}

/// What a finished runner printed and returned.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Whether stdout has exactly this line.
    pub fn has_line(&self, line: &str) -> bool {
        self.stdout.lines().any(|candidate| candidate == line)
    }
}

/// Wait at most `limit` for the child; kill it when it overstays (the test then fails).
pub fn wait_within(mut child: Child, limit: Duration) -> Finished {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_status(&mut child, limit);
    Finished {
        code: status.and_then(|status| status.code()),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Poll for exit until `limit`; `None` (after killing it) when it did not exit.
pub fn wait_status(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Run `command` in `image` in a subprocess and wait (bounded).
pub fn run_in_subprocess(image: &TestImage, home: &str, command: RunCommand, who: As) -> Finished {
    run_with(image, home, command, Vec::new(), who, &[])
}

/// Like [`run_in_subprocess`] with env overrides and extra environment for the runner.
pub fn run_with(
    image: &TestImage,
    home: &str,
    command: RunCommand,
    env: Vec<(String, String)>,
    who: As,
    runner_env: &[(&str, &str)],
) -> Finished {
    let request = Request {
        home: image.home(home),
        layout: image.layout(),
        layers: image.layers.clone(),
        config: image.config.clone(),
        command,
        env,
    };
    if who == As::Nobody {
        image.give_to(NOBODY);
    }
    let child = spawn_runner(&request, image.dir.path(), who, runner_env);
    wait_within(child, Duration::from_secs(120))
}

/// The runner subprocess's body.
pub fn serve_request(path: &Path) -> ! {
    let request: Request = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cache = Cache::open(&request.home).unwrap();
    let spec = RunSpec {
        layers: request.layers,
        blobs: BlobStore::for_layout(&request.layout),
        config: request.config,
        command: request.command,
        env: request.env,
    };
    match kiln::run::run(&cache, &spec) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            let mut message = format!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            if let Some(hint) = kiln::diagnostic::Diagnose::hint(&error) {
                message.push_str(&format!("\nhint: {hint}"));
            }
            eprintln!("{message}");
            std::process::exit(error.exit_code())
        }
    }
}

/// Whether the tests run as root (needed to switch to another user).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The directories in a cache bucket.
pub fn bucket_entries(home: &Path, bucket: &str) -> Vec<PathBuf> {
    match std::fs::read_dir(home.join("v1").join(bucket)) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}
