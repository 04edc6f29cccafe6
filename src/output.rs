//! Delivering a finished report: redacted, in the chosen format, to stdout or atomically to a
//! file, then recorded in the history log.
//!
//! Order matters: the report is delivered first and the history appended after, so a history
//! that cannot be written never costs the user the report (it only earns a warning on stderr;
//! the exit code stays the verdict's, since history is a side record and not the output).

use crate::error::AppError;
use crate::files;
use crate::history;
use crate::model::{Report, Status};
use crate::plan::{Delivery, Record, Redaction};
use crate::redact;
use crate::report::human::Layout;
use crate::report::{self, Format, RenderOptions};
use std::io::Write;

/// Redacts, renders and writes the report as the flags ask, then appends it to the history.
///
/// Works on the run's own report, in place: at the end of a run of thousands of endpoints the
/// report is the largest thing the process holds, and a copy for each step (redaction, the
/// sanitizer, the text) would hold it several times over. What the caller keeps afterwards (the
/// verdict, the push) is the redacted, plain report every format shows.
pub fn deliver(report: &mut Report, plan: &Delivery) -> Result<(), AppError> {
    // Credentials go from every format and from the history line, whatever the flags say.
    redact::credentials(report);
    // --quiet: nothing on stdout when all is well (cron mails only problems). A file named
    // with -o is still written: a textfile collector must see the good runs too.
    let silent = plan.output.is_none() && plan.quiet && report.status == Status::Pass;
    let delivered = if silent { Ok(()) } else { write(report, plan) };
    record(report, &plan.record);
    delivered
}

/// Renders the report as the plan asks and writes it to its file or to stdout.
fn write(clean: &mut Report, plan: &Delivery) -> Result<(), AppError> {
    let bytes = if personal(plan.format, plan.redaction) {
        // The personal details go from a copy: the history keeps them.
        rendered_laid_out(clean, plan.format, plan.redaction, plan.layout)
    } else {
        // Plain text in place (the history line is made plain the same way), then rendered
        // without a copy; JSON on stdout goes out as it is written, never whole in memory.
        crate::sanitize::report(clean);
        if plan.output.is_none() && plan.format == Format::Json {
            let mut out =
                std::io::BufWriter::with_capacity(STREAM_BUFFER, std::io::stdout().lock());
            // A closed pipe is the reader's choice, as for every other format.
            let _ = report::json::write(clean, &mut out).and_then(|()| out.flush());
            return Ok(());
        }
        report::render_plain(clean, plan.format, RenderOptions::default(), plan.layout)
    };
    match &plan.output {
        Some(path) => files::write_atomically(path, &bytes),
        None => {
            files::write_stdout(&bytes);
            Ok(())
        }
    }
}

/// The buffer between the JSON writer and stdout.
const STREAM_BUFFER: usize = 64 * 1024;

/// Whether `format` loses the personal details under `redaction`: Markdown unless
/// `--no-redact`, every format with `--redact`.
fn personal(format: Format, redaction: Redaction) -> bool {
    redaction.redact || (format == Format::Markdown && !redaction.no_redact)
}

/// Renders a report whose credentials are already gone in `format`; Markdown also loses the
/// personal details unless `no_redact`. Shared by `run`, `show` and `watch`.
pub fn rendered(clean: &Report, format: Format, no_redact: bool) -> Vec<u8> {
    let redaction = Redaction {
        no_redact,
        redact: false,
    };
    rendered_laid_out(clean, format, redaction, Layout::default())
}

/// [`rendered`], with the redaction asked for and the human report laid out for a terminal.
pub fn rendered_laid_out(
    clean: &Report,
    format: Format,
    redaction: Redaction,
    layout: Layout,
) -> Vec<u8> {
    let personal = personal(format, redaction);
    let options = RenderOptions {
        personal_redacted: personal,
    };
    if personal {
        let mut shown = clean.clone();
        redact::personal(&mut shown);
        return report::render_laid_out(&shown, format, options, layout);
    }
    report::render_laid_out(clean, format, options, layout)
}

/// Appends the run to the history log; a failure is a warning, never the run's failure.
pub fn record(report: &Report, plan: &Record) {
    let path = match history::target(plan.history.as_deref(), plan.disabled) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            eprintln!("bmw-netcheck: warning: this run was not recorded in the history: {e}");
            return;
        }
    };
    match history::append(&path, report, plan.history.is_none()) {
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
