//! Authorization: `WWW-Authenticate` challenges, scopes, and bearer tokens reused per scope set.
//!
//! The first request to a registry goes out without credentials (or with a preemptive header
//! from `KILN_REGISTRY_AUTH`); its 401 challenge says whether the registry wants Basic or a
//! bearer token from a realm. From then on every request carries the right header before it is
//! sent, so large uploads are never sent just to be refused.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::credentials::Credential;
use super::error::RequestError;
use super::retry::{RetryPolicy, is_retryable_status, is_retryable_transport};
use super::transport::{query_encode, without_credentials};

/// Token lifetime when the token endpoint does not say (the distribution spec's minimum).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Refresh tokens this long before they expire, so a slow upload does not start with a token
/// that dies mid-flight.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Token endpoints answer small JSON documents.
const TOKEN_BODY_LIMIT: u64 = 1024 * 1024;

/// Access to one repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    repository: String,
    push: bool,
}

impl Scope {
    /// Read access.
    pub fn pull(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            push: false,
        }
    }

    /// Read and write access.
    pub fn push(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            push: true,
        }
    }

    /// The repository this scope is about.
    pub fn repository(&self) -> &str {
        &self.repository
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions = if self.push { "pull,push" } else { "pull" };
        write!(f, "repository:{}:{actions}", self.repository)
    }
}

/// Describe a scope set for error messages.
pub fn describe_scopes(scopes: &[Scope]) -> String {
    if scopes.is_empty() {
        return "the registry".to_owned();
    }
    scopes
        .iter()
        .map(|scope| {
            format!(
                "{} ({})",
                scope.repository,
                if scope.push { "push" } else { "pull" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic with the registry's own user database (htpasswd).
    Basic,
    /// A bearer token from `realm` for `service`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header value. Quoted values may hold commas (scopes do), so this
/// is a small tokenizer rather than a split.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params.get("realm")?.clone();
        return Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
        });
    }
    None
}

fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    params
}

/// A bearer token; never printed.
#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token cache key: registry and sorted scope set.
type TokenKey = (String, String);

/// What the client has learned about each registry's authentication, shared by all threads.
#[derive(Debug, Default)]
pub struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<TokenKey, Token>>,
    /// One lock per scope set, held while its token is fetched, so parallel uploads that all
    /// met the same challenge share one token request.
    fetching: Mutex<HashMap<TokenKey, Arc<Mutex<()>>>>,
}

