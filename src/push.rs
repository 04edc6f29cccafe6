//! `--push URL`: after the run, its metrics go to a Prometheus Pushgateway.
//!
//! Devices behind NAT cannot be scraped; they push. Each device `PUT`s its run to
//! `URL/metrics/job/bmw_netcheck/instance/<id>`, which replaces that device's whole group, so a
//! check that disappeared from the profile disappears from the gateway too. The body is exactly
//! `--format prometheus` (one renderer, the same metric names), with credentials removed.
//!
//! The push is a side channel, like the history: a push that fails is one line on stderr with
//! the URL's credentials masked, and the exit code stays the report's. It keeps its share of
//! `--deadline` ([`Push::budget`]), so a run that pushes still ends within the deadline. Basic
//! auth comes from the URL (`https://user:pass@gateway`); `https` trusts the system's roots and
//! `--ca-file`, like the probes.

use crate::error::AppError;
use crate::model::Report;
use crate::plan::PushTo;
use crate::probe::tls::TlsSetup;
use crate::redact;
use crate::sanitize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The push's job label: fixed, so every device of a fleet lands in the same job.
pub const JOB: &str = "bmw_netcheck";

/// The least time a push is given, even when the checks used up the deadline.
const MIN_BOUND: Duration = Duration::from_millis(250);

/// A validated `--push`: where to, under which instance, how to trust the gateway.
pub struct Push {
    url: reqwest::Url,
    shown: String,
    budget: Duration,
    tls: rustls::ClientConfig,
}

impl Push {
    /// `None` without `--push`; exit 3 for a URL that cannot be a Pushgateway's base URL.
    pub fn new(to: &PushTo, tls: &TlsSetup) -> Result<Option<Push>, AppError> {
        let Some(base) = to.base.as_deref() else {
            return Ok(None);
        };
        let instance = crate::instance::of(to.instance.as_deref())?;
        let url = group_url(base, &instance)?;
        let tls = tls
            .client_config(&[b"http/1.1"], Arc::new(Mutex::new(None)))
            .map_err(AppError::Internal)?;
        Ok(Some(Push {
            shown: shown(url.as_str()),
            url,
            budget: budget(to.timeout, to.deadline),
            tls,
        }))
    }

    /// The part of `--deadline` the push keeps for itself.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Pushes the report; a failure is one line on stderr, never the run's failure.
    pub async fn send(&self, report: &Report, left: Duration) {
        if let Err(why) = self.try_send(report, left.max(MIN_BOUND)).await {
            eprintln!(
                "bmw-netcheck: warning: the push to {} failed: {why} (the report is complete; the exit code is its verdict)",
                self.shown
            );
        }
    }

    async fn try_send(&self, report: &Report, bound: Duration) -> Result<(), String> {
        let mut clean = report.clone();
        redact::credentials(&mut clean);
        let body = crate::report::prometheus::render(&clean);
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_backend_preconfigured(self.tls.clone())
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(bound)
            .user_agent(crate::probe::http::USER_AGENT_VALUE)
            .build()
            .map_err(|e| format!("cannot set up the client ({})", redact_text(&e.to_string())))?;
        // reqwest turns the URL's user:pass into a Basic Authorization header.
        let request = client
            .put(self.url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(body)
            .send();
        let response = match tokio::time::timeout(bound, request).await {
            Err(_) => return Err(format!("no answer within {}", secs(bound))),
            Ok(Err(e)) => return Err(failure(&e, bound)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = tokio::time::timeout(bound, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let said = sanitize::outside_capped(text.trim(), 200);
        Err(if said.is_empty() {
            format!("the gateway answered HTTP {}", status.as_u16())
        } else {
            format!(
                "the gateway answered HTTP {}: {}",
                status.as_u16(),
                redact_text(&said)
            )
        })
    }
}

/// `min(--timeout, a quarter of --deadline)`: enough for one request, never most of the run.
pub fn budget(timeout: Duration, deadline: Duration) -> Duration {
    timeout.min(deadline / 4)
}

/// `BASE/metrics/job/bmw_netcheck/instance/<id>`; BASE may carry a path prefix
/// (`https://gw.example/pushgateway`) and credentials, but no query or fragment.
pub fn group_url(base: &str, instance: &str) -> Result<reqwest::Url, AppError> {
    let bad = |why: &str| AppError::usage(format!("--push {}: {why}", shown(base)));
    let mut url = reqwest::Url::parse(base.trim())
        .map_err(|_| bad("not a URL like http://pushgateway:9091"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "must be the gateway's base URL, without a query or fragment",
        ));
    }
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}/metrics/job/{JOB}/instance/{instance}"));
    Ok(url)
}

/// A URL or message with credentials masked and control characters made visible.
fn shown(text: &str) -> String {
    redact_text(&sanitize::outside(text))
}

fn redact_text(text: &str) -> String {
    redact::redact_credentials(text).0.into_owned()
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// What went wrong, in words: the phase (connect, TLS, answer) and its cause.
fn failure(e: &reqwest::Error, bound: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", secs(bound));
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cur) = src {
        if let Some(tls) = cur.downcast_ref::<rustls::Error>() {
            return format!(
                "the TLS handshake with the gateway failed: {}",
                crate::probe::tls::classify_rustls(tls).1
            );
        }
        if let Some(h) = cur.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return "the gateway closed the connection without an answer".into();
        }
        if let Some(io) = cur.downcast_ref::<std::io::Error>() {
            // rustls reports through io::Errors that wrap it, sometimes twice (reachable by
            // get_ref, not by source).
            let mut wrapped = io.get_ref();
            while let Some(inner) = wrapped {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return format!(
                        "the TLS handshake with the gateway failed: {}",
                        crate::probe::tls::classify_rustls(tls).1
                    );
                }
                wrapped = inner
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref);
            }
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "the gateway refused the connection (nothing listens there)".into()
                }
                std::io::ErrorKind::TimedOut => format!("no answer within {}", secs(bound)),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => {
                    "the gateway closed the connection without an answer".into()
                }
                std::io::ErrorKind::Other => "cannot reach the gateway".into(),
                kind => format!("cannot reach the gateway ({kind})"),
            };
        }
        src = cur.source();
    }
    if e.is_connect() {
        "cannot connect to the gateway".into()
    } else {
        "the request to the gateway failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_url_appends_the_grouping_key_to_the_base() {
        let u = group_url("http://gw:9091", "bmw-0a1b").unwrap();
        assert_eq!(
            u.as_str(),
            "http://gw:9091/metrics/job/bmw_netcheck/instance/bmw-0a1b"
        );
        let u = group_url("https://u:p@gw.example/pushgateway/", "kiosk-1").unwrap();
        assert_eq!(
            u.as_str(),
            "https://u:p@gw.example/pushgateway/metrics/job/bmw_netcheck/instance/kiosk-1"
        );
    }

    #[test]
    fn bad_push_urls_are_usage_errors_without_their_secrets() {
        for bad in [
            "gw:9091",
            "ftp://gw",
            "http://u:s3cret@gw/?x=1",
            "http://u:s3cret@gw/#f",
            "nonsense",
        ] {
            let e = group_url(bad, "x").unwrap_err().to_string();
            assert!(e.starts_with("--push "), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn the_push_keeps_a_bounded_share_of_the_deadline() {
        let s = Duration::from_secs;
        assert_eq!(budget(s(5), s(20)), s(5));
        assert_eq!(budget(s(5), s(8)), s(2));
        assert!(budget(s(5), s(1)) < s(1));
    }
}
