//! One HTTP exchange over a connection someone else opened: a GET (or the POST of a form, for a
//! token endpoint), its status, time to first byte, the headers the diagnosis reads and the start
//! of the body, capped and bounded.
//!
//! Shared below the probes: the http stage sends it over the TLS session, the captive-portal
//! check over plain TCP, and the proxy path (`tunnel`) inside the proxy's tunnel; each judges the
//! answer its own way.

use crate::profile::{Endpoint, Method};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE, DATE, HOST, LOCATION, RETRY_AFTER, USER_AGENT};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

/// How much of the body is read at most: enough to find "quota" or "Blocked" in an error page.
pub const BODY_CAP: usize = 64 * 1024;

pub const USER_AGENT_VALUE: &str = concat!("bmw-netcheck/", env!("CARGO_PKG_VERSION"));

/// What the http stage sends: the endpoint's method, path and (for a POST) its form body.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<&'a str>,
}

impl<'a> Ask<'a> {
    pub fn of(ep: &'a Endpoint) -> Ask<'a> {
        Ask {
            method: ep.method,
            path: &ep.path,
            body: ep.body.as_deref(),
        }
    }

    pub fn get(path: &'a str) -> Ask<'a> {
        Ask {
            method: Method::Get,
            path,
            body: None,
        }
    }
}

/// The content type of a POST's body.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// What one request/response exchange produced.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub ttfb: Duration,
    pub date: Option<String>,
    pub location: Option<String>,
    /// Server time minus local time at the moment the headers arrived (from `Date`).
    pub clock_offset_s: Option<f64>,
    pub body: Vec<u8>,
    pub truncated: bool,
    /// The `Retry-After` header, read by the http stage's reading of the answer.
    pub retry_after: Option<String>,
    /// The headers that name a proxy on the way ([`PROXY_HEADERS`]), sanitized.
    pub proxy_headers: Vec<(String, String)>,
}

/// The headers a proxy writes of itself: who passed the answer on (`Via`), whose page it is
/// (`Server`), the proxy's own error name and cache verdict (squid's `X-Squid-Error`,
/// `X-Cache`, `X-Cache-Lookup`). Read so that an inspecting proxy can be named.
pub const PROXY_HEADERS: [&str; 5] = [
    "via",
    "server",
    "x-squid-error",
    "x-cache",
    "x-cache-lookup",
];

/// The [`PROXY_HEADERS`] of an answer, from a lookup by header name.
pub fn proxy_headers<'h>(get: impl Fn(&'static str) -> Option<&'h str>) -> Vec<(String, String)> {
    PROXY_HEADERS
        .iter()
        .filter_map(|name| get(name).map(|v| ((*name).to_owned(), crate::sanitize::outside(v))))
        .collect()
}

/// Why an exchange produced no response.
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeError {
    /// No response headers within the timeout.
    Timeout,
    /// The connection broke or HTTP failed; the text says how.
    Failed(String),
}

/// One GET over an established connection (plain or TLS): bounded by `timeout` as a whole, the
/// body read capped at [`BODY_CAP`].
pub async fn exchange<S>(
    stream: S,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<Exchange, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    send(stream, authority, Ask::get(path), timeout).await
}

