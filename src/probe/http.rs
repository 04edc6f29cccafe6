//! http: one request of the endpoint's path (a GET, or the POST of a made-up grant to a token
//! endpoint) over the connection the tls stage opened.
//!
//! Reusing that connection means the stage costs exactly one round trip and its time to first
//! byte is the server's, not another handshake's. The answer is judged first by the general
//! meaning of its status: a 401 from an API without the app's headers still proves the path
//! works, 403/489 mean the service refuses this client, 429 (or a 403 that speaks of a quota) is a
//! rate limit, and 408/5xx are the backend's trouble. The profile's reading and the facts in the
//! body (quota countdowns, error ids) are applied by [`crate::probe::answer`], and a token
//! endpoint's answer is read by [`crate::probe::oauth`]. The body is read only to classify it,
//! capped and bounded.

use crate::model::{Check, Probe, Status, ms};
use crate::probe::definition::{By, Definition, Key, Metric, Perf, Prometheus, Run, Scale, Stage};
use crate::probe::exchange::{Exchange, ExchangeError, FORM, read_capped, send};
use crate::probe::{answer, oauth};
use crate::profile::{Method, Reading};
use hyper::header::{CONTENT_TYPE, DATE, LOCATION, RETRY_AFTER};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

pub use crate::probe::exchange::{Ask, USER_AGENT_VALUE};

/// The http probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Http,
    name: "http",
    description: "request the endpoint's path over that connection; status and time to first byte",
    codes: &[
        "http.ok",
        "http.unexpected_status",
        "http.server_error",
        "http.blocked",
        "http.rate_limited",
        "http.timeout",
        "http.error",
        "http.proxy_error",
        "http.insecure_redirect",
        "http.proxy_auth_required",
        "http.proxy_denied",
        "http.skipped",
    ],
    keys: &[Key::scalar("status_code"), Key::scalar("ttfb_ms")],
    metrics: &[
        Metric {
            key: "ttfb_ms",
            prometheus: Prometheus::Phase("ttfb"),
            nagios: Perf::Millis("ttfb"),
        },
        Metric {
            key: "status_code",
            prometheus: Prometheus::Gauge {
                family: "bmw_netcheck_http_status_code",
                help: "HTTP status code each endpoint answered with.",
                scale: Scale::Plain,
                by: By::Target,
            },
            nagios: Perf::None,
        },
    ],
    needs: &[Probe::Dns, Probe::Tcp, Probe::Tls],
    run: Run::Stage(Stage::Request),
};

/// Judges a status (and the start of the body) as the contract defines it.
pub fn classify(status: u16, body: &str, expect: Option<&[u16]>) -> (Status, &'static str) {
    // HTTP defines 100-599; a "600" or "999" is a broken or hostile server, never a pass.
    if !(100..=599).contains(&status) {
        return (Status::Fail, "http.error");
    }
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
        ("http.rate_limited", _) => "the service limits requests from this client or network",
        ("http.blocked", _) => "the service refuses this client",
        ("http.server_error", 408) => "the service timed out on its side",
        ("http.server_error", _) => "the service has a problem on its side",
        ("http.error", _) => {
            "that is not an HTTP status (HTTP defines 100-599): whatever answers is not a working HTTP service"
        }
        _ => "the service answers with a status this endpoint does not expect",
    }
}

