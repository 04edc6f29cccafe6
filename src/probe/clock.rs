//! clock: the device's clock against the `Date` headers of the servers it reached.
//!
//! Certificates and sign-in tokens are checked against the local clock, so a phone whose clock is
//! minutes or days off fails in ways that look like network or account trouble. Every HTTP answer
//! of the run (BMW's, the baseline's, the captive-portal check's plain-HTTP one) carries the
//! server's time. `Date` has one-second resolution, so offsets below a couple of seconds are
//! noise, far under the thresholds.
//!
//! A server can lie (or be broken): one `Date: … 9999` must not make the report say the device is
//! thousands of years behind. So a `Date` outside the years any server can honestly be in is not
//! used at all, and the verdict rests on servers that **agree** with each other (within the warn
//! threshold): the largest group of agreeing servers wins, a lone outlier is named and set
//! aside, and servers that all disagree give no verdict (`clock.unknown`). One server alone is
//! taken at its word: there is nothing to compare it with.

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, Run};
use crate::profile::Thresholds;

/// The clock probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Clock,
    name: "clock",
    description: "device clock against the servers' Date headers",
    codes: &[
        "clock.ok",
        "clock.skew",
        "clock.unknown",
        "clock.timeout",
        "clock.skipped",
    ],
    keys: &[],
    metrics: &[],
    needs: &[Probe::Dns, Probe::Tcp, Probe::Tls, Probe::Http],
    run: Run::Reader(|input| run(input.checks, &input.profile.thresholds)),
};

pub use crate::probe::servertime::offset;

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
    let best = largest_agreeing(&samples, t);
    let outliers: Vec<String> = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| !best.contains(i))
        .map(|(_, (s, o))| format!("{s} ({})", describe(*o).trim_start_matches("is ")))
        .collect();
    let sources = samples
        .iter()
        .enumerate()
        .map(|(i, (s, o))| {
            serde_json::json!({
                "source": s,
                "offset_s": (o * 10.0).round() / 10.0,
                "agrees": best.contains(&i),
            })
        })
        .collect::<Vec<_>>();
    if samples.len() > 1 && best.len() < 2 {
        return Check::new(
            Probe::Clock,
            None,
            Status::Skip,
            "clock.unknown",
            format!(
                "the servers disagree about the time ({}): no two agree, so this device's clock cannot be judged",
                outliers.join(", ")
            ),
        )
        .with("offset_s", serde_json::Value::Null)
        .with("sources", sources);
    }
    let agreeing = &samples[best];
    let n = agreeing.len();
    let median = median_of(agreeing);
    let abs = median.abs();
    let (status, code) = if abs > t.clock_skew_fail_s {
        (Status::Fail, "clock.skew")
    } else if abs > t.clock_skew_warn_s {
        (Status::Warn, "clock.skew")
    } else {
        (Status::Pass, "clock.ok")
    };
    let set_aside = if outliers.is_empty() {
        String::new()
    } else {
        format!("; set aside, disagreeing: {}", outliers.join(", "))
    };
    let summary = format!(
        "this device's clock {} (median of {n} server Date header{}{set_aside})",
        describe(median),
        if n == 1 { "" } else { "s" }
    );
    Check::new(Probe::Clock, None, status, code, summary)
        .with("offset_s", (median * 10.0).round() / 10.0)
        .with("sources", sources)
}

/// The largest group of servers that agree with each other; among equals, the one nearest this
/// device's clock (benefit of the doubt). `samples` are sorted by offset.
fn largest_agreeing(samples: &[(String, f64)], t: &Thresholds) -> std::ops::Range<usize> {
    let groups = agreeing_groups(samples, t.clock_skew_warn_s.max(2.0));
    groups
        .iter()
        .max_by(|a, b| {
            a.len().cmp(&b.len()).then_with(|| {
                median_of(&samples[(*b).clone()])
                    .abs()
                    .total_cmp(&median_of(&samples[(*a).clone()]).abs())
            })
        })
        .cloned()
        .unwrap_or(0..samples.len())
}

/// Index ranges of `sorted` (by offset) whose neighbours lie within `tolerance` of each other.
fn agreeing_groups(sorted: &[(String, f64)], tolerance: f64) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i == sorted.len() || sorted[i].1 - sorted[i - 1].1 > tolerance {
            groups.push(start..i);
            start = i;
        }
    }
    groups
}

fn median_of(sorted: &[(String, f64)]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2].1,
        _ => (sorted[n / 2 - 1].1 + sorted[n / 2].1) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    #[test]
    fn a_lying_server_does_not_move_the_verdict() {
        let t = Thresholds::default();
        let now = SystemTime::now();
        // Year 9999 is no server's honest time: it is not used at all.
        assert_eq!(offset("Fri, 31 Dec 9999 23:59:59 GMT", now), None);
        assert_eq!(offset("Thu, 01 Jan 1970 00:00:00 GMT", now), None);
        // One honest and one far-off server: no agreement, no verdict.
        let c = run(
            &[with_offset("a", 0.5), with_offset("b", 86_400.0 * 365.0)],
            &t,
        );
        assert_eq!((c.status, c.code.as_str()), (Status::Skip, "clock.unknown"));
        assert!(c.summary.contains("disagree"), "{}", c.summary);
        // Two agreeing against one outlier: the outlier is named and set aside.
        let c = run(
            &[
                with_offset("a", 3600.0),
                with_offset("b", 3601.0),
                with_offset("c", -5.0e8),
            ],
            &t,
        );
        assert_eq!((c.status, c.code.as_str()), (Status::Fail, "clock.skew"));
        assert_eq!(c.data_f64("offset_s"), Some(3600.5));
        assert!(c.summary.contains("set aside"), "{}", c.summary);
    }
}
