//! The history log: one compact JSON line per run, and the `history` command that reads it.
//!
//! A single run says what is wrong now; "it fails every evening" or "DNS flaps" needs the runs
//! before it. So every run appends its report (credentials removed) as one line to a JSON Lines
//! file in the user's state directory, and `bmw-netcheck history` turns the last N lines into a
//! table, a trend line, per-endpoint latency trends and the checks that fail now and then.
//!
//! Concurrency and bounds:
//! - Writers take an exclusive OS lock on a companion file (`history.jsonl.lock`, beside the log
//!   when its directory is the user's alone, else in the state directory) before they open the
//!   log, so concurrent runs never interleave lines. The lock lives in its own file because
//!   trimming replaces the log (temp file + rename): a run waiting on a lock taken on the log
//!   itself would wake up holding the replaced file and append into the void.
//! - The log is bounded: once it reaches [`TRIM_AT`] lines it is cut to the newest [`KEEP`]
//!   runs, under the same lock, atomically. Trimming in batches keeps most appends cheap.
//! - Readers take the lock shared, so they never see half a line being written.
//! - A line that is not a report (a crash mid-write, a hand edit) is skipped with a warning.
//!
//! History is a side record, not the report: when it cannot be written the report has already
//! been delivered, a warning goes to stderr and the exit code stays that of the verdict.
//!
//! The module is three parts: [`store`] (the log file), [`summary`] (what the last runs show,
//! and its rendering) and [`command`] (the `history` command that ties them).

pub mod command;
pub mod store;
pub mod summary;

pub use command::command;
pub use store::{AppendError, KEEP, Loaded, TRIM_AT, append, default_path, load, target};
pub use summary::{JsonHistory, Summary, summarize};

#[cfg(test)]
mod tests {
    use super::store::*;
    use super::summary::*;
    use crate::model::{Check, Probe, Report, Status};
    use crate::model::{Confidence, Suspect, Tool};
    use crate::term::sparkline;
    use std::path::Path;

