//! An HTTP/1.1 proxy for tests that sits in front of a registry on loopback and, per request,
//! forwards it, answers it itself (auth challenges, 5xx, 429), drops or resets the connection,
//! or rewrites/truncates the registry's answer. Shared by the registry client's unit tests
//! (`src/oci/registry.rs` includes this file with `#[path]`) and the integration tests
//! (`tests/it/common`), so there is one fault injector.
//!
//! One request per connection (`Connection: close` both ways) so every request passes the
//! handler; request bodies must have a `Content-Length` (the registry client always sends one).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The request line and headers of one request.
pub struct Head {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the proxy does with one request.
pub enum Action {
    /// Pass it to the upstream (without `Authorization`: the proxy is the one checking it)
    /// and its answer back.
    Forward,
    /// Like `Forward`, with the upstream's raw answer (head and body) passed through a function:
    /// to rewrite a header, or to cut the answer short.
    ForwardMap(Box<dyn FnOnce(Vec<u8>) -> Vec<u8> + Send>),
    /// Answer with these raw bytes (see [`respond`]).
    Respond(String),
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Read half of the request body, then close: unread data makes the kernel send a RST, so
    /// the client sees a connection reset in the middle of its upload.
    Reset,
}

/// A complete `Connection: close` answer.
pub fn respond(status: &str, headers: &str, body: &str) -> Action {
    Action::Respond(format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
}

/// Forwards, and sends back only the first half of the upstream's answer.
pub fn truncated() -> Action {
    Action::ForwardMap(Box::new(|mut answer: Vec<u8>| {
        answer.truncate(answer.len() / 2);
        answer
    }))
}

pub type Handler = Arc<dyn Fn(&Head) -> Action + Send + Sync>;

/// Starts a proxy to the server on `127.0.0.1:upstream`; returns its port. The accept thread
/// lives until the test process exits.
pub fn start(upstream: u16, handler: Handler) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let _ = proxy_one(conn, upstream, &handler);
            });
        }
    });
    port
}

fn proxy_one(conn: TcpStream, upstream: u16, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let head = Head { method, path, headers };
    let body_len: u64 = head.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut conn = conn;
    let forward = |reader: &mut BufReader<TcpStream>| -> std::io::Result<TcpStream> {
        let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
        let mut out = first.clone();
        for (k, v) in &head.headers {
            if !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("authorization") {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        up.write_all(out.as_bytes())?;
        std::io::copy(&mut reader.take(body_len), &mut up)?;
        Ok(up)
    };
    match handler(&head) {
        Action::Respond(resp) => {
            std::io::copy(&mut (&mut reader).take(body_len), &mut std::io::sink())?;
            conn.write_all(resp.as_bytes())?;
        }
        Action::Drop => {
            std::io::copy(&mut (&mut reader).take(body_len), &mut std::io::sink())?;
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        Action::Reset => {
            std::io::copy(&mut (&mut reader).take(body_len / 2), &mut std::io::sink())?;
            // Dropping every handle closes the socket with unread data pending: a RST.
        }
        Action::Forward => {
            let mut up = forward(&mut reader)?;
            std::io::copy(&mut up, &mut conn)?;
        }
        Action::ForwardMap(map) => {
            let mut up = forward(&mut reader)?;
            let mut answer = Vec::new();
            up.read_to_end(&mut answer)?;
            conn.write_all(&map(answer))?;
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
    Ok(())
}

/// Random faults, reproducible from a seed: whether (and how) a request is faulted depends
/// only on the seed, the request's method and path (upload session ids and queries left out)
/// and how many such requests came before it, not on the order in which parallel uploads
/// happen to arrive.
pub struct FaultPlan {
    seed: u64,
    /// Fault probability in thousandths; 0 turns faults off.
    per_mille: AtomicU32,
    seen: Mutex<HashMap<String, u64>>,
    /// Faults injected so far.
    pub injected: AtomicU64,
}

impl FaultPlan {
    pub fn new(seed: u64, per_mille: u32) -> FaultPlan {
        FaultPlan { seed, per_mille: AtomicU32::new(per_mille), seen: Mutex::default(), injected: AtomicU64::new(0) }
    }

    pub fn set_per_mille(&self, per_mille: u32) {
        self.per_mille.store(per_mille, Ordering::Relaxed);
    }

    /// The action for `head`: a 500, 503 or 429, a reset in the middle of the request body, an
    /// answer cut in half, or (most of the time) `Forward`.
    pub fn decide(&self, head: &Head) -> Action {
        let path = head.path.split('?').next().unwrap_or_default();
        let path = match path.find("/blobs/uploads/") {
            Some(i) => &path[..i + "/blobs/uploads/".len()],
            None => path,
        };
        let key = format!("{} {path}", head.method);
        let n = {
            let mut seen = self.seen.lock().expect("fault plan lock");
            let n = seen.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let mut h = self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let h = splitmix64(h);
        if h % 1000 >= u64::from(self.per_mille.load(Ordering::Relaxed)) {
            return Action::Forward;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        match (h >> 32) % 5 {
            0 => respond("500 Internal Server Error", "", r#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#),
            1 => respond("503 Service Unavailable", "", ""),
            2 => respond("429 Too Many Requests", "Retry-After: 0\r\n", r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}"#),
            3 => Action::Reset,
            _ => truncated(),
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
