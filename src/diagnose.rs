//! Diagnosis: a pure function from checks and the knowledge base to ranked suspects.
//!
//! Each suspect's score is the sum of the weights of the findings that point to it (one weight
//! per code, the strongest matching rule, plus one per extra endpoint showing it). Rules may
//! depend on the run as a whole — the differential: BMW hosts failing while the neutral baseline
//! works points at BMW; everything failing points at the device's network. Skipped checks are
//! never evidence, so a failure is not blamed again on the stages it made impossible. When the
//! network shows nothing, the causes a network probe cannot test are listed, at low confidence.

use crate::knowledge::{Fact, Kind, Knowledge, RoleFilter, Step, SuspectDef, When};
use crate::model::Role;
use crate::model::{Check, Confidence, EndpointInfo, Probe, Status, Suspect};
use crate::profile::Endpoint;
use std::collections::{BTreeMap, HashMap};

/// The verdict's first rule: hosts the app merely also contacts (analytics, `role = "info"`)
/// never make the run fail. Their failures become warnings marked `informational`, before the
/// cross-check and the diagnosis read them.
pub fn downgrade_informational(checks: &mut [Check], endpoints: &[Endpoint]) {
    let info: Vec<&str> = endpoints
        .iter()
        .filter(|e| e.role == Role::Info)
        .map(|e| e.name.as_str())
        .collect();
    for c in checks.iter_mut().filter(|c| c.status == Status::Fail) {
        if c.target.as_deref().is_some_and(|t| info.contains(&t)) {
            c.status = Status::Warn;
            c.data
                .insert("informational".into(), serde_json::Value::Bool(true));
        }
    }
}

/// Facts about the whole run that change what a single finding means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    pub baseline_ok: bool,
    pub baseline_failed: bool,
    pub clock_skewed: bool,
    pub network_failed: bool,
    /// Loss or high latency measured on a host that answered (a latency check, or a control
    /// connect slower than the latency threshold: `slow_path`).
    pub link_weak: bool,
}

impl Context {
    pub fn of(checks: &[Check], endpoints: &[EndpointInfo]) -> Context {
        let baselines: Vec<&str> = endpoints
            .iter()
            .filter(|e| e.role == Role::Baseline)
            .map(|e| e.name.as_str())
            .collect();
        let reached = |name: &str| {
            checks.iter().any(|c| {
                c.target.as_deref() == Some(name)
                    && matches!(c.probe, Probe::Tls | Probe::Http)
                    && matches!(c.status, Status::Pass | Status::Warn)
            })
        };
        let failed = |name: &str| {
            checks
                .iter()
                .any(|c| c.target.as_deref() == Some(name) && c.status == Status::Fail)
        };
        let baseline_ok = baselines.iter().any(|b| reached(b));
        Context {
            baseline_ok,
            baseline_failed: !baseline_ok && baselines.iter().any(|b| failed(b)),
            clock_skewed: checks.iter().any(|c| c.code == "clock.skew"),
            network_failed: checks
                .iter()
                .any(|c| c.target.is_some() && c.status == Status::Fail),
            link_weak: link_is_weak(checks),
        }
    }

    fn holds(&self, when: Option<When>) -> bool {
        match when {
            None => true,
            Some(When::BaselineOk) => self.baseline_ok,
            Some(When::BaselineNotOk) => !self.baseline_ok,
            Some(When::BaselineFailed) => self.baseline_failed,
            Some(When::ClockSkewed) => self.clock_skewed,
            Some(When::ClockOk) => !self.clock_skewed,
            Some(When::NetworkFailed) => self.network_failed,
            Some(When::LinkSteady) => !self.link_weak,
            Some(When::LinkWeak) => self.link_weak,
        }
    }
}

/// Loss or latency above its threshold measured on hosts that answer, or a control connection
/// slower than that threshold: the link itself loses and delays packets, so silence alone (a
/// lost SYN, two lost datagrams) is no filter's mark.
pub fn link_is_weak(checks: &[Check]) -> bool {
    checks.iter().any(|c| {
        matches!(c.code.as_str(), "latency.loss" | "latency.high")
            || c.data.get("slow_path") == Some(&serde_json::Value::Bool(true))
    })
}

