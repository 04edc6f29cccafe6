//! Redaction: what leaves the machine in a report must not carry secrets or more of the user than
//! the diagnosis needs.
//!
//! Two levels, because they protect different things:
//! - **credentials** (`user:pass@` in proxy URLs) are a secret. They are removed from every format,
//!   the history file included, whatever the flags say: defence in depth behind the proxy probe,
//!   which should never have put them in a check in the first place.
//! - **personal details** (the device's host name, user names in home-directory paths, private,
//!   loopback and link-local addresses) are not secrets, but a support ticket travels far. They are
//!   removed from Markdown reports unless `--no-redact`.
//!
//! Redaction walks every string of the report (summaries, data values at any depth, suspects,
//! endpoints, the device), so a new probe cannot forget to call it. The report then lists the kinds
//! it removed (never the values) in `redacted`, so whoever reads it knows what is missing.

mod personal;
mod secrets;

use crate::model::Report;
use serde_json::Value;
use std::borrow::Cow;

pub use personal::is_private;
use personal::{redact_private_ips, redact_user_paths, replace_word};
pub use secrets::{redact_credentials, url_value};

/// Replaces private, loopback and link-local addresses.
pub const PRIVATE: &str = "<private>";
/// Replaces the device's host name.
pub const HOSTNAME: &str = "<hostname>";
/// Replaces the public address the egress check found (opt-in, `--egress`).
pub const PUBLIC: &str = "<public address>";
/// Replaces credentials and user names.
pub const MASK: &str = "***";

/// What a redaction pass removed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub credentials: usize,
    pub hostname: usize,
    pub user_names: usize,
    pub addresses: usize,
    /// The public address of `--egress`.
    pub public: usize,
}

impl Counts {
    /// Human-readable kinds for `Report::redacted`, e.g. `"private addresses (3)"`.
    fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |n: usize, what: &str| {
            if n > 0 {
                out.push(format!("{what} ({n})"));
            }
        };
        add(self.credentials, "credentials and secret URL parameters");
        add(self.hostname, "device host name");
        add(self.user_names, "user names in paths");
        add(self.addresses, "private, loopback and link-local addresses");
        add(self.public, "the public address the egress check found");
        out
    }
}

/// Removes credentials from every string of the report. For every format and the history line.
pub fn credentials(report: &mut Report) -> Counts {
    let mut r = Redactor {
        personal: false,
        hostname: None,
        public: Vec::new(),
        counts: Counts::default(),
    };
    r.report(report);
    note(report, &r.counts);
    r.counts
}

/// Removes credentials and personal details (host name, user names in paths, private addresses).
/// For reports that leave the machine: Markdown unless `--no-redact`.
pub fn personal(report: &mut Report) -> Counts {
    let hostname = report
        .device
        .as_ref()
        .map(|d| d.hostname.trim().to_owned())
        .filter(|h| usable_hostname(h));
    let mut r = Redactor {
        personal: true,
        hostname,
        public: public_addresses(report),
        counts: Counts::default(),
    };
    r.report(report);
    // The host name field itself goes even when it was too short to search for elsewhere.
    if let Some(d) = report.device.as_mut()
        && !d.hostname.is_empty()
        && d.hostname != HOSTNAME
    {
        d.hostname = HOSTNAME.to_owned();
        r.counts.hostname += 1;
    }
    note(report, &r.counts);
    r.counts
}

/// Records what was removed, merging with an earlier pass (credentials first, then personal).
fn note(report: &mut Report, counts: &Counts) {
    for kind in counts.describe() {
        let label = kind.split(" (").next().unwrap_or(&kind).to_owned();
        report.redacted.retain(|k| !k.starts_with(&label));
        report.redacted.push(kind);
    }
}

/// The public addresses the egress check found: where the user is, which a ticket does not need.
fn public_addresses(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.probe == crate::model::Probe::Egress)
        .filter_map(|c| c.data_str("public_address"))
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
        .collect()
}

/// Characters that cannot appear in a URL: they end a token. Everything else may be part of a
/// password (RFC 3986 allows `;,=!$&'()*+` in userinfo), so it is kept inside the token.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '<' | '>' | '`' | '{' | '}' | '|' | '\\' | '^')
}

/// A name short or generic enough to match ordinary words is not searched for in text.
fn usable_hostname(h: &str) -> bool {
    h.len() >= 3 && !h.eq_ignore_ascii_case("localhost")
}