/// Turns an exchange (or its failure) into the http check, reading the answer as `reading` says;
/// a request that posted a grant (`token`) is read as a token endpoint's answer.
pub fn check_of(
    target: &str,
    result: Result<Exchange, ExchangeError>,
    (expect, reading, token): (Option<&[u16]>, Reading, bool),
    timeout: Duration,
    elapsed: Duration,
) -> Check {
    let t = Some(target);
    match result {
        Err(ExchangeError::Timeout) => Check::new(
            Probe::Http,
            t,
            Status::Fail,
            "http.timeout",
            format!(
                "no HTTP answer within {} (the server accepted the connection and went silent)",
                humantime::format_duration(timeout)
            ),
        )
        .took(elapsed)
        .with("status_code", serde_json::Value::Null)
        .with("ttfb_ms", serde_json::Value::Null),
        Err(ExchangeError::Failed(why)) => {
            Check::new(Probe::Http, t, Status::Fail, "http.error", why)
                .took(elapsed)
                .with("status_code", serde_json::Value::Null)
                .with("ttfb_ms", serde_json::Value::Null)
        }
        Ok(x) => {
            let text = String::from_utf8_lossy(&x.body);
            let (st, code) = classify(x.status, &text, expect);
            let seen = answer::Answer {
                status: x.status,
                body: &text,
                retry_after: x.retry_after.as_deref(),
            };
            let read = match token.then(|| oauth::read(&seen, x.truncated, expect)) {
                Some(Some(v)) => v,
                _ => answer::read((st, code, explain(code, x.status)), &seen, expect, reading),
            };
            let mut check = Check::new(
                Probe::Http,
                t,
                read.status,
                read.code,
                format!(
                    "HTTP {} in {:.1} ms: {}",
                    x.status,
                    ms(x.ttfb),
                    read.meaning
                ),
            )
            .took(elapsed)
            .with("status_code", x.status)
            .with("ttfb_ms", ms(x.ttfb))
            .with("body_bytes", x.body.len() as u64)
            .with("body_truncated", x.truncated)
            .with("date", x.date.clone())
            .with(
                "clock_offset_s",
                x.clock_offset_s.map(|o| (o * 10.0).round() / 10.0),
            );
            if let Some(loc) = x.location.clone() {
                // An HTTPS endpoint that sends the app to plain HTTP: whatever follows is
                // readable and alterable on the way (a filter's redirect, or a misconfiguration).
                if (300..400).contains(&x.status)
                    && loc
                        .get(..7)
                        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
                {
                    let summary = format!(
                        "HTTP {} in {:.1} ms: this HTTPS endpoint redirects to plain http:// ({}), which the app refuses to follow",
                        x.status,
                        ms(x.ttfb),
                        crate::sanitize::outside(&crate::probe::proxyenv::redact_url(&loc))
                    );
                    check.restate(Status::Fail, "http.insecure_redirect", summary);
                }
                check = check.with("location", loc);
            }
            check.data.extend(read.data);
            proxy_word(check, &x)
        }
    }
}

/// A proxy that names itself in the answer (`Via`, its own `Server`, `X-Squid-Error`) is
/// recorded (`proxy_product`, `proxy_header`): with an interception, it says whose it is. An
/// answer that is the proxy's own error page (squid's `X-Squid-Error` with a 4xx or 5xx) is the
/// proxy's word about the server, not the server's: `http.proxy_error` with `proxy_error`.
fn proxy_word(mut check: Check, x: &Exchange) -> Check {
    let Some(seen) = crate::interceptors::proxy_of(&x.proxy_headers) else {
        return check;
    };
    check = check
        .with("proxy_product", seen.shown.clone())
        .with("proxy_header", seen.evidence);
    let error = x
        .proxy_headers
        .iter()
        .find(|(n, _)| n == "x-squid-error")
        .and_then(|(_, v)| v.split_whitespace().next())
        .map(str::to_owned);
    if let (Some(error), true) = (error, x.status >= 400) {
        let summary = format!(
            "HTTP {} in {:.1} ms from the proxy, not the server: {} answered with its own error page {error} ({})",
            x.status,
            ms(x.ttfb),
            seen.shown,
            proxy_error_words(&error)
        );
        check.restate(Status::Fail, "http.proxy_error", summary);
        check = check.with("proxy_error", error);
    }
    check
}

/// What a squid error page says, in words.
pub fn proxy_error_words(error: &str) -> &'static str {
    match error {
        "ERR_SECURE_CONNECT_FAIL" => {
            "it could not make a verified TLS connection to the server itself"
        }
        "ERR_CONNECT_FAIL" => "it could not connect to the server",
        "ERR_DNS_FAIL" => "it could not resolve the server's name",
        "ERR_ACCESS_DENIED" => "its rules refuse this request",
        "ERR_READ_TIMEOUT" | "ERR_LIFETIME_EXP" => "the server did not answer it in time",
        "ERR_ZERO_SIZE_OBJECT" => "the server closed the connection without an answer",
        _ => "its own error, not the server's answer",
    }
}

/// The `Host` header of a request to the endpoint: the port is left out when it is 443.
pub fn host_header(ep: &crate::profile::Endpoint) -> String {
    if ep.port == 443 {
        ep.host.clone()
    } else {
        ep.authority()
    }
}

/// Runs the http stage over an established (TLS) connection.
pub async fn run<S>(
    target: &str,
    authority: &str,
    ask: Ask<'_>,
    expect: Option<&[u16]>,
    reading: Reading,
    stream: S,
    timeout: Duration,
) -> Check
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let result = send(stream, authority, ask, timeout).await;
    let how = (expect, reading, ask.body.is_some());
    check_of(target, result, how, timeout, started.elapsed())
}

