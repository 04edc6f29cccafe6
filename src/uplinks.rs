//! Runs over several uplinks at once (`--via all`, a repeated `--interface`), and the report that
//! compares them.
//!
//! A socket is bound to an interface for the life of a process (`crate::iface`), so each uplink
//! gets a child process of this binary (`crate::child`) — `run --interface IFACE --format json` — all started at
//! once and each bounded by the same `--deadline`, so the whole run still ends within it. Their
//! reports are merged: every check keeps its interface label, the device probes that do not
//! depend on the link (storage, proxy, vpn) are kept once, each uplink gets its verdict, and the
//! diagnosis compares them: "BMW works over wwan0 (cellular) but not over wlan0 (Wi-Fi): a DNS
//! filter or blocklist hides BMW's servers".

use crate::child;
use crate::error::AppError;
use crate::iface::{self, Interface};
use crate::knowledge::Knowledge;
use crate::model::{Check, Confidence, Probe, Report, Status, Suspect, Uplink};
use crate::plan::{Links, Plan, Record};
use std::time::{Instant, SystemTime};

/// Is this a run over several uplinks?
pub fn wanted(links: &Links) -> bool {
    links.every_uplink || links.interfaces.len() > 1
}

/// The interfaces a bound run goes over: those named (they must exist), or every uplink.
pub fn chosen(links: &Links) -> Result<Vec<Interface>, AppError> {
    if !iface::SUPPORTED {
        return Err(AppError::usage(
            "--interface and --via need SO_BINDTODEVICE, which only Linux offers in this release",
        ));
    }
    if links.every_uplink {
        let up = iface::uplinks();
        if up.is_empty() {
            return Err(AppError::Input(
                "--via all: no uplink is up (an interface that is up, not loopback or a tunnel, with a default route)".into(),
            ));
        }
        return Ok(up);
    }
    let mut out: Vec<Interface> = Vec::new();
    for name in &links.interfaces {
        let i = iface::find(name).ok_or_else(|| {
            AppError::Input(format!(
                "--interface {name}: this device has no such interface (known: {})",
                iface::interfaces()
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Labels a single-interface report: each check (but the device probes that do not depend on
/// the link) with its interface, and the uplink with its kind and verdict.
pub fn label(report: &mut Report, i: &Interface) {
    for c in &mut report.checks {
        if !link_independent(c) {
            c.interface = Some(i.name.clone());
        }
    }
    let status = Report::overall(
        &report
            .checks
            .iter()
            .filter(|c| c.interface.is_some())
            .cloned()
            .collect::<Vec<_>>(),
    );
    report.uplinks = vec![Uplink {
        name: i.name.clone(),
        kind: i.kind.as_str().to_owned(),
        status,
    }];
}

/// Device probes whose result is the same over every link.
fn link_independent(c: &Check) -> bool {
    c.target.is_none() && matches!(c.probe, Probe::Storage | Probe::Proxy | Probe::Vpn)
}

/// Runs every uplink at once, each as a child run over its interface, and merges the reports.
/// The children keep the deadline themselves, so the whole run still ends within it.
pub fn execute(plan: &Plan, kb: &Knowledge) -> Result<Report, AppError> {
    let chosen = chosen(&plan.links)?;
    let exe = child::self_exe()?;
    let signals = child::Signals::catch()?;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let mut running = Vec::new();
    for i in chosen {
        let over = Plan {
            links: Links {
                interfaces: vec![i.name.clone()],
                every_uplink: false,
            },
            // The merged report is recorded, once, by this process.
            record: Record {
                history: None,
                disabled: true,
            },
            ..plan.clone()
        };
        let label = format!("over {}", i.name);
        let argv = child::command_line(&over);
        running.push((
            i,
            child::Running::start(&exe, &argv, &label, plan.deadline, &signals)?,
        ));
    }
    // Every child is waited for, so none outlives this process, even when one of them fails.
    let read: Vec<(Interface, Result<Report, AppError>)> = running
        .into_iter()
        .map(|(i, run)| (i, run.report(&signals)))
        .collect();
    let mut parts = Vec::new();
    for (i, report) in read {
        parts.push((i, report?));
    }
    Ok(merge(parts, kb, started, started_at))
}

/// One report from the uplinks' reports.
pub fn merge(
    parts: Vec<(Interface, Report)>,
    kb: &Knowledge,
    started: Instant,
    started_at: SystemTime,
) -> Report {
    let mut checks: Vec<Check> = Vec::new();
    let mut uplinks: Vec<Uplink> = Vec::new();
    for (n, (i, r)) in parts.iter().enumerate() {
        let mine: Vec<Check> = r
            .checks
            .iter()
            .filter(|c| n == 0 || !link_independent(c))
            .cloned()
            .map(|mut c| {
                c.interface = (!link_independent(&c)).then(|| i.name.clone());
                c
            })
            .collect();
        let over: Vec<Check> = mine
            .iter()
            .filter(|c| c.interface.is_some())
            .cloned()
            .collect();
        uplinks.push(Uplink {
            name: i.name.clone(),
            kind: i.kind.as_str().to_owned(),
            status: Report::overall(&over),
        });
        checks.extend(mine);
    }
    let comparison = compare(&parts, &uplinks, kb);
    let mut merged = merged_suspects(&parts);
    if comparison.is_some() {
        merged.retain(|s| !NOT_THE_LINK.contains(&s.id.as_str()));
    }
    let mut suspects: Vec<Suspect> = comparison.into_iter().collect();
    suspects.extend(merged);
    let first = parts.first().map(|(_, r)| r.clone());
    let status = Report::overall(&checks);
    Report {
        schema_version: crate::model::SCHEMA_VERSION,
        report_id: crate::model::report_id(),
        tool: crate::model::Tool::this(),
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        duration_ms: crate::model::ms(started.elapsed()),
        region: first.as_ref().map(|r| r.region.clone()).unwrap_or_default(),
        status,
        checks,
        suspects,
        endpoints: first
            .as_ref()
            .map(|r| r.endpoints.clone())
            .unwrap_or_default(),
        device: first.and_then(|r| r.device),
        redacted: Vec::new(),
        uplinks,
    }
}

fn who(u: &Uplink) -> String {
    u.who()
}

/// "BMW works over X but not over Y: <what blocks it on Y>", when some uplinks pass their
/// service checks and others fail them.
fn compare(parts: &[(Interface, Report)], uplinks: &[Uplink], kb: &Knowledge) -> Option<Suspect> {
    let good: Vec<&Uplink> = uplinks
        .iter()
        .filter(|u| u.status != Status::Fail)
        .collect();
    let bad: Vec<&Uplink> = uplinks
        .iter()
        .filter(|u| u.status == Status::Fail)
        .collect();
    if good.is_empty() || bad.is_empty() {
        return None;
    }
    let def = kb.get("uplink_specific")?;
    let join = |us: &[&Uplink]| us.iter().map(|u| who(u)).collect::<Vec<_>>().join(", ");
    // What the failing uplinks' own diagnosis blames first. "BMW's side" cannot be it: BMW
    // answers over the other link, so the block is on the failing link's path.
    let cause = bad
        .iter()
        .filter_map(|u| parts.iter().find(|(i, _)| i.name == u.name))
        .filter_map(|(i, r)| {
            let s = r.suspects.first()?;
            if NOT_THE_LINK.contains(&s.id.as_str()) {
                let failed = r.checks.iter().find(|c| c.status == Status::Fail)?;
                Some(format!(
                    "over {} the {} stage fails ({}), so what blocks BMW is on that network's path, not at BMW",
                    i.name, failed.probe, failed.code
                ))
            } else {
                Some(s.title.clone())
            }
        })
        .next();
    let title = match &cause {
        Some(c) => format!(
            "BMW works over {} but not over {}: {}",
            join(&good),
            join(&bad),
            lowercase_first(c)
        ),
        None => format!("BMW works over {} but not over {}", join(&good), join(&bad)),
    };
    let mut evidence = Vec::new();
    for u in &bad {
        if let Some((_, r)) = parts.iter().find(|(i, _)| i.name == u.name) {
            let failed: Vec<String> = r
                .checks
                .iter()
                .filter(|c| c.status == Status::Fail)
                .map(|c| match &c.target {
                    Some(t) => format!("{t} {}", c.code),
                    None => c.code.clone(),
                })
                .collect();
            evidence.push(format!("over {}: {}", who(u), failed.join(", ")));
        }
    }
    for u in &good {
        evidence.push(format!(
            "over {}: {}",
            who(u),
            if u.status == Status::Pass {
                "every check passed"
            } else {
                "warnings only, no failure"
            }
        ));
    }
    Some(Suspect {
        id: def.id.clone(),
        title,
        symptom: def.symptom.clone(),
        difficulty: def.difficulty,
        confidence: Confidence::High,
        evidence,
        steps: def.step_texts(),
    })
}

/// Suspects that blame BMW's side: ruled out when BMW answers over another uplink.
const NOT_THE_LINK: [&str; 1] = ["server_side"];

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        // "A DNS filter ..." → "a DNS filter ..."; an acronym ("BMW's") stays.
        Some(f) if c.clone().next().is_some_and(char::is_lowercase) || s.starts_with("A ") => {
            f.to_lowercase().collect::<String>() + c.as_str()
        }
        _ => s.to_owned(),
    }
}

/// Every uplink's suspects, once each: the most confident version, with evidence naming the
/// uplink it was seen on.
fn merged_suspects(parts: &[(Interface, Report)]) -> Vec<Suspect> {
    let mut out: Vec<Suspect> = Vec::new();
    // Once a link fails, "what a network check cannot test" on a passing one is beside the point.
    let any_failed = parts.iter().any(|(_, r)| r.status != Status::Pass);
    for (i, r) in parts
        .iter()
        .filter(|(_, r)| !any_failed || r.status != Status::Pass)
    {
        for s in &r.suspects {
            let evidence: Vec<String> = s
                .evidence
                .iter()
                .map(|e| format!("over {}: {e}", i.name))
                .collect();
            match out.iter_mut().find(|o| o.id == s.id) {
                Some(o) => {
                    o.confidence = o.confidence.max(s.confidence);
                    o.evidence.extend(evidence);
                }
                None => {
                    let mut s = s.clone();
                    s.evidence = evidence;
                    out.push(s);
                }
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.confidence));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::Kind;
    use crate::model::{SCHEMA_VERSION, Tool};

    fn iface(name: &str, kind: Kind) -> Interface {
        Interface {
            name: name.into(),
            kind,
            up: true,
            loopback: false,
        }
    }

    fn part(tcp: (Status, &str), suspect: Option<&str>) -> Report {
        let checks = vec![
            Check::new(Probe::Tcp, Some("api"), tcp.0, tcp.1, "x"),
            Check::new(Probe::Storage, None, Status::Pass, "storage.ok", "x"),
            Check::new(Probe::Captive, None, Status::Pass, "captive.ok", "x"),
        ];
        Report {
            schema_version: SCHEMA_VERSION,
            report_id: "child".into(),
            tool: Tool::this(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            duration_ms: 1.0,
            region: "r".into(),
            status: Report::overall(&checks),
            checks,
            suspects: suspect
                .map(|id| Suspect {
                    id: id.into(),
                    title: "BMW's service has a problem or refuses this client".into(),
                    symptom: "s".into(),
                    difficulty: None,
                    confidence: Confidence::Medium,
                    evidence: vec!["tcp.refused on api".into()],
                    steps: vec!["wait".into()],
                })
                .into_iter()
                .collect(),
            endpoints: Vec::new(),
            device: None,
            redacted: Vec::new(),
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn merged_report_labels_compares_and_keeps_device_probes_once() {
        let kb = Knowledge::builtin().unwrap();
        let parts = vec![
            (
                iface("wlan0", Kind::Wifi),
                part((Status::Fail, "tcp.refused"), Some("server_side")),
            ),
            (
                iface("wwan0", Kind::Cellular),
                part((Status::Pass, "tcp.ok"), None),
            ),
        ];
        let r = merge(parts, &kb, Instant::now(), SystemTime::now());
        assert_eq!(r.status, Status::Fail);
        let ups: Vec<(&str, &str, Status)> = r
            .uplinks
            .iter()
            .map(|u| (u.name.as_str(), u.kind.as_str(), u.status))
            .collect();
        assert_eq!(
            ups,
            [
                ("wlan0", "wifi", Status::Fail),
                ("wwan0", "cellular", Status::Pass)
            ]
        );
        // Storage once and unlabelled; captive per uplink.
        assert_eq!(
            r.checks
                .iter()
                .filter(|c| c.probe == Probe::Storage)
                .count(),
            1
        );
        assert!(
            r.checks
                .iter()
                .filter(|c| c.probe == Probe::Storage)
                .all(|c| c.interface.is_none())
        );
        assert_eq!(
            r.checks
                .iter()
                .filter(|c| c.probe == Probe::Captive && c.interface.is_some())
                .count(),
            2
        );
        let top = &r.suspects[0];
        assert_eq!(top.id, "uplink_specific");
        assert_eq!(
            top.title,
            "BMW works over wwan0 (cellular) but not over wlan0 (Wi-Fi): over wlan0 the tcp stage fails (tcp.refused), so what blocks BMW is on that network's path, not at BMW"
        );
        assert!(r.suspects.iter().all(|s| s.id != "server_side"));
    }

    #[test]
    fn no_comparison_when_every_uplink_fails_or_passes() {
        let kb = Knowledge::builtin().unwrap();
        for (a, b) in [
            ((Status::Fail, "tcp.refused"), (Status::Fail, "tcp.timeout")),
            ((Status::Pass, "tcp.ok"), (Status::Pass, "tcp.ok")),
        ] {
            let parts = vec![
                (iface("eth0", Kind::Ethernet), part(a, Some("server_side"))),
                (iface("wlan0", Kind::Wifi), part(b, None)),
            ];
            let r = merge(parts, &kb, Instant::now(), SystemTime::now());
            assert!(r.suspects.iter().all(|s| s.id != "uplink_specific"));
        }
    }
}
