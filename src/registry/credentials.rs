//! Where credentials come from: `KILN_REGISTRY_AUTH`, then the Docker config
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): `credHelpers`, `credsStore`, `auths`.
//!
//! Secrets never reach a log line: every type holding one implements `Debug` by hand.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::error::RegistryError;
use super::reference::{DOCKER_HUB, normalize_registry};

/// The environment variable holding `{"registry": "<Authorization header value>"}`, as
/// `CNB_REGISTRY_AUTH` does for the CNB lifecycle. It wins over the Docker config.
pub const REGISTRY_AUTH_ENV: &str = "KILN_REGISTRY_AUTH";

/// How long a credential helper may take before it is killed (helpers can hang on prompts).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// What kiln presents to one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous access (tokens are still fetched when the registry asks).
    Anonymous,
    /// A user name and password (or personal access token).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken` in the Docker config), exchanged at the token
    /// endpoint.
    IdentityToken { token: String },
    /// A ready bearer token (`registrytoken`, or `Bearer …` in `KILN_REGISTRY_AUTH`), sent as is.
    BearerToken { token: String },
    /// Any other `Authorization` header value, sent as is.
    Header { value: String },
}

impl Credential {
    /// Whether anything is presented at all.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credential::Anonymous)
    }

    /// Build from an `Authorization` header value as `KILN_REGISTRY_AUTH` carries it.
    fn from_header_value(registry: &str, value: &str) -> Result<Self, RegistryError> {
        let malformed = |problem| RegistryError::MalformedCredential {
            registry: registry.to_owned(),
            origin: REGISTRY_AUTH_ENV.to_owned(),
            problem,
        };
        let value = value.trim();
        if let Some(encoded) = strip_prefix_ignore_case(value, "Basic ") {
            let (username, password) = decode_basic(encoded.trim())
                .ok_or_else(|| malformed("not base64 of user:password"))?;
            return Ok(Credential::Basic { username, password });
        }
        if let Some(token) = strip_prefix_ignore_case(value, "Bearer ") {
            return Ok(Credential::BearerToken {
                token: token.trim().to_owned(),
            });
        }
        if value.is_empty() {
            return Err(malformed("the header value is empty"));
        }
        Ok(Credential::Header {
            value: value.to_owned(),
        })
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken { .. } => f.write_str("IdentityToken(<redacted>)"),
            Credential::BearerToken { .. } => f.write_str("BearerToken(<redacted>)"),
            Credential::Header { .. } => f.write_str("Header(<redacted>)"),
        }
    }
}

/// The `config.json` fields kiln reads.
#[derive(Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Resolves the credential for a registry, caching answers (helpers are processes).
pub struct CredentialStore {
    env_auth: HashMap<String, String>,
    config: DockerConfig,
    config_path: Option<PathBuf>,
    helper_path: Option<OsString>,
    resolved: Mutex<HashMap<String, Credential>>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut registries: Vec<&String> = self.env_auth.keys().collect();
        registries.sort();
        f.debug_struct("CredentialStore")
            .field("config_path", &self.config_path)
            .field("registry_auth_env_registries", &registries)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Credentials from the process environment: `KILN_REGISTRY_AUTH`, `DOCKER_CONFIG`, `HOME`.
    pub fn from_env() -> Result<Self, RegistryError> {
        let config_dir = std::env::var_os("DOCKER_CONFIG")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
        let registry_auth = std::env::var(REGISTRY_AUTH_ENV)
            .ok()
            .filter(|value| !value.trim().is_empty());
        Self::from_parts(config_dir.as_deref(), registry_auth.as_deref())
    }

    /// Credentials from an explicit Docker config directory and `KILN_REGISTRY_AUTH` value.
    pub fn from_parts(
        docker_config_dir: Option<&Path>,
        registry_auth_json: Option<&str>,
    ) -> Result<Self, RegistryError> {
        let env_auth: HashMap<String, String> = match registry_auth_json {
            Some(json) => serde_json::from_str::<HashMap<String, String>>(json)
                .map_err(|source| RegistryError::ParseRegistryAuthEnv { source })?
                .into_iter()
                .map(|(registry, header)| (normalize_registry(&registry), header))
                .collect(),
            None => HashMap::new(),
        };
        let (config, config_path) = match docker_config_dir {
            Some(dir) => {
                let path = dir.join("config.json");
                (read_docker_config(&path)?, Some(path))
            }
            None => (DockerConfig::default(), None),
        };
        Ok(Self {
            env_auth,
            config,
            config_path,
            helper_path: None,
            resolved: Mutex::new(HashMap::new()),
        })
    }

