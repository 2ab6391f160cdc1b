//! The Docker Engine API on its unix socket: image inspect, tag and load without starting the
//! `docker` client (each client start costs 0.1–0.4 s on a busy machine, more than sending a
//! small layer). HTTP/1.1 by hyper's client connection over a `tokio` `UnixStream`, on a
//! current-thread runtime of its own; one connection carries the inspects and the tags, a load
//! streams the tarball as a chunked request body from a writer thread (never held in memory).
//!
//! Used only where the `docker` client would talk to the same socket: `DOCKER_HOST` unset or
//! `unix://…`, and no context chosen (`DOCKER_CONTEXT` or the config's `currentContext`), see
//! [`socket_path`]; anything else (tcp, ssh, contexts) is left to the client.
//!
//! Endpoints (Docker Engine API, unversioned paths: the daemon's own version answers):
//! `GET /images/{name}/json` (inspect: `Id`, `RootFS.Layers`), `POST /images/{name}/tag?repo=&tag=`
//! and `POST /images/load?quiet=1` with the `docker load` tarball as body, which answers 200 and
//! then a stream of JSON messages: `{"stream": "Loaded image: …"}`, or `{"error": …,
//! "errorDetail": {"message": …}}` when the load failed part-way (moby `api/server/router/image`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};

use super::sink::FileSink;

/// The socket the `docker` client uses by default.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Bytes of tarball per body chunk: large enough that the channel costs nothing per byte.
const CHUNK: usize = 1 << 20;
/// Chunks queued between the tarball writer and the connection (memory bound: ~4 MiB).
const QUEUED: usize = 4;

/// The socket the `docker` client would talk to, if it is a local unix socket: `DOCKER_HOST`
/// when it is `unix://PATH`, else `/var/run/docker.sock` unless a context is chosen. `None`
/// when the client would go elsewhere (tcp, ssh, a context's endpoint): the client then does
/// the work.
pub fn socket_path() -> Option<PathBuf> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let config_dir = env("DOCKER_CONFIG").map(PathBuf::from).or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")));
    let current_context = config_dir
        .and_then(|d| std::fs::read(d.join("config.json")).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["currentContext"].as_str().map(str::to_owned));
    choose_socket(env("DOCKER_HOST").as_deref(), env("DOCKER_CONTEXT").as_deref(), current_context.as_deref())
}

/// [`socket_path`] from the client's settings: `DOCKER_HOST` wins over any context (as the
/// client has it), `DOCKER_CONTEXT` over the config's `currentContext`; the context `default`
/// is the default socket.
fn choose_socket(host: Option<&str>, context: Option<&str>, config_context: Option<&str>) -> Option<PathBuf> {
    if let Some(host) = host {
        return host.strip_prefix("unix://").filter(|p| !p.is_empty()).map(PathBuf::from);
    }
    match context.or(config_context) {
        None | Some("" | "default") => Some(PathBuf::from(DEFAULT_SOCKET)),
        Some(_) => None,
    }
}

