//! An HTTPS server with scripted behaviour after the handshake: a chosen status, body, headers and
//! `Date`; silence; or a body that never ends. It records the requests it got.
//!
//! HTTP/1.1 is written by hand on purpose: the point is to misbehave in exact, repeatable ways
//! that a real server framework would not let us.

use super::Task;
use super::pki::ServerIdentity;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// The `Date` header the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum DateHeader {
    /// The current time.
    Now,
    /// The current time shifted by this many seconds (negative: the server's clock is behind).
    Offset(i64),
    /// Exactly this text (it need not be a valid date).
    Raw(String),
    /// No `Date` header.
    Omit,
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub date: DateHeader,
}

impl HttpReply {
    /// `status` with its usual reason phrase and an empty body.
    pub fn status(status: u16) -> HttpReply {
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            302 => "Found",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            408 => "Request Timeout",
            429 => "Too Many Requests",
            489 => "Blocked",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Status",
        };
        HttpReply {
            status,
            reason: reason.into(),
            headers: Vec::new(),
            body: Vec::new(),
            date: DateHeader::Now,
        }
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpReply {
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpReply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn date(mut self, date: DateHeader) -> HttpReply {
        self.date = date;
        self
    }

    fn head(&self, framing: &str) -> String {
        let mut h = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        let date = match &self.date {
            DateHeader::Now => Some(httpdate::fmt_http_date(SystemTime::now())),
            DateHeader::Offset(s) => {
                let now = SystemTime::now();
                let d = Duration::from_secs(s.unsigned_abs());
                Some(httpdate::fmt_http_date(if *s >= 0 {
                    now + d
                } else {
                    now - d
                }))
            }
            DateHeader::Raw(text) => Some(text.clone()),
            DateHeader::Omit => None,
        };
        if let Some(date) = date {
            h.push_str(&format!("Date: {date}\r\n"));
        }
        h.push_str("Server: netcheck-fixture\r\nConnection: close\r\n");
        h.push_str(framing);
        for (k, v) in &self.headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        h
    }
}

/// What the server does once the TLS handshake is done.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpBehaviour {
    /// Read the request, send this response, close.
    Reply(HttpReply),
    /// Say nothing, keep the connection open.
    SilentAfterHandshake,
    /// Send the head (chunked), then body chunks as fast as the client takes them, forever.
    EndlessBody(HttpReply),
    /// Send the head (chunked), then one byte per interval, forever.
    TrickleBody(HttpReply, Duration),
}

impl HttpBehaviour {
    pub fn status(status: u16) -> HttpBehaviour {
        HttpBehaviour::Reply(HttpReply::status(status))
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running HTTPS server; stops when dropped.
pub struct HttpsServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    handshakes: Arc<AtomicUsize>,
    _task: Task,
}

/// The fixtures' TLS server settings: safe defaults, ALPN `http/1.1`.
pub fn server_config(identity: &ServerIdentity) -> ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .expect("certificate and key match");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

impl HttpsServer {
    /// Binds `127.0.0.1:0`.
    pub fn start(identity: &ServerIdentity, behaviour: HttpBehaviour) -> HttpsServer {
        HttpsServer::start_on("127.0.0.1:0", identity, behaviour)
    }

    /// Binds `addr` (e.g. `[::1]:0`).
    pub fn start_on(
        addr: &str,
        identity: &ServerIdentity,
        behaviour: HttpBehaviour,
    ) -> HttpsServer {
        let listener = std::net::TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("bind {addr} for the HTTPS fixture: {e}"));
        HttpsServer::from_listener(listener, identity, behaviour)
    }

    /// Serves on a listener the caller bound (any address, any network namespace).
    pub fn from_listener(
        listener: std::net::TcpListener,
        identity: &ServerIdentity,
        behaviour: HttpBehaviour,
    ) -> HttpsServer {
        HttpsServer::with_config(listener, server_config(identity), behaviour)
    }

    /// Serves with a TLS configuration of the caller's (e.g. TLS 1.2 only).
    pub fn with_config(
        listener: std::net::TcpListener,
        config: ServerConfig,
        behaviour: HttpBehaviour,
    ) -> HttpsServer {
        let addr = listener.local_addr().expect("listener address");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (reqs, shakes) = (requests.clone(), handshakes.clone());
        let task = Task::spawn(async move {
            let listener = TcpListener::from_std(listener).expect("register the listener");
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, behaviour) = (acceptor.clone(), behaviour.clone());
                let (reqs, shakes) = (reqs.clone(), shakes.clone());
                conns.spawn(async move {
                    // Latency samples connect and leave without a handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    shakes.fetch_add(1, Ordering::SeqCst);
                    serve(tls, behaviour, reqs).await;
                });
                // Reap finished connections so a long test does not accumulate them.
                while conns.try_join_next().is_some() {}
            }
        });
        HttpsServer {
            addr,
            requests,
            handshakes,
            _task: task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Completed TLS handshakes so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

async fn serve<S>(mut s: S, behaviour: HttpBehaviour, requests: Arc<Mutex<Vec<Request>>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if behaviour == HttpBehaviour::SilentAfterHandshake {
        let mut sink = [0u8; 1024];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let Some(request) = read_head(&mut s).await else {
        return;
    };
    requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request);
    match behaviour {
        HttpBehaviour::SilentAfterHandshake => unreachable!("handled above"),
        HttpBehaviour::Reply(reply) => {
            let framing = format!("Content-Length: {}\r\n", reply.body.len());
            let mut bytes = reply.head(&framing).into_bytes();
            bytes.extend_from_slice(&reply.body);
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        HttpBehaviour::EndlessBody(reply) => {
            let head = reply.head("Transfer-Encoding: chunked\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let data = vec![b'x'; 16 * 1024];
            let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
            while s.write_all(&chunk).await.is_ok() {}
        }
        HttpBehaviour::TrickleBody(reply, every) => {
            let head = reply.head("Transfer-Encoding: chunked\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                if s.write_all(b"1\r\nx\r\n").await.is_err() || s.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }
    }
}

/// Reads a request head (up to 16 KiB) and parses its request line and headers.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return None;
        }
        let n = s.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Request {
        method,
        path,
        headers,
    })
}
