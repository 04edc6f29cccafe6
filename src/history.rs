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

use crate::cli::{ExplainFormat, HistoryArgs};
use crate::error::{AppError, exit};
use crate::model::{Check, Probe, Report, Status};
use crate::redact;
use crate::report::human::mark;
use colored::Colorize;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs kept after a trim.
pub const KEEP: usize = 1000;
/// Line count that triggers a trim.
pub const TRIM_AT: usize = 1100;
/// How long a run waits for another run's append before giving up on its own history line.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const FILE_NAME: &str = "history.jsonl";
/// The largest log `history` reads: far above [`TRIM_AT`] lines of any real report.
const MAX_READ_BYTES: u64 = 512 * 1024 * 1024;

/// The tool's state directory: `$XDG_STATE_HOME/bmw-netcheck` or `~/.local/state/bmw-netcheck`
/// on Linux; `~/Library/Application Support/bmw-netcheck` on macOS; `%LOCALAPPDATA%\bmw-netcheck`
/// on Windows.
pub fn state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("bmw-netcheck"))
}

/// The default history file, if the platform has a state directory for this user.
pub fn default_path() -> Option<PathBuf> {
    state_dir().map(|d| d.join(FILE_NAME))
}

/// The companion lock of a log: `<log>.lock` beside it when that directory is the user's own
/// and nobody else may write there; otherwise (a log in `/tmp`) in the state directory, named
/// after the log's path, so nobody can plant the lock file for a run to open.
fn lock_path(path: &Path, create: bool) -> Result<PathBuf, String> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Some(d) = crate::safefile::private_dir(dir) {
        return Ok(d.join(name));
    }
    let locks = state_dir().map(|d| d.join("locks")).ok_or_else(|| {
        format!(
            "{} is shared with other users and there is no state directory for the lock",
            dir.display()
        )
    })?;
    if create {
        std::fs::create_dir_all(&locks)
            .map_err(|e| format!("cannot create {} ({e})", locks.display()))?;
    }
    if crate::safefile::private_dir(&locks).is_none() {
        return Err(format!(
            "{} is shared with other users, and {} is not a directory of this user's alone",
            dir.display(),
            locks.display()
        ));
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    Ok(locks.join(format!(
        "{:016x}.lock",
        fnv1a(absolute.as_os_str().as_encoded_bytes())
    )))
}

/// A stable 64-bit hash (FNV-1a) of a path, for a lock file's name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where this run records itself: `None` with `--no-history`; an error when there is no state
/// directory and no `--history`.
pub fn target(explicit: Option<&Path>, disabled: bool) -> Result<Option<PathBuf>, String> {
    if disabled {
        return Ok(None);
    }
    match explicit {
        Some(p) => Ok(Some(p.to_owned())),
        None => default_path().map(Some).ok_or_else(|| {
            "no state directory for this user (HOME unset?); use --history FILE or --no-history"
                .into()
        }),
    }
}

/// Why a run's line is not in the history, or the history kept growing.
#[derive(Debug, Clone, PartialEq)]
pub enum AppendError {
    /// The line was not written; the file is as it was.
    NotRecorded(String),
    /// The line was appended; trimming the log failed.
    NotTrimmed(String),
}