/// Runs the http stage through a proxy, the way a proxied app would reach the endpoint. Any
/// failure to get an answer is the proxy's (`http.proxy_error`), with what went wrong.
pub async fn run_via_proxy(
    target: &str,
    (url, ask): (&str, Ask<'_>),
    proxy_url: &str,
    (tls, tls_words): (rustls::ClientConfig, TlsWords),
    expect: Option<&[u16]>,
    reading: Reading,
    timeout: Duration,
) -> Check {
    let t = Some(target);
    let shown = crate::probe::proxyenv::shown_value(proxy_url);
    let started = Instant::now();
    let fail = |why: String| {
        Check::new(
            Probe::Http,
            t,
            Status::Fail,
            "http.proxy_error",
            format!("through the proxy {shown}: {why}"),
        )
        .took(started.elapsed())
        .with("status_code", serde_json::Value::Null)
        .with("ttfb_ms", serde_json::Value::Null)
        .with("via_proxy", shown.clone())
    };
    let proxy = match reqwest::Proxy::all(proxy_url) {
        Ok(p) => p,
        Err(_) => return fail("the proxy URL cannot be used".into()),
    };
    let builder = reqwest::Client::builder()
        .no_proxy()
        .proxy(proxy)
        .tls_backend_preconfigured(tls)
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(USER_AGENT_VALUE);
    let client = match crate::iface::bind_client(builder).build() {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "cannot set up the client ({})",
                crate::sanitize::outside(&crate::probe::proxyenv::redact_url(&e.to_string()))
            ));
        }
    };
    let response = match proxied(&client, url, ask).send().await {
        Ok(r) => r,
        Err(e) => return fail(proxy_failure(&e, tls_words)),
    };
    let ttfb = started.elapsed();
    let received = std::time::SystemTime::now();
    let status = response.status().as_u16();
    let date = response
        .headers()
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .map(crate::sanitize::outside);
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(crate::sanitize::outside);
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(crate::sanitize::outside);
    let proxy_headers = crate::probe::exchange::proxy_headers(|name| {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    });
    let mut response = response;
    let deadline = tokio::time::Instant::from_std(started) + timeout;
    let (body, truncated) = read_capped(&mut response, deadline).await;
    let mut x = Exchange::new(status, ttfb, received, date, location, body, truncated);
    x.retry_after = retry_after;
    x.proxy_headers = proxy_headers;
    let how = (expect, reading, ask.body.is_some());
    check_of(target, Ok(x), how, timeout, started.elapsed()).with("via_proxy", shown)
}

/// The request `ask` describes, through the proxy client.
fn proxied(client: &reqwest::Client, url: &str, ask: Ask<'_>) -> reqwest::RequestBuilder {
    let method = match ask.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
    };
    let request = client.request(method, url);
    match ask.body {
        Some(body) => request.header(CONTENT_TYPE, FORM).body(body.to_owned()),
        None => request,
    }
}

/// How a TLS failure is said in words. The tls probe knows (its classifier); the caller that
/// assembles the proxied path passes it in, so this probe does not reach into another.
pub type TlsWords = fn(&rustls::Error) -> String;

/// What went wrong on the way through a proxy, in words, secrets removed.
fn proxy_failure(e: &reqwest::Error, tls_words: TlsWords) -> String {
    let mut chain = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cur) = src {
        if let Some(tls) = cur.downcast_ref::<rustls::Error>() {
            return format!("TLS through the proxy failed: {}", tls_words(tls));
        }
        if let Some(io) = cur.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "the proxy refused the connection (is it running?)".into();
                }
                std::io::ErrorKind::TimedOut => return "the proxy did not answer in time".into(),
                _ => {}
            }
        }
        chain.push(cur.to_string());
        src = cur.source();
    }
    let text = chain.join(": ");
    if e.is_timeout() {
        "no answer in time".into()
    } else if text.contains("407") || text.contains("proxy authorization required") {
        "the proxy wants authentication (407 Proxy Authentication Required)".into()
    } else if text.contains("unsuccessful tunnel") || text.contains("tunnel") {
        format!(
            "the proxy refused to open a tunnel (CONNECT) to the endpoint ({})",
            crate::sanitize::outside(&crate::probe::proxyenv::redact_url(&text))
        )
    } else {
        crate::sanitize::outside(&crate::probe::proxyenv::redact_url(&text))
    }
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
