//! Runs of this binary as child processes: how they are told what to check, started, watched
//! and read.
//!
//! Two commands start runs of their own. `watch` makes each of its runs a child, so whatever a
//! run allocates leaves with its process and a watch of any length stays small. A run over
//! several uplinks makes one child per uplink, because a socket is bound to an interface for
//! the life of a process (`crate::iface`). Both need the same four things, and this module is
//! the one place that does them:
//!
//! - the child's command line, written from the run's [`Plan`] (never from the parent's own
//!   command line, so whatever the parent was told that a child must not do — write a file,
//!   take the lock, push — cannot slip through);
//! - its start, with its report read from stdout and its stderr kept;
//! - Ctrl-C and SIGTERM passed on to every child under way ([`Signals`]), so each reports what
//!   it finished, as a single run does, while the parent lives on to use those reports;
//! - one reading of the outcome: the report, or one line that says why there is none, the same
//!   for both commands.

use crate::error::AppError;
use crate::model::Report;
use crate::plan::Plan;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much longer than its deadline a child may take (to write its report, to exit) before it
/// counts as stuck and is killed. The child keeps the deadline itself; this only guards the
/// parent against a child that never ends.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often a waiting parent looks whether its child has ended.
const POLL: Duration = Duration::from_millis(10);

/// The prefix of the one error line a run prints before exit 3 (see `main.rs`).
const ERROR_PREFIX: &str = "bmw-netcheck: error: ";

/// This program, to start child runs with. On Linux `/proc/self/exe`, which still works when the
/// binary was replaced (an upgrade) during a long watch.
pub fn self_exe() -> Result<PathBuf, AppError> {
    if cfg!(target_os = "linux") && Path::new("/proc/self/exe").exists() {
        return Ok("/proc/self/exe".into());
    }
    std::env::current_exe()
        .map_err(|e| AppError::Internal(format!("cannot find this program's binary: {e}")))
}

/// The command line of a child run: `run` with what it checks and how, as a JSON report without
/// colour, over the links and into the history the plan names. Output, lock, jitter and push
/// stay with the process that started it.
pub fn command_line(plan: &Plan) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["run".into()];
    let mut pair = |k: &str, v: OsString| {
        a.push(k.into());
        a.push(v);
    };
    let scope = &plan.scope;
    pair("--region", scope.region.clone().into());
    if let Some(p) = &scope.profile {
        pair("--profile", p.clone().into());
    }
    if let Some(s) = scope.service {
        let name = clap::ValueEnum::to_possible_value(&s).map(|v| v.get_name().to_owned());
        pair("--service", name.unwrap_or_default().into());
    }
    if let Some(r) = &plan.probing.resolver {
        pair("--resolver", r.to_string().into());
    }
    if let Some(c) = &plan.probing.control {
        pair("--control", c.to_string().into());
    }
    if let Some(c) = &scope.ca_file {
        pair("--ca-file", c.clone().into());
    }
    match (&plan.probing.pac, &plan.probing.proxy) {
        (Some(pac), _) => pair("--pac", pac.into()),
        (None, crate::proxysettings::ProxyFlag::Url(url)) => pair("--proxy", url.into()),
        (None, crate::proxysettings::ProxyFlag::Direct) => pair("--proxy", "direct".into()),
        (None, crate::proxysettings::ProxyFlag::Auto) => {}
    }
    let duration = |d: Duration| humantime::format_duration(d).to_string().into();
    pair("--timeout", duration(plan.probing.timeout));
    pair("--deadline", duration(plan.deadline));
    let names = |ps: &mut dyn Iterator<Item = &crate::model::Probe>| {
        ps.map(|p| p.name()).collect::<Vec<_>>().join(",").into()
    };
    if let Some(only) = plan.selection.only.as_ref().filter(|o| !o.is_empty()) {
        pair("--only", names(&mut only.iter()));
    }
    if !plan.selection.skip.is_empty() {
        pair("--skip", names(&mut plan.selection.skip.iter()));
    }
    pair("--samples", plan.probing.samples.to_string().into());
    for p in &scope.storage_paths {
        pair("--storage-path", p.clone().into());
    }
    for s in scope.stun.iter().filter(|_| scope.egress) {
        pair("--stun", s.into());
    }
    pair("--format", "json".into());
    pair("--color", "never".into());
    for i in &plan.links.interfaces {
        pair("--interface", i.into());
    }
    if plan.links.every_uplink {
        pair("--via", "all".into());
    }
    match (&plan.record.history, plan.record.disabled) {
        (Some(path), _) => pair("--history", path.into()),
        (None, true) => a.push("--no-history".into()),
        (None, false) => {}
    }
    if scope.egress {
        a.push("--egress".into());
    }
    a
}

