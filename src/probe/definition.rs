//! What a probe declares about itself, in words every consumer reads: the registry, the runner,
//! the engine, the reporters, the JSON Schema and the tests.
//!
//! This file sits below every probe and imports none of them, so that each probe file can name
//! its own [`Definition`] without a circle through the registry. A consumer that needs something
//! about a probe (its measurement keys and whether each is a list, the figure Prometheus and
//! Nagios show, where an endpoint stage sits in the pipeline, how a device probe or a reader is
//! run) finds it here instead of matching probe names of its own, so a new probe cannot be
//! silently left out of a report.

use crate::iface::Resolver;
use crate::model::{Check, Probe};
use crate::probe::attempt::Attempt;
use crate::probe::proxyenv::ProxyEnv;
use crate::profile::Profile;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// How a probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A stage of every endpoint's pipeline (dns → tcp → tls → http, latency beside tls).
    Endpoint,
    /// A look at the device itself, run once alongside the pipelines.
    Device,
    /// Reads what the other probes measured, after them (clock, ipv6); no probing of its own.
    Reader,
}

/// Where an endpoint stage sits in the pipeline. The runner walks the pipeline by these places,
/// and its one exhaustive `match` on [`Probe`] runs each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Turns the host name into addresses.
    Resolve,
    /// Opens a connection to one of the addresses.
    Connect,
    /// Works over the open connection (the TLS handshake).
    Secure,
    /// Works over the secured session (the HTTP request).
    Request,
    /// Runs beside the secure stages, needing only the connected address (latency samples).
    Beside,
}

/// What a device probe is given: the run's profile and settings, read before any probe.
pub struct DeviceInput {
    pub profile: Profile,
    pub resolver: Result<Resolver, String>,
    pub timeout: Duration,
    pub proxy: ProxyEnv,
    pub storage_paths: Vec<PathBuf>,
}

/// A device probe under way: a future yielding its checks, run alongside the pipelines.
pub type DeviceFuture = Pin<Box<dyn Future<Output = Vec<Check>> + Send>>;

/// What a reader is given: every check so far and each endpoint's connection attempts.
pub struct ReaderInput<'a> {
    pub checks: &'a [Check],
    pub attempts: &'a [(String, Vec<Attempt>)],
    pub profile: &'a Profile,
}

/// How a probe is run.
#[derive(Clone, Copy)]
pub enum Run {
    /// A stage of every endpoint's pipeline, at its place.
    Stage(Stage),
    /// A look at the device, started once with the run's input.
    Device(fn(std::sync::Arc<DeviceInput>) -> DeviceFuture),
    /// A reading of the others' results, after them.
    Reader(fn(&ReaderInput<'_>) -> Check),
}

impl Run {
    pub fn kind(self) -> Kind {
        match self {
            Run::Stage(_) => Kind::Endpoint,
            Run::Device(_) => Kind::Device,
            Run::Reader(_) => Kind::Reader,
        }
    }
}

/// The shape of a measurement in a check's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A number or a string; `null` when not measured.
    Scalar,
    /// A list; empty when not measured.
    List,
}

/// A measurement key a probe's checks always carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub shape: Shape,
}

impl Key {
    pub const fn scalar(name: &'static str) -> Key {
        Key {
            name,
            shape: Shape::Scalar,
        }
    }

    pub const fn list(name: &'static str) -> Key {
        Key {
            name,
            shape: Shape::List,
        }
    }
}

/// How a measurement becomes a Prometheus value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Milliseconds, written as seconds.
    MillisToSeconds,
    /// A percentage, written as a ratio 0 to 1.
    PercentToRatio,
    /// An RFC 3339 time, written as seconds since the Unix epoch.
    Timestamp,
    /// As measured.
    Plain,
}

/// The label a gauge's samples are told apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The endpoint (`target`), with the uplink's `interface` when there is one.
    Target,
    /// The measured `path` (device probes that look at several paths).
    Path,
}

/// Where a measurement goes in the Prometheus exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prometheus {
    /// A phase of `bmw_netcheck_phase_duration_seconds` (milliseconds, written as seconds).
    Phase(&'static str),
    /// A gauge family of its own.
    Gauge {
        family: &'static str,
        help: &'static str,
        scale: Scale,
        by: By,
    },
    /// Not in the exposition.
    None,
}

/// How a measurement appears in Nagios performance data (`<target>_<label>=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perf {
    /// Milliseconds: `<target>_<label>=12.3ms;;;0`.
    Millis(&'static str),
    /// A percentage: `<target>_<label>=5.0%;;;0;100`.
    Percent(&'static str),
    /// Not in the performance data.
    None,
}

/// A measurement the metric formats show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The `data` key it is read from.
    pub key: &'static str,
    pub prometheus: Prometheus,
    pub nagios: Perf,
}

/// What a probe declares about itself.
pub struct Definition {
    pub probe: Probe,
    /// As in `--only`, `list` and the JSON report.
    pub name: &'static str,
    /// One line on what the probe looks at, for `list`.
    pub description: &'static str,
    /// Every code it can emit (`<name>.skipped` and `<name>.timeout` included).
    pub codes: &'static [&'static str],
    /// The measurements its checks always carry in `data` (null or empty when not measured).
    pub keys: &'static [Key],
    /// The measurements Prometheus and Nagios show, the primary one first.
    pub metrics: &'static [Metric],
    /// The stages it needs before it.
    pub needs: &'static [Probe],
    pub run: Run,
}

impl Definition {
    pub fn kind(&self) -> Kind {
        self.run.kind()
    }

    /// Its place in the pipeline, for an endpoint stage.
    pub fn stage(&self) -> Option<Stage> {
        match self.run {
            Run::Stage(s) => Some(s),
            Run::Device(_) | Run::Reader(_) => None,
        }
    }

    /// The shape of one of its keys, if it declares it.
    pub fn shape(&self, key: &str) -> Option<Shape> {
        self.keys.iter().find(|k| k.name == key).map(|k| k.shape)
    }
}
