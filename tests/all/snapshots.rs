//! Snapshots of what people read: every report format of three fixed runs (no connectivity, a
//! DNS filter, a healthy network), `list`, `explain`, and the one-line usage errors.
//!
//! The runs are JSON fixtures under `tests/all/fixtures/` (fixed ids, times and durations; the
//! first is a real run on a machine whose resolver knows no public name). Each is diagnosed
//! afresh with the built-in knowledge base, so a change to the ranking shows in the snapshots,
//! then rendered by the real binary through `show`. The human report is rendered at 80 columns
//! (`COLUMNS=80`) without colour.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test --test all -- snapshots`
//! (or `cargo insta review`), and read the diff. With `CI=true` a mismatch fails.

use assert_cmd::cargo::CommandCargoExt;
use bmw_netcheck::diagnose::{Context, diagnose};
use bmw_netcheck::knowledge::Knowledge;
use bmw_netcheck::model::{Confidence, Report};
use std::path::{Path, PathBuf};
use std::process::Command;

const RUNS: [&str; 3] = ["offline", "dnsfilter", "healthy"];
const FORMATS: [&str; 5] = ["human", "json", "markdown", "prometheus", "nagios"];

fn kb() -> Knowledge {
    Knowledge::builtin().expect("the built-in knowledge base")
}

/// A fixture, diagnosed with today's knowledge base.
fn fixture(name: &str) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/all/fixtures")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("read the fixture");
    let mut r: Report = serde_json::from_str(&text).expect("a report");
    r.suspects = diagnose(&r.checks, &r.endpoints, &kb());
    r.status = Report::overall(&r.checks);
    r
}

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("bmw-netcheck").expect("the binary");
    // Nothing here touches the network: `list` shows the default control resolver.
    cmd.env("COLUMNS", "80")
        .env_remove("BMW_NETCHECK_CONTROL")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    cmd
}

/// The report rendered by `show` in `format`: (exit code, stdout).
fn show(dir: &Path, r: &Report, format: &str) -> (Option<i32>, String) {
    show_with(dir, r, &["--format", format])
}

fn show_with(dir: &Path, r: &Report, args: &[&str]) -> (Option<i32>, String) {
    let file: PathBuf = dir.join("report.json");
    std::fs::write(&file, serde_json::to_string(r).expect("json")).expect("write");
    let out = bin()
        .arg("show")
        .arg(&file)
        .args(args)
        .args(["--color", "never"])
        .output()
        .expect("run show");
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("utf-8"),
    )
}

#[test]
fn every_format_of_every_fixed_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    for run in RUNS {
        let r = fixture(run);
        for format in FORMATS {
            let (code, text) = show(dir.path(), &r, format);
            assert!(matches!(code, Some(0..=2)), "{run} {format}: exit {code:?}");
            insta::assert_snapshot!(format!("{run}_{format}"), text);
        }
        // -v: every check under its endpoint, wrapped at the summary column.
        let (_, verbose) = show_with(dir.path(), &r, &["--format", "human", "-v"]);
        assert!(
            verbose.lines().all(|l| l.chars().count() <= 80),
            "{verbose}"
        );
        insta::assert_snapshot!(format!("{run}_human_verbose"), verbose);
    }
}

#[test]
fn list_and_explain() {
    for (name, args) in [
        ("list", &["list", "--color", "never"][..]),
        ("explain_all", &["explain"][..]),
        (
            "explain_dns_filter",
            &["explain", "dns_filter", "--color", "never"][..],
        ),
    ] {
        let out = bin().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{name}");
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn usage_errors_name_what_is_missing_and_what_was_meant() {
    for (name, args) in [
        ("error_completions", &["completions"][..]),
        ("error_show", &["show"][..]),
        ("error_serve", &["serve"][..]),
        ("error_region", &["--region", "europe"][..]),
        ("error_flag", &["--fromat", "json"][..]),
        ("error_subcommand", &["explian"][..]),
        ("error_explain", &["explain", "dnsfilter"][..]),
    ] {
        let out = bin().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(3), "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        insta::assert_snapshot!(name, stderr);
    }
}

/// The driver's case: at 80 columns the failing report fits one screen, says in words that the
/// neutral host failed too, and ranks no cause the evidence contradicts at medium or above.
#[test]
fn the_offline_report_fits_one_screen_and_does_not_contradict_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = fixture("offline");
    let (_, text) = show(dir.path(), &r, "human");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 40, "{} lines\n{text}", lines.len());
    for l in &lines {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l:?}",
            l.chars().count()
        );
    }
    let neutral = r
        .endpoints
        .iter()
        .find(|e| e.role == bmw_netcheck::model::Role::Baseline)
        .expect("a baseline");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!("not {}", neutral.host)) && flat.contains("this network, not BMW"),
        "{text}"
    );

    let ctx = Context::of(&r.checks, &r.endpoints);
    assert!(ctx.baseline_failed, "the fixture's baseline failed");
    let kb = kb();
    for s in &r.suspects {
        let def = kb.get(&s.id).expect("a known suspect");
        if !def.contradicted_when.is_empty() && s.confidence >= Confidence::Medium {
            let contradicted = def.contradicted_when.iter().any(|w| {
                matches!(w, bmw_netcheck::knowledge::When::BaselineFailed) && ctx.baseline_failed
                    || matches!(w, bmw_netcheck::knowledge::When::NetworkFailed)
                        && ctx.network_failed
            });
            assert!(!contradicted, "{} at {:?}\n{text}", s.id, s.confidence);
        }
    }
    assert!(
        r.suspects
            .iter()
            .any(|s| s.id == "dns_filter" && s.confidence == Confidence::Low)
            || !r.suspects.iter().any(|s| s.id == "dns_filter"),
        "a DNS filter (other apps work) is not a likely cause when the neutral host fails"
    );
}

/// The support agent's case: the Markdown ticket names the top cause in its first 25 lines.
#[test]
fn the_ticket_names_the_top_cause_within_25_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    for run in RUNS {
        let r = fixture(run);
        let top = r.suspects.first().expect("a cause").title.clone();
        let (_, md) = show(dir.path(), &r, "markdown");
        let at = md
            .lines()
            .position(|l| l.starts_with("### ") && l.contains(&top))
            .unwrap_or(usize::MAX);
        assert!(at < 25, "{run}: top cause at line {at}\n{md}");
    }
}

/// `--redact` removes from JSON what Markdown removes by default; the result still matches the
/// schema, and showing it again keeps the fields redacted.
#[test]
fn json_is_redacted_on_request_and_stays_valid() {
    use crate::support::schema::{Doc, assert_valid};
    let dir = tempfile::tempdir().expect("temp dir");
    let r = fixture("dnsfilter");
    let (_, plain) = show(dir.path(), &r, "json");
    assert!(plain.contains("workstation") && plain.contains("/home/driver"));
    let (code, redacted) = show_with(dir.path(), &r, &["--format", "json", "--redact"]);
    assert_eq!(code, Some(2));
    assert!(!redacted.contains("workstation"), "{redacted}");
    assert!(!redacted.contains("driver"), "{redacted}");
    let value: serde_json::Value = serde_json::from_str(&redacted).expect("JSON");
    assert_valid(Doc::Report, &value);
    assert!(
        value["redacted"]
            .as_array()
            .is_some_and(|kinds| !kinds.is_empty())
    );
    let again: Report = serde_json::from_value(value).expect("a report");
    let (_, human) = show_with(dir.path(), &again, &["--format", "human", "--no-redact"]);
    assert!(
        !human.contains("driver") && !human.contains("workstation"),
        "{human}"
    );
}