    /// No credentials for anyone.
    pub fn anonymous() -> Self {
        Self {
            env_auth: HashMap::new(),
            config: DockerConfig::default(),
            config_path: None,
            helper_path: None,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Look for `docker-credential-*` helpers on this search path instead of `$PATH`.
    pub fn with_helper_path(mut self, path: OsString) -> Self {
        self.helper_path = Some(path);
        self
    }

    /// The credential for `registry` (a registry name as in a reference).
    pub fn lookup(&self, registry: &str) -> Result<Credential, RegistryError> {
        let registry = normalize_registry(registry);
        if let Some(found) = self
            .resolved
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&registry)
        {
            return Ok(found.clone());
        }
        let credential = self.resolve(&registry)?;
        self.resolved
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(registry, credential.clone());
        Ok(credential)
    }

    fn resolve(&self, registry: &str) -> Result<Credential, RegistryError> {
        if let Some(header) = self.env_auth.get(registry) {
            return Credential::from_header_value(registry, header);
        }
        let helper = self
            .config
            .cred_helpers
            .iter()
            .find(|(key, _)| normalize_registry(key) == registry)
            .map(|(_, helper)| helper);
        if let Some(helper) = helper {
            return Ok(self
                .run_helper(helper, registry)?
                .unwrap_or(Credential::Anonymous));
        }
        if let Some(store) = self
            .config
            .creds_store
            .as_deref()
            .filter(|store| !store.is_empty())
            && let Some(credential) = self.run_helper(store, registry)?
        {
            return Ok(credential);
        }
        let entry = self
            .config
            .auths
            .iter()
            .find(|(key, _)| normalize_registry(key) == registry)
            .map(|(_, entry)| entry);
        match entry {
            Some(entry) => self.credential_from_entry(registry, entry),
            None => Ok(Credential::Anonymous),
        }
    }

    fn credential_from_entry(
        &self,
        registry: &str,
        entry: &AuthEntry,
    ) -> Result<Credential, RegistryError> {
        let origin = || {
            self.config_path.as_ref().map_or_else(
                || "the Docker config".to_owned(),
                |path| path.display().to_string(),
            )
        };
        if let Some(token) = entry
            .registrytoken
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            return Ok(Credential::BearerToken {
                token: token.to_owned(),
            });
        }
        if let Some(token) = entry
            .identitytoken
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            return Ok(Credential::IdentityToken {
                token: token.to_owned(),
            });
        }
        if let Some(encoded) = entry.auth.as_deref().filter(|auth| !auth.is_empty()) {
            let (username, password) =
                decode_basic(encoded).ok_or_else(|| RegistryError::MalformedCredential {
                    registry: registry.to_owned(),
                    origin: origin(),
                    problem: "`auth` is not base64 of user:password",
                })?;
            return Ok(Credential::Basic { username, password });
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) if !username.is_empty() => Ok(Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => Ok(Credential::Anonymous),
        }
    }

    /// Run `docker-credential-<helper> get`; `None` when it has nothing for this registry.
    fn run_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        let failed = |problem: String| RegistryError::CredentialHelper {
            helper: helper.to_owned(),
            registry: registry.to_owned(),
            problem,
        };
        // Helpers key Docker Hub by its legacy v1 URL, everything else by host.
        let server_url = if registry == DOCKER_HUB {
            "https://index.docker.io/v1/".to_owned()
        } else {
            registry.to_owned()
        };
        let mut command = Command::new(format!("docker-credential-{helper}"));
        command
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = &self.helper_path {
            // On Unix, a PATH set for the child is also where the program is looked up.
            command.env("PATH", path);
        }
        let mut child = command
            .spawn()
            .map_err(|error| failed(format!("cannot start it: {error}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin is judged by its exit status below.
            let _ = stdin.write_all(server_url.as_bytes());
        }
        let stdout = read_in_background(child.stdout.take());
        let stderr = read_in_background(child.stderr.take());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < HELPER_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(failed(format!(
                        "it did not answer within {}s",
                        HELPER_TIMEOUT.as_secs()
                    )));
                }
                Err(error) => return Err(failed(format!("cannot wait for it: {error}"))),
            }
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            let said = format!(
                "{} {}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
            if said.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            // Only the first line: helpers print their own diagnostics, never the secret.
            let first_line = said.trim().lines().next().unwrap_or_default().to_owned();
            return Err(failed(format!("it exited with {status}: {first_line}")));
        }
        let answer: HelperAnswer = serde_json::from_slice(&stdout).map_err(|_| {
            failed("its answer is not the JSON credential helpers print".to_owned())
        })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        // `<token>` as user name is the helper protocol's way of returning an identity token.
        if answer.username == "<token>" {
            return Ok(Some(Credential::IdentityToken {
                token: answer.secret,
            }));
        }
        Ok(Some(Credential::Basic {
            username: answer.username,
            password: answer.secret,
        }))
    }
}

