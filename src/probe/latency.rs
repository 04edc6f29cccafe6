//! latency: round-trip time and loss, measured as sequential TCP connects to the address the tcp
//! stage reached.
//!
//! A TCP handshake needs no privileges (unlike ICMP ping), crosses the same firewalls and proxies
//! as the app's traffic, and its connect time is one network round trip — the figure curl reports
//! as `time_connect`. A sample that gets no answer within the step timeout counts as lost.
//!
//! The tcp stage's own connect is such a sample, so it is the first one: the remaining samples
//! then run while TLS and HTTP proceed on that connection, and the whole check costs one round
//! trip less than sampling from scratch would.

use crate::model::{Check, Probe, Status, ms};
use crate::probe::definition::{By, Definition, Key, Metric, Perf, Prometheus, Run, Scale, Stage};
use crate::profile::Thresholds;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The latency probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Latency,
    name: "latency",
    description: "sequential TCP connects: median, jitter and loss",
    codes: &[
        "latency.ok",
        "latency.high",
        "latency.loss",
        "latency.local_limit",
        "latency.timeout",
        "latency.skipped",
    ],
    keys: &[
        Key::list("samples_ms"),
        Key::scalar("median_ms"),
        Key::scalar("loss_pct"),
    ],
    metrics: &[
        Metric {
            key: "median_ms",
            prometheus: Prometheus::Gauge {
                family: "bmw_netcheck_latency_median_seconds",
                help: "Median TCP connect time over the latency samples, in seconds.",
                scale: Scale::MillisToSeconds,
                by: By::Target,
            },
            nagios: Perf::Millis("median"),
        },
        Metric {
            key: "loss_pct",
            prometheus: Prometheus::Gauge {
                family: "bmw_netcheck_latency_loss_ratio",
                help: "Share of latency samples that got no answer, 0 to 1.",
                scale: Scale::PercentToRatio,
                by: By::Target,
            },
            nagios: Perf::Percent("loss"),
        },
    ],
    needs: &[Probe::Dns, Probe::Tcp],
    run: Run::Stage(Stage::Beside),
};

/// Summary statistics of a set of samples (lost samples are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub samples_ms: Vec<Option<f64>>,
    pub median_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Mean absolute difference between consecutive answered samples (RFC 3550 style, unsmoothed).
    pub jitter_ms: Option<f64>,
    pub loss_pct: f64,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub fn stats(samples: &[Option<f64>]) -> Stats {
    let mut ok: Vec<f64> = samples.iter().flatten().copied().collect();
    let lost = samples.len() - ok.len();
    let loss_pct = if samples.is_empty() {
        0.0
    } else {
        round1(lost as f64 * 100.0 / samples.len() as f64)
    };
    let answered: Vec<f64> = ok.clone();
    ok.sort_by(f64::total_cmp);
    let median = if ok.is_empty() {
        None
    } else if ok.len() % 2 == 1 {
        Some(ok[ok.len() / 2])
    } else {
        Some(round1((ok[ok.len() / 2 - 1] + ok[ok.len() / 2]) / 2.0))
    };
    let p95 = (!ok.is_empty()).then(|| {
        let rank = ((ok.len() as f64) * 0.95).ceil() as usize;
        ok[rank.clamp(1, ok.len()) - 1]
    });
    let jitter = (answered.len() >= 2).then(|| {
        let sum: f64 = answered.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
        round1(sum / (answered.len() - 1) as f64)
    });
    Stats {
        samples_ms: samples.to_vec(),
        median_ms: median,
        min_ms: ok.first().copied(),
        max_ms: ok.last().copied(),
        p95_ms: p95,
        jitter_ms: jitter,
        loss_pct,
    }
}

/// Judges the statistics against the profile's thresholds.
pub fn judge(s: &Stats, t: &Thresholds) -> (Status, &'static str, String) {
    match s.median_ms {
        None => (
            Status::Fail,
            "latency.loss",
            format!("all {} samples lost", s.samples_ms.len()),
        ),
        Some(_) if s.loss_pct >= t.loss_fail_pct => (
            Status::Fail,
            "latency.loss",
            format!(
                "{}% of samples lost (fails at {}%)",
                s.loss_pct, t.loss_fail_pct
            ),
        ),
        Some(_) if s.loss_pct > 0.0 => (
            Status::Warn,
            "latency.loss",
            format!("{}% of samples lost", s.loss_pct),
        ),
        Some(m) if m > t.latency_fail_ms => (
            Status::Fail,
            "latency.high",
            format!("median {m:.1} ms is above {} ms", t.latency_fail_ms),
        ),
        Some(m) if m > t.latency_warn_ms => (
            Status::Warn,
            "latency.high",
            format!("median {m:.1} ms is above {} ms", t.latency_warn_ms),
        ),
        Some(m) => (
            Status::Pass,
            "latency.ok",
            format!(
                "median {m:.1} ms, jitter {:.1} ms, no loss",
                s.jitter_ms.unwrap_or(0.0)
            ),
        ),
    }
}

