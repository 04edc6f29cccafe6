//! `show`: a saved JSON report, or a line of the history log, re-rendered in every format;
//! stdin; `--run REPORT_ID`; a newer schema_version refused with one line; outside text in a
//! saved file made harmless; a symlink refused.

use crate::support::*;
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;

/// A fast failing run (one IP literal on a closed port, tcp only) saved as JSON and recorded.
fn saved(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Value) {
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", closed_port().port())]);
    let file = dir.join("report.json");
    let log = dir.join("history.jsonl");
    let out = Netcheck::bare()
        .format("json")
        .only("tcp")
        .timeout("2s")
        .arg("--profile")
        .arg(profile.path())
        .arg("--history")
        .arg(&log)
        .arg("-o")
        .arg(&file)
        .run();
    out.assert_exit(2);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("report written"))
            .expect("the saved report is JSON");
    (file, log, report)
}

fn show(file: &std::path::Path, format: &str) -> Outcome {
    Netcheck::bare()
        .arg("show")
        .arg(file)
        .arg("--format")
        .arg(format)
        .arg("--color")
        .arg("never")
        .run()
}

#[test]
fn a_saved_report_renders_in_every_format_with_its_verdict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, _log, report) = saved(dir.path());
    let id = report["report_id"].as_str().expect("report id");

    let human = show(&file, "human");
    human.assert_exit(2);
    assert!(human.stdout.contains(id), "{}", human.describe());
    assert!(human.stdout.contains("tcp.refused"), "{}", human.describe());
    assert!(human.stdout.contains("FAIL"), "{}", human.describe());

    let md = show(&file, "markdown");
    md.assert_exit(2);
    assert!(md.stdout.contains("tcp.refused"), "{}", md.describe());
    assert!(md.stdout.contains(id));

    let prom = show(&file, "prometheus");
    prom.assert_exit(2);
    assert!(prom.stdout.contains("# TYPE"), "{}", prom.describe());

    let nagios = show(&file, "nagios");
    nagios.assert_exit(2);
    assert!(nagios.stdout.starts_with("CRITICAL") || nagios.stdout.contains("CRITICAL"));

    // JSON in, JSON out: the same report (validated against the schema by the runner).
    let json = show(&file, "json");
    json.assert_exit(2);
    let again = json.report();
    assert_eq!(again["report_id"], report["report_id"]);
    assert_eq!(again["checks"], report["checks"]);
}

#[test]
fn stdin_and_a_history_line_by_report_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_file, log, first) = saved(dir.path());
    let (_file, _log, second) = saved(dir.path());
    let first_id = first["report_id"].as_str().expect("id");
    let second_id = second["report_id"].as_str().expect("id");
    assert_ne!(first_id, second_id);

    // The newest line by default, the named one with --run.
    let newest = show(&log, "json");
    assert_eq!(newest.report()["report_id"], second_id);
    let picked = Netcheck::bare()
        .arg("show")
        .arg(&log)
        .arg("--run")
        .arg(first_id)
        .arg("--format")
        .arg("json")
        .run();
    picked.assert_exit(2);
    assert_eq!(picked.report()["report_id"], first_id);

    let missing = Netcheck::bare()
        .arg("show")
        .arg(&log)
        .arg("--run")
        .arg("0000nothere")
        .run();
    missing.assert_exit(3);
    assert!(missing.stderr.contains("no run with report id 0000nothere"));

    // `-`: standard input.
    let line = std::fs::read_to_string(&log).expect("read history");
    let mut child = Netcheck::bare()
        .arg("show")
        .arg("-")
        .arg("--color")
        .arg("never")
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn show -");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(line.lines().next().expect("a line").as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for show");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(first_id), "{text}");
}

#[test]
fn a_newer_schema_version_is_exit_3_naming_the_version_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, _log, mut report) = saved(dir.path());
    report["schema_version"] = 2.into();
    std::fs::write(&file, report.to_string()).expect("write");
    let out = show(&file, "human");
    out.assert_exit(3);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(
        out.stderr
            .contains("has schema_version 2; this bmw-netcheck reads schema_version 1"),
        "{}",
        out.describe()
    );
}

#[test]
fn hostile_text_in_a_saved_report_is_shown_plainly_and_symlinks_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (file, _log, mut report) = saved(dir.path());
    report["checks"][0]["summary"] = "\u{1b}[2J\u{1b}]0;owned\u{7}fake ✓ PASS".into();
    std::fs::write(&file, report.to_string()).expect("write");
    let out = show(&file, "human");
    out.assert_exit(2);
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.describe());
    assert!(out.stdout.contains("\\x1b[2J"), "{}", out.describe());

    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    let out = show(&link, "human");
    out.assert_exit(3);
    assert!(out.stderr.contains("symbolic link"), "{}", out.describe());

    std::fs::write(&file, "{\"hello\": 1}").expect("write");
    let out = show(&file, "human");
    out.assert_exit(3);
    assert!(
        out.stderr.contains("not a bmw-netcheck report"),
        "{}",
        out.describe()
    );
}
