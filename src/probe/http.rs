//! http: one GET of the endpoint's path over the connection the tls stage opened.
//!
//! Reusing that connection means the stage costs exactly one round trip and its time to first
//! byte is the server's, not another handshake's. The answer is judged the way BMW's services
//! answer: a 401 from an API without the app's headers still proves the path works, 403/489 mean
//! the service refuses this client, 429 (or a 403 that speaks of a quota) is a rate limit, and
//! 408/5xx are the backend's trouble. The body is read only to classify it, capped and bounded.

use crate::model::{Check, Probe, Status, ms};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{ACCEPT, DATE, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

/// How much of the body is read at most: enough to find "quota" or "Blocked" in an error page.
pub const BODY_CAP: usize = 64 * 1024;

pub const USER_AGENT_VALUE: &str = concat!("bmw-netcheck/", env!("CARGO_PKG_VERSION"));

/// Judges a status (and the start of the body) as the contract defines it.
pub fn classify(status: u16, body: &str, expect: Option<&[u16]>) -> (Status, &'static str) {
    if expect.is_some_and(|e| e.contains(&status)) {
        return (Status::Pass, "http.ok");
    }
    let quota = body.to_ascii_lowercase().contains("quota");
    match status {
        429 => (Status::Warn, "http.rate_limited"),
        403 if quota => (Status::Warn, "http.rate_limited"),
        403 | 489 => (Status::Fail, "http.blocked"),
        408 | 500..=599 => (Status::Fail, "http.server_error"),
        _ if expect.is_some() => (Status::Fail, "http.unexpected_status"),
        _ => (Status::Pass, "http.ok"),
    }
}

fn explain(code: &str, status: u16) -> &'static str {
    match (code, status) {
        ("http.ok", 401) => {
            "the service answers (an auth refusal without the app's credentials is expected)"
        }
        ("http.ok", 300..=399) => "the service answers with a redirect",
        ("http.ok", _) => "the service answers",
        ("http.rate_limited", _) => {
            "the service limits requests from this client or network (quotas reset at 0:00 UTC)"
        }
        ("http.blocked", _) => "the service refuses this client",
        ("http.server_error", 408) => "the service timed out on its side",
        ("http.server_error", _) => "the service has a problem on its side",
        _ => "the service answers with a status this endpoint does not expect",
    }
}

/// Runs the http stage over an established (TLS) connection.
pub async fn run<S>(
    target: &str,
    authority: &str,
    path: &str,
    expect: Option<&[u16]>,
    stream: S,
    timeout: Duration,
) -> Check
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t = Some(target);
    let started = Instant::now();
    let fail = |code: &str, summary: String| {
        Check::new(Probe::Http, t, Status::Fail, code, summary)
            .took(started.elapsed())
            .with("status_code", serde_json::Value::Null)
            .with("ttfb_ms", serde_json::Value::Null)
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(pair) => pair,
        Err(e) => {
            return fail(
                "http.error",
                format!("cannot start HTTP on the connection: {e}"),
            );
        }
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = match Request::get(path)
        .header(HOST, authority)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "application/json, */*")
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return fail(
                "http.error",
                format!("cannot build the request for {path}: {e}"),
            );
        }
    };
    let response = match tokio::time::timeout(timeout, sender.send_request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            driver.abort();
            let summary = if e.is_incomplete_message() || e.is_canceled() {
                "the server closed the connection without answering (reset or filtered)".to_owned()
            } else {
                format!("the request failed: {e}")
            };
            return fail("http.error", summary);
        }
        Err(_) => {
            driver.abort();
            return fail(
                "http.timeout",
                format!(
                    "no HTTP answer within {timeout:?} (the server accepted the connection and went silent)"
                ),
            );
        }
    };
    let ttfb = started.elapsed();
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let date = header(DATE);
    let location = header(LOCATION);

    // Read the start of the body, bounded in size and time: a server may trickle forever.
    let mut body = response.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut truncated = false;
    let body_deadline = tokio::time::Instant::from_std(started) + timeout;
    loop {
        match tokio::time::timeout_at(body_deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let room = BODY_CAP - buf.len();
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                    if buf.len() >= BODY_CAP {
                        truncated = true;
                        break;
                    }
                }
            }
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => {
                truncated = true;
                break;
            }
        }
    }
    driver.abort();
    let text = String::from_utf8_lossy(&buf);
    let (st, code) = classify(status, &text, expect);
    let mut check = Check::new(
        Probe::Http,
        t,
        st,
        code,
        format!(
            "HTTP {status} in {:.1} ms: {}",
            ms(ttfb),
            explain(code, status)
        ),
    )
    .took(started.elapsed())
    .with("status_code", status)
    .with("ttfb_ms", ms(ttfb))
    .with("body_bytes", buf.len() as u64)
    .with("body_truncated", truncated)
    .with("date", date);
    if let Some(loc) = location {
        check = check.with("location", loc);
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classification_follows_the_contract() {
        let c = |s, body: &str| classify(s, body, None).1;
        for s in [200, 204, 301, 302, 401, 404] {
            assert_eq!(c(s, ""), "http.ok", "{s}");
        }
        assert_eq!(c(403, "{\"error\":\"forbidden\"}"), "http.blocked");
        assert_eq!(c(403, "Out of call volume quota"), "http.rate_limited");
        assert_eq!(c(489, "Blocked"), "http.blocked");
        assert_eq!(c(429, ""), "http.rate_limited");
        assert_eq!(c(408, ""), "http.server_error");
        assert_eq!(c(500, ""), "http.server_error");
        assert_eq!(c(503, ""), "http.server_error");
        assert_eq!(classify(429, "", None).0, Status::Warn);
        assert_eq!(classify(503, "", None).0, Status::Fail);
    }

    #[test]
    fn expect_status_decides_first() {
        let e: &[u16] = &[200, 302];
        assert_eq!(classify(302, "", Some(e)).1, "http.ok");
        assert_eq!(classify(401, "", Some(e)).1, "http.unexpected_status");
        assert_eq!(classify(503, "", Some(&[503])).1, "http.ok");
        assert_eq!(classify(429, "", Some(e)).1, "http.rate_limited");
        assert_eq!(classify(500, "", Some(e)).1, "http.server_error");
    }
}
