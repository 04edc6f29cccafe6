//! The answer at a glance, shared by the human report and the Markdown ticket: the verdict in
//! words, the findings grouped, and the tally a person cares about.
//!
//! A failing run usually fails the same way on many endpoints (eight NXDOMAINs behind a broken
//! resolver). Listing each is noise; what decides the case is whether the neutral, non-BMW host
//! failed too. So the verdict says that in a sentence, identical findings become one line with
//! the endpoints listed once, and the tally counts hosts reached rather than checks run.

use crate::model::{Check, Probe, Report, Role, Status};

/// One finding, or the same finding on several endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub status: Status,
    pub code: String,
    /// The summary, with the endpoint's host name replaced by "the name" when several share it.
    pub summary: String,
    /// The endpoints showing it, in profile order; empty for a device probe.
    pub targets: Vec<String>,
}

fn host_of<'a>(r: &'a Report, target: &str) -> Option<&'a str> {
    r.endpoints
        .iter()
        .find(|e| e.name == target)
        .map(|e| e.host.as_str())
}

/// A check's summary with its endpoint's host replaced, so the same finding on two endpoints
/// reads the same.
fn generic(r: &Report, c: &Check) -> String {
    match c.target.as_deref().and_then(|t| host_of(r, t)) {
        Some(host) if !host.is_empty() => c.summary.replace(host, "the name"),
        _ => c.summary.clone(),
    }
}

/// Groups the checks matching `keep` by status, code and summary (host names aside), worst
/// first, then in the order the checks came.
pub fn groups(r: &Report, keep: impl Fn(&Check) -> bool) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut by_target: Vec<(Group, Vec<&Check>)> = Vec::new();
    for c in r.checks.iter().filter(|c| keep(c)) {
        let summary = generic(r, c);
        let found = by_target.iter_mut().find(|(g, _)| {
            c.target.is_some()
                && !g.targets.is_empty()
                && g.status == c.status
                && g.code == c.code
                && g.summary == summary
        });
        match (found, &c.target) {
            (Some((g, members)), Some(t)) => {
                if !g.targets.contains(t) {
                    g.targets.push(t.clone());
                }
                members.push(c);
            }
            _ => by_target.push((
                Group {
                    status: c.status,
                    code: c.code.clone(),
                    summary,
                    targets: c.target.iter().cloned().collect(),
                },
                vec![c],
            )),
        }
    }
    for (mut g, members) in by_target {
        // One endpoint: its own words, host name included.
        if g.targets.len() == 1 {
            g.summary = members[0].summary.clone();
        }
        out.push(g);
    }
    out.sort_by_key(|g| std::cmp::Reverse(g.status));
    out
}

/// The endpoints whose checks all passed (or were skipped for no failure), in profile order.
pub fn healthy_endpoints(r: &Report) -> Vec<String> {
    r.endpoints
        .iter()
        .filter(|e| {
            let mine: Vec<&Check> = r
                .checks
                .iter()
                .filter(|c| c.target.as_deref() == Some(e.name.as_str()))
                .collect();
            !mine.is_empty() && mine.iter().all(|c| c.status == Status::Pass)
        })
        .map(|e| e.name.clone())
        .collect()
}

/// How an endpoint fared: its worst status, and whether its name lookup failed.
fn fared(r: &Report, name: &str) -> Option<(Status, bool)> {
    let mine: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| c.target.as_deref() == Some(name))
        .collect();
    if mine.is_empty() {
        return None;
    }
    let worst = Report::overall(&mine.iter().map(|c| (*c).clone()).collect::<Vec<_>>());
    let dns_failed = mine
        .iter()
        .any(|c| c.probe == Probe::Dns && c.status == Status::Fail);
    Some((worst, dns_failed))
}

/// The counts behind the verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub services: usize,
    pub services_failed: usize,
    pub services_unresolved: usize,
    pub baselines: Vec<String>,
    pub baselines_failed: usize,
    pub baselines_unresolved: usize,
    pub device_warn: usize,
    pub device_fail: usize,
}