fn role_matches(filter: RoleFilter, role: Option<Role>) -> bool {
    match filter {
        RoleFilter::Any => true,
        RoleFilter::Service => role == Some(Role::Service),
        RoleFilter::Baseline => role == Some(Role::Baseline),
        RoleFilter::Info => role == Some(Role::Info),
    }
}

fn confidence(score: u32) -> Confidence {
    match score {
        10.. => Confidence::High,
        5..=9 => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// The findings that point to a suspect: code → (weight of the strongest matching rule, the
/// checks it matched).
fn matching<'a>(
    def: &'a SuspectDef,
    checks: &'a [Check],
    ctx: Context,
    roles: &HashMap<&str, Role>,
) -> BTreeMap<&'a str, (u32, Vec<&'a Check>)> {
    let mut by_code: BTreeMap<&str, (u32, Vec<&Check>)> = BTreeMap::new();
    for rule in &def.evidence {
        if !ctx.holds(rule.when) {
            continue;
        }
        let matched: Vec<&Check> = checks
            .iter()
            .filter(|c| c.status != Status::Skip && c.code == rule.code)
            // A failure another finding explains (a block page, a working proxy) is not
            // evidence of its own.
            .filter(|c| !c.data.contains_key("explained_by"))
            .filter(|c| {
                let role = c.target.as_deref().and_then(|t| roles.get(t).copied());
                c.target.is_none() || role_matches(rule.role, role)
            })
            .filter(|c| {
                rule.reason
                    .as_deref()
                    .is_none_or(|r| c.data_str("reason") == Some(r))
            })
            .filter(|c| {
                rule.unless_reason
                    .as_deref()
                    .is_none_or(|r| c.data_str("reason") != Some(r))
            })
            .collect();
        if matched.is_empty() {
            continue;
        }
        let entry = by_code.entry(rule.code.as_str()).or_insert((0, Vec::new()));
        if rule.weight > entry.0 {
            *entry = (rule.weight, matched);
        }
    }
    by_code
}

/// Ranks the suspects for a run, most likely first.
pub fn diagnose(checks: &[Check], endpoints: &[EndpointInfo], kb: &Knowledge) -> Vec<Suspect> {
    let ctx = Context::of(checks, endpoints);
    let roles: HashMap<&str, Role> = endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.role))
        .collect();
    let mut scored: Vec<((bool, bool, u32), Suspect)> = Vec::new();
    for def in &kb.suspect {
        let by_code = matching(def, checks, ctx, &roles);
        if by_code.is_empty() {
            continue;
        }
        let (score, evidence) = weigh(&by_code);
        // A suspect whose symptom the run contradicts ("while other apps work" when the neutral
        // host failed too) stays listed, at low confidence and after every other one.
        let contradicted = def.contradicted_when.iter().any(|w| ctx.holds(Some(*w)));
        let confidence = if contradicted {
            Confidence::Low
        } else {
            confidence(score)
        };
        // Measured evidence it needs to rank first (weak_signal: loss or latency), or none.
        let may_lead = def.first_needs.is_empty()
            || def
                .first_needs
                .iter()
                .any(|c| by_code.contains_key(c.as_str()));
        scored.push((
            (!contradicted, may_lead, score),
            Suspect {
                id: def.id.clone(),
                title: def.title.clone(),
                symptom: def.symptom.clone(),
                difficulty: def.difficulty,
                confidence,
                evidence,
                steps: steps_for(def, checks),
            },
        ));
    }
    scored.sort_by(|(sa, a), (sb, b)| {
        sb.cmp(sa)
            .then(a.difficulty.unwrap_or(9).cmp(&b.difficulty.unwrap_or(9)))
            .then(a.id.cmp(&b.id))
    });
    let mut suspects: Vec<Suspect> = scored.into_iter().map(|(_, s)| s).collect();

    // Nothing failed and nothing points anywhere with conviction: the answer may well lie where
    // a network probe cannot look, so say so.
    let weak = suspects.iter().all(|s| s.confidence == Confidence::Low)
        && !checks.iter().any(|c| c.status == Status::Fail);
    if suspects.is_empty() || weak {
        let note = if checks
            .iter()
            .any(|c| c.status == Status::Fail || c.status == Status::Warn)
        {
            "the findings of this run point to no clear network cause; a network probe cannot test this"
        } else {
            "every network check passed; a network probe cannot test this"
        };
        untestable(&mut suspects, kb, endpoints, note);
    }
    suspects
}

