//! Prometheus text exposition, for node_exporter's textfile collector.
//!
//! Run from cron or a systemd timer with `--format prometheus -o <dir>/bmw_netcheck.prom`; the
//! collector reads the file on each scrape. Shaped after blackbox_exporter: failure is data (a
//! status gauge per check), phase timings are first-class, the certificate's expiry is a
//! timestamp (alert on `... - time() < 14*86400`), and every name ends in its unit.
//!
//! Metrics (all gauges; see README.md for the table):
//! - `bmw_netcheck_run_info{report_id,version,region}` 1
//! - `bmw_netcheck_run_status` 0 pass, 1 warn, 2 fail (the exit code)
//! - `bmw_netcheck_run_timestamp_seconds`, `bmw_netcheck_run_duration_seconds`
//! - `bmw_netcheck_check_status{probe,target,code}` 0 pass, 1 warn, 2 fail, -1 skip
//! - `bmw_netcheck_phase_duration_seconds{target,phase}` phase = resolve, connect, tls, ttfb
//! - `bmw_netcheck_http_status_code{target}`
//! - `bmw_netcheck_tls_cert_not_after_timestamp_seconds{target}`
//! - `bmw_netcheck_latency_median_seconds{target}`, `bmw_netcheck_latency_loss_ratio{target}`
//! - `bmw_netcheck_uplink_status{interface,kind}` in a per-interface run, whose check samples
//!   also carry an `interface` label
//! - `bmw_netcheck_storage_free_bytes{path}`, `bmw_netcheck_storage_total_bytes{path}`
//! - `bmw_netcheck_suspect_rank{id,confidence}` 1 = most likely
//!
//! Device probes have `target=""` (an empty label, which Prometheus treats as absent).

use crate::model::{Check, Probe, Report, Status};
use crate::probe::definition::{By, Prometheus, Scale};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::UNIX_EPOCH;

/// The value of `bmw_netcheck_check_status`: ordered by severity, skip below pass.
pub fn status_value(s: Status) -> i32 {
    match s {
        Status::Skip => -1,
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
}

/// Label values: backslash, double quote and line feed escaped, as the format requires.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as the format wants it: `NaN`, `+Inf`, `-Inf`, or Rust's shortest round-trip form.
/// Values of everyday size are first rounded to nine decimals, finer than anything measured, so
/// the arithmetic of unit conversion (`305.1 / 1000`) shows no float noise (`0.30510000000000004`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.abs() < 1e6 {
        let rounded = (v * 1e9).round() / 1e9;
        format!("{}", rounded + 0.0)
    } else {
        format!("{v}")
    }
}

/// One metric family: HELP, TYPE and its samples; left out entirely when it has none.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
    /// Label sets already present: a repeated one would be rejected by the collector.
    seen: BTreeSet<String>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            samples: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        let key = format!("{labels:?}");
        if self.seen.insert(key) {
            self.samples.push((labels, value));
        }
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            if !labels.is_empty() {
                let body: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", body.join(","));
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
}

/// A check's labels, with `interface` added when the check went over a chosen uplink.
fn on(c: &Check, mut labels: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    if let Some(i) = &c.interface {
        labels.push(("interface", i.clone()));
    }
    labels
}

