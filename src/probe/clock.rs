//! clock: the device's clock against the `Date` headers of the servers it reached.
//!
//! Certificates and sign-in tokens are checked against the local clock, so a phone whose clock is
//! minutes or days off fails in ways that look like network or account trouble. Every HTTP answer
//! of the run (BMW's, the baseline's, the captive-portal check's plain-HTTP one) carries the
//! server's time; the median offset is robust to one odd server. `Date` has one-second resolution,
//! so offsets below a couple of seconds are noise, far under the thresholds.

use crate::model::{Check, Probe, Status};
use crate::profile::Thresholds;
use std::time::SystemTime;

/// Server time minus local time, in seconds, from a `Date` header and the local receipt time.
pub fn offset(date_header: &str, received: SystemTime) -> Option<f64> {
    let server = httpdate::parse_http_date(date_header).ok()?;
    Some(match server.duration_since(received) {
        Ok(ahead) => ahead.as_secs_f64(),
        Err(behind) => -behind.duration().as_secs_f64(),
    })
}

pub fn describe(secs: f64) -> String {
    let abs = secs.abs();
    let amount =
        humantime::format_duration(std::time::Duration::from_secs(abs.round() as u64)).to_string();
    if abs < 1.0 {
        "matches the servers".into()
    } else if secs > 0.0 {
        format!("is {amount} behind the servers")
    } else {
        format!("is {amount} ahead of the servers")
    }
}

/// Judges the offsets gathered from the run's checks (`data.clock_offset_s`).
pub fn run(checks: &[Check], t: &Thresholds) -> Check {
    let mut samples: Vec<(String, f64)> = checks
        .iter()
        .filter_map(|c| {
            let o = c.data_f64("clock_offset_s")?;
            Some((
                c.target
                    .clone()
                    .unwrap_or_else(|| c.probe.name().to_owned()),
                o,
            ))
        })
        .collect();
    if samples.is_empty() {
        return Check::new(
            Probe::Clock,
            None,
            Status::Skip,
            "clock.unknown",
            "no server time to compare with: no HTTP answer carried a Date header",
        )
        .with("offset_s", serde_json::Value::Null);
    }
    samples.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2].1
    } else {
        (samples[n / 2 - 1].1 + samples[n / 2].1) / 2.0
    };
    let abs = median.abs();
    let (status, code) = if abs > t.clock_skew_fail_s {
        (Status::Fail, "clock.skew")
    } else if abs > t.clock_skew_warn_s {
        (Status::Warn, "clock.skew")
    } else {
        (Status::Pass, "clock.ok")
    };
    let summary = format!(
        "this device's clock {} (median of {n} server Date header{})",
        describe(median),
        if n == 1 { "" } else { "s" }
    );
    Check::new(Probe::Clock, None, status, code, summary)
        .with("offset_s", (median * 10.0).round() / 10.0)
        .with(
            "sources",
            samples
                .iter()
                .map(|(s, o)| serde_json::json!({"source": s, "offset_s": (o * 10.0).round() / 10.0}))
                .collect::<Vec<_>>(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn with_offset(target: &str, o: f64) -> Check {
        Check::new(Probe::Http, Some(target), Status::Pass, "http.ok", "").with("clock_offset_s", o)
    }

    #[test]
    fn offsets_from_date_headers() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let hdr = httpdate::fmt_http_date(t + Duration::from_secs(90));
        assert_eq!(offset(&hdr, t), Some(90.0));
        let hdr = httpdate::fmt_http_date(t - Duration::from_secs(3600));
        assert_eq!(offset(&hdr, t), Some(-3600.0));
        assert_eq!(offset("yesterday", t), None);
    }

    #[test]
    fn median_and_thresholds() {
        let t = Thresholds::default();
        let c = run(
            &[
                with_offset("a", 0.4),
                with_offset("b", -0.6),
                with_offset("c", 1000.0),
            ],
            &t,
        );
        assert_eq!((c.status, c.code.as_str()), (Status::Pass, "clock.ok"));
        let c = run(&[with_offset("a", 600.0), with_offset("b", 601.0)], &t);
        assert_eq!((c.status, c.code.as_str()), (Status::Fail, "clock.skew"));
        assert!(c.summary.contains("behind"), "{}", c.summary);
        let c = run(&[with_offset("a", -60.0)], &t);
        assert_eq!((c.status, c.code.as_str()), (Status::Warn, "clock.skew"));
        assert!(c.summary.contains("ahead"));
        assert_eq!(run(&[], &t).code, "clock.unknown");
    }
}