/// Whether a fact a fix step depends on holds in this run.
fn fact_holds(fact: Fact, checks: &[Check]) -> bool {
    match fact {
        Fact::ProxyConfigured => checks.iter().any(|c| {
            c.code == "proxy.env"
                || (matches!(c.code.as_str(), "proxy.cli" | "proxy.desktop")
                    && c.data.get("https_proxy").is_some_and(|v| !v.is_null()))
                || c.code.starts_with("http.proxy_")
                || c.code.starts_with("proxy.pac")
                || c.data_str("path") == Some("proxy")
        }),
    }
}

/// The steps of a suspect that apply to this run: every unconditional one, and a conditional
/// one only when one of its codes was found (not skipped) or one of its facts holds.
pub fn steps_for(def: &SuspectDef, checks: &[Check]) -> Vec<String> {
    def.steps
        .iter()
        .filter(|step| match step {
            Step::Always(_) => true,
            Step::When { codes, facts, .. } => {
                codes.iter().any(|code| {
                    checks
                        .iter()
                        .any(|c| c.status != Status::Skip && &c.code == code)
                }) || facts.iter().any(|f| fact_holds(*f, checks))
            }
        })
        .map(|s| s.text().to_owned())
        .collect()
}

/// A suspect's score and its evidence lines, strongest first, from the rules that matched.
fn weigh(by_code: &BTreeMap<&str, (u32, Vec<&Check>)>) -> (u32, Vec<String>) {
    let mut score = 0;
    let mut evidence = Vec::new();
    let mut strongest: Vec<(u32, String)> = Vec::new();
    for (code, (weight, matched)) in by_code {
        let extra = (matched.len() as u32).saturating_sub(1).min(3);
        score += weight + extra;
        let targets: Vec<&str> = matched.iter().filter_map(|c| c.target.as_deref()).collect();
        let same = matched.iter().all(|c| c.summary == matched[0].summary);
        if targets.is_empty() {
            strongest.push((*weight, format!("{code}: {}", matched[0].summary)));
        } else if same {
            let line = format!("{code} on {}: {}", targets.join(", "), matched[0].summary);
            strongest.push((*weight, line));
        } else {
            // Each endpoint's own finding: one endpoint's summary is not another's.
            for c in matched {
                let on = c.target.as_deref().unwrap_or("this device");
                strongest.push((*weight, format!("{code} on {on}: {}", c.summary)));
            }
        }
    }
    strongest.sort_by_key(|s| std::cmp::Reverse(s.0));
    evidence.extend(strongest.into_iter().map(|(_, l)| l));
    (score, evidence)
}