/// A request body: nothing, or the chunks a writer thread sends (an `Err` aborts the request,
/// so the daemon never takes a truncated tarball for a whole one).
enum Body {
    Empty,
    Stream(tokio::sync::mpsc::Receiver<io::Result<Bytes>>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Stream(rx) => rx.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// One connection to the engine's socket.
pub struct Client {
    socket: PathBuf,
    sender: SendRequest<Body>,
    /// Runs the connection while a request is under way; dropping it ends the connection.
    rt: tokio::runtime::Runtime,
}

impl Client {
    /// Connects to the engine at `socket`.
    pub fn connect(socket: &Path) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().context("starting an I/O runtime")?;
        let sender = rt
            .block_on(async {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(io::Error::other)?;
                // Polled whenever this runtime runs (during a request).
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok::<_, io::Error>(sender)
            })
            .with_context(|| format!("connecting to the Docker engine at {}", socket.display()))?;
        Ok(Client { socket: socket.to_path_buf(), sender, rt })
    }

    /// Sends one request and reads the whole answer (they are small: JSON documents).
    fn request(&mut self, method: Method, path_and_query: &str, body: Body) -> Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            // HTTP/1.1 needs a Host; the daemon ignores it (the client sends "api.moby.localhost").
            .header(hyper::header::HOST, "api.moby.localhost");
        if matches!(body, Body::Stream(_)) {
            request = request.header(hyper::header::CONTENT_TYPE, "application/x-tar");
        }
        let request = request.body(body).with_context(|| format!("a request for {path_and_query}"))?;
        let sender = &mut self.sender;
        self.rt
            .block_on(async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            })
            .with_context(|| format!("{path_and_query} on the Docker engine at {}", self.socket.display()))
    }

    /// Image ID and layer diff IDs of each of `names` the engine has (one `GET
    /// /images/{name}/json` each, on this connection); names it lacks are left out, and so is
    /// a name whose request failed (the answer only says what need not be sent).
    pub fn inspect(&mut self, names: &[&str]) -> Vec<(String, Vec<String>)> {
        let mut found = Vec::new();
        for name in names {
            let Ok((StatusCode::OK, body)) = self.request(Method::GET, &format!("/images/{}/json", escape(name)), Body::Empty) else {
                continue;
            };
            let Ok(image) = serde_json::from_slice::<serde_json::Value>(&body) else { continue };
            let Some(id) = image["Id"].as_str() else { continue };
            let layers = image["RootFS"]["Layers"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_owned));
            found.push((id.to_owned(), layers.collect()));
        }
        found
    }

    /// Tags `image` (an ID or a name) as `tag` (`repo[:tag]`, `latest` when it has none).
    pub fn tag(&mut self, image: &str, tag: &str) -> Result<()> {
        let (repo, version) = split_tag(tag);
        let path = format!("/images/{}/tag?repo={}&tag={}", escape(image), escape(repo), escape(version));
        let (status, body) = self.request(Method::POST, &path, Body::Empty)?;
        if !status.is_success() {
            bail!("the Docker engine refused to tag {image} as {tag} ({status}): {}", daemon_message(&body));
        }
        Ok(())
    }

    /// Loads the tarball `write` writes (on a thread of its own, while this one sends it), as
    /// `docker load` does; returns what the engine reported (`Loaded image: …` lines). Fails
    /// with the engine's own message if it refused the tarball, or with the writer's error if
    /// the tarball could not be written (the request is then aborted).
    pub fn load<F>(self, write: F) -> Result<String>
    where
        F: FnOnce(&mut ChunkWriter) -> Result<()> + Send,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUED);
        std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let mut w = ChunkWriter { tx, pending: Vec::with_capacity(CHUNK) };
                let written = write(&mut w).and_then(|()| w.flush().map_err(anyhow::Error::from));
                if let Err(e) = &written {
                    // Fails the body, so hyper aborts the request instead of ending it cleanly.
                    let _ = w.tx.blocking_send(Err(io::Error::other(format!("{e:#}"))));
                }
                written
            });
            let mut client = self;
            let response = client.request(Method::POST, "/images/load?quiet=1", Body::Stream(rx));
            // Dropping the runtime drops the connection and with it the body's receiver, so a
            // writer still blocked on a full channel (the engine stopped reading) gets an error.
            let socket = client.socket.clone();
            drop(client);
            let written = writer.join().unwrap_or_else(|_| Err(anyhow!("the tarball writer panicked")));
            let sending = || format!("sending the image to the Docker engine at {}", socket.display());
            // The engine's own word first: a refusal also breaks the writer's pipe.
            match response {
                Ok((status, body)) => {
                    if !status.is_success() {
                        bail!("the Docker engine refused the image ({status}): {}", daemon_message(&body));
                    }
                    let text = load_messages(&body)?;
                    written.with_context(sending)?;
                    Ok(text)
                }
                Err(e) => {
                    written.with_context(sending)?;
                    Err(e)
                }
            }
        })
    }
}

