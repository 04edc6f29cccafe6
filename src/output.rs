//! Delivering a finished report: redacted, in the chosen format, to stdout or atomically to a
//! file, then recorded in the history log.
//!
//! Order matters: the report is delivered first and the history appended after, so a history
//! that cannot be written never costs the user the report (it only earns a warning on stderr;
//! the exit code stays the verdict's, since history is a side record and not the output).

use crate::cli::{OutputFormat, RunArgs};
use crate::error::AppError;
use crate::history;
use crate::model::{Report, Status};
use crate::redact;
use crate::report::{self, Format};
use std::io::Write;
use std::path::Path;

/// Redacts, renders and writes the report as the flags ask, then appends it to the history.
pub fn deliver(report: &Report, args: &RunArgs) -> Result<(), AppError> {
    // Credentials go from every format and from the history line, whatever the flags say.
    let mut clean = report.clone();
    redact::credentials(&mut clean);
    let bytes = rendered(&clean, args.format, args.no_redact);
    let shown = &clean;
    let delivered = match &args.output {
        Some(path) => write_atomically(path, &bytes),
        // --quiet: nothing on stdout when all is well (cron mails only problems). A file named
        // with -o is still written: a textfile collector must see the good runs too.
        None if args.quiet && shown.status == Status::Pass => Ok(()),
        None => {
            write_stdout(&bytes);
            Ok(())
        }
    };
    record(&clean, args);
    delivered
}

/// Renders a report whose credentials are already gone in `format`; Markdown also loses the
/// personal details unless `no_redact`. Shared by `run`, `show` and `watch`.
pub fn rendered(clean: &Report, format: OutputFormat, no_redact: bool) -> Vec<u8> {
    match format {
        OutputFormat::Human => report::render(clean, Format::Human),
        OutputFormat::Json => report::render(clean, Format::Json),
        OutputFormat::Prometheus => report::render(clean, Format::Prometheus),
        OutputFormat::Nagios => report::render(clean, Format::Nagios),
        OutputFormat::Markdown => {
            let mut shown = clean.clone();
            if !no_redact {
                redact::personal(&mut shown);
            }
            report::render(
                &shown,
                Format::Markdown {
                    personal_redacted: !no_redact,
                },
            )
        }
    }
}

/// Appends the run to the history log; a failure is a warning, never the run's failure.
pub fn record(report: &Report, args: &RunArgs) {
    let path = match history::target(args.history.as_deref(), args.no_history) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            eprintln!("bmw-netcheck: warning: this run was not recorded in the history: {e}");
            return;
        }
    };
    match history::append(&path, report, args.history.is_none()) {
        Ok(()) => {}
        Err(history::AppendError::NotRecorded(e)) => eprintln!(
            "bmw-netcheck: warning: this run was not recorded in the history: {} (the report above is complete; --no-history silences this)",
            crate::sanitize::outside_capped(&e, 512)
        ),
        Err(history::AppendError::NotTrimmed(e)) => eprintln!(
            "bmw-netcheck: warning: this run was recorded in the history, but the history could not be trimmed: {}",
            crate::sanitize::outside_capped(&e, 512)
        ),
    }
}

/// Writes to stdout; a closed pipe (`| head -1`) is not an error worth a message.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|_| out.flush());
}

/// Fails early (before probing) when the output file's directory cannot take the file.
pub fn check_writable(path: &Path) -> Result<(), AppError> {
    let dir = parent_dir(path);
    let meta = std::fs::metadata(dir).map_err(|e| {
        AppError::Output(format!(
            "--output {}: directory {} is not usable ({e})",
            path.display(),
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(AppError::Output(format!(
            "--output {}: {} is not a directory",
            path.display(),
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(AppError::Output(format!(
            "--output {}: is a directory",
            path.display()
        )));
    }
    crate::safefile::check_target(path)
        .map_err(|e| AppError::Output(format!("--output {}: {e}", path.display())))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes the report to `path`: a regular file (or a new name) is replaced atomically, keeping
/// its mode and owner — a reader sees the old report or the new one, never half of one, and a
/// killed run leaves the old file intact; a terminal, pipe, FIFO or `/dev/null` is written
/// directly, as `tee` would. See [`crate::safefile::write_report`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    crate::safefile::write_report(path, bytes)
        .map_err(|e| AppError::Output(format!("--output {}: cannot write ({e})", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.prom");
        write_atomically(&path, b"old\n").unwrap();
        write_atomically(&path, b"new\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        assert_eq!(names(dir.path()), ["report.prom"]);
    }

    #[test]
    fn failed_write_keeps_the_old_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        // Renaming a file over a non-empty directory fails: the temp file must not stay.
        let err = write_atomically(&path, b"new").unwrap_err();
        assert!(matches!(err, AppError::Output(_)));
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn unusable_output_directory_is_named() {
        let err = check_writable(Path::new("/nonexistent-dir-bmw/x.md")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir-bmw"), "{err}");
    }
}
