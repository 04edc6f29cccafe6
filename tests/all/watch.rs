//! `watch`: repeated runs against an endpoint the test takes down and brings back between runs.
//! Piped, one line per run and the summary (down, flapping, passing again); on a pseudo-terminal,
//! the live view redrawn in place; Ctrl-C ends the watch with the summary; every run is in the
//! history; the exit code is the worst status seen.

use crate::support::*;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until the history has `n` lines (a run finished); fails after 30 s.
fn wait_for_runs(path: &Path, n: usize) {
    let t = Instant::now();
    while lines_in(path) < n {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "watch did not record run {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A watch of one IP-literal endpoint (tcp only), every second, recording to `log`.
fn watch(profile: &ProfileFile, log: &Path, count: Option<u32>) -> Netcheck {
    let mut nc = Netcheck::bare()
        .arg("watch")
        .arg("--every")
        .arg("1s")
        .arg("--only")
        .arg("tcp")
        .arg("--timeout")
        .arg("2s")
        .arg("--profile")
        .arg(profile.path())
        .arg("--history")
        .arg(log);
    if let Some(c) = count {
        nc = nc.arg("--count").arg(c.to_string());
    }
    nc
}

/// An address whose listener the test opens and closes: up, down, up, ...
struct Toggle {
    addr: SocketAddr,
    listener: Option<TcpListener>,
}

impl Toggle {
    fn new() -> Toggle {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        Toggle {
            addr: l.local_addr().expect("address"),
            listener: None,
        }
    }

    fn set(&mut self, up: bool) {
        self.listener = if up {
            Some(TcpListener::bind(self.addr).expect("rebind the endpoint's port"))
        } else {
            None
        };
    }
}

#[test]
fn piped_watch_prints_a_line_per_run_and_a_summary_of_a_flapping_endpoint() {
    let mut ep = Toggle::new();
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", ep.addr.port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");
    ep.set(false);
    let child = watch(&profile, &log, Some(4))
        .arg("--color")
        .arg("never")
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    // down, up, down, up: four runs, three changes.
    for (done, up) in [(1, true), (2, false), (3, true)] {
        wait_for_runs(&log, done);
        ep.set(up);
    }
    let out = child.wait_with_output().expect("wait for watch");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "worst status seen\n{stdout}\n{stderr}"
    );
    let runs: Vec<&str> = stdout.lines().filter(|l| l.contains(" run ")).collect();
    assert_eq!(runs.len(), 4, "{stdout}");
    for (i, (l, verdict)) in runs
        .iter()
        .zip(["FAIL", "PASS", "FAIL", "PASS"])
        .enumerate()
    {
        assert!(l.contains(&format!("run {} ", i + 1)), "{l}");
        assert!(l.contains(verdict), "run {}: {l}", i + 1);
    }
    assert!(runs[0].contains("api tcp.refused"), "{}", runs[0]);
    assert!(
        stdout.contains("watch: 4 run(s)") && stdout.contains("worst status seen: FAIL"),
        "{stdout}"
    );
    assert!(
        stdout.contains("api tcp: flapping — failed in 2 of 4 runs, 3 changes"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "no escapes on a pipe:\n{stdout}"
    );
    assert_eq!(lines_in(&log), 4, "every run is in the history");
}

#[test]
fn json_watch_is_json_lines_and_passing_again_is_named() {
    let mut ep = Toggle::new();
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", ep.addr.port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");
    ep.set(false);
    let child = watch(&profile, &log, Some(3))
        .arg("--format")
        .arg("json")
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    wait_for_runs(&log, 1);
    ep.set(true);
    let out = child.wait_with_output().expect("wait for watch");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let args: Vec<std::ffi::OsString> = vec!["watch".into(), "--format".into(), "json".into()];
    crate::support::schema::validate_outcome(&args, &stdout);
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON report"))
        .collect();
    let statuses: Vec<&str> = reports
        .iter()
        .map(|r| r["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(statuses, ["fail", "pass", "pass"]);
    assert!(
        stderr.contains("api tcp: passing again since run 2 — failed in 1 of 3 runs"),
        "{stderr}"
    );
}

#[test]
fn on_a_terminal_the_view_is_redrawn_in_place() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", port)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");
    let out = watch(&profile, &log, Some(2)).run_on_tty();
    out.assert_exit(0);
    let screen = &out.stdout;
    // Two frames; the second goes back up over the first (cursor to previous line, clear down).
    assert_eq!(
        screen.matches("bmw-netcheck watch · every 1s").count(),
        2,
        "{screen:?}"
    );
    let second = screen
        .find("run 2 of 2")
        .expect("the second frame names its run");
    let before = &screen[..second];
    let first_frame_lines = screen[..screen.find("run 1 of 2").expect("first frame")]
        .matches('\n')
        .count();
    assert_eq!(first_frame_lines, 0, "the first frame starts the view");
    // Cursor up over the first frame (CSI n F), then clear from there down (CSI J).
    let up = before
        .rfind("F\u{1b}[J")
        .expect("cursor up and clear before the second frame");
    let csi = before[..up]
        .rfind("\u{1b}[")
        .expect("the CSI of the cursor move");
    let n: usize = before[csi + 2..up].parse().expect("a line count");
    assert!(n >= 4, "moves up over the whole first frame ({n} lines)");
    assert!(screen.contains("tcp.ok"), "{screen:?}");
    assert!(
        screen.contains("every check passed in every run"),
        "{screen:?}"
    );
    assert_eq!(lines_in(&log), 2);
}

#[test]
fn ctrl_c_ends_the_watch_with_the_summary_and_the_worst_status() {
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", closed_port().port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");
    let child = watch(&profile, &log, None)
        .arg("--color")
        .arg("never")
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    wait_for_runs(&log, 2);
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: plain kill(2) to the child this test spawned.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait for watch");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "Ctrl-C ends the watch at once"
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("worst status seen: FAIL"), "{stdout}");
    assert!(stdout.contains("api tcp: down — failed in all"), "{stdout}");
}

#[test]
fn a_watch_that_cannot_run_is_exit_3_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[endpoint]]\nname = \"no host\"\n").expect("write");
    let out = Netcheck::bare()
        .arg("watch")
        .arg("--every")
        .arg("1s")
        .arg("--count")
        .arg("2")
        .arg("--no-history")
        .arg("--profile")
        .arg(&bad)
        .run();
    out.assert_exit(3);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(out.stderr.contains("profile"), "{}", out.describe());
    let out = Netcheck::bare()
        .arg("watch")
        .arg("--format")
        .arg("markdown")
        .run();
    out.assert_exit(3);
    assert!(
        out.stderr.contains("use human or json"),
        "{}",
        out.describe()
    );
}

#[test]
fn redacted_json_watch_lines_lose_the_personal_details() {
    let mut ep = Toggle::new();
    ep.set(true);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", ep.addr.port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");
    let out = watch(&profile, &log, Some(1))
        .arg("--format")
        .arg("json")
        .arg("--redact")
        .command()
        .output()
        .expect("run watch");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout.lines().next().expect("one line");
    let r: serde_json::Value = serde_json::from_str(line).expect("a JSON report");
    assert_eq!(r["device"]["hostname"], "<hostname>", "{line}");
    assert!(
        r["redacted"].as_array().is_some_and(|k| !k.is_empty()),
        "{line}"
    );
}
