//! The probe registry: every probe the tool has, and what each one declares about itself.
//!
//! Each probe file declares its own [`Definition`] (`pub const DEFINITION`, the type in
//! [`crate::probe::definition`]): its name, the line `list` shows, the codes it emits, the
//! measurement keys its checks always carry (and which are lists), the figures Prometheus and
//! Nagios show, the stages it needs before it, and how it runs (an endpoint stage's place in the
//! pipeline, a device probe's or a reader's function). [`definition`] is the one exhaustive `match` that
//! names every probe, so a new variant of [`Probe`] does not compile until it is registered; the
//! variant list itself comes from the enum (`Probe::all`, derived with clap's `ValueEnum`), so
//! there is no second list to forget. The run's code list ([`all_codes`]) is the union of the
//! definitions, and the knowledge base is checked against it in tests.
//!
//! Adding a probe is its file, its line in [`definition`] and its evidence in
//! `checks/suspects.toml` (an endpoint stage also gets its arm in the runner's exhaustive
//! `match`); README's "Adding a probe" walks through it. This file imports every probe, and no
//! probe imports it. `tests/all/registry.rs` proves that every
//! registered probe appears in `list`, has its codes in the knowledge base and its measurement
//! keys in the README.
//!
//! The constructors of [`Check`] that need a probe's definition (the code check of
//! [`Check::new`], the null measurements of [`Check::skipped`] and [`Check::timed_out`]) are
//! defined here, beside the definitions, so that the model stays below the probes.

use crate::model::{Check, Probe, Status};
pub use crate::probe::definition::{Definition, Key, Kind, Shape, Stage};
use crate::probe::{
    captive, clock, dns, egress, http, ipv6, latency, proxy, resolvconf, storage, tcp, tls, vpn,
};
use serde_json::{Map, Value};

/// The definition of a probe: the one place that names every probe.
pub fn definition(probe: Probe) -> &'static Definition {
    match probe {
        Probe::Dns => &dns::DEFINITION,
        Probe::Tcp => &tcp::DEFINITION,
        Probe::Tls => &tls::DEFINITION,
        Probe::Http => &http::DEFINITION,
        Probe::Latency => &latency::DEFINITION,
        Probe::Storage => &storage::DEFINITION,
        Probe::Proxy => &proxy::DEFINITION,
        Probe::Vpn => &vpn::DEFINITION,
        Probe::Clock => &clock::DEFINITION,
        Probe::Captive => &captive::DEFINITION,
        Probe::Ipv6 => &ipv6::DEFINITION,
        Probe::Resolvconf => &resolvconf::DEFINITION,
        Probe::Egress => &egress::DEFINITION,
    }
}

/// The endpoint stages, in pipeline order.
pub fn endpoint_stages() -> impl Iterator<Item = Probe> {
    Probe::all()
        .iter()
        .copied()
        .filter(|p| p.kind() == Kind::Endpoint)
}

/// Every code the tool can emit, probe by probe in pipeline order.
pub fn all_codes() -> impl Iterator<Item = &'static str> {
    Probe::all()
        .iter()
        .flat_map(|p| definition(*p).codes.iter().copied())
}

/// Is `code` one the tool can emit? The knowledge base is checked against this in tests, so a
/// typo in `checks/suspects.toml` fails the tests instead of silently never matching.
pub fn is_known(code: &str) -> bool {
    all_codes().any(|c| c == code)
}

impl Probe {
    /// Every probe, endpoint stages first in pipeline order: the enum's own variant list.
    pub fn all() -> &'static [Probe] {
        <Probe as clap::ValueEnum>::value_variants()
    }

    pub fn definition(self) -> &'static Definition {
        definition(self)
    }

    pub fn name(self) -> &'static str {
        definition(self).name
    }

    pub fn from_name(name: &str) -> Option<Probe> {
        Probe::all().iter().copied().find(|p| p.name() == name)
    }

    /// One line on what the probe looks at, for `list` and `--help`.
    pub fn describe(self) -> &'static str {
        definition(self).description
    }

    /// The stages this probe needs before it.
    pub fn needs(self) -> &'static [Probe] {
        definition(self).needs
    }

    pub fn kind(self) -> Kind {
        definition(self).kind()
    }

    /// Its place in each endpoint's pipeline, for an endpoint stage.
    pub fn stage(self) -> Option<Stage> {
        definition(self).stage()
    }
}