/// Queues what is written in `CHUNK`-sized pieces for the request body; blocks while the
/// engine has not taken the earlier ones.
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    pending: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the Docker engine closed the connection"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl FileSink for ChunkWriter {}

/// The text of a load's JSON message stream, or the first error in it.
fn load_messages(body: &[u8]) -> Result<String> {
    let mut text = String::new();
    for message in serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
        let message = message.with_context(|| format!("the Docker engine's answer to a load: {}", String::from_utf8_lossy(body)))?;
        if let Some(error) = message["errorDetail"]["message"].as_str().or(message["error"].as_str()) {
            bail!("the Docker engine refused the image: {error}");
        }
        if let Some(line) = message["stream"].as_str() {
            text.push_str(line);
        }
    }
    Ok(text)
}

/// The daemon's message in an error answer (`{"message": …}`), else the answer as text.
fn daemon_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned())
}

/// `repo[:tag]` as the tag endpoint takes it: the tag is after the last `:` that follows the
/// last `/` (a registry's port is not a tag).
fn split_tag(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (&reference[..name_start + i], &reference[name_start + i + 1..]),
        None => (reference, "latest"),
    }
}

/// Percent-encodes what may not stand in a path segment or query value as is (references
/// only hold `[a-z0-9._-/:@]`, kept; anything else in a user's tag is encoded, not trusted).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_the_one_the_client_would_use() {
        let default = Some(PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(choose_socket(None, None, None), default);
        assert_eq!(choose_socket(None, None, Some("default")), default);
        assert_eq!(choose_socket(Some("unix:///run/user/1000/docker.sock"), None, None), Some(PathBuf::from("/run/user/1000/docker.sock")));
        assert_eq!(choose_socket(Some("tcp://10.0.0.1:2375"), None, None), None, "tcp is the client's");
        assert_eq!(choose_socket(Some("ssh://me@host"), None, None), None, "ssh is the client's");
        assert_eq!(choose_socket(None, Some("remote"), None), None, "a context may point anywhere");
        assert_eq!(choose_socket(None, None, Some("colima")), None);
        assert_eq!(choose_socket(None, Some("default"), Some("colima")), default, "DOCKER_CONTEXT wins over the config");
        assert_eq!(choose_socket(Some("unix:///x.sock"), Some("remote"), None), Some(PathBuf::from("/x.sock")), "DOCKER_HOST wins");
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("app:1.0"), ("app", "1.0"));
        assert_eq!(split_tag("app"), ("app", "latest"));
        assert_eq!(split_tag("localhost:5000/team/app"), ("localhost:5000/team/app", "latest"));
        assert_eq!(split_tag("localhost:5000/team/app:v2"), ("localhost:5000/team/app", "v2"));
    }

    #[test]
    fn a_load_answer_gives_its_lines_or_its_error() {
        let ok = br#"{"stream":"Loaded image: a:latest\n"}{"stream":"Loaded image: b:1\n"}"#;
        assert_eq!(load_messages(ok).unwrap(), "Loaded image: a:latest\nLoaded image: b:1\n");
        let bad = br#"{"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":"Error processing tar file"}"#;
        let err = load_messages(bad).unwrap_err().to_string();
        assert!(err.contains("Error processing tar file(exit status 1): unexpected EOF"), "{err}");
        assert!(load_messages(b"not json").is_err());
        assert_eq!(daemon_message(br#"{"message":"no such image: x"}"#), "no such image: x");
        assert_eq!(daemon_message(b"plain\n"), "plain");
    }

    #[test]
    fn names_are_escaped_for_the_path() {
        assert_eq!(escape("sha256:ab12"), "sha256:ab12");
        assert_eq!(escape("localhost:5000/a_b/c.d-e"), "localhost:5000/a_b/c.d-e");
        assert_eq!(escape("a b?c&d#"), "a%20b%3Fc%26d%23");
    }
}