/// The causes a network probe cannot test, at low confidence, after what the run found.
/// A cause tied to one service's hosts (`when_checked`) only where the run checked one of them.
fn untestable(suspects: &mut Vec<Suspect>, kb: &Knowledge, endpoints: &[EndpointInfo], note: &str) {
    let listed: Vec<String> = suspects.iter().map(|s| s.id.clone()).collect();
    let checked = |d: &SuspectDef| {
        d.when_checked.is_empty()
            || endpoints.iter().any(|e| {
                d.when_checked
                    .iter()
                    .any(|h| e.host.eq_ignore_ascii_case(h))
            })
    };
    suspects.extend(
        kb.suspect
            .iter()
            .filter(|d| d.kind == Kind::Untestable && !listed.contains(&d.id) && checked(d))
            .map(|d| Suspect {
                id: d.id.clone(),
                title: d.title.clone(),
                symptom: d.symptom.clone(),
                difficulty: d.difficulty,
                confidence: Confidence::Low,
                evidence: vec![note.to_owned()],
                steps: d.step_texts(),
            }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb() -> Knowledge {
        Knowledge::builtin().expect("valid knowledge base")
    }

    fn ep(name: &str, role: &str) -> EndpointInfo {
        EndpointInfo {
            name: name.into(),
            host: format!("{name}.example"),
            port: 443,
            role: match role {
                "baseline" => Role::Baseline,
                "info" => Role::Info,
                _ => Role::Service,
            },
        }
    }

    fn check(probe: Probe, target: Option<&str>, status: Status, code: &str) -> Check {
        Check::new(probe, target, status, code, format!("{code} happened"))
    }

    fn eps() -> Vec<EndpointInfo> {
        vec![
            ep("api", "service"),
            ep("sign-in", "service"),
            ep("neutral", "baseline"),
        ]
    }

    fn top(checks: &[Check]) -> String {
        diagnose(checks, &eps(), &kb())
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default()
    }

    fn healthy(name: &str) -> Vec<Check> {
        vec![
            check(Probe::Dns, Some(name), Status::Pass, "dns.ok"),
            check(Probe::Tcp, Some(name), Status::Pass, "tcp.ok"),
            check(Probe::Tls, Some(name), Status::Pass, "tls.ok"),
            check(Probe::Http, Some(name), Status::Pass, "http.ok"),
        ]
    }

    #[test]
    fn sinkholed_hosts_point_to_a_dns_filter() {
        let mut c = healthy("neutral");
        c.push(check(
            Probe::Dns,
            Some("api"),
            Status::Fail,
            "dns.sinkholed",
        ));
        c.push(check(
            Probe::Dns,
            Some("sign-in"),
            Status::Fail,
            "dns.sinkholed",
        ));
        c.push(Check::skipped(Probe::Tcp, Some("api"), "dns failed"));
        let s = diagnose(&c, &eps(), &kb());
        assert_eq!(s[0].id, "dns_filter");
        assert_eq!(s[0].confidence, Confidence::High);
        assert!(s[0].evidence[0].starts_with("dns.sinkholed on api, sign-in"));
    }

    #[test]
    fn each_endpoint_has_its_own_evidence_line() {
        let mut c = healthy("neutral");
        for (ep, issuer) in [
            ("api", "Zscaler Root CA"),
            ("sign-in", "Zscaler Intermediate"),
        ] {
            let mut x = check(Probe::Tls, Some(ep), Status::Fail, "tls.untrusted");
            x.summary = format!("untrusted; issuer: {issuer}");
            c.push(x);
        }
        let s = diagnose(&c, &eps(), &kb());
        let lines: Vec<&String> = s
            .iter()
            .flat_map(|s| &s.evidence)
            .filter(|e| e.starts_with("tls.untrusted"))
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("tls.untrusted on api:") && l.contains("Zscaler Root CA"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("tls.untrusted on sign-in:")
                    && l.contains("Zscaler Intermediate"))
        );
    }

    #[test]
    fn the_baseline_decides_between_service_and_network() {
        let mut bmw_down = healthy("neutral");
        bmw_down.push(check(Probe::Tcp, Some("api"), Status::Fail, "tcp.timeout"));
        bmw_down.push(check(
            Probe::Tcp,
            Some("sign-in"),
            Status::Fail,
            "tcp.timeout",
        ));
        assert_eq!(top(&bmw_down), "server_side");

        let all_down: Vec<Check> = ["api", "sign-in", "neutral"]
            .iter()
            .map(|n| check(Probe::Tcp, Some(n), Status::Fail, "tcp.timeout"))
            .collect();
        // Timeouts alone do not measure a signal: nothing connects, and no loss was measured.
        assert_eq!(top(&all_down), "no_connectivity");
        let mut lossy = all_down.clone();
        lossy.push(check(
            Probe::Latency,
            Some("api"),
            Status::Warn,
            "latency.loss",
        ));
        assert_eq!(top(&lossy), "weak_signal");
    }

    #[test]
    fn equal_evidence_gives_the_same_order_whatever_the_check_order() {
        // A slow, lossy path through a VPN: timeouts, measured loss, and the tunnel.
        let mut c = healthy("neutral");
        c.push(check(Probe::Tcp, Some("api"), Status::Fail, "tcp.timeout"));
        c.push(check(
            Probe::Tls,
            Some("sign-in"),
            Status::Fail,
            "tls.timeout",
        ));
        c.push(check(
            Probe::Latency,
            Some("neutral"),
            Status::Warn,
            "latency.loss",
        ));
        c.push(check(
            Probe::Latency,
            Some("sign-in"),
            Status::Warn,
            "latency.high",
        ));
        c.push(check(Probe::Vpn, None, Status::Warn, "vpn.active"));
        let ids = |checks: &[Check]| -> Vec<String> {
            diagnose(checks, &eps(), &kb())
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        let first = ids(&c);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50 {
            rng.shuffle(&mut c);
            assert_eq!(ids(&c), first, "{c:?}");
        }
    }

    #[test]
    fn skipped_stages_are_not_evidence() {
        let c = vec![
            check(Probe::Dns, Some("api"), Status::Fail, "dns.nxdomain"),
            Check::skipped(Probe::Tcp, Some("api"), "needs an address"),
            Check::skipped(Probe::Tls, Some("api"), "needs an address"),
        ];
        let s = diagnose(&c, &eps(), &kb());
        assert!(
            s.iter()
                .all(|s| s.evidence.iter().all(|e| !e.contains("skipped")))
        );
    }

    #[test]
    fn expired_certificates_are_blamed_on_a_skewed_clock() {
        let mut c = healthy("neutral");
        c.push(check(Probe::Tls, Some("api"), Status::Fail, "tls.expired"));
        assert_eq!(top(&c), "server_side");
        c.push(check(Probe::Clock, None, Status::Fail, "clock.skew"));
        let s = diagnose(&c, &eps(), &kb());
        assert_eq!(s[0].id, "device_clock");
        assert!(!s.iter().any(|s| s.id == "server_side"));
    }

    #[test]
    fn a_clean_run_lists_only_what_cannot_be_tested() {
        let mut c = healthy("api");
        c.extend(healthy("neutral"));
        let s = diagnose(&c, &eps(), &kb());
        let ids: Vec<&str> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "outdated_software",
                "account_credentials",
                "corrupted_app_data",
                "app_permissions",
                "captcha_shared_address"
            ]
        );
        assert!(s.iter().all(|s| s.confidence == Confidence::Low));
    }

    #[test]
    fn a_cause_of_one_service_is_listed_only_where_its_hosts_were_checked() {
        let mut c = healthy("api");
        c.extend(healthy("neutral"));
        let ids = |eps: &[EndpointInfo]| -> Vec<String> {
            diagnose(&c, eps, &kb()).into_iter().map(|s| s.id).collect()
        };
        let plain = ids(&eps());
        assert!(
            !plain.iter().any(|i| i == "app_attestation_refused"),
            "{plain:?}"
        );
        assert!(
            !plain.iter().any(|i| i == "cardata_stream_refused"),
            "{plain:?}"
        );
        let mut app = eps();
        let mut attest = ep("app-attestation", "info");
        attest.host = "attest.api.approov.io".into();
        app.push(attest);
        let with_app = ids(&app);
        assert!(
            with_app.iter().any(|i| i == "app_attestation_refused"),
            "{with_app:?}"
        );
        assert!(
            !with_app.iter().any(|i| i == "cardata_stream_refused"),
            "{with_app:?}"
        );
        let mut stream = eps();
        let mut s = ep("stream", "service");
        s.host = "CUSTOMER.streaming-cardata.bmwgroup.com".into();
        stream.push(s);
        let with_stream = ids(&stream);
        assert!(
            with_stream.iter().any(|i| i == "cardata_stream_refused"),
            "{with_stream:?}"
        );
    }

    #[test]
    fn weak_findings_without_failures_also_list_what_cannot_be_tested() {
        let mut c = healthy("api");
        c.extend(healthy("neutral"));
        c.push(check(Probe::Vpn, None, Status::Warn, "vpn.active"));
        let s = diagnose(&c, &eps(), &kb());
        assert_eq!(s[0].id, "vpn_firewall");
        assert_eq!(s[0].confidence, Confidence::Low);
        assert!(s.iter().any(|s| s.id == "account_credentials"));
    }

    #[test]
    fn reason_filters_match_data() {
        let mut c = healthy("neutral");
        c.push(
            check(
                Probe::Tls,
                Some("api"),
                Status::Fail,
                "tls.handshake_failed",
            )
            .with("reason", "protocol_version"),
        );
        let s = diagnose(&c, &eps(), &kb());
        assert!(s.iter().any(|s| s.id == "outdated_software"));
        let mut c = healthy("neutral");
        c.push(check(
            Probe::Tls,
            Some("api"),
            Status::Fail,
            "tls.handshake_failed",
        ));
        let s = diagnose(&c, &eps(), &kb());
        assert!(!s.iter().any(|s| s.id == "outdated_software"));
    }

    #[test]
    fn a_symptom_the_evidence_contradicts_is_never_ranked_medium() {
        // Nothing resolves, the neutral host included: "while other apps work" is false.
        let c: Vec<Check> = ["api", "sign-in", "neutral"]
            .iter()
            .map(|n| check(Probe::Dns, Some(n), Status::Fail, "dns.nxdomain"))
            .collect();
        let s = diagnose(&c, &eps(), &kb());
        assert_eq!(s[0].id, "no_connectivity");
        let filter = s.iter().find(|s| s.id == "dns_filter").expect("listed");
        assert_eq!(filter.confidence, Confidence::Low);
        let kb = kb();
        for s in s.iter().filter(|s| s.confidence >= Confidence::Medium) {
            let def = kb.get(&s.id).expect("known");
            assert!(
                !def.contradicted_when.contains(&When::BaselineFailed),
                "{}",
                s.id
            );
        }
        // The same findings give the same order every time.
        assert_eq!(s, diagnose(&c, &eps(), &kb));
    }

    #[test]
    fn steps_follow_the_evidence() {
        let kb = kb();
        let vpn = kb.get("vpn_firewall").expect("vpn_firewall");
        let plain = vec![check(Probe::Vpn, None, Status::Warn, "vpn.active")];
        let shown = steps_for(vpn, &plain);
        assert!(
            shown
                .iter()
                .all(|s| !s.contains("407") && !s.contains("tcp_blocked"))
        );
        assert!(shown.len() < vpn.steps.len());
        let mut proxied = plain.clone();
        proxied.push(check(Probe::Proxy, None, Status::Pass, "proxy.env"));
        proxied.push(check(
            Probe::Http,
            Some("api"),
            Status::Fail,
            "http.proxy_auth_required",
        ));
        let shown = steps_for(vpn, &proxied);
        assert!(shown.iter().any(|s| s.contains("407")));
        assert!(shown.iter().any(|s| s.contains("check its address")));
        assert!(shown.iter().all(|s| !s.contains("tcp_blocked")));
    }

    #[test]
    fn device_probes_count_for_any_role() {
        let c = vec![check(Probe::Storage, None, Status::Fail, "storage.low")];
        assert_eq!(top(&c), "low_storage");
        let c = vec![check(Probe::Captive, None, Status::Fail, "captive.portal")];
        assert_eq!(top(&c), "captive_portal");
    }
}
