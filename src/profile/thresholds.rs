//! The thresholds that turn measurements into pass, warn or fail: their defaults, their words
//! for `list`, and the check of a profile's `[thresholds]` table. Their names are part of the
//! profile format.

use serde::Deserialize;

/// Thresholds that turn measurements into pass, warn or fail. Names are part of the profile format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Median connect time above this is `latency.high` (warn).
    pub latency_warn_ms: f64,
    /// Median connect time above this is `latency.high` (fail).
    pub latency_fail_ms: f64,
    /// Lost samples at or above this share (percent) fail; any loss below it warns.
    pub loss_fail_pct: f64,
    /// Free space below this warns (bytes).
    pub storage_warn_bytes: u64,
    /// Free space below this fails (bytes).
    pub storage_fail_bytes: u64,
    /// Device clock off by more than this warns (seconds).
    pub clock_skew_warn_s: f64,
    /// Device clock off by more than this fails (seconds): certificates and sign-in break.
    pub clock_skew_fail_s: f64,
    /// A certificate expiring within this many days warns.
    pub cert_expiry_warn_days: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            latency_warn_ms: 250.0,
            latency_fail_ms: 1000.0,
            loss_fail_pct: 50.0,
            storage_warn_bytes: 1024 * 1024 * 1024,
            storage_fail_bytes: 200 * 1024 * 1024,
            clock_skew_warn_s: 30.0,
            clock_skew_fail_s: 300.0,
            cert_expiry_warn_days: 14,
        }
    }
}

impl Thresholds {
    /// Name, value and meaning of each threshold, for `list` and the README.
    pub fn describe(&self) -> Vec<(&'static str, String, &'static str)> {
        vec![
            (
                "latency_warn_ms",
                format!("{}", self.latency_warn_ms),
                "median connect time that warns",
            ),
            (
                "latency_fail_ms",
                format!("{}", self.latency_fail_ms),
                "median connect time that fails",
            ),
            (
                "loss_fail_pct",
                format!("{}", self.loss_fail_pct),
                "lost samples (%) that fail; any loss below warns",
            ),
            (
                "storage_warn_bytes",
                format!("{}", self.storage_warn_bytes),
                "free space that warns",
            ),
            (
                "storage_fail_bytes",
                format!("{}", self.storage_fail_bytes),
                "free space that fails",
            ),
            (
                "clock_skew_warn_s",
                format!("{}", self.clock_skew_warn_s),
                "clock offset (s) that warns",
            ),
            (
                "clock_skew_fail_s",
                format!("{}", self.clock_skew_fail_s),
                "clock offset (s) that fails",
            ),
            (
                "cert_expiry_warn_days",
                format!("{}", self.cert_expiry_warn_days),
                "days before certificate expiry that warn",
            ),
        ]
    }
}

/// The `[thresholds]` table, checked.
pub(super) fn check(t: &Thresholds) -> Result<(), String> {
    let checks: [(bool, &str); 6] = [
        (
            t.latency_warn_ms > 0.0 && t.latency_warn_ms <= t.latency_fail_ms,
            "latency_warn_ms must be > 0 and <= latency_fail_ms",
        ),
        (
            t.loss_fail_pct > 0.0 && t.loss_fail_pct <= 100.0,
            "loss_fail_pct must be in (0, 100]",
        ),
        (
            t.storage_fail_bytes <= t.storage_warn_bytes,
            "storage_fail_bytes must be <= storage_warn_bytes",
        ),
        (
            t.clock_skew_warn_s > 0.0 && t.clock_skew_warn_s <= t.clock_skew_fail_s,
            "clock_skew_warn_s must be > 0 and <= clock_skew_fail_s",
        ),
        (
            t.cert_expiry_warn_days >= 0,
            "cert_expiry_warn_days must be >= 0",
        ),
        (
            [
                t.latency_warn_ms,
                t.latency_fail_ms,
                t.clock_skew_warn_s,
                t.clock_skew_fail_s,
            ]
            .iter()
            .all(|v| v.is_finite()),
            "thresholds must be finite numbers",
        ),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!("[thresholds] {what}"));
    }
    Ok(())
}