/// Appends `report` as one line, under the lock; trims the log when it has grown past [`TRIM_AT`].
/// `create_dir`: create the parent directory (for the default location, which is ours).
///
/// The log must be a regular file: a symbolic link is not followed and a FIFO or a device is
/// refused before anything is created beside it. The append itself reads only the log's last
/// byte, and the trim check after it reads back at most the newest [`TRIM_AT`] lines, a block at
/// a time: memory stays the same whatever the log's size. A write that fails half-way (a full
/// disk) is cut back, so no torn line stays behind.
pub fn append(path: &Path, report: &Report, create_dir: bool) -> Result<(), AppendError> {
    use AppendError::{NotRecorded, NotTrimmed};
    use std::os::unix::fs::FileExt;
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(NotRecorded(format!(
                "{shown} is a symbolic link; it is not followed (name the file itself)"
            )));
        }
        Ok(m) if !m.is_file() => {
            return Err(NotRecorded(format!(
                "{shown} is {}, not a regular file",
                crate::safefile::kind(&m)
            )));
        }
        _ => {}
    }
    if create_dir && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| NotRecorded(format!("cannot create {} ({e})", dir.display())))?;
    }
    // Defence in depth: the caller has redacted credentials already.
    let mut clean = report.clone();
    redact::credentials(&mut clean);
    crate::sanitize::report(&mut clean);
    let mut line = crate::report::json::render_line(&clean);

    let _guard = Guard::exclusive(path, LOCK_WAIT).map_err(NotRecorded)?;
    let mut file = crate::safefile::open_append(path)
        .map_err(|e| NotRecorded(format!("cannot open {shown} ({e})")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // A run killed mid-write leaves a line without its newline; do not glue ours onto it.
    if len > 0 {
        let mut last = [0u8; 1];
        let ends_with_newline = file
            .read_exact_at(&mut last, len - 1)
            .map(|_| last[0] == b'\n')
            .unwrap_or(true);
        if !ends_with_newline {
            line.insert(0, b'\n');
        }
    }
    if let Err(e) = file.write_all(&line).and_then(|_| file.flush()) {
        let undone = if file.set_len(len).is_ok() {
            "; the file is as it was"
        } else {
            "; a partial line may remain (it will be skipped when read)"
        };
        return Err(NotRecorded(format!(
            "cannot append to {shown} ({e}){undone}"
        )));
    }
    trim(path, &file).map_err(|e| NotTrimmed(format!("{shown} ({e})")))
}

/// Cuts the log to the newest [`KEEP`] lines once it has [`TRIM_AT`]. Called under the lock.
///
/// Streams: it reads backwards from the end, a block at a time, only until it has seen
/// [`TRIM_AT`] line ends (or the start), then copies the kept tail into the replacement file.
/// Memory stays at one block whatever the log's size.
fn trim(path: &Path, file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let meta = file.metadata()?;
    let len = meta.len();
    // A line is at least ~200 bytes, so a small file cannot need trimming: skip reading it.
    if len < (TRIM_AT as u64) * 150 {
        return Ok(());
    }
    const BLOCK: u64 = 64 * 1024;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut pos = len;
    let mut seen = 0usize;
    let mut cut = None;
    'scan: while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut buf[..(pos - start) as usize];
        file.read_exact_at(chunk, start)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b != b'\n' {
                continue;
            }
            seen += 1;
            // The first line end seen closes the newest line; the (KEEP+1)-th opens the kept part.
            if seen == KEEP + 1 {
                cut = Some(start + i as u64 + 1);
            }
            if seen >= TRIM_AT {
                break 'scan;
            }
        }
        pos = start;
    }
    let Some(cut) = cut.filter(|_| seen >= TRIM_AT) else {
        return Ok(());
    };
    crate::safefile::replace_with(path, Some(&meta), |out| {
        let mut at = cut;
        while at < len {
            let n = ((len - at).min(BLOCK)) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            out.write_all(&buf[..n])?;
            at += n as u64;
        }
        Ok(())
    })
}

/// The log's companion lock, held while appending (exclusive) or reading (shared).
struct Guard {
    _file: File,
}

impl Guard {
    fn exclusive(path: &Path, wait: Duration) -> Result<Guard, String> {
        Guard::take(path, wait, true)
    }

    fn shared(path: &Path, wait: Duration) -> Result<Guard, String> {
        Guard::take(path, wait, false)
    }