/// Completes `samples` sequential connect samples to `address`, each bounded by `timeout`;
/// `first` is the tcp stage's connect time, counted as the first sample.
pub async fn run(
    target: &str,
    address: SocketAddr,
    first: Option<f64>,
    samples: u32,
    timeout: Duration,
    thresholds: &Thresholds,
) -> Check {
    let started = Instant::now();
    let mut taken = Vec::with_capacity(samples as usize);
    if let Some(f) = first {
        taken.push(Some(f));
    }
    // Samples this device could not even send (no descriptor left) are not losses on the path.
    let mut local = 0u32;
    while taken.len() + (local as usize) < samples as usize {
        let t0 = Instant::now();
        let sample = match tokio::time::timeout(timeout, crate::iface::connect(address)).await {
            Ok(Ok(stream)) => {
                let rtt = ms(t0.elapsed());
                drop(stream);
                Some(rtt)
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                // A refusal is an answer too: it took one round trip.
                Some(ms(t0.elapsed()))
            }
            Ok(Err(e)) if crate::probe::sockerr::is_local_limit(&e) => {
                local += 1;
                continue;
            }
            _ => None,
        };
        taken.push(sample);
    }
    if local > 0 && taken.iter().all(Option::is_none) {
        return Check::new(
            Probe::Latency,
            Some(target),
            Status::Skip,
            "latency.local_limit",
            format!(
                "not measured: this device could not open connections to {address} (too many open files) — a limit of this machine and of bmw-netcheck, not a network finding"
            ),
        )
        .took(started.elapsed())
        .with("samples_ms", Vec::<f64>::new())
        .with("median_ms", serde_json::Value::Null)
        .with("loss_pct", serde_json::Value::Null)
        .with("address", address.to_string())
        .with("local_failures", local);
    }
    let s = stats(&taken);
    let (status, code, summary) = judge(&s, thresholds);
    Check::new(
        Probe::Latency,
        Some(target),
        status,
        code,
        format!("{summary} ({samples} samples to {address})"),
    )
    .took(started.elapsed())
    .with("samples_ms", s.samples_ms.clone())
    .with("median_ms", s.median_ms)
    .with("min_ms", s.min_ms)
    .with("max_ms", s.max_ms)
    .with("p95_ms", s.p95_ms)
    .with("jitter_ms", s.jitter_ms)
    .with("loss_pct", s.loss_pct)
    .with("address", address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let s = stats(&[Some(10.0), Some(30.0), None, Some(20.0), Some(40.0)]);
        assert_eq!(s.median_ms, Some(25.0));
        assert_eq!(s.loss_pct, 20.0);
        assert_eq!(s.min_ms, Some(10.0));
        assert_eq!(s.max_ms, Some(40.0));
        assert_eq!(s.p95_ms, Some(40.0));
        assert_eq!(s.jitter_ms, Some(16.7)); // |30-10| + |20-30| + |40-20| = 50 / 3
        let s = stats(&[Some(5.0), Some(7.0), Some(6.0)]);
        assert_eq!(s.median_ms, Some(6.0));
        let s = stats(&[None, None]);
        assert_eq!((s.median_ms, s.loss_pct), (None, 100.0));
    }

    #[test]
    fn judgement() {
        let t = Thresholds::default();
        let j = |v: &[Option<f64>]| judge(&stats(v), &t);
        assert_eq!(j(&[Some(20.0); 5]).1, "latency.ok");
        assert_eq!(
            j(&[Some(300.0); 5]),
            (
                Status::Warn,
                "latency.high",
                "median 300.0 ms is above 250 ms".into()
            )
        );
        assert_eq!(j(&[Some(1500.0); 5]).0, Status::Fail);
        assert_eq!(
            j(&[Some(20.0), None, Some(20.0), Some(20.0), Some(20.0)]).0,
            Status::Warn
        );
        assert_eq!(j(&[Some(20.0), None]).0, Status::Fail);
        assert_eq!(j(&[None, None]).1, "latency.loss");
    }
}
