//! The data model every other part speaks: checks, their status and codes, suspects and the report.
//!
//! It sits at the ground floor on purpose. Probes produce [`Check`]s, the diagnosis turns them into
//! [`Suspect`]s, reporters render a [`Report`]; none of them needs to know the others, only this file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Version of the JSON report layout; bumped only on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Outcome of one check. The order is the order of severity, so the worst of a run is its `max`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Skip,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl Status {
    /// The mark of a status, scannable in a column: ✓ ! ✗ -.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }

    /// The run-level word for a worst status: PASS, WARN or FAIL (skips count as a pass).
    pub fn verdict(self) -> &'static str {
        match self {
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Pass | Status::Skip => "PASS",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// The one list of probes: `Probe::all` is this enum's variants (clap's `ValueEnum`). What each
// one is (its name, codes, measurements, needs, kind) is declared in its own file and found
// through `crate::probe::registry`.
/// Every probe the tool knows. Endpoint stages come first, in pipeline order; device probes after.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Probe {
    Dns,
    Tcp,
    Tls,
    Http,
    Latency,
    Storage,
    Proxy,
    Vpn,
    Clock,
    Captive,
    Ipv6,
    Egress,
    Resolvconf,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of one probe on one target. Failure is data: every outcome, good or bad, is a `Check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    pub probe: Probe,
    /// Endpoint name, or `None` for device probes.
    pub target: Option<String>,
    pub status: Status,
    pub code: String,
    pub summary: String,
    pub duration_ms: f64,
    /// Measurements; the keys each probe always carries are in `$defs/Measurements`.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// The uplink (network interface) the check went over, when the run was bound to one
    /// (`--interface`, `--via all`); absent for a run on the system's routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// The constructors that check a code against its probe's definition, or fill a probe's
/// measurement keys (`Check::new`, `Check::skipped`, `Check::timed_out`, `Check::unmeasured`),
/// are in [`crate::probe::registry`], beside the definitions.
impl Check {
    pub fn took(mut self, elapsed: Duration) -> Check {
        self.duration_ms = ms(elapsed);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Check {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    pub fn data_f64(&self, key: &str) -> Option<f64> {
        self.data.get(key).and_then(Value::as_f64)
    }

    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// A new report id: 12 hex digits, random.
///
/// Keyed by the operating system's randomness (the standard library's per-process hash keys,
/// read once from the kernel), with the process id and the wall clock mixed in: runs started
/// in the same instant (fifty cron jobs at once) must never share an id. `fastrand`'s own seed
/// comes from the clock and the thread id, which two processes started together can share.
pub fn report_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Milliseconds with a tenth of a millisecond of precision: finer is noise, coarser hides loopback.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Confidence of a suspect, from the weight of its evidence.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// A likely cause, with what points to it and what fixes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suspect {
    pub id: String,
    pub title: String,
    pub symptom: String,
    pub difficulty: Option<u8>,
    pub confidence: Confidence,
    pub evidence: Vec<String>,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Tool {
        Tool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The device the run happened on: context for a support ticket. Redacted before rendering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Device {
    pub os: String,
    pub hostname: String,
}

/// Everything a run found. Serialized as is for `--format json` and the history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    #[schemars(extend("const" = 1))]
    pub schema_version: u32,
    pub report_id: String,
    pub tool: Tool,
    pub started_at: String,
    pub duration_ms: f64,
    pub region: String,
    pub status: Status,
    pub checks: Vec<Check>,
    pub suspects: Vec<Suspect>,
    /// Endpoints checked, in profile order: name and `host:port`, for grouping in reports.
    #[serde(default)]
    pub endpoints: Vec<EndpointInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// What was redacted from this report (kinds, never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    /// The uplinks this run went over, each with its kind and verdict (`--interface`,
    /// `--via all`); empty for a run on the system's routing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uplinks: Vec<Uplink>,
}

/// One uplink of a per-interface run: the interface, what kind of link the OS says it is, and
/// the worst status of the checks that went over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Uplink {
    /// The interface name, as the OS spells it (`wlan0`, `wwan0`, `eth0`).
    pub name: String,
    /// `wifi`, `cellular`, `ethernet`, `tunnel` or `other`.
    pub kind: String,
    pub status: Status,
}

impl Uplink {
    /// The kind in the words people use: "Wi-Fi", "cellular", "Ethernet".
    pub fn kind_label(&self) -> &'static str {
        match self.kind.as_str() {
            "wifi" => "Wi-Fi",
            "cellular" => "cellular",
            "ethernet" => "Ethernet",
            "tunnel" => "tunnel",
            _ => "network",
        }
    }

    /// `wlan0 (Wi-Fi)`.
    pub fn who(&self) -> String {
        format!("{} ({})", self.name, self.kind_label())
    }
}

/// What an endpoint is to the diagnosis. In the report (`endpoints[].role`) as in the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A BMW host the app needs.
    Service,
    /// A neutral host: tells "BMW is down" from "the network is down".
    Baseline,
    /// A host the app also contacts (analytics); its failure is informational.
    Info,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Baseline => "baseline",
            Role::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndpointInfo {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub role: Role,
}

impl Report {
    /// A run's status is its worst check; skips do not count.
    pub fn overall(checks: &[Check]) -> Status {
        checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Skip)
            .max()
            .unwrap_or(Status::Pass)
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ids_are_twelve_hex_digits_and_do_not_repeat() {
        let ids: std::collections::BTreeSet<String> = (0..10_000).map(|_| report_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|i| i.len() == 12 && i.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn overall_is_the_worst_status_ignoring_skips() {
        let c = |s| Check::new(Probe::Dns, None, s, "dns.ok", "");
        assert_eq!(Report::overall(&[]), Status::Pass);
        assert_eq!(
            Report::overall(&[c(Status::Skip), c(Status::Pass)]),
            Status::Pass
        );
        assert_eq!(
            Report::overall(&[c(Status::Warn), c(Status::Pass), c(Status::Skip)]),
            Status::Warn
        );
        assert_eq!(
            Report::overall(&[c(Status::Warn), c(Status::Fail)]),
            Status::Fail
        );
    }

    #[test]
    fn ms_keeps_a_tenth_of_a_millisecond() {
        assert_eq!(ms(Duration::from_micros(12_345)), 12.3);
        assert_eq!(ms(Duration::from_micros(12_355)), 12.4);
    }
}
