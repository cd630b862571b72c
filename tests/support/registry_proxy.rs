//! An in-process HTTP proxy on 127.0.0.1 that sits in front of a real registry and misbehaves
//! on request: canned answers (500, 429, 401 challenges, tokens), dropped connections,
//! corrupted or truncated bodies. One request per connection (`Connection: close`), which
//! keeps it small and makes every request visible.
//!
//! Use with `#[path = "support/registry_proxy.rs"] mod registry_proxy;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the proxy received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A query parameter's (undecoded) value.
    pub fn query(&self, key: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == key)
            .map(|(_, value)| {
                value
                    .replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",")
                    .replace("%20", " ")
            })
    }

    /// All values of a query parameter.
    pub fn query_all(&self, key: &str) -> Vec<String> {
        let Some((_, query)) = self.target.split_once('?') else {
            return Vec::new();
        };
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| *name == key)
            .map(|(_, value)| {
                value
                    .replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",")
                    .replace("%20", " ")
            })
            .collect()
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Pass it to the upstream registry and return its answer.
    Forward,
    /// Forward, but flip the last byte of the answer's body.
    ForwardCorrupted,
    /// Forward, but send only half the answer's body, then close.
    ForwardTruncated,
    /// Answer without asking upstream.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without answering.
    Drop,
}

impl Action {
    /// A canned status with an empty body.
    pub fn status(status: u16) -> Self {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// What the proxy did with one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub action: String,
}

type Decide = dyn Fn(&Request) -> Action + Send + Sync;

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`127.0.0.1:PORT`); `decide` picks each request's fate.
    pub fn start(
        upstream: &str,
        decide: impl Fn(&Request) -> Action + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let decide: Arc<Decide> = Arc::new(decide);
        let upstream = upstream.to_owned();
        let accept_thread = {
            let seen = Arc::clone(&seen);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let seen = Arc::clone(&seen);
                            let decide = Arc::clone(&decide);
                            let upstream = upstream.clone();
                            std::thread::spawn(move || handle(stream, &upstream, &*decide, &seen));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            addr,
            seen,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// Everything handled so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn handle(mut client: TcpStream, upstream: &str, decide: &Decide, seen: &Mutex<Vec<Seen>>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(20)));
    let Some((request, raw)) = read_request(&mut client) else {
        return;
    };
    let action = decide(&request);
    seen.lock().unwrap().push(Seen {
        method: request.method.clone(),
        target: request.target.clone(),
        action: match &action {
            Action::Respond { status, .. } => format!("respond {status}"),
            other => format!("{other:?}").to_ascii_lowercase(),
        },
    });
    match action {
        Action::Drop => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Action::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = client.write_all(head.as_bytes());
            let _ = client.write_all(&body);
            let _ = client.shutdown(Shutdown::Both);
        }
        Action::Forward | Action::ForwardCorrupted | Action::ForwardTruncated => {
            let Some(mut response) = forward(upstream, &raw) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            let body_start = find(&response, b"\r\n\r\n").map_or(response.len(), |index| index + 4);
            match action {
                Action::ForwardCorrupted if response.len() > body_start => {
                    let last = response.len() - 1;
                    response[last] ^= 0xff;
                }
                Action::ForwardTruncated => {
                    let keep = body_start + (response.len() - body_start) / 2;
                    response.truncate(keep);
                }
                _ => {}
            }
            let _ = client.write_all(&response);
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

/// Read one request; returns it parsed and as raw bytes rewritten with `Connection: close`.
fn read_request(stream: &mut TcpStream) -> Option<(Request, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(index) = find(&buffer, b"\r\n\r\n") {
            break index;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || buffer.len() > 1024 * 1024 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let mut raw = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in &headers {
        if !name.eq_ignore_ascii_case("connection") {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(&body);
    Some((
        Request {
            method,
            target,
            headers,
            body,
        },
        raw,
    ))
}

fn forward(upstream: &str, raw: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    stream.write_all(raw).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    Some(response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
