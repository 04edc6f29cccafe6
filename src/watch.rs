//! `watch`: the same run, again and again, for problems that come and go.
//!
//! "Connection timeout — weak signal" is intermittent: one run may well pass. `watch --every DUR`
//! repeats the run, appends each to the history log, and keeps per-endpoint state: on a terminal
//! a live view redrawn in place (latest status, median latency, loss, a sparkline over the runs,
//! like mtr or gping); on a pipe one compact line per run (or, with `--format json`, one JSON
//! report per line). Ctrl-C or the end of `--count` prints a summary — what was down, what
//! flapped, what is passing again — and the exit code is the worst status seen.
//!
//! Memory stays flat over a watch of any length: each run is a child process of this binary
//! (whatever a run allocates leaves with it), the sparkline keeps a bounded ring of the newest
//! [`RING`] samples per endpoint, and the summary only counters per check.

use crate::child::{Running, Signals};
use crate::cli::WatchArgs;
use crate::error::{AppError, exit};
use crate::model::{Check, Probe, Report, Status};
use crate::plan::Plan;
use crate::report::Format;
use crate::term::paint;
use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Samples kept per endpoint for the sparkline: the newest runs, a screen's width.
pub const RING: usize = 60;

/// One run's sample of one endpoint.
#[derive(Debug, Clone, Copy)]
struct Sample {
    status: Status,
    median_ms: Option<f64>,
}

/// What the live view shows for one endpoint (and uplink, in a per-interface run).
#[derive(Debug, Default)]
struct EndpointState {
    latest_code: String,
    latest_status: Option<Status>,
    latest_median: Option<f64>,
    latest_loss: Option<f64>,
    ring: VecDeque<Sample>,
}

/// Counters for one check across the runs: enough for the summary, constant in size.
#[derive(Debug, Default, Clone)]
struct CheckCounters {
    ran: u64,
    failed: u64,
    changes: u64,
    last_failed: Option<bool>,
    /// The run number where the current streak of failures (or passes) began.
    streak_from: u64,
    last_code: String,
}

/// Everything the watch remembers; bounded by the number of endpoints and checks.
#[derive(Debug, Default)]
pub struct State {
    runs: u64,
    worst: Option<Status>,
    endpoints: BTreeMap<String, EndpointState>,
    /// Endpoint keys in the order they first appeared.
    order: Vec<String>,
    checks: BTreeMap<(String, Probe), CheckCounters>,
    last_verdict: Option<Status>,
    last_top: Option<String>,
}

fn key_of(c: &Check) -> String {
    let target = c.target.as_deref().unwrap_or("this device");
    match &c.interface {
        Some(i) => format!("{target} via {i}"),
        None => target.to_owned(),
    }
}

impl State {
    /// Folds one run into the state.
    pub fn add(&mut self, report: &Report) {
        self.runs += 1;
        let n = self.runs;
        self.worst = Some(self.worst.map_or(report.status, |w| w.max(report.status)));
        self.last_verdict = Some(report.status);
        self.last_top = report
            .suspects
            .first()
            .filter(|_| report.status != Status::Pass)
            .map(|s| s.title.clone());
        // Per endpoint: the worst status, the latency figures.
        let mut per: BTreeMap<String, (Status, String, Option<f64>, Option<f64>)> = BTreeMap::new();
        for c in report.checks.iter().filter(|c| c.target.is_some()) {
            let key = key_of(c);
            if !self.order.contains(&key) {
                self.order.push(key.clone());
            }
            let e = per
                .entry(key)
                .or_insert((Status::Skip, String::new(), None, None));
            if c.status > e.0 || e.1.is_empty() {
                e.0 = e.0.max(c.status);
                if c.status == e.0 {
                    e.1 = c.code.clone();
                }
            }
            if c.probe == Probe::Latency {
                e.2 = c.data_f64("median_ms");
                e.3 = c.data_f64("loss_pct");
            }
        }
        for (key, (status, code, median, loss)) in per {
            let st = self.endpoints.entry(key).or_default();
            st.latest_status = Some(status);
            st.latest_code = code;
            st.latest_median = median;
            st.latest_loss = loss;
            if st.ring.len() == RING {
                st.ring.pop_front();
            }
            st.ring.push_back(Sample {
                status,
                median_ms: median,
            });
        }
        // Per check: counters for the summary.
        let mut seen: BTreeMap<(String, Probe), (bool, String)> = BTreeMap::new();
        for c in report.checks.iter().filter(|c| c.status != Status::Skip) {
            let e = seen
                .entry((key_of(c), c.probe))
                .or_insert((false, c.code.clone()));
            if c.status == Status::Fail {
                *e = (true, c.code.clone());
            }
        }
        for (key, (failed, code)) in seen {
            let cc = self.checks.entry(key).or_default();
            cc.ran += 1;
            if failed {
                cc.failed += 1;
                cc.last_code = code;
            }
            if cc.last_failed != Some(failed) {
                if cc.last_failed.is_some() {
                    cc.changes += 1;
                }
                cc.streak_from = n;
            }
            cc.last_failed = Some(failed);
        }
    }

