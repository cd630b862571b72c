//! A company-style Maven mirror for tests: Debian's Maven repository
//! (`/usr/share/maven-repo`, from the libmaven-*-java packages) served read-only over HTTP
//! on 127.0.0.1 by a tiny file server, and settings.xml files naming it in a `<mirror>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Debian's Maven repository.
pub const DEBIAN_MAVEN_REPO: &str = "/usr/share/maven-repo";

/// A static HTTP file server over a directory, stopped on drop.
pub struct MavenMirror {
    pub url: String,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
}

impl MavenMirror {
    /// Serve Debian's Maven repository (the packages must be installed).
    pub fn debian() -> Self {
        for plugin in [
            "maven-compiler-plugin",
            "maven-jar-plugin",
            "maven-resources-plugin",
            "maven-dependency-plugin",
        ] {
            let dir = Path::new(DEBIAN_MAVEN_REPO)
                .join("org/apache/maven/plugins")
                .join(plugin);
            assert!(
                dir.is_dir(),
                "{} is missing: run scripts/test.sh, which installs Debian's Maven plugin packages",
                dir.display()
            );
        }
        Self::serve(PathBuf::from(DEBIAN_MAVEN_REPO))
    }

    /// Serve `root`.
    pub fn serve(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let root = Arc::new(root);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &root);
                });
            }
        });
        Self {
            url: format!("http://{address}/"),
            stop,
            address,
        }
    }
}

impl Drop for MavenMirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
    }
}

/// One request per connection (`Connection: close`): enough for Maven's resolver.
fn serve_one(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let relative = Path::new(path.trim_start_matches('/'));
    let safe = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    let file = root.join(relative);
    let mut stream = stream;
    let body = if safe && file.is_file() {
        std::fs::read(&file).ok()
    } else {
        None
    };
    match (method, body) {
        ("GET" | "HEAD", Some(body)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if method == "GET" {
                stream.write_all(&body)?;
            }
        }
        ("GET" | "HEAD", None) => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
        }
        _ => {
            stream.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        }
    }
    stream.flush()?;
    // Drain anything left so the client sees a clean close rather than a reset.
    let _ = reader.read(&mut [0u8; 64]);
    Ok(())
}