/// Seconds since the epoch of an RFC 3339 time (`2025-01-01T00:00:00Z`, with or without
/// fractions). `None` for anything else, so a malformed value drops a sample, not the file.
pub fn unix_seconds(rfc3339: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(rfc3339.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

fn target(c: &Check) -> String {
    c.target.clone().unwrap_or_default()
}

/// Milliseconds (measured to a tenth) as seconds, to the same precision.
fn seconds(c: &Check, key: &str) -> Option<f64> {
    c.data_f64(key).map(|ms| (ms * 10.0).round() / 10_000.0)
}

pub fn render(r: &Report) -> String {
    let mut checks = CheckFamilies::new();
    for c in &r.checks {
        checks.add(c);
    }
    let suspects = suspect_family(r);
    let mut out = String::new();
    for f in run_families(r)
        .iter()
        .chain(checks.all())
        .chain([&suspects])
    {
        f.write(&mut out);
    }
    out
}

/// The families about the run as a whole: its id, verdict, time, duration and uplinks.
fn run_families(r: &Report) -> [Family; 5] {
    let mut info = Family::new(
        "bmw_netcheck_run_info",
        "The run this file describes: report id, tool version and region (always 1).",
    );
    info.add(
        vec![
            ("report_id", r.report_id.clone()),
            ("version", r.tool.version.clone()),
            ("region", r.region.clone()),
        ],
        1.0,
    );
    let mut run_status = Family::new(
        "bmw_netcheck_run_status",
        "Worst check status of the run: 0 pass, 1 warn, 2 fail (the exit code).",
    );
    run_status.add(vec![], f64::from(status_value(r.status).max(0)));
    let mut run_ts = Family::new(
        "bmw_netcheck_run_timestamp_seconds",
        "When the run started, in seconds since the Unix epoch.",
    );
    if let Some(t) = unix_seconds(&r.started_at) {
        run_ts.add(vec![], t);
    }
    let mut run_duration = Family::new(
        "bmw_netcheck_run_duration_seconds",
        "How long the run took, in seconds.",
    );
    run_duration.add(vec![], r.duration_ms / 1000.0);
    let mut uplink = Family::new(
        "bmw_netcheck_uplink_status",
        "Worst check status over each uplink of a per-interface run: 0 pass, 1 warn, 2 fail; kind is wifi, cellular, ethernet, tunnel or other.",
    );
    for u in &r.uplinks {
        uplink.add(
            vec![("interface", u.name.clone()), ("kind", u.kind.clone())],
            f64::from(status_value(u.status).max(0)),
        );
    }
    [info, run_status, run_ts, run_duration, uplink]
}

/// The families read from the checks, in the order they are written: each check's status, the
/// phases, then the gauges the probes' definitions declare, in registry order. Which
/// measurement goes where is the definitions' word ([`crate::probe::definition::Metric`]), so a
/// probe's figures cannot be left out here.
struct CheckFamilies {
    status: Family,
    phase: Family,
    gauges: Vec<Family>,
}

impl CheckFamilies {
    fn new() -> CheckFamilies {
        let status = Family::new(
            "bmw_netcheck_check_status",
            "Status of each check: 0 pass, 1 warn, 2 fail, -1 skip. target is empty for device probes.",
        );
        let phase = Family::new(
            "bmw_netcheck_phase_duration_seconds",
            "Duration of each connection phase per endpoint: resolve (DNS), connect (TCP), tls (handshake), ttfb (HTTP time to first byte).",
        );
        let gauges = Probe::all()
            .iter()
            .flat_map(|p| p.definition().metrics)
            .filter_map(|m| match m.prometheus {
                Prometheus::Gauge { family, help, .. } => Some(Family::new(family, help)),
                Prometheus::Phase(_) | Prometheus::None => None,
            })
            .collect();
        CheckFamilies {
            status,
            phase,
            gauges,
        }
    }

    fn all(&self) -> impl Iterator<Item = &Family> {
        [&self.status, &self.phase].into_iter().chain(&self.gauges)
    }

    fn add(&mut self, c: &Check) {
        // Device probes that report several things (storage, per path) are told apart by path.
        let label_target = match (&c.target, c.data_str("path")) {
            (None, Some(p)) => p.to_owned(),
            _ => target(c),
        };
        self.status.add(
            on(
                c,
                vec![
                    ("probe", c.probe.name().to_owned()),
                    ("target", label_target),
                    ("code", c.code.clone()),
                ],
            ),
            f64::from(status_value(c.status)),
        );
        for m in c.probe.definition().metrics {
            match m.prometheus {
                Prometheus::Phase(phase) => {
                    if let Some(v) = seconds(c, m.key) {
                        let labels = vec![("target", target(c)), ("phase", phase.to_owned())];
                        self.phase.add(on(c, labels), v);
                    }
                }
                Prometheus::Gauge {
                    family, scale, by, ..
                } => {
                    let Some(v) = scaled(c, m.key, scale) else {
                        continue;
                    };
                    let labels = match by {
                        By::Target => on(c, vec![("target", target(c))]),
                        By::Path => {
                            vec![("path", c.data_str("path").unwrap_or_default().to_owned())]
                        }
                    };
                    if let Some(f) = self.gauges.iter_mut().find(|f| f.name == family) {
                        f.add(labels, v);
                    }
                }
                Prometheus::None => {}
            }
        }
    }
}

/// A measurement as its gauge wants it; `None` when it was not measured or cannot be read.
fn scaled(c: &Check, key: &str, scale: Scale) -> Option<f64> {
    match scale {
        Scale::MillisToSeconds => seconds(c, key),
        Scale::PercentToRatio => c.data_f64(key).map(|pct| pct / 100.0),
        Scale::Timestamp => c.data_str(key).and_then(unix_seconds),
        Scale::Plain => c.data_f64(key),
    }
}

/// The suspects, ranked.
fn suspect_family(r: &Report) -> Family {
    let mut suspects = Family::new(
        "bmw_netcheck_suspect_rank",
        "Likely causes of the run's problems, 1 = most likely.",
    );
    for (i, s) in r.suspects.iter().enumerate() {
        suspects.add(
            vec![
                ("id", s.id.clone()),
                ("confidence", s.confidence.as_str().to_owned()),
            ],
            (i + 1) as f64,
        );
    }
    suspects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Confidence, Suspect, Tool};

    fn report() -> Report {
        let checks = vec![
            Check::new(Probe::Dns, Some("api"), Status::Pass, "dns.ok", "ok")
                .with("resolve_ms", 12.5),
            Check::new(Probe::Tcp, Some("api"), Status::Pass, "tcp.ok", "ok")
                .with("connect_ms", 20.0),
            Check::new(Probe::Tls, Some("api"), Status::Pass, "tls.ok", "ok")
                .with("handshake_ms", 30.0)
                .with("not_after", "2027-01-15T08:00:00Z"),
            Check::new(
                Probe::Http,
                Some("api"),
                Status::Warn,
                "http.rate_limited",
                "429",
            )
            .with("ttfb_ms", 40.0)
            .with("status_code", 429),
            Check::new(
                Probe::Latency,
                Some("api"),
                Status::Pass,
                "latency.ok",
                "ok",
            )
            .with("median_ms", 21.0)
            .with("loss_pct", 20.0),
            Check::new(Probe::Storage, None, Status::Pass, "storage.ok", "ok")
                .with("path", "/home/a \"b\"\\c")
                .with("free_bytes", 1_000_000u64)
                .with("total_bytes", 9_000_000u64),
            Check::new(Probe::Storage, None, Status::Pass, "storage.ok", "ok")
                .with("path", "/tmp")
                .with("free_bytes", 5u64),
            Check::skipped(Probe::Tls, Some("weird\nname"), "no"),
        ];
        Report {
            schema_version: 1,
            report_id: "r1".into(),
            tool: Tool::this(),
            started_at: "2025-01-01T00:00:00.500Z".into(),
            duration_ms: 1234.0,
            region: "rest_of_world".into(),
            status: Status::Warn,
            checks,
            suspects: vec![Suspect {
                id: "server_side".into(),
                title: "t".into(),
                symptom: "s".into(),
                difficulty: None,
                confidence: Confidence::Medium,
                evidence: vec![],
                steps: vec![],
            }],
            endpoints: vec![],
            device: None,
            redacted: vec![],
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn samples_carry_units_and_escaped_labels() {
        let text = render(&report());
        for line in [
            "bmw_netcheck_run_status 1",
            "bmw_netcheck_run_timestamp_seconds 1735689600.5",
            "bmw_netcheck_run_duration_seconds 1.234",
            "bmw_netcheck_check_status{probe=\"http\",target=\"api\",code=\"http.rate_limited\"} 1",
            "bmw_netcheck_check_status{probe=\"tls\",target=\"weird\\nname\",code=\"tls.skipped\"} -1",
            "bmw_netcheck_check_status{probe=\"storage\",target=\"/tmp\",code=\"storage.ok\"} 0",
            "bmw_netcheck_phase_duration_seconds{target=\"api\",phase=\"resolve\"} 0.0125",
            "bmw_netcheck_phase_duration_seconds{target=\"api\",phase=\"ttfb\"} 0.04",
            "bmw_netcheck_http_status_code{target=\"api\"} 429",
            "bmw_netcheck_tls_cert_not_after_timestamp_seconds{target=\"api\"} 1800000000",
            "bmw_netcheck_latency_median_seconds{target=\"api\"} 0.021",
            "bmw_netcheck_latency_loss_ratio{target=\"api\"} 0.2",
            "bmw_netcheck_storage_free_bytes{path=\"/home/a \\\"b\\\"\\\\c\"} 1000000",
            "bmw_netcheck_storage_total_bytes{path=\"/home/a \\\"b\\\"\\\\c\"} 9000000",
            "bmw_netcheck_suspect_rank{id=\"server_side\",confidence=\"medium\"} 1",
            "# TYPE bmw_netcheck_check_status gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Exactly one HELP and one TYPE per family, and none for families without samples.
        assert_eq!(text.matches("# TYPE bmw_netcheck_check_status ").count(), 1);
        assert!(!text.contains("bmw_netcheck_storage_total_bytes{path=\"/tmp\"}"));
    }

    #[test]
    fn repeated_label_sets_are_dropped() {
        let mut r = report();
        r.checks.push(r.checks[0].clone());
        let text = render(&r);
        assert_eq!(
            text.matches("bmw_netcheck_check_status{probe=\"dns\",target=\"api\"")
                .count(),
            1
        );
    }

    #[test]
    fn values_carry_no_float_noise() {
        assert_eq!(number(305.1 / 1000.0), "0.3051");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(1_733_000_000.5), "1733000000.5");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn rfc3339_timestamps() {
        assert_eq!(unix_seconds("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(unix_seconds("soon"), None);
    }
}
