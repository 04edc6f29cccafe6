//! Runs over several uplinks at once (`--via all`, a repeated `--interface`), and the report that
//! compares them.
//!
//! A socket is bound to an interface for the life of a process (`crate::iface`), so each uplink
//! gets a child process of this binary — `run --interface IFACE --format json` — all started at
//! once and each bounded by the same `--deadline`, so the whole run still ends within it. Their
//! reports are merged: every check keeps its interface label, the device probes that do not
//! depend on the link (storage, proxy, vpn) are kept once, each uplink gets its verdict, and the
//! diagnosis compares them: "BMW works over wwan0 (cellular) but not over wlan0 (Wi-Fi): a DNS
//! filter or blocklist hides BMW's servers".

use crate::cli::RunArgs;
use crate::error::AppError;
use crate::iface::{self, Interface};
use crate::knowledge::Knowledge;
use crate::model::{Check, Confidence, Probe, Report, Status, Suspect, Uplink};
use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Is this a run over several uplinks?
pub fn wanted(args: &RunArgs) -> bool {
    args.via.is_some() || args.interface.len() > 1
}

/// The interfaces a bound run goes over: those named (they must exist), or every uplink.
pub fn chosen(args: &RunArgs) -> Result<Vec<Interface>, AppError> {
    if !iface::SUPPORTED {
        return Err(AppError::usage(
            "--interface and --via need SO_BINDTODEVICE, which only Linux offers in this release",
        ));
    }
    if args.via.is_some() {
        let up = iface::uplinks();
        if up.is_empty() {
            return Err(AppError::Input(
                "--via all: no uplink is up (an interface that is up, not loopback or a tunnel, with a default route)".into(),
            ));
        }
        return Ok(up);
    }
    let mut out: Vec<Interface> = Vec::new();
    for name in &args.interface {
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

/// The options of `run` that choose what a child run checks and how: region or profile,
/// resolver, CA file, limits, probes and storage paths, as a JSON report without colour.
/// (Output, history, lock and jitter stay with the process that started it.)
pub fn run_options(args: &RunArgs) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["run".into(), "--region".into(), args.region.clone().into()];
    let mut pair = |k: &str, v: OsString| {
        a.push(k.into());
        a.push(v);
    };
    if let Some(p) = &args.profile {
        pair("--profile", p.clone().into());
    }
    if let Some(r) = &args.resolver {
        pair("--resolver", r.to_string().into());
    }
    if let Some(c) = &args.ca_file {
        pair("--ca-file", c.clone().into());
    }
    pair(
        "--timeout",
        humantime::format_duration(args.timeout).to_string().into(),
    );
    pair(
        "--deadline",
        humantime::format_duration(args.deadline).to_string().into(),
    );
    let names = |ps: &[Probe]| ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(",");
    if !args.only.is_empty() {
        pair("--only", names(&args.only).into());
    }
    if !args.skip.is_empty() {
        pair("--skip", names(&args.skip).into());
    }
    pair("--samples", args.samples.to_string().into());
    for p in &args.storage_path {
        pair("--storage-path", p.clone().into());
    }
    pair("--format", "json".into());
    pair("--color", "never".into());
    a
}

/// This program, to start child runs with. On Linux `/proc/self/exe`, which still works when the
/// binary was replaced (an upgrade) during a long watch.
pub fn self_exe() -> Result<std::path::PathBuf, AppError> {
    if cfg!(target_os = "linux") && std::path::Path::new("/proc/self/exe").exists() {
        return Ok("/proc/self/exe".into());
    }
    std::env::current_exe()
        .map_err(|e| AppError::Internal(format!("cannot find this program's binary: {e}")))
}

/// The command line of one uplink's child run.
fn child_args(args: &RunArgs, name: &str) -> Vec<OsString> {
    let mut a = run_options(args);
    a.push("--interface".into());
    a.push(name.into());
    a.push("--no-history".into());
    a
}

/// One uplink's child, running.
struct Child {
    iface: Interface,
    child: std::process::Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        all
    })
}