    fn run(i: usize, dns_fails: bool, median: f64) -> Report {
        let dns = if dns_fails {
            Check::new(Probe::Dns, Some("api"), Status::Fail, "dns.timeout", "x")
        } else {
            Check::new(Probe::Dns, Some("api"), Status::Pass, "dns.ok", "x")
        };
        let latency = Check::new(Probe::Latency, Some("api"), Status::Pass, "latency.ok", "x")
            .with("median_ms", median);
        let checks = vec![dns, latency];
        Report {
            schema_version: 1,
            report_id: format!("id{i}"),
            tool: Tool::this(),
            started_at: format!("2025-01-01T10:{i:02}:00.000Z"),
            duration_ms: 100.0,
            region: "rest_of_world".into(),
            status: Report::overall(&checks),
            checks,
            suspects: if dns_fails {
                vec![Suspect {
                    id: "dns_filter".into(),
                    title: "t".into(),
                    symptom: "s".into(),
                    difficulty: None,
                    confidence: Confidence::High,
                    evidence: vec![],
                    steps: vec![],
                }]
            } else {
                vec![]
            },
            endpoints: vec![],
            device: None,
            redacted: vec![],
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn each_uplink_of_a_per_interface_run_has_its_own_trend() {
        // wlan0's DNS fails every time, wwan0's never: one "down" trend, named by its uplink.
        let runs: Vec<Report> = (0..3)
            .map(|i| {
                let mut r = run(i, true, 5.0);
                let mut cell = r.checks[0].clone();
                cell.status = Status::Pass;
                cell.code = "dns.ok".into();
                cell.interface = Some("wwan0".into());
                r.checks[0].interface = Some("wlan0".into());
                r.checks.push(cell);
                r
            })
            .collect();
        let s = summarize(&runs, 10, 0);
        assert_eq!(s.failing_checks.len(), 1);
        let t = &s.failing_checks[0];
        assert_eq!(t.target.as_deref(), Some("api via wlan0"));
        assert_eq!(t.pattern, "down");
        assert_eq!(s.runs[0].failures, ["api via wlan0 dns.timeout"]);
    }

    #[test]
    fn endpoints_of_different_profiles_never_merge() {
        // "api" of the built-in region always fails; "api" of a lab profile never does.
        let runs: Vec<Report> = (0..4)
            .map(|i| {
                let mut r = run(i, i % 2 == 0, 5.0);
                if i % 2 == 1 {
                    r.region = "lab".into();
                }
                r
            })
            .collect();
        let s = summarize(&runs, 10, 0);
        let names: Vec<&str> = s.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["api (rest_of_world)", "api (lab)"]);
        assert_eq!((s.endpoints[0].failed_runs, s.endpoints[0].runs), (2, 2));
        assert_eq!((s.endpoints[1].failed_runs, s.endpoints[1].runs), (0, 2));
        assert_eq!(s.failing_checks.len(), 1);
        assert_eq!(s.failing_checks[0].pattern, "down");
        // One region alone keeps the plain names of earlier history files.
        let plain = summarize(&runs[..1], 10, 0);
        assert_eq!(plain.endpoints[0].name, "api");
    }

    #[test]
    fn flapping_dns_is_named_with_its_count() {
        let fails = [
            false, true, false, false, true, false, false, true, false, false,
        ];
        let runs: Vec<Report> = fails
            .iter()
            .enumerate()
            .map(|(i, f)| run(i, *f, 10.0 + i as f64))
            .collect();
        let s = summarize(&runs, 10, 0);
        assert_eq!(s.failing_checks.len(), 1);
        let c = &s.failing_checks[0];
        assert_eq!(c.pattern, "flapping");
        assert_eq!(c.marks, "✓✗✓✓✗✓✓✗✓✓");
        assert_eq!(
            c.sentence(),
            "dns on api failed in 3 of the last 10 runs: flapping"
        );
        let api = &s.endpoints[0];
        assert_eq!((api.failed_runs, api.runs), (3, 10));
        assert_eq!(
            api.first_failure.as_deref(),
            Some("2025-01-01T10:01:00.000Z")
        );
        assert_eq!(
            api.last_failure.as_deref(),
            Some("2025-01-01T10:07:00.000Z")
        );
        assert_eq!(api.latency_median_ms.len(), 10);
        let text = human(&s, Path::new("h.jsonl"));
        assert!(
            text.contains("latency ▁▂▃▃▄▅▆▆▇█ 10.0 ms → 19.0 ms"),
            "{text}"
        );
        assert!(text.contains("dns_filter (high)"), "{text}");
    }

    #[test]
    fn patterns_down_failing_recovered() {
        let mk = |f: &[bool]| {
            let runs: Vec<Report> = f.iter().enumerate().map(|(i, x)| run(i, *x, 1.0)).collect();
            summarize(&runs, 10, 0).failing_checks.remove(0)
        };
        assert_eq!(mk(&[true, true]).pattern, "down");
        let failing = mk(&[false, false, true, true]);
        assert_eq!(failing.pattern, "failing");
        assert_eq!(
            failing.sentence(),
            "dns on api failed in 2 of the last 4 runs, failing since 2025-01-01 10:02:00"
        );
        assert_eq!(mk(&[true, false]).pattern, "recovered");
    }

    #[test]
    fn window_is_the_newest_n() {
        let runs: Vec<Report> = (0..30).map(|i| run(i, false, 1.0)).collect();
        let s = summarize(&runs, 5, 2);
        assert_eq!(s.runs.len(), 5);
        assert_eq!(s.runs_total, 30);
        assert_eq!(s.runs[4].report_id, "id29");
        assert!(human(&s, Path::new("x")).contains("2 line(s) of the log"));
    }

    #[test]
    fn corrupt_lines_are_skipped_with_a_warning() {
        let good = serde_json::to_string(&run(0, false, 1.0)).unwrap();
        let text = format!("{good}\n{{\"half\": \n\n{good}\nnot json\n");
        let loaded = parse(text.as_bytes(), "h");
        assert_eq!(loaded.runs.len(), 2);
        assert_eq!(loaded.skipped.len(), 2);
        assert!(loaded.skipped[0].starts_with("h line 2: not a report"));
    }

    /// The trim check reads the newest block and estimates from its lines: a log whose newest
    /// lines are long is not counted (nor cut) though its older, short lines make it longer
    /// than TRIM_AT lines — cut later than its count says, never earlier.
    #[test]
    fn the_trim_check_estimates_from_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let short = format!("{}\n", "s".repeat(159));
        let long = format!("{}\n", "l".repeat(9_999));
        std::fs::write(&path, short.repeat(TRIM_AT) + &long.repeat(10)).unwrap();
        append(&path, &run(0, false, 1.0), false).unwrap();
        let lines = std::fs::read(&path)
            .unwrap()
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        assert_eq!(lines, TRIM_AT + 11, "not counted, not cut");
    }

    #[test]
    fn append_trims_to_the_newest_runs_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        // A torn last line from a killed writer.
        std::fs::write(&path, b"{\"schema_version\":1,\"repo").unwrap();
        append(&path, &run(0, false, 1.0), false).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!((loaded.runs.len(), loaded.skipped.len()), (1, 1));

        let line = serde_json::to_string(&run(1, false, 1.0)).unwrap() + "\n";
        std::fs::write(&path, line.repeat(TRIM_AT - 1)).unwrap();
        append(&path, &run(2, true, 1.0), false).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.runs.len(), KEEP);
        assert!(loaded.skipped.is_empty());
        assert_eq!(loaded.runs.last().unwrap().report_id, "id2");
        // No temp files left beside it; only the log and its lock.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["h.jsonl", "h.jsonl.lock"]);
    }

    #[test]
    fn history_lines_never_carry_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut r = run(0, false, 1.0);
        r.checks[0].summary = "via http://u:hunter2@proxy:8080".into();
        append(&path, &r, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("http://***@proxy:8080"));
    }

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0]), "▁▅█");
        assert_eq!(sparkline(&[5.0, 5.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }
}
