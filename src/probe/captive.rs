//! captive: is a Wi-Fi sign-in page (captive portal) intercepting traffic?
//!
//! Phones detect portals the same way: request a plain-HTTP URL whose exact answer is known
//! (e.g. an empty 204). A portal answers instead, with a redirect or its own page. HTTPS cannot be
//! intercepted without a certificate error, so the request must be plain HTTP. No answer at all
//! is not a portal — just no network — and is reported as such.

use crate::iface::Resolver;
use crate::model::{Check, Probe, Status, ms};
use crate::probe::definition::{Definition, DeviceFuture, DeviceInput, Run};
use crate::probe::exchange::{self, ExchangeError};
use crate::probe::lookup;
use crate::profile::Captive;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The captive probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Captive,
    name: "captive",
    description: "a plain-HTTP request whose exact answer is known, to spot captive portals",
    codes: &[
        "captive.ok",
        "captive.portal",
        "captive.unreachable",
        "captive.off",
        "captive.timeout",
        "captive.skipped",
    ],
    keys: &[],
    metrics: &[],
    needs: &[],
    run: Run::Device(start),
};

/// Starts the request, unless the profile switched the check off.
fn start(input: std::sync::Arc<DeviceInput>) -> DeviceFuture {
    Box::pin(async move {
        vec![match &input.profile.captive {
            Some(cfg) => run(cfg, &input.resolver, input.timeout).await,
            None => Check::new(
                Probe::Captive,
                None,
                Status::Skip,
                "captive.off",
                "switched off in the profile ([captive] url = \"\")",
            ),
        }]
    })
}

/// Splits `http://host[:port]/path` into its parts (validated when the profile was loaded).
pub fn split_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        (
            h.to_owned(),
            p.strip_prefix(':').map_or(Some(80), |p| p.parse().ok())?,
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (authority.to_owned(), 80),
        }
    };
    Some((host, port, path))
}

/// Judges the answer: exactly the expected status (and, for 204, no body) means no portal.
pub fn judge(expect: u16, status: u16, body_len: usize) -> (Status, &'static str) {
    if status == expect && (expect != 204 || body_len == 0) {
        (Status::Pass, "captive.ok")
    } else {
        (Status::Fail, "captive.portal")
    }
}

pub async fn run(cfg: &Captive, resolver: &Result<Resolver, String>, timeout: Duration) -> Check {
    let started = Instant::now();
    let unreachable = |why: String| {
        Check::new(
            Probe::Captive,
            None,
            Status::Skip,
            "captive.unreachable",
            format!(
                "no answer from {}: {why} — cannot tell whether a portal is present",
                cfg.url
            ),
        )
        .took(started.elapsed())
        .with("url", cfg.url.clone())
    };
    let Some((host, port, path)) = split_url(&cfg.url) else {
        return unreachable("the URL cannot be parsed".into());
    };
    let bounded = async {
        let ip = lookup::first_address(resolver, &host).await?;
        let stream = crate::iface::connect(SocketAddr::new(ip, port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let authority = if port == 80 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        exchange::exchange(stream, &authority, &path, timeout)
            .await
            .map_err(|e| match e {
                ExchangeError::Timeout => "no HTTP answer in time".to_owned(),
                ExchangeError::Failed(why) => why,
            })
    };
    let x = match tokio::time::timeout(timeout, bounded).await {
        Ok(Ok(x)) => x,
        Ok(Err(why)) => return unreachable(why),
        Err(_) => {
            return unreachable(format!(
                "nothing within {}",
                humantime::format_duration(timeout)
            ));
        }
    };
    let (status, code) = judge(cfg.expect_status, x.status, x.body.len());
    let summary = if code == "captive.ok" {
        format!(
            "no captive portal: {} answered {} as expected",
            cfg.url, x.status
        )
    } else if let Some(loc) = &x.location {
        format!(
            "a captive portal intercepts plain HTTP: expected {}, got {} redirecting to {loc}",
            cfg.expect_status, x.status
        )
    } else {
        format!(
            "a captive portal (or filter) intercepts plain HTTP: expected {}, got {} with {} bytes of content",
            cfg.expect_status,
            x.status,
            x.body.len()
        )
    };
    let mut c = Check::new(Probe::Captive, None, status, code, summary)
        .took(started.elapsed())
        .with("url", cfg.url.clone())
        .with("status_code", x.status)
        .with("ttfb_ms", ms(x.ttfb))
        .with(
            "clock_offset_s",
            x.clock_offset_s.map(|o| (o * 10.0).round() / 10.0),
        );
    if let Some(loc) = x.location {
        c = c.with("location", loc);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://c.example/generate_204"),
            Some(("c.example".into(), 80, "/generate_204".into()))
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080"),
            Some(("127.0.0.1".into(), 8080, "/".into()))
        );
        assert_eq!(
            split_url("http://[::1]:81/x?y"),
            Some(("::1".into(), 81, "/x?y".into()))
        );
        assert_eq!(split_url("https://x"), None);
        assert_eq!(split_url("http://h:port/"), None);
    }

    #[test]
    fn judgement() {
        assert_eq!(judge(204, 204, 0).1, "captive.ok");
        assert_eq!(judge(204, 204, 10).1, "captive.portal");
        assert_eq!(judge(204, 302, 0).1, "captive.portal");
        assert_eq!(judge(204, 200, 1200).1, "captive.portal");
        assert_eq!(judge(200, 200, 7).1, "captive.ok");
    }
}
