//! The proxy path: an endpoint reached the way a proxied app reaches it.
//!
//! When a proxy applies to an endpoint, its http stage (or a TLS-only endpoint's handshake) also
//! runs through the proxy, alongside the direct stages. With an `http://` proxy the tunnel is
//! opened by [`crate::probe::tunnel`] and the tls and http stages run inside it, unchanged; with
//! another proxy URL the http stage goes through reqwest's proxy support, and the certificate
//! the proxy presented is judged like the direct path's. This sits above the probes because it
//! puts two of them together; the runner only bounds it in time.

use crate::model::{Check, Probe, Status, ms};
use crate::plan::Selection;
use crate::probe::proxyenv::ProxyEnv;
use crate::probe::tunnel::{self, ProxyAddr, tunnel_check};
use crate::probe::{http, tls};
use crate::profile::{Endpoint, Protocol};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The stage of an endpoint that goes through the configured proxy, if any.
pub enum Proxied {
    /// An http:// proxy: the tunnel the app would open, written out so a refusal keeps its
    /// meaning (tunnel.rs); TLS-only endpoints get their handshake inside it too.
    Tunnel(Probe, ProxyAddr),
    /// Another proxy URL: the http stage through reqwest's proxy support.
    Http(String),
}

/// The stage of `ep` that goes through the proxy `proxy` names for it, if that stage runs.
pub fn proxied_stage(ep: &Endpoint, proxy: &ProxyEnv, sel: &Selection) -> Option<Proxied> {
    let proxy = proxy.for_host(&ep.host)?;
    if let Some(tunnel) = ProxyAddr::parse(proxy) {
        let probe = match ep.protocol {
            Protocol::Https => Probe::Http,
            Protocol::Tls => Probe::Tls,
        };
        if sel.runs(probe) {
            return Some(Proxied::Tunnel(probe, tunnel));
        }
    }
    (ep.protocol == Protocol::Https && sel.runs(Probe::Http))
        .then(|| Proxied::Http(proxy.to_owned()))
}

impl Proxied {
    /// The stage whose check the proxy path gives.
    pub fn probe(&self) -> Probe {
        match self {
            Proxied::Tunnel(probe, _) => *probe,
            Proxied::Http(_) => Probe::Http,
        }
    }

    /// The endpoint through the proxy, bounded by the runner.
    pub async fn check(
        &self,
        ep: &Endpoint,
        setup: &tls::TlsSetup,
        timeout: Duration,
        warn_days: i64,
    ) -> Check {
        match self {
            Proxied::Tunnel(_, tunnel) => {
                through_tunnel(setup, ep, tunnel, timeout, warn_days).await
            }
            Proxied::Http(url) => http_via_proxy(ep, setup, timeout, url).await,
        }
    }
}

/// The http stage through a proxy that is not an http:// one; the certificate the proxy
/// presented is judged like the direct path's.
async fn http_via_proxy(
    ep: &Endpoint,
    setup: &tls::TlsSetup,
    timeout: Duration,
    proxy_url: &str,
) -> Check {
    let url = format!("https://{}{}", ep.authority(), ep.path);
    let seen = Arc::new(Mutex::new(None));
    setup.ready().await;
    let config = match setup.client_config(tls::alpn(Protocol::Https), seen.clone()) {
        Ok(c) => c,
        Err(why) => {
            return Check::new(Probe::Http, Some(&ep.name), Status::Fail, "http.error", why);
        }
    };
    let c = http::run_via_proxy(
        &ep.name,
        (&url, http::Ask::of(ep)),
        proxy_url,
        (config, |e| tls::classify::classify_rustls(e).1),
        ep.expect_status.as_deref(),
        ep.reading,
        timeout,
    )
    .await;
    let presented = seen.lock().ok().and_then(|s| s.clone());
    tls::judge_proxied(c, presented.as_ref(), ep.private_ca)
}