fn read_in_background(
    pipe: Option<impl Read + Send + 'static>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

fn read_docker_config(path: &Path) -> Result<DockerConfig, RegistryError> {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DockerConfig::default());
        }
        Err(source) => {
            return Err(RegistryError::ReadDockerConfig {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes).map_err(|source| RegistryError::ParseDockerConfig {
        path: path.to_owned(),
        source,
    })
}

fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_config(json: &str, env: Option<&str>) -> (tempfile::TempDir, CredentialStore) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let store = CredentialStore::from_parts(Some(dir.path()), env).unwrap();
        (dir, store)
    }

    #[test]
    fn auths_entry_with_base64_or_fields() {
        let auth = BASE64.encode("alice:s3cret");
        let (_dir, store) = store_with_config(
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example":{{"username":"bob","password":"pw"}}}}}}"#
            ),
            None,
        );
        assert_eq!(
            store.lookup("docker.io").unwrap(),
            Credential::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(
            store.lookup("reg.example").unwrap(),
            Credential::Basic {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            store.lookup("other.example").unwrap(),
            Credential::Anonymous
        );
    }

    #[test]
    fn registry_auth_env_wins_over_config() {
        let auth = BASE64.encode("alice:s3cret");
        let (_dir, store) = store_with_config(
            &format!(r#"{{"auths":{{"reg.example":{{"auth":"{auth}"}}}}}}"#),
            Some(r#"{"reg.example":"Bearer abc","other.example":"Custom xyz"}"#),
        );
        assert_eq!(
            store.lookup("reg.example").unwrap(),
            Credential::BearerToken {
                token: "abc".into()
            }
        );
        assert_eq!(
            store.lookup("other.example").unwrap(),
            Credential::Header {
                value: "Custom xyz".into()
            }
        );
    }

    #[test]
    fn missing_config_is_anonymous_and_bad_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::from_parts(Some(dir.path()), None).unwrap();
        assert!(store.lookup("reg.example").unwrap().is_anonymous());
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        assert!(matches!(
            CredentialStore::from_parts(Some(dir.path()), None),
            Err(RegistryError::ParseDockerConfig { .. })
        ));
        assert!(matches!(
            CredentialStore::from_parts(None, Some("[1]")),
            Err(RegistryError::ParseRegistryAuthEnv { .. })
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let credentials = [
            Credential::Basic {
                username: "alice".into(),
                password: "hunter2".into(),
            },
            Credential::BearerToken {
                token: "hunter2".into(),
            },
            Credential::IdentityToken {
                token: "hunter2".into(),
            },
            Credential::Header {
                value: "hunter2".into(),
            },
        ];
        for credential in credentials {
            assert!(!format!("{credential:?}").contains("hunter2"));
        }
        let (_dir, store) = store_with_config(
            "{}",
            Some(r#"{"reg.example":"Basic aHVudGVyMjpodW50ZXIy"}"#),
        );
        assert!(!format!("{store:?}").contains("aHVudGVy"));
    }
}
