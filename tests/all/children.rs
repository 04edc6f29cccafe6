//! Runs that start runs of their own: `watch` (a child process per run) and a run over several
//! uplinks (a child per uplink) share one way of starting, reading and signalling their
//! children (`src/child.rs`). These cases drive the real binary and its real children on
//! loopback: a repeated `--interface lo` is a run over uplinks with a single child bound to the
//! loopback interface, so no network namespace is needed.

use crate::support::*;
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How long a child may take to appear before the case fails (a hang, not a timing).
const APPEAR: Duration = Duration::from_secs(30);

/// The processes `pid` has started, from `/proc/<pid>/task/<tid>/children` of every thread.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Does `pid` catch SIGTERM (its `SigCgt` mask in `/proc/<pid>/status`)?
fn catches_sigterm(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

/// Waits until `pid` has started a child that has connected to `server` (which had accepted
/// `before` connections) and catches SIGTERM, so it waits on the silent server with its
/// handlers in place; the child's pid.
fn the_child_connected(pid: u32, server: &RawTcpServer, before: usize) -> u32 {
    let until = Instant::now() + APPEAR;
    loop {
        if let Some(&child) = children_of(pid).first()
            && server.accepted() > before
            && catches_sigterm(child)
        {
            return child;
        }
        assert!(
            Instant::now() < until,
            "no child run of {pid} reached the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run of tcp and tls against a server that accepts and never answers: it waits in the tls
/// stage until its 20 s timeout, unless something ends it first.
fn waiting(profile: &ProfileFile, command: &[&str]) -> Netcheck {
    let mut nc = Netcheck::bare();
    for a in command {
        nc = nc.arg(*a);
    }
    nc.arg("--only")
        .arg("tcp,tls")
        .arg("--timeout")
        .arg("20s")
        .arg("--deadline")
        .arg("30s")
        .arg("--no-history")
        .arg("--format")
        .arg("json")
        .arg("--profile")
        .arg(profile.path())
}

const WATCH: &[&str] = &["watch", "--every", "1s", "--count", "3"];
const OVER_LO: &[&str] = &["run", "--interface", "lo", "--interface", "lo"];

fn spawn(nc: &Netcheck) -> Child {
    nc.command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bmw-netcheck")
}

fn signal(pid: u32, sig: i32) {
    let pid = i32::try_from(pid).expect("pid");
    // SAFETY: plain kill(2) to a process this test started, or to one that process started.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Why a socket cannot be bound to the loopback interface here (SO_BINDTODEVICE), if it cannot.
fn lo_unbindable() -> Option<String> {
    let bound = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .and_then(|s| s.bind_device(Some(b"lo")));
    bound
        .err()
        .map(|e| format!("cannot bind a socket to the loopback interface here: {e}"))
}

/// The reports on stdout: a JSON line per run from `watch`, one document from `run`.
fn reports(command: &[&str], stdout: &str) -> Vec<Value> {
    let parse = |t: &str| serde_json::from_str(t).unwrap_or_else(|e| panic!("{e}: {t}"));
    if command == WATCH {
        stdout.lines().map(parse).collect()
    } else {
        vec![parse(stdout)]
    }
}

/// A child that dies without a report (killed) is one line on stderr and exit 3, in the same
/// words under `watch` and in a run over uplinks (which names the uplink).
#[test]
fn a_killed_child_run_is_the_same_one_line_error_in_both_commands() {
    if let Some(why) = lo_unbindable() {
        skip(&format!("children: {why}"));
        return;
    }
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    let mut lines = Vec::new();
    for command in [WATCH, OVER_LO] {
        let before = server.accepted();
        let parent = spawn(&waiting(&profile, command));
        let child = the_child_connected(parent.id(), &server, before);
        signal(child, libc::SIGKILL);
        let out = parent.wait_with_output().expect("wait for the parent");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(3), "{command:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{command:?}");
        assert_eq!(stderr.lines().count(), 1, "{command:?}: {stderr}");
        lines.push(stderr.trim_end().to_owned());
    }
    assert_eq!(
        lines,
        [
            "bmw-netcheck: error: the run ended without a report (killed by signal 9)",
            "bmw-netcheck: error: over lo: the run ended without a report (killed by signal 9)",
        ]
    );
}

/// SIGTERM to the parent alone (a service manager stopping it, not Ctrl-C at a terminal, which
/// reaches every process) is passed on to the run under way: the run reports what it finished
/// and says what was cut short, and the parent prints that report. Without the passing on, the
/// run would wait out its 20 s timeout and report `tls.timeout` instead.
#[test]
fn sigterm_to_the_parent_reaches_the_run_under_way_in_both_commands() {
    if let Some(why) = lo_unbindable() {
        skip(&format!("children: {why}"));
        return;
    }
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    for command in [WATCH, OVER_LO] {
        let before = server.accepted();
        let parent = spawn(&waiting(&profile, command));
        the_child_connected(parent.id(), &server, before);
        signal(parent.id(), libc::SIGTERM);
        let out = parent.wait_with_output().expect("wait for the parent");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_ne!(out.status.code(), Some(3), "{command:?}: {stderr}");
        // One report: watch stops after the interrupted run instead of starting another.
        let reports = reports(command, &stdout);
        assert_eq!(reports.len(), 1, "{command:?}: {stdout}\n{stderr}");
        let tls = stage(&reports[0], "api", "tls");
        assert_eq!(tls["status"], "skip", "{command:?}: {tls:#}");
        let summary = tls["summary"].as_str().unwrap_or("");
        assert!(summary.contains("interrupted"), "{command:?}: {tls:#}");
    }
}