/// settings.xml with one `<mirror>` of everything at `url`. Debian's repository carries no
/// checksum files, so a profile relaxes the checksum policy, as one does for such a mirror.
pub fn settings_xml(url: &str) -> String {
    let repository = |tag: &str| {
        format!(
            "<{tag}><id>central</id><url>https://repo.maven.apache.org/maven2</url>\
             <releases><checksumPolicy>ignore</checksumPolicy></releases>\
             <snapshots><enabled>false</enabled></snapshots></{tag}>"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror><id>company</id><name>Company mirror</name><mirrorOf>*</mirrorOf><url>{url}</url></mirror>
  </mirrors>
  <profiles>
    <profile><id>company</id>
      <repositories>{}</repositories>
      <pluginRepositories>{}</pluginRepositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>company</activeProfile></activeProfiles>
</settings>
"#,
        repository("repository"),
        repository("pluginRepository")
    )
}

/// Write settings naming `url` as the mirror into `dir/settings.xml`.
pub fn write_settings(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("settings.xml");
    std::fs::write(&path, settings_xml(url)).unwrap();
    path
}

/// A URL on 127.0.0.1 where nothing listens (a port that was just free).
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

/// Copy a directory tree (fixtures and samples into temp dirs the test may change).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Java builds against a fresh kiln home, a Debian mirror and settings naming it, with
/// `HOME` pointing at an empty directory so the machine's own `~/.m2` never leaks in.
pub struct JavaBuilds {
    pub kiln: super::Kiln,
    pub home: tempfile::TempDir,
    pub mirror: MavenMirror,
    pub settings: PathBuf,
    base_dir: tempfile::TempDir,
    /// `Some(REF)`: build on REF, saying it has Java 17 (`BP_JAVA_RUN_IMAGE_VERSION`);
    /// `None`: the default builder's Debian run image with the stack's JRE layer.
    pub base: Option<String>,
}

impl JavaBuilds {
    /// Builds on the busybox test base, which stands for a run image that has Java: fast,
    /// no JRE layer, nothing from the Debian archive.
    pub fn new() -> Self {
        let base_dir = tempfile::tempdir().unwrap();
        let base = format!(
            "oci:{}:latest",
            super::busybox_base(base_dir.path(), "v1").display()
        );
        Self::with_base(base_dir, Some(base))
    }

    /// Builds on the default Debian run image with the JRE from the stack. Verified Debian
    /// downloads are shared between test runs (they are content-addressed and re-verified).
    pub fn debian() -> Self {
        let builds = Self::with_base(tempfile::tempdir().unwrap(), None);
        let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("java-debian-downloads");
        std::fs::create_dir_all(&shared).unwrap();
        let downloads = builds.kiln.home.path().join("v1/downloads");
        std::fs::create_dir_all(downloads.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&shared, &downloads).unwrap();
        builds
    }

    fn with_base(base_dir: tempfile::TempDir, base: Option<String>) -> Self {
        super::require_tool("mvn");
        let home = tempfile::tempdir().unwrap();
        let mirror = MavenMirror::debian();
        let settings = write_settings(home.path(), &mirror.url);
        Self {
            kiln: super::Kiln::new(),
            home,
            mirror,
            settings,
            base_dir,
            base,
        }
    }

    /// `kiln build NAME --path APP …` with `MAVEN_SETTINGS` set (unless `settings` is
    /// `None`) and the report written beside the app; returns the output and the report.
    pub fn build_with(
        &self,
        name: &str,
        app: &Path,
        settings: Option<&Path>,
        extra: &[&str],
    ) -> (std::process::Output, Option<serde_json::Value>) {
        let report = app.with_extension("report.json");
        let _ = std::fs::remove_file(&report);
        let mut command = self.kiln.cmd();
        command
            .env("HOME", self.home.path())
            .env_remove("MAVEN_SETTINGS");
        if let Some(settings) = settings {
            command.env("MAVEN_SETTINGS", settings);
        }
        command.args([
            "build",
            name,
            "--path",
            app.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        if let Some(base) = &self.base {
            command.args(["--run-image", base, "--env", "BP_JAVA_RUN_IMAGE_VERSION=17"]);
        }
        command.args(extra);
        let output = command.output().expect("kiln runs");
        let report = std::fs::read(&report)
            .ok()
            .map(|bytes| serde_json::from_slice(&bytes).unwrap());
        (output, report)
    }

    /// A build that must succeed; returns its report.
    pub fn build_ok(&self, name: &str, app: &Path) -> serde_json::Value {
        let (output, report) = self.build_with(name, app, Some(&self.settings), &[]);
        assert!(
            output.status.success(),
            "kiln build {name} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        report.expect("the build wrote its report")
    }

    /// A build that must fail as a user error (exit 1) without panicking; returns stderr.
    pub fn build_fails(&self, name: &str, app: &Path, settings: Option<&Path>) -> String {
        let (output, _) = self.build_with(name, app, settings, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "exit 1 expected:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !self
                .kiln
                .store_tags()
                .iter()
                .any(|tag| tag.starts_with(name)),
            "no image for a failed build"
        );
        stderr
    }
}

/// The layer of `report` made by `buildpack` named `name`.
pub fn report_layer<'a>(
    report: &'a serde_json::Value,
    buildpack: &str,
    name: &str,
) -> &'a serde_json::Value {
    report["layers"]
        .as_array()
        .and_then(|layers| {
            layers
                .iter()
                .find(|layer| layer["buildpack"] == buildpack && layer["name"] == name)
        })
        .unwrap_or_else(|| panic!("no layer {buildpack}/{name} in {report:#}"))
}

/// Paths of regular files in the image layer whose diff_id is `diff_id` (from the store).
pub fn layer_files(kiln: &super::Kiln, tag: &str, diff_id: &str) -> Vec<String> {
    let image = super::read_image(&kiln.store(), tag);
    let layers = image.layers(tag).unwrap();
    let layer = layers
        .iter()
        .find(|layer| layer.diff_id.to_string() == diff_id)
        .unwrap_or_else(|| panic!("no layer {diff_id} in {tag}"));
    let mut files: Vec<String> = super::layer_entries(kiln, layer)
        .into_iter()
        .filter_map(|(path, is_file)| is_file.then_some(path))
        .collect();
    files.sort();
    files
}