impl Tally {
    pub fn of(r: &Report) -> Tally {
        let mut t = Tally::default();
        for e in &r.endpoints {
            let Some((worst, dns_failed)) = fared(r, &e.name) else {
                continue;
            };
            let failed = worst == Status::Fail;
            match e.role {
                Role::Service => {
                    t.services += 1;
                    t.services_failed += usize::from(failed);
                    t.services_unresolved += usize::from(dns_failed);
                }
                Role::Baseline => {
                    t.baselines.push(e.host.clone());
                    t.baselines_failed += usize::from(failed);
                    t.baselines_unresolved += usize::from(dns_failed);
                }
                Role::Info => {}
            }
        }
        for c in r.checks.iter().filter(|c| c.target.is_none()) {
            t.device_warn += usize::from(c.status == Status::Warn);
            t.device_fail += usize::from(c.status == Status::Fail);
        }
        t
    }

    /// The line under the verdict: hosts reached, the neutral host, the device.
    pub fn line(&self, seconds: f64) -> String {
        let mut parts = vec![format!(
            "BMW hosts: {} of {} reached",
            self.services - self.services_failed,
            self.services
        )];
        if !self.baselines.is_empty() {
            let fine = self.baselines_failed == 0;
            parts.push(format!(
                "neutral host: {}",
                if fine { "reached" } else { "not reached" }
            ));
        }
        parts.push(match (self.device_fail, self.device_warn) {
            (0, 0) => "this device: fine".to_owned(),
            (0, w) => format!("this device: {w} warning{}", plural(w)),
            (f, 0) => format!("this device: {f} problem{}", plural(f)),
            (f, w) => format!(
                "this device: {f} problem{}, {w} warning{}",
                plural(f),
                plural(w)
            ),
        });
        parts.push(format!("{seconds:.1} s"));
        parts.join(" · ")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The verdict in one sentence, with the fact that decides it: did the neutral host fail too?
pub fn verdict(r: &Report) -> String {
    let t = Tally::of(r);
    let neutral = t.baselines.join(" and ");
    let all_failed = t.services > 0 && t.services_failed == t.services;
    if t.services_failed == 0 && t.baselines_failed == 0 {
        return match r.status {
            Status::Pass | Status::Skip => {
                "Every check passed: this device reaches BMW's servers.".to_owned()
            }
            Status::Warn => "BMW's servers are reachable; the warnings below may still slow \
                             the app or make it fail at times."
                .to_owned(),
            Status::Fail => {
                "BMW's servers are reachable, but this device has a problem (below).".to_owned()
            }
        };
    }
    if t.baselines.is_empty() {
        return format!(
            "{} of {} BMW hosts fail. This profile has no neutral host, so this network and \
             BMW cannot be told apart.",
            t.services_failed, t.services
        );
    }
    if let Some(tunnel) = dead_tunnel(r) {
        return format!(
            "Nothing comes back through the VPN tunnel {tunnel}, which carries this device's \
             traffic: the VPN, not BMW, is the problem."
        );
    }
    if t.baselines_failed > 0 {
        let unresolved = t.services_unresolved == t.services && t.baselines_unresolved > 0;
        return if all_failed && unresolved {
            format!(
                "Nothing resolves — not BMW's hosts and not {neutral} — so this network, not \
                 BMW, is the problem."
            )
        } else if all_failed {
            format!(
                "Nothing connects — not BMW's hosts and not {neutral} — so this network, not \
                 BMW, is the problem."
            )
        } else {
            format!(
                "{} of {} BMW hosts fail and {neutral} fails too, so this network has a problem.",
                t.services_failed, t.services
            )
        };
    }
    if t.services_failed == 0 {
        return format!(
            "BMW's hosts are reachable, but the neutral host {neutral} is not: this network \
             has a problem that may also affect the app."
        );
    }
    format!(
        "{neutral} works, but {} of {} BMW hosts fail: something between this device and BMW \
         is the problem, not the network as a whole.",
        t.services_failed, t.services
    )
}

/// The tunnel the vpn check found dead (`vpn.dead_tunnel`): its interface, and its software
/// when known.
fn dead_tunnel(r: &Report) -> Option<String> {
    let c = r.checks.iter().find(|c| c.code == "vpn.dead_tunnel")?;
    let iface = c.data_str("interface").unwrap_or("(unknown interface)");
    Some(match c.data_str("vpn_software") {
        Some(sw) if !sw.is_empty() => format!("{iface} ({sw})"),
        _ => iface.to_owned(),
    })
}

/// The evidence that decided the ranking, once: the top suspect's codes, each with the
/// endpoints that showed it.
pub fn decisive(r: &Report) -> Option<String> {
    let top = r.suspects.first()?;
    let mut parts: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for line in &top.evidence {
        let code = line.split([' ', ':']).next().unwrap_or_default();
        if !crate::probe::registry::is_known(code) {
            // A note rather than a finding (what a network probe cannot test).
            parts.push(line.clone());
            continue;
        }
        if seen.contains(&code) {
            continue;
        }
        seen.push(code);
        let on: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| c.code == code && c.status != Status::Skip)
            .collect();
        let targets: Vec<&str> = on.iter().filter_map(|c| c.target.as_deref()).collect();
        parts.push(match targets.len() {
            0 => on
                .first()
                .map_or_else(|| line.clone(), |c| format!("{code}: {}", c.summary)),
            1 => format!("{code} on {}", targets[0]),
            n if n == r.endpoints.len() && n > 2 => format!("{code} on every endpoint ({n})"),
            n => format!("{code} on {n} endpoints"),
        });
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EndpointInfo, Tool};

    fn report(checks: Vec<Check>) -> Report {
        let ep = |name: &str, role| EndpointInfo {
            name: name.into(),
            host: format!("{name}.example"),
            port: 443,
            role,
        };
        Report {
            schema_version: 1,
            report_id: "0".into(),
            tool: Tool::this(),
            started_at: "2026-12-01T00:00:00Z".into(),
            duration_ms: 1.0,
            region: "test".into(),
            status: Report::overall(&checks),
            checks,
            suspects: Vec::new(),
            endpoints: vec![
                ep("api", Role::Service),
                ep("login", Role::Service),
                ep("neutral", Role::Baseline),
            ],
            device: None,
            redacted: Vec::new(),
            uplinks: Vec::new(),
        }
    }

    fn nx(target: &str) -> Check {
        Check::new(
            Probe::Dns,
            Some(target),
            Status::Fail,
            "dns.nxdomain",
            format!("{target}.example does not exist according to the resolver (NXDOMAIN)"),
        )
    }

    fn ok(target: &str) -> Check {
        Check::new(Probe::Dns, Some(target), Status::Pass, "dns.ok", "fine")
    }

    #[test]
    fn nothing_resolving_blames_the_network_in_words() {
        let r = report(vec![nx("api"), nx("login"), nx("neutral")]);
        let v = verdict(&r);
        assert!(v.starts_with("Nothing resolves"), "{v}");
        assert!(v.contains("neutral.example"), "{v}");
        let g = groups(&r, |c| c.status == Status::Fail);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].targets, ["api", "login", "neutral"]);
        assert!(g[0].summary.starts_with("the name does not exist"));
    }

    #[test]
    fn a_working_baseline_points_between_the_device_and_bmw() {
        let r = report(vec![nx("api"), ok("login"), ok("neutral")]);
        let v = verdict(&r);
        assert!(v.starts_with("neutral.example works, but 1 of 2"), "{v}");
        let g = groups(&r, |c| c.status == Status::Fail);
        assert_eq!(g[0].targets, ["api"]);
        assert!(g[0].summary.starts_with("api.example"));
        assert_eq!(healthy_endpoints(&r), ["login", "neutral"]);
    }

    #[test]
    fn a_dead_tunnel_is_named_in_the_verdict() {
        let mut dead = Check::new(
            Probe::Vpn,
            None,
            Status::Fail,
            "vpn.dead_tunnel",
            "nothing comes back through tun0",
        );
        dead = dead
            .with("interface", "tun0")
            .with("vpn_software", "openvpn");
        let mut checks = vec![nx("api"), nx("neutral")];
        checks.push(dead);
        let v = verdict(&report(checks));
        assert!(v.contains("VPN tunnel tun0 (openvpn)"), "{v}");
        assert!(!v.contains("this network"), "{v}");
    }

    #[test]
    fn a_clean_run_says_so() {
        let r = report(vec![ok("api"), ok("login"), ok("neutral")]);
        assert!(verdict(&r).starts_with("Every check passed"));
        assert_eq!(
            Tally::of(&r).line(1.0),
            "BMW hosts: 2 of 2 reached · neutral host: reached · this device: fine · 1.0 s"
        );
    }
}