    /// Polls `try_lock` rather than blocking: a stuck holder (a hung network file system) must
    /// not make this run hang past its deadline.
    fn take(path: &Path, wait: Duration, exclusive: bool) -> Result<Guard, String> {
        let lp = lock_path(path, exclusive)?;
        // Readers do not create the lock file: `history --history` on a copied log must not
        // litter its directory. Without a lock file no writer is around to exclude.
        let file = if exclusive {
            crate::safefile::open_lock(&lp)
        } else {
            OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&lp)
        }
        .map_err(|e| format!("cannot open the lock file {} ({e})", lp.display()))?;
        let started = Instant::now();
        loop {
            let attempt = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match attempt {
                Ok(()) => return Ok(Guard { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(2 + fastrand::u64(0..8)));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(format!(
                        "{} stayed locked by another run for {}",
                        lp.display(),
                        humantime::format_duration(wait)
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!("cannot lock {} ({e})", lp.display()));
                }
            }
        }
    }
}

/// The runs in the log, oldest first, and one warning per line that is not a report.
pub struct Loaded {
    pub runs: Vec<Report>,
    pub skipped: Vec<String>,
}

/// Reads the log. A missing file is an empty history, not an error.
pub fn load(path: &Path) -> Result<Loaded, String> {
    if !path.exists() {
        return Ok(Loaded {
            runs: Vec::new(),
            skipped: Vec::new(),
        });
    }
    // Readers only need to exclude a half-written line; without a writable directory for the
    // lock file (a log copied off a machine), reading unlocked is still right.
    let _guard = Guard::shared(path, LOCK_WAIT).ok();
    let bytes = crate::safefile::read_bounded(path, MAX_READ_BYTES, "a history log")
        .map_err(|e| format!("{} {e}", path.display()))?;
    Ok(parse(&bytes, &path.display().to_string()))
}

fn parse(bytes: &[u8], shown: &str) -> Loaded {
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Report>(line) {
            Ok(r) => runs.push(r),
            Err(e) => skipped.push(format!(
                "{shown} line {}: not a report ({e}); skipped",
                i + 1
            )),
        }
    }
    Loaded { runs, skipped }
}

// ---- the `history` command ----------------------------------------------------------------------

/// `bmw-netcheck history`: the last N runs, a trend line, endpoint trends and flapping checks.
pub fn command(args: &HistoryArgs) -> Result<i32, AppError> {
    let path = match &args.history {
        Some(p) => p.clone(),
        None => default_path().ok_or_else(|| {
            AppError::Input(
                "no state directory for this user (HOME unset?); name the log with --history FILE"
                    .into(),
            )
        })?,
    };
    let loaded = load(&path).map_err(|e| AppError::Input(format!("history: {e}")))?;
    const SHOWN_WARNINGS: usize = 5;
    for w in loaded.skipped.iter().take(SHOWN_WARNINGS) {
        eprintln!("bmw-netcheck: warning: {w}");
    }
    if loaded.skipped.len() > SHOWN_WARNINGS {
        eprintln!(
            "bmw-netcheck: warning: {} more lines of {} are not reports; skipped",
            loaded.skipped.len() - SHOWN_WARNINGS,
            path.display()
        );
    }
    let summary = summarize(&loaded.runs, args.last as usize, loaded.skipped.len());
    let text = match args.format {
        ExplainFormat::Json => {
            let mut v = serde_json::to_vec_pretty(&JsonHistory {
                file: path.display().to_string(),
                summary: &summary,
            })
            .map_err(|e| AppError::Internal(format!("cannot encode the history ({e})")))?;
            v.push(b'\n');
            v
        }
        ExplainFormat::Human => {
            crate::run::decide_color(args.color, false);
            human(&summary, &path).into_bytes()
        }
    };
    crate::output::write_stdout(&text);
    Ok(exit::OK)
}

/// `history --format json`: the file read and the summary of its runs.
#[derive(Serialize, JsonSchema)]
pub struct JsonHistory<'a> {
    file: String,
    #[serde(flatten)]
    summary: &'a Summary,
}

