//! End-to-end tests of the history log (GitHub issue 4): concurrent appends, the `history`
//! command's trends and flapping, corrupt lines, and a history that cannot be written.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

/// An engine-like run (JSON, 1 s step timeout) that records its history: `Netcheck::engine`
/// adds `--no-history`, which conflicts with `--history`.
pub fn recorded(profile: &ProfileFile, history: impl AsRef<Path>) -> Netcheck {
    Netcheck::bare()
        .format("json")
        .timeout("1s")
        .samples(3)
        .arg("--profile")
        .arg(profile.path())
        .arg("--history")
        .arg(history.as_ref())
}

/// A run that fails fast: one IP-literal endpoint on a closed port, tcp only.
fn fast_fail() -> ProfileFile {
    ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", closed_port().port())])
}

fn history_cmd(path: &Path) -> Netcheck {
    Netcheck::bare()
        .arg("history")
        .arg("--history")
        .arg(path)
        .arg("--color")
        .arg("never")
}

#[test]
fn fifty_concurrent_runs_leave_fifty_valid_lines() {
    const RUNS: usize = 50;
    let profile = fast_fail();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");
    let started = Instant::now();
    let children: Vec<_> = (0..RUNS)
        .map(|_| {
            recorded(&profile, &log)
                .only("tcp")
                .timeout("2s")
                .command()
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a run")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for a run");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elapsed = started.elapsed();
    eprintln!("{RUNS} concurrent runs took {elapsed:?}");

    let text = std::fs::read_to_string(&log).expect("read the history");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), RUNS);
    let mut ids = BTreeSet::new();
    for line in &lines {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        crate::support::schema::assert_valid(crate::support::schema::Doc::Report, &r);
        assert_eq!(r["status"], "fail");
        ids.insert(r["report_id"].as_str().expect("report_id").to_owned());
    }
    assert_eq!(ids.len(), RUNS, "every run has its own line");
    assert!(text.ends_with('\n'));

    let out = history_cmd(&log)
        .arg("--format")
        .arg("json")
        .arg("--last")
        .arg("100")
        .run();
    out.assert_exit(0);
    let h: Value = serde_json::from_str(&out.stdout).expect("history JSON");
    assert_eq!(h["runs_total"], RUNS);
    assert_eq!(h["lines_skipped"], 0);
    assert_eq!(h["runs"].as_array().map(Vec::len), Some(RUNS));
    assert_eq!(h["failing_checks"][0]["pattern"], "down");
}

#[test]
fn history_shows_runs_trends_and_flapping() {
    let listening = RawTcpServer::start(RawMode::Silent);
    let up = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", listening.port())]);
    let down = fast_fail();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("h.jsonl");
    // pass, fail, pass, fail, pass: tcp on api flaps.
    for (i, profile) in [&up, &down, &up, &down, &up].into_iter().enumerate() {
        let out = recorded(profile, &log).only("tcp,latency").run();
        out.assert_exit(if i % 2 == 0 { 0 } else { 2 });
    }
    let out = history_cmd(&log).run();
    out.assert_exit(0);
    let text = &out.stdout;
    for needle in [
        "the last 5 of 5 run(s), newest last",
        "✗ fail  api tcp.refused",
        "Trend ✓✗✓✗✓   3 of 5 passed",
        "api  latency ",
        "failed in 2 of 5 runs, first ",
        "✓✗✓✗✓  tcp on api failed in 2 of the last 5 runs: flapping",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?}\n{}",
            out.describe()
        );
    }
    let rows = text
        .lines()
        .filter(|l| l.contains(" pass ") || l.contains(" fail "))
        .count();
    assert_eq!(rows, 5, "{text}");

    // --last narrows the window.
    let out = history_cmd(&log).arg("--last").arg("2").run();
    assert!(
        out.stdout.contains("the last 2 of 5 run(s)"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("Trend ✗✓"), "{}", out.describe());
}

#[test]
fn a_corrupt_line_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("h.jsonl");
    let profile = fast_fail();
    let run = || {
        recorded(&profile, &log).only("tcp").run().assert_exit(2);
    };
    run();
    // A half-written line (a crash mid-write) and a hand edit.
    let mut text = std::fs::read_to_string(&log).expect("read");
    text.push_str("this is not json\n{\"schema_version\":1,\"report_id\":\"x");
    std::fs::write(&log, text).expect("corrupt the log");
    run();

    let out = history_cmd(&log).arg("--format").arg("json").run();
    out.assert_exit(0);
    let h: Value = serde_json::from_str(&out.stdout).expect("history JSON");
    assert_eq!(h["runs_total"], 2);
    assert_eq!(h["lines_skipped"], 2);
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.describe());
    assert!(
        out.stderr.contains("line 2: not a report"),
        "{}",
        out.describe()
    );
    // The second run did not glue its line onto the torn one.
    let raw = std::fs::read_to_string(&log).expect("read");
    assert_eq!(
        raw.lines()
            .filter(|l| l.starts_with("{\"schema_version\":1,\"report_id\":\"") && l.ends_with('}'))
            .count(),
        2
    );
}

#[test]
fn an_unwritable_history_keeps_the_report_and_the_verdict() {
    let profile = fast_fail();
    let out = recorded(&profile, "/nonexistent-bmw-netcheck-dir/h.jsonl")
        .only("tcp")
        .run();
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "api", "tcp"), "tcp.refused");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("warning: this run was not recorded"),
        "{}",
        out.describe()
    );
}

/// `XDG_STATE_HOME` decides the default location on Linux only (macOS and Windows have their own).
#[cfg(target_os = "linux")]
#[test]
fn no_history_writes_nothing_and_default_goes_to_the_state_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = fast_fail();
    Netcheck::engine(&profile)
        .only("tcp")
        .env("XDG_STATE_HOME", &dir.path().to_string_lossy())
        .run()
        .assert_exit(2);
    assert!(
        !dir.path().join("bmw-netcheck").exists(),
        "--no-history wrote something"
    );

    // Without --no-history (Netcheck::bare adds no flags), the run lands in the state dir.
    let out = Netcheck::bare()
        .arg("--profile")
        .arg(profile.path())
        .arg("--only")
        .arg("tcp")
        .arg("--format")
        .arg("json")
        .env("XDG_STATE_HOME", &dir.path().to_string_lossy())
        .run();
    out.assert_exit(2);
    let log = dir.path().join("bmw-netcheck").join("history.jsonl");
    assert_eq!(
        std::fs::read_to_string(&log)
            .expect("default history")
            .lines()
            .count(),
        1
    );
    let shown = Netcheck::bare()
        .arg("history")
        .arg("--color")
        .arg("never")
        .env("XDG_STATE_HOME", &dir.path().to_string_lossy())
        .run();
    shown.assert_exit(0);
    assert!(
        shown.stdout.contains("the last 1 of 1 run(s)"),
        "{}",
        shown.describe()
    );
}

#[test]
fn history_of_a_missing_file_says_there_is_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = history_cmd(&dir.path().join("none.jsonl")).run();
    out.assert_exit(0);
    assert!(
        out.stdout.contains("No runs recorded"),
        "{}",
        out.describe()
    );
}