/// The measurements the contract promises in `data`, per probe, each with its shape.
pub fn measurement_keys(probe: Probe) -> &'static [Key] {
    definition(probe).keys
}

impl Check {
    pub fn new(
        probe: Probe,
        target: Option<&str>,
        status: Status,
        code: &str,
        summary: impl Into<String>,
    ) -> Check {
        debug_assert!(
            is_known(code),
            "code {code} is not listed in its probe's definition"
        );
        Check {
            probe,
            target: target.map(str::to_owned),
            status,
            code: code.to_owned(),
            summary: summary.into(),
            duration_ms: 0.0,
            data: Map::new(),
            interface: None,
        }
    }

    /// The same check, now saying what a second look found: another status, code and summary,
    /// its measurements kept. The code is checked against the definitions as in [`Check::new`].
    pub fn restate(&mut self, status: Status, code: &str, summary: impl Into<String>) {
        debug_assert!(
            is_known(code),
            "code {code} is not listed in its probe's definition"
        );
        self.status = status;
        self.code = code.to_owned();
        self.summary = summary.into();
    }

    /// A stage that could not run because an earlier one failed or was left out. Its
    /// measurements are present, as null, so scripts can read the same keys from every check.
    pub fn skipped(probe: Probe, target: Option<&str>, why: impl Into<String>) -> Check {
        let code = format!("{}.skipped", probe.name());
        Check::new(probe, target, Status::Skip, &code, why).unmeasured()
    }

    /// The step or the run ran out of time; measurements not taken are null.
    pub fn timed_out(probe: Probe, target: Option<&str>, summary: impl Into<String>) -> Check {
        let code = format!("{}.timeout", probe.name());
        Check::new(probe, target, Status::Fail, &code, summary).unmeasured()
    }

    /// Fills the contract's measurement keys for this probe that are not set yet: lists empty,
    /// numbers and strings null.
    pub fn unmeasured(mut self) -> Check {
        for key in measurement_keys(self.probe) {
            let empty = match key.shape {
                Shape::List => Value::Array(Vec::new()),
                Shape::Scalar => Value::Null,
            };
            self.data.entry(key.name.to_owned()).or_insert(empty);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_has_skip_and_timeout_codes() {
        let codes: Vec<&str> = all_codes().collect();
        for p in Probe::all().iter().copied() {
            assert!(codes.contains(&format!("{}.skipped", p.name()).as_str()));
            assert!(codes.contains(&format!("{}.timeout", p.name()).as_str()));
            assert_eq!(Probe::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn every_definition_is_its_probes_and_owns_its_codes() {
        for p in Probe::all().iter().copied() {
            let d = definition(p);
            assert_eq!(d.probe, p, "{} is registered under another probe", d.name);
            // The name is the one serde and clap derive from the variant.
            let serde_name = serde_json::to_value(p).expect("a probe serializes");
            assert_eq!(serde_name, Value::String(d.name.to_owned()));
            let clap_name = clap::ValueEnum::to_possible_value(&p).expect("a value name");
            assert_eq!(clap_name.get_name(), d.name);
            for code in d.codes {
                assert_eq!(code.split('.').next(), Some(d.name), "{code} in {}", d.name);
            }
            for need in d.needs {
                assert_eq!(need.kind(), Kind::Endpoint, "{} needs {need}", d.name);
                assert!(need < &p, "{} needs {need}, which comes after it", d.name);
            }
            assert!(!d.description.is_empty());
            assert_eq!(
                d.stage().is_some(),
                d.kind() == Kind::Endpoint,
                "{}",
                d.name
            );
            for m in d.metrics {
                assert!(
                    d.shape(m.key) == Some(Shape::Scalar),
                    "{}: metric {}",
                    d.name,
                    m.key
                );
            }
        }
        let codes: Vec<&str> = all_codes().collect();
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(codes.len(), unique.len(), "a code is listed twice");
    }

    #[test]
    fn endpoint_stages_come_first_in_pipeline_order() {
        let kinds: Vec<Kind> = Probe::all().iter().map(|p| p.kind()).collect();
        let first_other = kinds.iter().position(|k| *k != Kind::Endpoint);
        let stages = first_other.unwrap_or(kinds.len());
        assert!(kinds[stages..].iter().all(|k| *k != Kind::Endpoint));
        // Their places in the pipeline follow the same order.
        let places: Vec<Stage> = endpoint_stages().filter_map(Probe::stage).collect();
        assert!(places.is_sorted(), "{places:?}");
    }
}