struct Redactor {
    personal: bool,
    hostname: Option<String>,
    public: Vec<String>,
    counts: Counts,
}

impl Redactor {
    fn report(&mut self, r: &mut Report) {
        self.string(&mut r.region);
        for c in &mut r.checks {
            if let Some(t) = c.target.as_mut() {
                self.string(t);
            }
            self.string(&mut c.summary);
            for v in c.data.values_mut() {
                self.value(v);
            }
        }
        for s in &mut r.suspects {
            self.string(&mut s.title);
            self.string(&mut s.symptom);
            for e in s.evidence.iter_mut().chain(s.steps.iter_mut()) {
                self.string(e);
            }
        }
        for e in &mut r.endpoints {
            self.string(&mut e.name);
            self.string(&mut e.host);
        }
        if let Some(d) = r.device.as_mut() {
            self.string(&mut d.os);
            if !self.personal {
                self.string(&mut d.hostname);
            }
        }
    }

    fn value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => self.string(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.value(i)),
            _ => {}
        }
    }

    fn string(&mut self, s: &mut String) {
        let mut text = match redact_credentials(s) {
            (Cow::Owned(t), n) => {
                self.counts.credentials += n;
                t
            }
            (Cow::Borrowed(_), _) => std::mem::take(s),
        };
        if self.personal {
            if let Some(h) = &self.hostname {
                let (t, n) = replace_word(&text, h, HOSTNAME);
                self.counts.hostname += n;
                text = t;
            }
            for a in &self.public {
                let (t, n) = replace_word(&text, a, PUBLIC);
                self.counts.public += n;
                text = t;
            }
            let (t, n) = redact_user_paths(&text);
            self.counts.user_names += n;
            let (t, n) = redact_private_ips(&t);
            self.counts.addresses += n;
            text = t;
        }
        *s = text;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, Confidence, Device, EndpointInfo, Probe, Status, Suspect, Tool};

    fn sample() -> Report {
        let check = Check::new(
            Probe::Proxy,
            None,
            Status::Warn,
            "proxy.env",
            "HTTPS_PROXY=http://alice:hunter2@10.0.0.5:3128 on alice-pc",
        )
        .with(
            "vars",
            serde_json::json!({"https_proxy": "alice:hunter2@proxy:3128", "list": ["/home/alice/x", 3]}),
        );
        let storage = Check::new(Probe::Storage, None, Status::Pass, "storage.ok", "ok")
            .with("path", "/home/alice");
        Report {
            schema_version: 1,
            report_id: "abc".into(),
            tool: Tool::this(),
            started_at: "2025-01-01T00:00:00Z".into(),
            duration_ms: 1.0,
            region: "test".into(),
            status: Status::Warn,
            checks: vec![check, storage],
            suspects: vec![Suspect {
                id: "vpn_firewall".into(),
                title: "t".into(),
                symptom: "s".into(),
                difficulty: None,
                confidence: Confidence::Low,
                evidence: vec!["proxy http://alice:hunter2@10.0.0.5:3128".into()],
                steps: vec!["check /Users/alice/Library".into()],
            }],
            endpoints: vec![EndpointInfo {
                name: "local".into(),
                host: "192.168.0.10".into(),
                port: 443,
                role: crate::model::Role::Service,
            }],
            device: Some(Device {
                os: "Linux".into(),
                hostname: "alice-pc".into(),
            }),
            redacted: vec![],
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn credentials_pass_keeps_personal_details() {
        let mut r = sample();
        let counts = credentials(&mut r);
        assert_eq!(counts.credentials, 3);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("/home/alice"));
        assert!(text.contains("10.0.0.5"));
        assert_eq!(
            r.redacted,
            vec!["credentials and secret URL parameters (3)"]
        );
    }

    #[test]
    fn personal_pass_walks_every_string() {
        let mut r = sample();
        credentials(&mut r);
        personal(&mut r);
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["hunter2", "alice", "10.0.0.5", "192.168.0.10"] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert_eq!(r.device.as_ref().unwrap().hostname, HOSTNAME);
        assert!(r.checks[0].summary.ends_with("on <hostname>"));
        assert_eq!(
            r.redacted,
            vec![
                "credentials and secret URL parameters (3)",
                "device host name (2)",
                "user names in paths (3)",
                "private, loopback and link-local addresses (3)"
            ]
        );
        // A second pass finds nothing new and does not double-count.
        let before = r.clone();
        personal(&mut r);
        assert_eq!(r.checks, before.checks);
    }
}
