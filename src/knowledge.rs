//! The knowledge base: suspects, their fix steps, and which findings point to them.
//!
//! It lives in `checks/suspects.toml` (embedded at build time) so that the ranking is data, not code
//! branches: changing what points where is an edit to that file, checked by the tests below.
//!
//! Kept exemplary on purpose: a test proves that every failure code the probes declare (the
//! registry's codes) points to a suspect, and that the file names no code that no probe emits.

use crate::probe::registry;
use serde::Deserialize;

/// The knowledge base as written (TOML), for the tests that hold it to its rules.
#[cfg(test)]
pub const SOURCE: &str = include_str!("../checks/suspects.toml");

/// The same knowledge base as JSON, converted when the tool was built (`build.rs`): a run reads
/// this, because parsing the TOML cost about a millisecond of every run's CPU.
const COMPILED: &str = include_str!(concat!(env!("OUT_DIR"), "/suspects.json"));

/// Suspect ids the contract promises; the knowledge base must define each of them.
pub const CONTRACT_IDS: [&str; 14] = [
    "account_credentials",
    "outdated_software",
    "weak_signal",
    "corrupted_app_data",
    "vpn_firewall",
    "mobile_data_restrictions",
    "weak_wifi",
    "low_storage",
    "app_permissions",
    "server_side",
    "dns_filter",
    "device_clock",
    "captive_portal",
    "broken_ipv6",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Something the probes can see.
    #[default]
    Network,
    /// Something a network probe cannot test (credentials, app data, permissions).
    Untestable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RoleFilter {
    #[default]
    Any,
    Service,
    Baseline,
    Info,
}

/// A fact about the run as a whole that changes what a finding means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    BaselineOk,
    /// No neutral host was reached (it failed, or the profile has none).
    BaselineNotOk,
    BaselineFailed,
    ClockSkewed,
    ClockOk,
    NetworkFailed,
    /// No loss and no high latency measured on the hosts that answered: a silence is not the
    /// link's.
    LinkSteady,
    /// Loss or high latency measured on a host that answered: the link itself is weak.
    LinkWeak,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub code: String,
    pub weight: u32,
    #[serde(default)]
    pub role: RoleFilter,
    pub when: Option<When>,
    pub reason: Option<String>,
    /// Not checks whose data.reason equals this (e.g. a rate limit on the probe's own requests).
    pub unless_reason: Option<String>,
}

/// A fact a fix step can depend on, beyond the codes of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// A proxy is configured (environment, command line, desktop settings, PAC).
    ProxyConfigured,
}

/// A fix step: plain text (always shown), or text with the findings it applies to. A run's
/// report shows a conditional step only when one of its codes or facts occurred, so a step about
/// a proxy's 407 is not given to a user without a proxy; `explain` shows every step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Step {
    Always(String),
    When {
        text: String,
        #[serde(default)]
        codes: Vec<String>,
        #[serde(default)]
        facts: Vec<Fact>,
    },
}