/// A child run under way.
pub struct Running {
    /// Who the run is, in its messages: "" for the only run, "over wlan0" for an uplink's.
    label: String,
    child: std::process::Child,
    deadline: Duration,
    started: Instant,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

/// Reads a pipe to its end on a thread of its own, so a child never blocks on a full pipe.
fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        all
    })
}

impl Running {
    /// Starts `exe` with `argv` (for a run: [`self_exe`] and [`command_line`]); `signals` passes
    /// Ctrl-C and SIGTERM on to it until it ends; `deadline` is the one the child keeps.
    pub fn start(
        exe: &Path,
        argv: &[OsString],
        label: &str,
        deadline: Duration,
        signals: &Signals,
    ) -> Result<Running, AppError> {
        let mut child = Command::new(exe)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| AppError::Internal(format!("cannot start a run{}: {e}", on(label))))?;
        signals.enter(child.id());
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            signals.reap(&mut child);
            return Err(AppError::Internal(format!("no pipe to a run{}", on(label))));
        };
        Ok(Running {
            label: label.to_owned(),
            child,
            deadline,
            started: Instant::now(),
            stdout: reader(out),
            stderr: reader(err),
        })
    }

    /// Waits for the run to end and reads its report. Whatever the run said on stderr beside a
    /// report (a warning: the history could not be written) is passed on. A run that ends
    /// without a report, or does not end within its deadline and [`GRACE`], is exit 3 with one
    /// line that says why.
    pub fn report(mut self, signals: &Signals) -> Result<Report, AppError> {
        let limit = self.started + self.deadline + GRACE;
        let status = signals.wait(&mut self.child, limit);
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        match (status, serde_json::from_slice::<Report>(&stdout)) {
            (Some(_), Ok(report)) => {
                eprint!("{stderr}");
                Ok(report)
            }
            (None, _) => Err(AppError::Input(format!(
                "{}the run did not end within its deadline of {} and was stopped",
                prefix(&self.label),
                humantime::format_duration(self.deadline)
            ))),
            (Some(status), Err(_)) => Err(AppError::Input(format!(
                "{}{}",
                prefix(&self.label),
                why_no_report(&stderr, status)
            ))),
        }
    }
}

/// " over wlan0" after a noun, or nothing.
fn on(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" {label}")
    }
}

/// "over wlan0: " before a sentence, or nothing.
fn prefix(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!("{label}: ")
    }
}

/// Why a run that ended gave no report: its own error line, or how it ended.
fn why_no_report(stderr: &str, status: std::process::ExitStatus) -> String {
    if let Some(line) = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(ERROR_PREFIX))
    {
        return line.trim().to_owned();
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("the run ended without a report (killed by signal {sig})");
        }
    }
    match status.code() {
        Some(code) => format!("the run ended without a report (exit status {code})"),
        None => "the run ended without a report".to_owned(),
    }
}

/// Ctrl-C and SIGTERM, caught from before the first child starts until this process ends: each
/// one is passed on to every child under way (Ctrl-C at a terminal reaches them already; a second
/// one is harmless to a run that is already wrapping up) and remembered, so a command can stop
/// starting new runs.
#[derive(Clone)]
pub struct Signals(Arc<Shared>);

#[derive(Default)]
struct Shared {
    caught: AtomicBool,
    /// The children under way. A child leaves the list in the same hold of the lock in which it
    /// is reaped, so a signal is never sent to a process id that has been given to another.
    children: Mutex<Vec<u32>>,
    /// Wakes [`Signals::sleep`] when a signal arrives.
    woken: Condvar,
}

/// The signals passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    Int,
    Term,
}