/// What `history` shows, computed from the runs alone (so it is testable without files).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Summary {
    /// Runs in the log (readable ones).
    pub runs_total: usize,
    /// Lines that were not reports.
    pub lines_skipped: usize,
    /// The window: the last N runs, oldest first.
    pub runs: Vec<RunRow>,
    pub endpoints: Vec<EndpointTrend>,
    /// Checks that failed in some of the window's runs, worst first.
    pub failing_checks: Vec<CheckTrend>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RunRow {
    pub report_id: String,
    pub started_at: String,
    pub region: String,
    pub status: Status,
    pub duration_ms: f64,
    /// `target probe code` of each failed check.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    /// The most likely cause of a run with problems; `None` for a run that passed.
    pub top_suspect: Option<TopSuspect>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TopSuspect {
    pub id: String,
    pub confidence: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EndpointTrend {
    pub name: String,
    /// Median latency of each run that measured it, oldest first.
    pub latency_median_ms: Vec<Point>,
    /// Runs in which a check of this endpoint failed.
    pub failed_runs: usize,
    /// Runs that checked this endpoint at all.
    pub runs: usize,
    pub first_failure: Option<String>,
    pub last_failure: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Point {
    pub started_at: String,
    pub value: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckTrend {
    pub probe: Probe,
    /// `None` for device probes.
    pub target: Option<String>,
    pub failed: usize,
    /// Runs in which the check ran (skips do not count).
    pub of: usize,
    /// `down` (failed every time), `failing` (since `since`), `recovered`, or `flapping`.
    pub pattern: &'static str,
    pub since: Option<String>,
    /// One mark per run of the window: ✓ ! ✗ -, or · when the check was not in that run.
    pub marks: String,
}

impl CheckTrend {
    pub fn sentence(&self) -> String {
        let on = self
            .target
            .as_deref()
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        let base = if self.failed == self.of {
            format!(
                "{}{on} failed in all of the last {} runs",
                self.probe, self.of
            )
        } else {
            format!(
                "{}{on} failed in {} of the last {} runs",
                self.probe, self.failed, self.of
            )
        };
        match (self.pattern, &self.since) {
            ("failing", Some(since)) => format!("{base}, failing since {}", short_time(since)),
            ("recovered", _) => format!("{base}, passing again"),
            ("flapping", _) => format!("{base}: flapping"),
            _ => base,
        }
    }
}

fn failing_label(c: &Check) -> String {
    match &c.target {
        Some(t) => format!("{} {}", on_uplink(c, t), c.code),
        None => c.code.clone(),
    }
}

/// `api`, or `api via wlan0` for a check of a per-uplink run: each uplink has its own trend.
fn on_uplink(c: &Check, target: &str) -> String {
    match &c.interface {
        Some(i) => format!("{target} via {i}"),
        None => target.to_owned(),
    }
}

pub fn summarize(all: &[Report], last: usize, lines_skipped: usize) -> Summary {
    let window = &all[all.len().saturating_sub(last.max(1))..];
    let runs = window
        .iter()
        .map(|r| RunRow {
            report_id: r.report_id.clone(),
            started_at: r.started_at.clone(),
            region: r.region.clone(),
            status: r.status,
            duration_ms: r.duration_ms,
            failures: r
                .checks
                .iter()
                .filter(|c| c.status == Status::Fail)
                .map(failing_label)
                .collect(),
            warnings: r
                .checks
                .iter()
                .filter(|c| c.status == Status::Warn)
                .map(failing_label)
                .collect(),
            // A passing run's suspects are what a network check cannot test: not a finding.
            top_suspect: r
                .suspects
                .first()
                .filter(|_| r.status != Status::Pass)
                .map(|s| TopSuspect {
                    id: s.id.clone(),
                    confidence: s.confidence.as_str().to_owned(),
                }),
        })
        .collect();

    // Endpoints in order of first appearance.
    let mut names: Vec<String> = Vec::new();
    for r in window {
        let from_checks = r.checks.iter().filter_map(|c| c.target.clone());
        for n in r
            .endpoints
            .iter()
            .map(|e| e.name.clone())
            .chain(from_checks)
        {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let endpoints = names
        .into_iter()
        .map(|name| {
            let mut t = EndpointTrend {
                name: name.clone(),
                latency_median_ms: Vec::new(),
                failed_runs: 0,
                runs: 0,
                first_failure: None,
                last_failure: None,
            };
            for r in window {
                let mine: Vec<&Check> = r
                    .checks
                    .iter()
                    .filter(|c| c.target.as_deref() == Some(name.as_str()))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                t.runs += 1;
                if let Some(v) = mine
                    .iter()
                    .filter(|c| c.probe == Probe::Latency)
                    .find_map(|c| c.data_f64("median_ms"))
                {
                    t.latency_median_ms.push(Point {
                        started_at: r.started_at.clone(),
                        value: v,
                    });
                }
                if mine.iter().any(|c| c.status == Status::Fail) {
                    t.failed_runs += 1;
                    t.first_failure.get_or_insert_with(|| r.started_at.clone());
                    t.last_failure = Some(r.started_at.clone());
                }
            }
            t
        })
        .collect();

    // Per (probe, target): one status per run (the worst, if a probe reported several).
    let mut series: BTreeMap<(Probe, Option<String>), Vec<Option<Status>>> = BTreeMap::new();
    for (i, r) in window.iter().enumerate() {
        for c in &r.checks {
            let s = series
                .entry((c.probe, c.target.as_deref().map(|t| on_uplink(c, t))))
                .or_insert_with(|| vec![None; window.len()]);
            s[i] = Some(s[i].map_or(c.status, |old| old.max(c.status)));
        }
    }
    let mut failing_checks: Vec<CheckTrend> = series
        .into_iter()
        .filter_map(|((probe, target), statuses)| trend(probe, target, &statuses, window))
        .collect();
    failing_checks.sort_by(|a, b| {
        (b.failed * a.of.max(1))
            .cmp(&(a.failed * b.of.max(1)))
            .then(a.probe.cmp(&b.probe))
            .then(a.target.cmp(&b.target))
    });

    Summary {
        runs_total: all.len(),
        lines_skipped,
        runs,
        endpoints,
        failing_checks,
    }
}

fn trend(
    probe: Probe,
    target: Option<String>,
    statuses: &[Option<Status>],
    window: &[Report],
) -> Option<CheckTrend> {
    let ran: Vec<(usize, bool)> = statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Some(Status::Skip) | None => None,
            Some(s) => Some((i, *s == Status::Fail)),
        })
        .collect();
    let failed = ran.iter().filter(|(_, f)| *f).count();
    if failed == 0 {
        return None;
    }
    let changes = ran.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let last_failed = ran.last().is_some_and(|(_, f)| *f);
    let (pattern, since) = if failed == ran.len() {
        ("down", None)
    } else if changes == 1 && last_failed {
        let first_of_block = ran
            .iter()
            .rev()
            .take_while(|(_, f)| *f)
            .last()
            .map(|(i, _)| window[*i].started_at.clone());
        ("failing", first_of_block)
    } else if changes == 1 {
        ("recovered", None)
    } else {
        ("flapping", None)
    };
    let marks = statuses
        .iter()
        .map(|s| s.map_or("·", mark))
        .collect::<String>();
    Some(CheckTrend {
        probe,
        target,
        failed,
        of: ran.len(),
        pattern,
        since,
        marks,
    })
}

/// `2025-01-01T10:00:00.123Z` → `2025-01-01 10:00:00`: the history's times are all UTC.
fn short_time(rfc3339: &str) -> String {
    let t: String = rfc3339.chars().take(19).collect();
    t.replacen('T', " ", 1)
}

fn paint(text: &str, status: Status) -> String {
    match status {
        Status::Pass => text.green().to_string(),
        Status::Warn => text.yellow().to_string(),
        Status::Fail => text.red().bold().to_string(),
        Status::Skip => text.dimmed().to_string(),
    }
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline, scaled between the series' minimum and maximum.
pub fn sparkline(values: &[f64]) -> String {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (Some(lo), Some(hi)) = (
        finite.iter().copied().reduce(f64::min),
        finite.iter().copied().reduce(f64::max),
    ) else {
        return String::new();
    };
    values
        .iter()
        .map(|v| {
            if !v.is_finite() {
                ' '
            } else if (hi - lo).abs() < f64::EPSILON {
                SPARKS[3]
            } else {
                let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                SPARKS[i.min(7)]
            }
        })
        .collect()
}

fn list(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" (+{} more)", items.len() - max));
    }
    s
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

pub fn human(s: &Summary, path: &Path) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if s.runs.is_empty() {
        let _ = writeln!(
            out,
            "No runs recorded in {} yet. Every run appends to it unless --no-history is given.",
            path.display()
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{} {}: the last {} of {} run(s), newest last (times in UTC)\n",
        "History".bold(),
        path.display(),
        s.runs.len(),
        s.runs_total
    );
    let _ = writeln!(
        out,
        "  {:<19}  {:<6}  {:<40}  {}",
        "started".dimmed(),
        "result".dimmed(),
        "failed (warned)".dimmed(),
        "top suspect".dimmed()
    );
    for r in &s.runs {
        let problems = if r.failures.is_empty() && !r.warnings.is_empty() {
            format!("({})", list(&r.warnings, 2))
        } else {
            list(&r.failures, 2)
        };
        let top = r
            .top_suspect
            .as_ref()
            .map(|t| format!("{} ({})", t.id, t.confidence))
            .unwrap_or_else(|| "-".into());
        let result = format!("{} {}", mark(r.status), r.status);
        let _ = writeln!(
            out,
            "  {:<19}  {}  {:<40}  {top}",
            short_time(&r.started_at),
            paint(&format!("{result:<6}"), r.status),
            problems
        );
    }
    let trend: String = s
        .runs
        .iter()
        .map(|r| paint(mark(r.status), r.status))
        .collect();
    let passed = s.runs.iter().filter(|r| r.status == Status::Pass).count();
    let _ = writeln!(
        out,
        "\n{} {trend}   {passed} of {} passed (oldest → newest)",
        "Trend".bold(),
        s.runs.len()
    );

    if !s.endpoints.is_empty() {
        let _ = writeln!(out, "\n{}", "Endpoints".bold());
        let width = s.endpoints.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for e in &s.endpoints {
            let values: Vec<f64> = e.latency_median_ms.iter().map(|p| p.value).collect();
            let latency = match (values.first(), values.last()) {
                (Some(a), Some(b)) => format!(
                    "latency {} {} → {}",
                    sparkline(&values),
                    fmt_ms(*a),
                    fmt_ms(*b)
                ),
                _ => "no latency samples".dimmed().to_string(),
            };
            let failures = match (&e.first_failure, &e.last_failure) {
                (Some(first), Some(last)) if e.failed_runs > 1 => format!(
                    "failed in {} of {} runs, first {}, last {}",
                    e.failed_runs,
                    e.runs,
                    short_time(first),
                    short_time(last)
                ),
                (Some(first), _) => {
                    format!("failed in 1 of {} runs, at {}", e.runs, short_time(first))
                }
                _ => format!("no failures in {} runs", e.runs),
            };
            let _ = writeln!(out, "  {:<width$}  {latency}   {failures}", e.name);
        }
    }

    if !s.failing_checks.is_empty() {
        let _ = writeln!(out, "\n{}", "Checks that failed".bold());
        for c in &s.failing_checks {
            let _ = writeln!(out, "  {}  {}", c.marks, c.sentence());
        }
    }
    if s.lines_skipped > 0 {
        let _ = writeln!(
            out,
            "\n{} line(s) of the log were not reports and were skipped.",
            s.lines_skipped
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Confidence, Suspect, Tool};

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
