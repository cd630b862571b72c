//! The one request loop every operation goes through: attach authorization, send, learn from
//! a 401 once, retry transient failures with backoff; then map statuses to typed errors.

use std::io::Read;

use ureq::SendBody;
use ureq::http::{Method, Response};

use super::auth::{Scope, describe_scopes};
use super::client::RegistryClient;
use super::credentials::Credential;
use super::error::RequestError;
use super::retry::{RetryPolicy, is_retryable_status, is_retryable_transport, parse_retry_after};
use super::transport::{classify, without_credentials};
use crate::oci::OciError;

/// Error bodies are small JSON documents; read at most this much of one.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The body of one request, re-creatable for retries.
pub(super) enum RequestBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream {
        open: &'a (dyn Fn() -> Result<Box<dyn Read + Send + 'a>, OciError> + Sync),
        length: u64,
    },
}

/// One exchange to perform.
pub(super) struct Exchange<'a> {
    pub method: Method,
    pub url: String,
    pub registry: &'a str,
    pub scopes: &'a [Scope],
    pub credential: &'a Credential,
    pub headers: Vec<(&'static str, String)>,
    pub body: RequestBody<'a>,
    /// Return transient failures instead of retrying them: for requests whose retry means
    /// more than resending (an upload session may be spoiled by a half-sent body).
    pub single_attempt: bool,
}

/// A response plus how many attempts it took.
pub(super) struct Answer {
    pub response: Response<ureq::Body>,
    pub attempts: u32,
    pub url: String,
}
impl RegistryClient {
    /// Perform one exchange: authorize, send, learn from a 401 once, retry transient failures.
    pub(super) fn exchange(&self, exchange: Exchange<'_>) -> Result<Answer, RequestError> {
        let retry = if exchange.single_attempt {
            RetryPolicy::none()
        } else {
            self.options.retry
        };
        let agent = self.transport.agent();
        let mut attempt = 0;
        let mut reauthorized = false;
        loop {
            attempt += 1;
            let authorization = self.auth.authorization(
                agent,
                &self.options.retry,
                exchange.registry,
                exchange.scopes,
                exchange.credential,
            )?;
            let mut builder = ureq::http::Request::builder()
                .method(exchange.method.clone())
                .uri(&exchange.url);
            for (name, value) in &exchange.headers {
                builder = builder.header(*name, value);
            }
            if let Some(authorization) = &authorization {
                builder = builder.header("Authorization", authorization);
            }
            let bad_url = |_| RequestError::BadUrl {
                url: without_credentials(&exchange.url),
            };
            let result = match &exchange.body {
                RequestBody::Empty => agent.run(builder.body(()).map_err(bad_url)?),
                RequestBody::Bytes(bytes) => agent.run(builder.body(*bytes).map_err(bad_url)?),
                RequestBody::Stream { open, length } => {
                    let mut reader =
                        open().map_err(|source| RequestError::ReadLocalBlob { source })?;
                    let request = builder
                        .header("Content-Length", length.to_string())
                        .body(SendBody::from_reader(&mut reader))
                        .map_err(bad_url)?;
                    agent.run(request)
                }
            };
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    let error = match local_read_failure(error) {
                        Ok(local) => return Err(RequestError::ReadLocalBlob { source: local }),
                        Err(error) => error,
                    };
                    if is_retryable_transport(&error) && attempt < retry.max_attempts {
                        std::thread::sleep(retry.delay(attempt, None));
                        continue;
                    }
                    return Err(classify(error, &exchange.url, attempt));
                }
            };
            let status = response.status().as_u16();
            if status == 401 && !reauthorized {
                reauthorized = true;
                let challenge = header(&response, "www-authenticate");
                if self.auth.learn(
                    exchange.registry,
                    exchange.scopes,
                    challenge.as_deref(),
                    exchange.credential,
                    authorization.as_deref(),
                ) {
                    // Learning the challenge is not a failed attempt.
                    attempt -= 1;
                    continue;
                }
            }
            if is_retryable_status(status) && attempt < retry.max_attempts {
                let retry_after =
                    header(&response, "retry-after").and_then(|value| parse_retry_after(&value));
                std::thread::sleep(retry.delay(attempt, retry_after));
                continue;
            }
            return Ok(Answer {
                response,
                attempts: attempt,
                url: exchange.url,
            });
        }
    }
}

/// Pull a typed local-read error (the upload source failed, not the network) out of a ureq
/// error, so it is reported as what it is and never retried.
fn local_read_failure(error: ureq::Error) -> Result<OciError, ureq::Error> {
    match error {
        ureq::Error::Io(io_error)
            if io_error
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<OciError>().is_some()) =>
        {
            match io_error
                .into_inner()
                .map(|inner| inner.downcast::<OciError>())
            {
                Some(Ok(local)) => Ok(*local),
                // Unreachable after the check above; keep a usable error rather than panic.
                _ => Err(ureq::Error::ConnectionFailed),
            }
        }
        other => Err(other),
    }
}

/// Check the status against what the operation accepts; map the rest to typed errors.
pub(super) fn expect(
    mut answer: Answer,
    accepted: &[u16],
    scopes: &[Scope],
    credential: &Credential,
    registry: &str,
    what: impl FnOnce() -> String,
) -> Result<Answer, RequestError> {
    let status = answer.response.status().as_u16();
    if accepted.contains(&status) {
        return Ok(answer);
    }
    let message = error_message(&mut answer);
    let url = without_credentials(&answer.url);
    Err(match status {
        401 => RequestError::Unauthorized {
            registry: registry.to_owned(),
            scope: describe_scopes(scopes),
            status,
            message,
            had_credentials: !credential.is_anonymous(),
        },
        403 => RequestError::Denied {
            registry: registry.to_owned(),
            scope: describe_scopes(scopes),
            message,
            had_credentials: !credential.is_anonymous(),
        },
        404 => RequestError::NotFound {
            what: what(),
            url,
            message,
        },
        _ => RequestError::Status {
            url,
            status,
            message,
            attempts: answer.attempts,
        },
    })
}

/// The registry's `{"errors":[{"code","message"}]}` as one line, when there is one.
fn error_message(answer: &mut Answer) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let bytes = answer
        .response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_vec()
        .ok()?;
    let parsed: Errors = serde_json::from_slice(&bytes).ok()?;
    let first = parsed.errors.into_iter().next()?;
    Some(match (first.code.is_empty(), first.message.is_empty()) {
        (false, false) => format!("{}: {}", first.code, first.message),
        (false, true) => first.code,
        (true, _) => first.message,
    })
}

/// A response header as text.
pub(super) fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

pub(super) fn read_limited(answer: &mut Answer, limit: u64) -> Result<Vec<u8>, RequestError> {
    let url = without_credentials(&answer.url);
    let mut bytes = Vec::new();
    answer
        .response
        .body_mut()
        .as_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RequestError::ReadBody {
            url: url.clone(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RequestError::BodyTooLarge { url, limit });
    }
    Ok(bytes)
}