/// Runs every uplink at once and merges the reports.
pub fn execute(args: &RunArgs, kb: &Knowledge) -> Result<Report, AppError> {
    let chosen = chosen(args)?;
    crate::plan::load_profile(args)?;
    let exe = self_exe()?;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let mut children = Vec::new();
    for i in chosen {
        let mut child = Command::new(&exe)
            .args(child_args(args, &i.name))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                AppError::Internal(format!("cannot start the run over {}: {e}", i.name))
            })?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(AppError::Internal("no pipe to a child run".into()));
        };
        children.push(Child {
            iface: i,
            child,
            stdout: reader(out),
            stderr: reader(err),
        });
    }
    // The children keep the deadline themselves; this bound only guards against a stuck one.
    let limit = started + args.deadline + Duration::from_secs(5);
    let pids: Vec<u32> = children.iter().map(|c| c.child.id()).collect();
    let mut signals = Signals::new()?;
    let mut parts = Vec::new();
    for mut c in children {
        let status = loop {
            match c.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= limit => {
                    let _ = c.child.kill();
                    let _ = c.child.wait();
                    break None;
                }
                Ok(None) => {
                    if let Some(sig) = signals.wait(Duration::from_millis(10)) {
                        // Pass it on, so each child reports what it finished, as a single run
                        // does. (Ctrl-C at a terminal reaches them already; a second one is
                        // harmless to a run that is already wrapping up.)
                        forward(&pids, sig);
                    }
                }
                Err(_) => break None,
            }
        };
        let stdout = c.stdout.join().unwrap_or_default();
        let stderr = c.stderr.join().unwrap_or_default();
        let name = &c.iface.name;
        let report: Option<Report> = serde_json::from_slice(&stdout).ok();
        match (status, report) {
            (Some(_), Some(r)) => parts.push((c.iface, r)),
            (None, _) => {
                return Err(AppError::Internal(format!(
                    "the run over {name} did not end within its deadline"
                )));
            }
            (Some(_), None) => {
                let text = String::from_utf8_lossy(&stderr);
                let line = text
                    .lines()
                    .rev()
                    .find(|l| l.contains("error:"))
                    .unwrap_or("it printed no report")
                    .trim_start_matches("bmw-netcheck: error: ")
                    .to_owned();
                return Err(AppError::Input(format!("over {name}: {line}")));
            }
        }
    }
    Ok(merge(parts, kb, started, started_at))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Int,
    Term,
}

/// Ctrl-C and SIGTERM, caught while the children run: this process must live to merge what
/// they report.
struct Signals {
    rt: tokio::runtime::Runtime,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Result<Signals, AppError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::Internal(format!("cannot start the signal watcher: {e}")))?;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let _entered = rt.enter();
            let int = signal(SignalKind::interrupt()).ok();
            let term = signal(SignalKind::terminate()).ok();
            drop(_entered);
            Ok(Signals { rt, int, term })
        }
        #[cfg(not(unix))]
        Ok(Signals { rt })
    }

    /// Waits up to `d` for a signal.
    fn wait(&mut self, d: Duration) -> Option<Sig> {
        #[cfg(unix)]
        {
            let (int, term) = (&mut self.int, &mut self.term);
            self.rt.block_on(async {
                let int = async {
                    match int {
                        Some(s) => s.recv().await.map(|_| Sig::Int),
                        None => std::future::pending().await,
                    }
                };
                let term = async {
                    match term {
                        Some(s) => s.recv().await.map(|_| Sig::Term),
                        None => std::future::pending().await,
                    }
                };
                tokio::time::timeout(d, async {
                    tokio::select! {
                        s = int => s,
                        s = term => s,
                    }
                })
                .await
                .ok()
                .flatten()
            })
        }
        #[cfg(not(unix))]
        {
            self.rt.block_on(tokio::time::sleep(d));
            None
        }
    }
}

/// Sends the signal to the children that may still run.
fn forward(pids: &[u32], sig: Sig) {
    #[cfg(unix)]
    for pid in pids {
        let signal = match sig {
            Sig::Int => rustix::process::Signal::INT,
            Sig::Term => rustix::process::Signal::TERM,
        };
        if let Some(p) = i32::try_from(*pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(p, signal);
        }
    }
    #[cfg(not(unix))]
    let _ = (pids, sig);
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

    #[test]
    fn child_runs_get_the_run_options_and_one_interface() {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from([
            "bmw-netcheck",
            "--via",
            "all",
            "--only",
            "dns,tcp",
            "--resolver",
            "10.0.0.53",
            "--deadline",
            "7s",
            "-o",
            "/tmp/x.json",
        ]);
        let a: Vec<String> = child_args(&cli.run, "wlan0")
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let joined = a.join(" ");
        assert!(joined.starts_with("run --region rest_of_world"), "{joined}");
        for part in [
            "--only dns,tcp",
            "--resolver 10.0.0.53:53",
            "--deadline 7s",
            "--format json",
            "--interface wlan0",
            "--no-history",
        ] {
            assert!(joined.contains(part), "{part} missing: {joined}");
        }
        assert!(
            !joined.contains("--via") && !joined.contains("x.json"),
            "{joined}"
        );
    }
}
