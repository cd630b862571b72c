//! The HTTP agent: TLS roots (system + `--registry-ca`), plain HTTP only for hosts named
//! insecure, timeouts, and turning transport failures into errors that name the host.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::error::{RegistryError, RequestError};
use super::reference::{api_host, normalize_registry};

/// Connecting is quick or broken; fail fast so retries can help.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A registry may take a while to answer the final PUT of a large blob (it verifies the digest).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
/// No single read or write may stall longer than this (a dead peer, not a slow one).
const IO_STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Which registries speak plain HTTP, and which extra CA to trust.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// PEM file with extra trusted certificates (`--registry-ca`).
    pub extra_ca: Option<std::path::PathBuf>,
    /// Registries reached over plain HTTP (`--insecure-registry HOST[:PORT]`).
    pub insecure_registries: Vec<String>,
}

/// An agent plus the knowledge of how to reach each registry.
#[derive(Clone)]
pub struct Transport {
    agent: ureq::Agent,
    insecure: Arc<Vec<String>>,
}

impl Transport {
    /// Build the agent; reads the system roots and the extra CA once.
    pub fn new(options: &TransportOptions) -> Result<Self, RegistryError> {
        let tls = TlsConfig::builder()
            .root_certs(root_certs(options.extra_ca.as_deref())?)
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Blob bytes must arrive exactly as stored or their digest fails; never let a
            // transparent decompression step in.
            .accept_encoding("identity")
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .timeout_per_read(Some(IO_STALL_TIMEOUT))
            .timeout_per_write(Some(IO_STALL_TIMEOUT))
            // Blob GETs are redirected to storage backends; ureq drops Authorization on the
            // hop to another host by default.
            .max_redirects(10)
            .build();
        Ok(Self {
            agent: config.new_agent(),
            insecure: Arc::new(
                options
                    .insecure_registries
                    .iter()
                    .map(|host| normalize_registry(host))
                    .collect(),
            ),
        })
    }

    /// The agent.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// `scheme://host[:port]` of a registry's API.
    pub fn base_url(&self, registry: &str) -> String {
        let scheme = if self.insecure.iter().any(|host| host == registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", api_host(registry))
    }
}

fn root_certs(extra_ca: Option<&Path>) -> Result<RootCerts, RegistryError> {
    let mut certs: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = extra_ca {
        let pem = fs_err::read(path).map_err(|source| RegistryError::ReadCa {
            path: path.to_owned(),
            source,
        })?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(PemItem::Certificate(cert)) = item {
                certs.push(cert);
            }
        }
        if certs.len() == before {
            return Err(RegistryError::InvalidCa {
                path: path.to_owned(),
            });
        }
    }
    if certs.is_empty() {
        // No system bundle on this machine (minimal containers): Mozilla's roots beat none.
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// Turn a failed exchange into an error naming what was being reached.
pub fn classify(error: ureq::Error, url: &str, attempts: u32) -> RequestError {
    let host = host_of(url);
    let text = error_chain_text(&error);
    let is_tls = matches!(error, ureq::Error::Rustls(_) | ureq::Error::Tls(_))
        || text.contains("invalid peer certificate")
        || text.contains("rustls");
    if is_tls && text.to_ascii_lowercase().contains("certificate") {
        return RequestError::Certificate { host, detail: text };
    }
    if is_tls {
        return RequestError::Tls {
            host,
            source: Box::new(error),
        };
    }
    RequestError::Transport {
        url: without_credentials(url),
        attempts,
        source: Box::new(error),
    }
}

fn error_chain_text(error: &ureq::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `host[:port]` of a URL, for messages.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default().to_owned()
}

/// A URL safe to print: no user info, no query (upload-session state and storage-backend
/// signatures live there).
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    }
}

/// Percent-encode a query component (RFC 3986 unreserved characters pass).
pub fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Resolve an upload `Location` (absolute, or relative to the registry) and add query pairs.
pub fn upload_url(base_url: &str, location: &str, extra_query: &[(&str, String)]) -> String {
    let mut url = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base_url}{location}")
    } else {
        format!("{base_url}/{location}")
    };
    for (key, value) in extra_query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(key);
        url.push('=');
        url.push_str(&query_encode(value));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_urls_drop_user_info_and_query() {
        assert_eq!(
            without_credentials(
                "https://user:pw@reg.example:5000/v2/a/blobs/uploads/x?_state=secret"
            ),
            "https://reg.example:5000/v2/a/blobs/uploads/x"
        );
        assert_eq!(
            host_of("https://user:pw@reg.example:5000/v2/"),
            "reg.example:5000"
        );
    }

    #[test]
    fn upload_urls_resolve_and_append() {
        let digest = "sha256:ab".to_owned();
        assert_eq!(
            upload_url(
                "http://h:1",
                "/v2/a/blobs/uploads/u?_state=s",
                &[("digest", digest.clone())]
            ),
            "http://h:1/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab"
        );
        assert_eq!(
            upload_url("http://h:1", "https://other/x", &[("digest", digest)]),
            "https://other/x?digest=sha256%3Aab"
        );
    }

    #[test]
    fn insecure_registries_use_http() {
        let transport = Transport::new(&TransportOptions {
            extra_ca: None,
            insecure_registries: vec!["http://127.0.0.1:5000".into()],
        })
        .unwrap();
        assert_eq!(
            transport.base_url("127.0.0.1:5000"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            transport.base_url("127.0.0.1:5001"),
            "https://127.0.0.1:5001"
        );
        assert_eq!(transport.base_url("docker.io"), "https://index.docker.io");
    }
}