    pub fn worst(&self) -> Status {
        self.worst.unwrap_or(Status::Pass)
    }

    /// The summary lines: one per check that failed at least once, worst first.
    pub fn summary_lines(&self) -> Vec<(Status, String)> {
        let mut rows: Vec<(u8, Status, String)> = Vec::new();
        for ((target, probe), c) in &self.checks {
            if c.failed == 0 {
                continue;
            }
            let (rank, status, pattern) = if c.failed == c.ran {
                (
                    0,
                    Status::Fail,
                    format!("down — failed in all {} runs", c.ran),
                )
            } else if c.last_failed == Some(false) && c.changes <= 2 {
                (
                    2,
                    Status::Pass,
                    format!(
                        "passing again since run {} — failed in {} of {} runs",
                        c.streak_from, c.failed, c.ran
                    ),
                )
            } else if c.last_failed == Some(true) && c.changes == 1 {
                (
                    1,
                    Status::Fail,
                    format!(
                        "failing since run {} — failed in {} of {} runs",
                        c.streak_from, c.failed, c.ran
                    ),
                )
            } else {
                (
                    1,
                    Status::Warn,
                    format!(
                        "flapping — failed in {} of {} runs, {} changes",
                        c.failed, c.ran, c.changes
                    ),
                )
            };
            rows.push((
                rank,
                status,
                format!("{target} {probe}: {pattern} (last {})", c.last_code),
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
        rows.into_iter().map(|(_, s, l)| (s, l)).collect()
    }

    /// The summary printed at the end of the watch.
    pub fn summary(&self, elapsed: Duration, every: Duration) -> String {
        let worst = self.worst();
        let mut out = format!(
            "watch: {} run(s) in {}, every {}; worst status seen: {}\n",
            self.runs,
            humantime::format_duration(Duration::from_secs(elapsed.as_secs())),
            humantime::format_duration(every),
            paint(worst.verdict(), worst)
        );
        let lines = self.summary_lines();
        if lines.is_empty() {
            out.push_str("  every check passed in every run\n");
        }
        for (status, line) in lines {
            out.push_str(&format!("  {} {line}\n", paint(status.mark(), status)));
        }
        out
    }

    /// The live view: a header, one row per endpoint, the latest verdict.
    pub fn view(&self, every: Duration, count: Option<u64>) -> String {
        let of = count.map(|c| format!(" of {c}")).unwrap_or_default();
        let mut out = format!(
            "bmw-netcheck watch · every {} · run {}{of} · Ctrl-C stops and summarizes\n\n",
            humantime::format_duration(every),
            self.runs
        );
        let width = self
            .order
            .iter()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(8)
            .max(8);
        out.push_str(&format!(
            "  {:<width$}  {:<22}  {:>9}  {:>6}  runs\n",
            "endpoint", "latest", "median", "loss"
        ));
        for key in &self.order {
            let Some(st) = self.endpoints.get(key) else {
                continue;
            };
            let status = st.latest_status.unwrap_or(Status::Skip);
            let median = st
                .latest_median
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.1} ms"));
            let loss = st
                .latest_loss
                .map_or_else(|| "-".to_owned(), |l| format!("{l:.0}%"));
            let code = format!("{} {}", status.mark(), st.latest_code);
            out.push_str(&format!(
                "  {:<width$}  {}  {:>9}  {:>6}  {}\n",
                key,
                paint(&format!("{code:<22}"), status),
                median,
                loss,
                spark(&st.ring)
            ));
        }
        if let Some(v) = self.last_verdict {
            let top = self
                .last_top
                .as_deref()
                .map(|t| format!(" — most likely: {t}"))
                .unwrap_or_default();
            out.push_str(&format!("\nlatest run: {}{top}\n", paint(v.verdict(), v)));
        }
        out
    }
}

/// A sparkline of the samples' median latency; a failed run is `✗`, one without a latency `·`.
fn spark(ring: &VecDeque<Sample>) -> String {
    let values: Vec<f64> = ring
        .iter()
        .map(|s| s.median_ms.unwrap_or(f64::NAN))
        .collect();
    let line: Vec<char> = crate::term::sparkline(&values).chars().collect();
    ring.iter()
        .enumerate()
        .map(|(i, s)| match (s.status, s.median_ms) {
            (Status::Fail, _) => '✗',
            (_, None) => '·',
            _ => line.get(i).copied().unwrap_or(' '),
        })
        .collect()
}

/// One compact line for a pipe or a log.
fn line(n: u64, report: &Report) -> String {
    let failing: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail || c.status == Status::Warn)
        .map(|c| format!("{} {}", key_of(c), c.code))
        .collect();
    let mut l = format!(
        "{} run {n} {} {}: {} failed, {} warning(s), {} passed",
        report.started_at,
        report.report_id,
        report.status.verdict(),
        report.count(Status::Fail),
        report.count(Status::Warn),
        report.count(Status::Pass),
    );
    if !failing.is_empty() {
        l.push_str(" · ");
        l.push_str(&failing.join(", "));
    }
    l.push('\n');
    l
}

/// Runs `watch`.
pub fn run(args: &WatchArgs) -> Result<i32, AppError> {
    let run_args = &args.run;
    let json = match run_args.format {
        Format::Human => false,
        Format::Json => true,
        other => {
            return Err(AppError::usage(format!(
                "watch prints a live view or a line per run; --format {} is for single runs (use human or json)",
                clap::ValueEnum::to_possible_value(&other)
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default()
            )));
        }
    };
    if run_args.output.is_some() {
        return Err(AppError::usage(
            "watch writes to stdout; -o/--output is for single runs",
        ));
    }
    let color = crate::term::decide_color(run_args.color, false);
    let live = !json && std::io::stdout().is_terminal();
    // Caught before the first run starts; passed on to the run under way, which reports what
    // it finished, and then the watch ends with its summary.
    let signals = Signals::catch()?;
    let exe = crate::child::self_exe()?;
    // Each run goes to the history as it would from `run`; the view is watch's own.
    let plan = Plan::of(run_args);

    let started = Instant::now();
    let mut state = State::default();
    let mut drawn_lines: u16 = 0;
    loop {
        let run_started = Instant::now();
        let mut clean = run_once(&exe, &plan, &signals)?;
        crate::redact::credentials(&mut clean);
        // `--redact`: the lines on stdout lose the personal details too (the history keeps
        // them, as a run's does), in every format watch prints.
        if run_args.redact {
            crate::redact::personal(&mut clean);
        }
        state.add(&clean);
        if live {
            let view = state.view(args.every, args.count);
            drawn_lines = redraw(&view, drawn_lines);
        } else if json {
            crate::files::write_stdout(&crate::report::json::render_line(&clean));
        } else {
            crate::files::write_stdout(line(state.runs, &clean).as_bytes());
        }
        if signals.caught() || args.count.is_some_and(|c| state.runs >= c) {
            break;
        }
        if signals.sleep(args.every.saturating_sub(run_started.elapsed())) {
            break;
        }
    }
    colored::control::set_override(color);
    let summary = state.summary(started.elapsed(), args.every);
    if json {
        // stdout stays JSON Lines; the summary is for the person watching.
        eprint!("{summary}");
    } else {
        crate::files::write_stdout(format!("\n{summary}").as_bytes());
    }
    Ok(exit::of(state.worst()))
}

/// One run, as a child process of this binary (`run --format json`), which also appends it to
/// the history. Whatever a run allocates leaves with its process, so the watch itself holds only
/// its bounded state, however long it watches.
fn run_once(exe: &std::path::Path, plan: &Plan, signals: &Signals) -> Result<Report, AppError> {
    let argv = crate::child::command_line(plan);
    Running::start(exe, &argv, "", plan.deadline, signals)?.report(signals)
}

/// Redraws the view in place: back to the top of the previous drawing, clear below, print.
fn redraw(view: &str, previous_lines: u16) -> u16 {
    use crossterm::{cursor, queue, terminal};
    let mut out = std::io::stdout().lock();
    if previous_lines > 0 {
        let _ = queue!(out, cursor::MoveToPreviousLine(previous_lines));
    }
    let _ = queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown));
    let _ = out.write_all(view.as_bytes());
    let _ = out.flush();
    u16::try_from(view.lines().count()).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SCHEMA_VERSION, Tool};

    fn report(dns_fails: bool, median: f64) -> Report {
        let dns = if dns_fails {
            Check::new(Probe::Dns, Some("api"), Status::Fail, "dns.timeout", "t")
        } else {
            Check::new(Probe::Dns, Some("api"), Status::Pass, "dns.ok", "ok")
        };
        let lat = Check::new(
            Probe::Latency,
            Some("api"),
            Status::Pass,
            "latency.ok",
            "ok",
        )
        .with("median_ms", median)
        .with("loss_pct", 0.0);
        let checks = vec![dns, lat];
        Report {
            schema_version: SCHEMA_VERSION,
            report_id: "x".into(),
            tool: Tool::this(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            duration_ms: 1.0,
            region: "r".into(),
            status: Report::overall(&checks),
            checks,
            suspects: Vec::new(),
            endpoints: Vec::new(),
            device: None,
            redacted: Vec::new(),
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn summary_names_down_flapping_and_passing_again() {
        let mut s = State::default();
        for fails in [true, false, true, false, true] {
            s.add(&report(fails, 5.0));
        }
        let lines = s.summary_lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].1.contains("api dns: flapping"), "{lines:?}");
        assert!(lines[0].1.contains("3 of 5 runs, 4 changes"), "{lines:?}");

        let mut s = State::default();
        for fails in [true, true, false] {
            s.add(&report(fails, 5.0));
        }
        let l = &s.summary_lines()[0].1;
        assert!(l.contains("passing again since run 3"), "{l}");
        assert_eq!(s.worst(), Status::Fail);

        let mut s = State::default();
        for _ in 0..3 {
            s.add(&report(true, 5.0));
        }
        assert!(
            s.summary_lines()[0]
                .1
                .contains("down — failed in all 3 runs")
        );
    }

    #[test]
    fn memory_stays_flat_over_long_watches() {
        let mut s = State::default();
        for i in 0..10_000 {
            s.add(&report(i % 7 == 0, (i % 13) as f64));
        }
        assert_eq!(s.endpoints["api"].ring.len(), RING);
        assert_eq!(s.checks.len(), 2);
        assert_eq!(s.runs, 10_000);
    }

    #[test]
    fn sparkline_marks_failed_runs() {
        let mut s = State::default();
        s.add(&report(false, 1.0));
        s.add(&report(true, 9.0));
        s.add(&report(false, 9.0));
        let sp = spark(&s.endpoints["api"].ring);
        assert_eq!(sp.chars().count(), 3);
        assert_eq!(sp.chars().nth(1), Some('✗'));
    }
}