/// One request as `ask` says, over an established connection; bounded like [`exchange`].
pub async fn send<S>(
    stream: S,
    authority: &str,
    ask: Ask<'_>,
    timeout: Duration,
) -> Result<Exchange, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut request = request_of(ask, authority)?;
    let started = Instant::now();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ExchangeError::Failed(format!("cannot start HTTP on the connection: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let _guard = AbortOnDrop(driver);
    // Interim 1xx answers are skipped by HTTP; counted, a server that sends only those is named
    // for what it does instead of "went silent".
    let interim = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = interim.clone();
    hyper::ext::on_informational(&mut request, move |_| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let response = match tokio::time::timeout(timeout, sender.send_request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(ExchangeError::Failed(
                if e.is_incomplete_message() || e.is_canceled() {
                    "the server closed the connection without answering (reset or filtered)"
                        .to_owned()
                } else {
                    format!("the request failed: {e}")
                },
            ));
        }
        Err(_) => {
            let n = interim.load(std::sync::atomic::Ordering::Relaxed);
            return Err(if n > 0 {
                ExchangeError::Failed(format!(
                    "the server sent {n} interim answer{} (1xx, such as 100 Continue) within {} and never a final status",
                    if n == 1 { "" } else { "s" },
                    humantime::format_duration(timeout)
                ))
            } else {
                ExchangeError::Timeout
            });
        }
    };
    let ttfb = started.elapsed();
    let received = std::time::SystemTime::now();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let date = header(DATE).map(|d| crate::sanitize::outside(&d));
    let location = header(LOCATION).map(|l| crate::sanitize::outside(&l));
    let retry_after = header(RETRY_AFTER).map(|r| crate::sanitize::outside(&r));
    let status = response.status().as_u16();
    let proxy_headers =
        proxy_headers(|name| response.headers().get(name).and_then(|v| v.to_str().ok()));

    // Read the start of the body, bounded in size and time: a server may trickle forever.
    let mut body = response.into_body();
    let deadline = tokio::time::Instant::from_std(started) + timeout;
    let (body, truncated) = read_capped(&mut body, deadline).await;
    let mut x = Exchange::new(status, ttfb, received, date, location, body, truncated);
    x.retry_after = retry_after;
    x.proxy_headers = proxy_headers;
    Ok(x)
}

/// The request `ask` describes, for `authority`: a GET, or a POST with its form body.
fn request_of(ask: Ask<'_>, authority: &str) -> Result<Request<Full<Bytes>>, ExchangeError> {
    let mut request = Request::builder().method(ask.method.as_str()).uri(ask.path);
    if ask.body.is_some() {
        request = request.header(CONTENT_TYPE, FORM);
    }
    request
        .header(HOST, authority)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "application/json, */*")
        .body(Full::new(Bytes::from(ask.body.unwrap_or("").to_owned())))
        .map_err(|e| {
            ExchangeError::Failed(format!("cannot build the request for {}: {e}", ask.path))
        })
}

impl Exchange {
    pub fn new(
        status: u16,
        ttfb: Duration,
        received: std::time::SystemTime,
        date: Option<String>,
        location: Option<String>,
        body: Vec<u8>,
        truncated: bool,
    ) -> Exchange {
        Exchange {
            status,
            ttfb,
            clock_offset_s: date
                .as_deref()
                .and_then(|d| crate::probe::servertime::offset(d, received)),
            date,
            location,
            body,
            truncated,
            retry_after: None,
            proxy_headers: Vec::new(),
        }
    }
}

/// A response body read chunk by chunk: hyper's on a direct connection, reqwest's via a proxy.
pub(crate) trait BodySource {
    /// The next chunk of data; `None` at the end or on an error.
    async fn next_chunk(&mut self) -> Option<Bytes>;
}

impl BodySource for hyper::body::Incoming {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            match self.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(data);
                    }
                }
                _ => return None,
            }
        }
    }
}

impl BodySource for reqwest::Response {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        self.chunk().await.ok().flatten()
    }
}

/// Reads the start of a body, at most [`BODY_CAP`] bytes and until `deadline`: a server may
/// trickle forever. Returns the bytes and whether the body was cut short.
pub(crate) async fn read_capped(
    src: &mut impl BodySource,
    deadline: tokio::time::Instant,
) -> (Vec<u8>, bool) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, src.next_chunk()).await {
            Ok(Some(data)) => {
                let room = BODY_CAP - buf.len();
                buf.extend_from_slice(&data[..data.len().min(room)]);
                if buf.len() >= BODY_CAP {
                    return (buf, true);
                }
            }
            Ok(None) => return (buf, false),
            Err(_) => return (buf, true),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