impl Signals {
    /// Catches Ctrl-C and SIGTERM from now on, on a thread of its own.
    pub fn catch() -> Result<Signals, AppError> {
        let signals = Signals(Arc::new(Shared::default()));
        let rt = crate::runtime::build(crate::runtime::Threads::Current, "signals")?;
        // Registered here, before any child starts, so no signal is missed.
        #[cfg(unix)]
        let (int, term) = rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            (
                signal(SignalKind::interrupt()).ok(),
                signal(SignalKind::terminate()).ok(),
            )
        });
        let passer = signals.clone();
        std::thread::spawn(move || {
            rt.block_on(async {
                #[cfg(unix)]
                {
                    let (mut int, mut term) = (int, term);
                    loop {
                        let sig = next_signal(&mut int, &mut term).await;
                        passer.pass_on(sig);
                    }
                }
                #[cfg(not(unix))]
                {
                    while tokio::signal::ctrl_c().await.is_ok() {
                        passer.pass_on(Sig::Int);
                    }
                }
            })
        });
        Ok(signals)
    }

    /// Has Ctrl-C or SIGTERM arrived?
    pub fn caught(&self) -> bool {
        self.0.caught.load(Ordering::SeqCst)
    }

    /// Waits `d`, or until a signal arrives; true when one has.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut guard = self.children();
        while !self.caught() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            guard = self
                .0
                .woken
                .wait_timeout(guard, until - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        self.caught()
    }

    /// Remembers the signal and sends it to every child under way.
    pub fn pass_on(&self, sig: Sig) {
        self.0.caught.store(true, Ordering::SeqCst);
        let children = self.children();
        for pid in children.iter() {
            send(*pid, sig);
        }
        self.0.woken.notify_all();
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<u32>> {
        self.0.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enter(&self, pid: u32) {
        self.children().push(pid);
    }

    /// Kills and reaps a child that cannot be used.
    fn reap(&self, child: &mut std::process::Child) {
        let _ = child.kill();
        let mut children = self.children();
        let _ = child.wait();
        children.retain(|p| *p != child.id());
    }

    /// Waits for the child to end (and reaps it), or kills it at `limit`: `None` then.
    fn wait(
        &self,
        child: &mut std::process::Child,
        limit: Instant,
    ) -> Option<std::process::ExitStatus> {
        loop {
            {
                let mut children = self.children();
                match child.try_wait() {
                    Ok(Some(status)) => {
                        children.retain(|p| *p != child.id());
                        return Some(status);
                    }
                    Ok(None) if Instant::now() < limit => {}
                    Ok(None) | Err(_) => {
                        drop(children);
                        self.reap(child);
                        return None;
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The next Ctrl-C or SIGTERM; never, when neither could be caught.
#[cfg(unix)]
async fn next_signal(
    int: &mut Option<tokio::signal::unix::Signal>,
    term: &mut Option<tokio::signal::unix::Signal>,
) -> Sig {
    async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
        if let Some(s) = s
            && s.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
    tokio::select! {
        _ = recv(int) => Sig::Int,
        _ = recv(term) => Sig::Term,
    }
}

/// Sends `sig` to the process `pid`.
fn send(pid: u32, sig: Sig) {
    #[cfg(unix)]
    {
        let signal = match sig {
            Sig::Int => rustix::process::Signal::INT,
            Sig::Term => rustix::process::Signal::TERM,
        };
        if let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(p, signal);
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, sig);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str]) -> Plan {
        let cli = crate::cli::Cli::parse_from(
            std::iter::once("bmw-netcheck").chain(args.iter().copied()),
        );
        Plan::of(&cli.run)
    }

    fn joined(argv: &[OsString]) -> String {
        argv.iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Signals that are passed on by hand: a test must not catch the test process's own.
    fn by_hand() -> Signals {
        Signals(Arc::default())
    }

    fn sh(script: &str, signals: &Signals, deadline: Duration) -> Running {
        let argv: Vec<OsString> = vec!["-c".into(), script.into()];
        Running::start(Path::new("/bin/sh"), &argv, "", deadline, signals).unwrap()
    }

    #[test]
    fn the_command_line_says_what_to_check_and_nothing_the_parent_keeps() {
        let a = joined(&command_line(&plan(&[
            "--service",
            "cardata",
            "--only",
            "dns,tcp",
            "--resolver",
            "10.0.0.53",
            "--deadline",
            "7s",
            "--history",
            "/var/h.jsonl",
            "--interface",
            "wlan0",
            "-o",
            "/tmp/x.json",
            "--lock",
            "--jitter",
            "3s",
            "--push",
            "http://127.0.0.1:9091",
        ])));
        assert!(a.starts_with("run --region rest_of_world"), "{a}");
        for part in [
            "--service cardata",
            "--only dns,tcp",
            "--resolver 10.0.0.53:53",
            "--timeout 5s",
            "--deadline 7s",
            "--samples 5",
            "--format json --color never",
            "--interface wlan0",
            "--history /var/h.jsonl",
        ] {
            assert!(a.contains(part), "{part} missing: {a}");
        }
        for kept in ["x.json", "--lock", "--jitter", "--push", "--via"] {
            assert!(!a.contains(kept), "{kept} passed on: {a}");
        }
        // The public-address check, asked for on the command line, is asked for again.
        let e = joined(&command_line(&plan(&[
            "--egress",
            "--stun",
            "192.0.2.7:3478",
            "--interface",
            "wlan0",
        ])));
        assert!(
            e.contains("--stun 192.0.2.7:3478") && e.ends_with("--egress"),
            "{e}"
        );
        let b = joined(&command_line(&plan(&["--via", "all", "--no-history"])));
        assert!(b.ends_with("--via all --no-history"), "{b}");
        assert!(!b.contains("--only") && !b.contains("--skip"), "{b}");
    }

    /// A report as a child prints it (the fields every report has).
    const REPORT: &str = r#"{"schema_version":1,"report_id":"child-test","tool":{"name":"bmw-netcheck","version":"0"},"started_at":"2026-01-01T00:00:00.000Z","duration_ms":1.0,"region":"r","status":"pass","checks":[],"suspects":[]}"#;

    #[test]
    fn a_report_is_read_and_a_missing_one_is_said_in_one_line() {
        let signals = by_hand();
        let d = Duration::from_secs(20);
        let ok = sh(
            &format!("printf '%s' '{REPORT}'; echo warned >&2"),
            &signals,
            d,
        );
        assert_eq!(ok.report(&signals).unwrap().report_id, "child-test");

        let cases = [
            (
                "echo 'bmw-netcheck: error: profile p.toml: no endpoint' >&2; exit 3",
                "profile p.toml: no endpoint",
            ),
            (
                "kill -9 $$",
                "the run ended without a report (killed by signal 9)",
            ),
            ("exit 0", "the run ended without a report (exit status 0)"),
            (
                "echo '{\"half\":' ; exit 2",
                "the run ended without a report (exit status 2)",
            ),
        ];
        for (script, said) in cases {
            let err = sh(script, &signals, d).report(&signals).unwrap_err();
            assert!(matches!(err, AppError::Input(_)), "{err:?}");
            assert_eq!(err.to_string(), said, "{script}");
        }
        // A run over an uplink says which.
        let argv: Vec<OsString> = vec!["-c".into(), "kill -9 $$".into()];
        let over = Running::start(Path::new("/bin/sh"), &argv, "over wlan0", d, &signals)
            .unwrap()
            .report(&signals)
            .unwrap_err();
        assert_eq!(
            over.to_string(),
            "over wlan0: the run ended without a report (killed by signal 9)"
        );
        assert!(signals.children().is_empty(), "every child left the list");
    }

    #[test]
    fn a_signal_is_passed_on_to_the_run_under_way() {
        let signals = by_hand();
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let script = format!(
            "trap 'exit 7' TERM; : > '{}'; while :; do sleep 0.02; done",
            ready.display()
        );
        let run = sh(&script, &signals, Duration::from_secs(1));
        while !ready.exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        signals.pass_on(Sig::Term);
        assert!(signals.caught());
        assert!(
            signals.sleep(Duration::from_secs(3600)),
            "a caught signal ends the sleep"
        );
        // The run's own trap answered: it got the signal, it was not stopped at its limit.
        let err = run.report(&signals).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the run ended without a report (exit status 7)"
        );
    }

    #[test]
    fn a_run_that_never_ends_is_stopped_after_its_deadline() {
        let signals = by_hand();
        let run = sh(
            "while :; do sleep 0.02; done",
            &signals,
            Duration::from_millis(1),
        );
        let err = run.report(&signals).unwrap_err();
        assert!(
            err.to_string()
                .contains("did not end within its deadline of 1ms"),
            "{err}"
        );
        assert!(signals.children().is_empty());
    }
}