/// The endpoint through the proxy, as the app reaches it: an `http` check for HTTPS endpoints
/// (tunnel, handshake, request), a `tls` check for TLS-only ones (tunnel, handshake).
async fn through_tunnel(
    setup: &tls::TlsSetup,
    ep: &Endpoint,
    proxy: &ProxyAddr,
    timeout: Duration,
    warn_days: i64,
) -> Check {
    let started = Instant::now();
    let probe = match ep.protocol {
        Protocol::Https => Probe::Http,
        Protocol::Tls => Probe::Tls,
    };
    let authority = ep.authority();
    let stream = match tunnel::open(proxy, &authority, timeout).await {
        Ok(s) => s,
        Err(e) => {
            return tunnel_check(probe, &ep.name, proxy, &authority, e, timeout)
                .took(started.elapsed());
        }
    };
    let policy = tls::Policy::for_endpoint(ep, timeout);
    let alpn = tls::alpn(ep.protocol);
    let handshake = tls::run(setup, &ep.name, &ep.host, alpn, stream, warn_days, policy);
    let (tls_check, session) = match tokio::time::timeout(timeout, handshake).await {
        Ok(done) => done,
        Err(_) => (
            Check::timed_out(
                Probe::Tls,
                Some(&ep.name),
                format!(
                    "the tunnel through {} opened, but no TLS handshake completed within {}",
                    proxy.shown,
                    humantime::format_duration(timeout)
                ),
            ),
            None,
        ),
    };
    let shown = proxy.shown.clone();
    if ep.protocol == Protocol::Tls {
        let mut c = tls_check;
        c.summary = format!("through the proxy {shown}: {}", c.summary);
        return c
            .with("via_proxy", shown)
            .with("path", "proxy")
            .took(started.elapsed());
    }
    let Some(session) = session else {
        return tls_failed_in_tunnel(tls_check, ep, &shown, &authority, started);
    };
    let host_header = http::host_header(ep);
    let tls_ms = tls_check.data_f64("handshake_ms");
    let mut c = http::run(
        &ep.name,
        &host_header,
        http::Ask::of(ep),
        ep.expect_status.as_deref(),
        ep.reading,
        session,
        timeout,
    )
    .await;
    if tls_check.code == "tls.intercepted" {
        return intercepted_on_proxy_path(tls_check, Some(c), &shown).took(started.elapsed());
    }
    c.summary = format!("through the proxy {shown}: {}", c.summary);
    c.took(started.elapsed())
        .with("via_proxy", shown)
        .with("path", "proxy")
        .with("tls_version", tls_check.data.get("version").cloned())
        .with("tls_handshake_ms", tls_ms.map(|v| json!(v)))
        .with("proxy_total_ms", ms(started.elapsed()))
}

/// The tunnel opened but no TLS session came through it: the interceptor the tls probe named,
/// or the proxy path's failure with what TLS said.
fn tls_failed_in_tunnel(
    tls_check: Check,
    ep: &Endpoint,
    shown: &str,
    authority: &str,
    started: Instant,
) -> Check {
    if tls_check.code == "tls.intercepted" {
        // The tunnel's certificate is an interceptor's the tls probe named: say that, on
        // the app's path, rather than a bare proxy error.
        return intercepted_on_proxy_path(tls_check, None, shown).took(started.elapsed());
    }
    // The issuer, matched against the table of interception products (mitmproxy among them).
    let interceptor = tls_check
        .data_str("issuer")
        .and_then(|i| crate::interceptors::identify([i]))
        .map(|i| format!("; in the way: {}, which intercepts TLS", i.product))
        .unwrap_or_default();
    Check::new(
        Probe::Http,
        Some(&ep.name),
        Status::Fail,
        "http.proxy_error",
        format!(
            "through the proxy {shown}: the tunnel to {authority} opened, but TLS failed: {}{interceptor}",
            tls_check.summary
        ),
    )
    .took(started.elapsed())
    .with("status_code", serde_json::Value::Null)
    .with("ttfb_ms", serde_json::Value::Null)
    .with("via_proxy", shown)
    .with("path", "proxy")
    .with("tls_code", tls_check.code.clone())
    .with("issuer", tls_check.data.get("issuer").cloned())
}

/// The app's path through the proxy meets an interceptor (the proxy's own ssl-bump, or a
/// product behind it): the http check carries `tls.intercepted` with who it is, the HTTP answer
/// (when the device trusts the interceptor and the request went on) beside it.
fn intercepted_on_proxy_path(tls_check: Check, answered: Option<Check>, shown: &str) -> Check {
    let mut c = Check::new(
        Probe::Http,
        tls_check.target.as_deref(),
        tls_check.status,
        "tls.intercepted",
        format!("through the proxy {shown}: {}", tls_check.summary),
    );
    for key in [
        "interceptor",
        "interceptor_kind",
        "issuer",
        "reason",
        "intercept_trusted",
    ] {
        if let Some(v) = tls_check.data.get(key) {
            c.data.insert(key.into(), v.clone());
        }
    }
    c = c
        .with("tls_version", tls_check.data.get("version").cloned())
        .with("via_proxy", shown)
        .with("path", "proxy");
    match answered {
        Some(http) => {
            c.status = c.status.max(http.status);
            c.summary = format!("{}; {}", c.summary, http.summary);
            for key in ["status_code", "ttfb_ms"] {
                c.data
                    .insert(key.into(), http.data.get(key).cloned().unwrap_or_default());
            }
            for key in ["proxy_product", "proxy_header", "proxy_error"] {
                if let Some(v) = http.data.get(key) {
                    c.data.insert(key.into(), v.clone());
                }
            }
        }
        None => {
            c = c
                .with("status_code", serde_json::Value::Null)
                .with("ttfb_ms", serde_json::Value::Null);
        }
    }
    c
}