impl Step {
    pub fn text(&self) -> &str {
        match self {
            Step::Always(t) | Step::When { text: t, .. } => t,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspectDef {
    pub id: String,
    pub title: String,
    pub symptom: String,
    pub difficulty: Option<u8>,
    #[serde(default)]
    pub kind: Kind,
    pub steps: Vec<Step>,
    /// Facts of the run that contradict the symptom ("while other apps work" when the neutral
    /// baseline failed too): the suspect is then kept at low confidence, after the others.
    #[serde(default)]
    pub contradicted_when: Vec<When>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// For an untestable cause that belongs to one service (the CarData stream, the app's
    /// attestation): the hosts of which the run must have checked at least one for the cause to
    /// be listed. Empty: listed for every run.
    #[serde(default)]
    pub when_checked: Vec<String>,
    /// Measured findings without which this suspect never ranks first (weak_signal: timeouts
    /// alone are every dead path's symptom; loss or latency on hosts that answer are its own).
    /// Without one it ranks after every suspect that has what it needs.
    #[serde(default)]
    pub first_needs: Vec<String>,
}

impl SuspectDef {
    /// Every step's text, as `explain` shows them.
    pub fn step_texts(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.text().to_owned()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knowledge {
    pub suspect: Vec<SuspectDef>,
}

impl Knowledge {
    /// The embedded knowledge base. Its validity is guaranteed by the tests, so a failure here is
    /// a build defect and is reported as an internal error, never a panic.
    pub fn builtin() -> Result<Knowledge, String> {
        let kb: Knowledge =
            serde_json::from_str(COMPILED).map_err(|e| format!("checks/suspects.toml: {e}"))?;
        kb.validate()?;
        Ok(kb)
    }

    pub fn get(&self, id: &str) -> Option<&SuspectDef> {
        self.suspect.iter().find(|s| s.id == id)
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.suspect {
            if !seen.insert(s.id.as_str()) {
                return Err(format!("suspect {} is defined twice", s.id));
            }
            if s.title.is_empty() || s.symptom.is_empty() || s.steps.is_empty() {
                return Err(format!(
                    "suspect {} needs a title, a symptom and steps",
                    s.id
                ));
            }
            if let Some(d) = s.difficulty
                && !(1..=5).contains(&d)
            {
                return Err(format!("suspect {}: difficulty {d} is not 1-5", s.id));
            }
            for step in &s.steps {
                if let Step::When { codes, facts, .. } = step {
                    if codes.is_empty() && facts.is_empty() {
                        return Err(format!("suspect {}: a step names no code or fact", s.id));
                    }
                    if let Some(c) = codes.iter().find(|c| !registry::is_known(c)) {
                        return Err(format!("suspect {}: a step names unknown code {c}", s.id));
                    }
                }
            }
            if !s.when_checked.is_empty() && s.kind != Kind::Untestable {
                return Err(format!(
                    "suspect {}: when_checked is for untestable causes only",
                    s.id
                ));
            }
            if let Some(c) = s.first_needs.iter().find(|c| !registry::is_known(c)) {
                return Err(format!(
                    "suspect {}: first_needs names unknown code {c}",
                    s.id
                ));
            }
            for e in &s.evidence {
                if !registry::is_known(&e.code) {
                    return Err(format!("suspect {}: unknown code {}", s.id, e.code));
                }
                if e.weight == 0 {
                    return Err(format!("suspect {}: weight 0 for {}", s.id, e.code));
                }
            }
        }
        for id in CONTRACT_IDS {
            if !seen.contains(id) {
                return Err(format!(
                    "suspect {id} (promised by the contract) is missing"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Probe;
    use crate::probe::definition::Kind;

    #[test]
    fn builtin_knowledge_is_valid_and_complete() {
        let kb = Knowledge::builtin().expect("checks/suspects.toml is valid");
        // What a run reads (the JSON made at build time) is the file as written.
        let written: Knowledge = toml::from_str(SOURCE).expect("checks/suspects.toml parses");
        assert_eq!(kb, written);
        for id in CONTRACT_IDS {
            assert!(kb.get(id).is_some(), "{id}");
        }
        // The troubleshooting table's difficulty ratings are carried over.
        let d = |id| kb.get(id).and_then(|s| s.difficulty);
        assert_eq!(d("account_credentials"), Some(3));
        assert_eq!(d("outdated_software"), Some(2));
        assert_eq!(d("weak_signal"), Some(4));
        assert_eq!(d("corrupted_app_data"), Some(3));
    }

    #[test]
    fn validation_catches_unknown_codes_and_duplicates() {
        let mut kb = Knowledge::builtin().expect("valid");
        kb.suspect[0].evidence.push(Evidence {
            code: "dns.sinkhole".into(),
            weight: 1,
            role: RoleFilter::Any,
            when: None,
            reason: None,
            unless_reason: None,
        });
        assert!(
            kb.validate()
                .unwrap_err()
                .contains("unknown code dns.sinkhole")
        );
        let mut kb = Knowledge::builtin().expect("valid");
        let dup = kb.suspect[0].clone();
        kb.suspect.push(dup);
        assert!(kb.validate().unwrap_err().contains("twice"));
        let mut kb = Knowledge::builtin().expect("valid");
        kb.suspect.retain(|s| s.id != "broken_ipv6");
        assert!(kb.validate().unwrap_err().contains("broken_ipv6"));
    }

    /// Every finding that can make a run warn or fail points to at least one suspect without
    /// conditions, so a failing report never ends with "no network cause".
    #[test]
    fn every_failure_code_points_somewhere() {
        let kb = Knowledge::builtin().expect("valid");
        let informational = |c: &str| {
            c.ends_with(".ok")
                || c.ends_with(".skipped")
                || matches!(
                    c,
                    "proxy.none" | "proxy.env" | "vpn.none" | "clock.unknown" | "captive.off"
                        // Where the proxy decision came from: facts, not faults.
                        | "proxy.cli" | "proxy.desktop" | "proxy.pac"
                        | "captive.unreachable" | "ipv6.unavailable" | "dns.skipped"
                        // A device probe that could not measure: nothing about the network.
                        | "storage.error"
                        // The opt-in public-address check, when no STUN server answered.
                        | "egress.no_answer"
                        // This device's own resource limits: never evidence about the network.
                        | "tcp.local_limit" | "latency.local_limit"
                )
                // A device probe or reader that ran out of time measured nothing.
                || c.strip_suffix(".timeout")
                    .and_then(Probe::from_name)
                    .is_some_and(|p| p.kind() != Kind::Endpoint)
        };
        for code in registry::all_codes().filter(|c| !informational(c)) {
            let covered = kb.suspect.iter().any(|s| {
                s.evidence
                    .iter()
                    .any(|e| e.code == *code && e.when.is_none() && e.reason.is_none())
            });
            assert!(covered, "{code} points to no suspect unconditionally");
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = "[[suspect]]\nid='x'\ntitle='t'\nsymptom='s'\nsteps=['a']\ncolour=1\n";
        assert!(toml::from_str::<Knowledge>(text).is_err());
    }
}