impl AuthState {
    /// The `Authorization` value to send to `registry` for `scopes`, fetching a token when the
    /// registry is known to want one and none is cached for this scope set.
    pub fn authorization(
        &self,
        agent: &ureq::Agent,
        retry: &RetryPolicy,
        registry: &str,
        scopes: &[Scope],
        credential: &Credential,
    ) -> Result<Option<String>, RequestError> {
        match credential {
            Credential::BearerToken { token } => return Ok(Some(format!("Bearer {token}"))),
            Credential::Header { value } => return Ok(Some(value.clone())),
            _ => {}
        }
        let challenge = lock(&self.challenges).get(registry).cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match credential {
                Credential::Basic { username, password } => Some(basic_header(username, password)),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                let key = (registry.to_owned(), scope_key(scopes));
                if let Some(header) = self.cached_token(&key) {
                    return Ok(Some(header));
                }
                let key_lock = Arc::clone(lock(&self.fetching).entry(key.clone()).or_default());
                let _fetching = lock(&key_lock);
                if let Some(header) = self.cached_token(&key) {
                    return Ok(Some(header));
                }
                let token =
                    fetch_token(agent, retry, &realm, service.as_deref(), scopes, credential)?;
                let header = format!("Bearer {}", token.value);
                lock(&self.tokens).insert(key, token);
                Ok(Some(header))
            }
        }
    }

    fn cached_token(&self, key: &TokenKey) -> Option<String> {
        let now = Instant::now();
        lock(&self.tokens)
            .get(key)
            .filter(|token| token.expires > now)
            .map(|token| format!("Bearer {}", token.value))
    }

    /// Record a 401's challenge and forget the token that was refused (only that one: a
    /// parallel request may already have fetched a fresh token for the same scopes). Returns
    /// whether a retry can present something different (otherwise the 401 is final).
    pub fn learn(
        &self,
        registry: &str,
        scopes: &[Scope],
        header: Option<&str>,
        credential: &Credential,
        sent: Option<&str>,
    ) -> bool {
        let Some(challenge) = header.and_then(parse_challenge) else {
            return false;
        };
        let key = (registry.to_owned(), scope_key(scopes));
        let mut tokens = lock(&self.tokens);
        let refused = tokens
            .get(&key)
            .is_some_and(|token| sent == Some(format!("Bearer {}", token.value).as_str()));
        if refused {
            tokens.remove(&key);
        }
        drop(tokens);
        let retry_helps = match (&challenge, credential) {
            (_, Credential::BearerToken { .. } | Credential::Header { .. }) => false,
            (Challenge::Basic, credential) => matches!(credential, Credential::Basic { .. }),
            (Challenge::Bearer { .. }, _) => true,
        };
        lock(&self.challenges).insert(registry.to_owned(), challenge);
        retry_helps
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data that is still consistent.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn scope_key(scopes: &[Scope]) -> String {
    let mut parts: Vec<String> = scopes.iter().map(Scope::to_string).collect();
    parts.sort();
    parts.dedup();
    parts.join(" ")
}

fn basic_header(username: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{username}:{password}")))
}

/// Ask the realm for a token covering `scopes` (the distribution token protocol; OAuth2
/// refresh-token grant for identity tokens).
fn fetch_token(
    agent: &ureq::Agent,
    retry: &RetryPolicy,
    realm: &str,
    service: Option<&str>,
    scopes: &[Scope],
    credential: &Credential,
) -> Result<Token, RequestError> {
    let shown_realm = without_credentials(realm);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match credential {
            Credential::IdentityToken { token } => {
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("client_id", "kiln".to_owned()),
                    ("refresh_token", token.clone()),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_owned()));
                }
                let scope = scope_key(scopes);
                if !scope.is_empty() {
                    form.push(("scope", scope));
                }
                agent.post(realm).send_form(form)
            }
            _ => {
                let mut query = Vec::new();
                if let Some(service) = service {
                    query.push(format!("service={}", query_encode(service)));
                }
                for scope in scopes {
                    query.push(format!("scope={}", query_encode(&scope.to_string())));
                }
                let separator = if realm.contains('?') { '&' } else { '?' };
                let url = if query.is_empty() {
                    realm.to_owned()
                } else {
                    format!("{realm}{separator}{}", query.join("&"))
                };
                let mut request = agent.get(&url);
                if let Credential::Basic { username, password } = credential {
                    request = request.header("Authorization", basic_header(username, password));
                }
                request.call()
            }
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if is_retryable_status(status) && attempt < retry.max_attempts {
                    std::thread::sleep(retry.delay(attempt, None));
                    continue;
                }
                if status != 200 {
                    return Err(RequestError::TokenRefused {
                        realm: shown_realm,
                        status,
                    });
                }
                let parsed: TokenResponse = response
                    .body_mut()
                    .with_config()
                    .limit(TOKEN_BODY_LIMIT)
                    .read_to_vec()
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .ok_or_else(|| RequestError::TokenInvalid {
                        realm: shown_realm.clone(),
                    })?;
                let value = parsed
                    .token
                    .or(parsed.access_token)
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| RequestError::TokenInvalid {
                        realm: shown_realm.clone(),
                    })?;
                let lifetime = parsed
                    .expires_in
                    .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
                    .max(DEFAULT_TOKEN_LIFETIME);
                return Ok(Token {
                    value,
                    expires: Instant::now() + lifetime.saturating_sub(TOKEN_EXPIRY_MARGIN),
                });
            }
            Err(error) if is_retryable_transport(&error) && attempt < retry.max_attempts => {
                std::thread::sleep(retry.delay(attempt, None));
            }
            Err(source) => {
                return Err(RequestError::Transport {
                    url: shown_realm,
                    attempts: attempt,
                    source: Box::new(source),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_commas_in_quoted_scope() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            challenge,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        let params = parse_params(
            r#"realm="r", scope="repository:a:pull,push", error="insufficient_scope""#,
        );
        assert_eq!(params["scope"], "repository:a:pull,push");
        assert_eq!(params["error"], "insufficient_scope");
    }

    #[test]
    fn parses_basic_and_rejects_garbage() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_params(r#"a="unterminated"#)["a"], "unterminated");
    }

    #[test]
    fn scope_keys_are_order_independent() {
        let one = scope_key(&[Scope::push("app"), Scope::pull("base")]);
        let two = scope_key(&[Scope::pull("base"), Scope::push("app"), Scope::push("app")]);
        assert_eq!(one, two);
        assert_eq!(one, "repository:app:pull,push repository:base:pull");
    }

    #[test]
    fn basic_challenge_uses_basic_credentials_preemptively() {
        let state = AuthState::default();
        let agent = ureq::Agent::new_with_defaults();
        let credential = Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let scopes = [Scope::pull("app")];
        assert_eq!(
            state
                .authorization(&agent, &RetryPolicy::none(), "r", &scopes, &credential)
                .unwrap(),
            None
        );
        assert!(state.learn("r", &scopes, Some(r#"Basic realm="x""#), &credential, None));
        assert_eq!(
            state
                .authorization(&agent, &RetryPolicy::none(), "r", &scopes, &credential)
                .unwrap(),
            Some(format!("Basic {}", BASE64.encode("u:p")))
        );
        assert!(!state.learn(
            "r",
            &scopes,
            Some(r#"Basic realm="x""#),
            &Credential::Anonymous,
            None
        ));
    }
}
