//! `show`: re-render a saved JSON report, or a line of the history log, in any format.
//!
//! A support agent asks for `--format json` (complete, machine-readable) and reads it here as
//! the human or Markdown report. The input is someone else's file, so it is treated as outside
//! text: opened without following a symlink, size-capped, every string sanitized before it
//! reaches a terminal or a document, and the same redaction as a live run applied. A report of a
//! newer `schema_version` is refused with one line, rather than half-understood.

use crate::cli::ShowArgs;
use crate::error::{AppError, exit};
use crate::model::{Report, SCHEMA_VERSION};
use crate::output;
use crate::redact;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// Larger than a full history log (about 1100 lines of a few KB each).
const MAX_BYTES: u64 = 64 << 20;

/// Longest string kept from the file: room for any summary the tool writes itself.
const MAX_FIELD_CHARS: usize = 4096;

/// Runs `show`.
pub fn run(args: &ShowArgs) -> Result<i32, AppError> {
    let shown = if args.file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        args.file.display().to_string()
    };
    let bytes = read_input(&args.file, &shown)?;
    let report = pick(&bytes, &shown, args.run.as_deref())?;
    let mut clean = report;
    redact::credentials(&mut clean);
    crate::term::decide_color(args.color, args.output.is_some());
    let layout = crate::report::human::Layout {
        width: crate::term::width(args.output.is_some()),
        verbose: args.verbose,
    };
    let redaction = crate::plan::Redaction {
        no_redact: args.no_redact,
        redact: args.redact,
    };
    let text = output::rendered_laid_out(&clean, args.format, redaction, layout);
    match &args.output {
        Some(path) => {
            crate::files::check_writable(path)?;
            crate::files::write_atomically(path, &text)?;
        }
        None => crate::files::write_stdout(&text),
    }
    Ok(exit::of(clean.status))
}

fn read_input(path: &Path, shown: &str) -> Result<Vec<u8>, AppError> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        open_no_follow(path).and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| AppError::Input(format!("show: cannot read {shown} ({e})")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(AppError::Input(format!(
            "show: {shown} is larger than {} MiB; not a report",
            MAX_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Opens a regular file for reading, refusing a symlink in the last component.
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let f = opts.open(path).map_err(|e| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::io::Error::other("it is a symbolic link; name the file itself")
        } else {
            e
        }
    })?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// The report to show: the document itself, or from a history log (JSON Lines) the run named
/// by `wanted`, or the newest.
pub fn pick(bytes: &[u8], shown: &str, wanted: Option<&str>) -> Result<Report, AppError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AppError::Input(format!("show: {shown} is not UTF-8 text; not a report")))?;
    let documents: Vec<(usize, Value)> = match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![(1, v)],
        Err(whole) => {
            let mut docs = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                // A torn line in a history log does not hide the others.
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    docs.push((i + 1, v));
                }
            }
            if docs.is_empty() {
                return Err(AppError::Input(format!(
                    "show: {shown} is not JSON ({})",
                    crate::sanitize::outside(&whole.to_string())
                )));
            }
            docs
        }
    };
    let chosen = match wanted {
        Some(id) => documents
            .into_iter()
            .rev()
            .find(|(_, v)| v.get("report_id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| {
                AppError::Input(format!(
                    "show: no run with report id {} in {shown}",
                    crate::sanitize::outside(id)
                ))
            })?,
        None => documents
            .into_iter()
            .next_back()
            .ok_or_else(|| AppError::Input(format!("show: {shown} is empty")))?,
    };
    let (line, mut value) = chosen;
    let place = if line > 1 {
        format!("{shown} line {line}")
    } else {
        shown.to_owned()
    };
    match value.get("schema_version").and_then(Value::as_u64) {
        Some(v) if v > u64::from(SCHEMA_VERSION) => {
            return Err(AppError::Input(format!(
                "show: {place} has schema_version {v}; this bmw-netcheck reads schema_version {SCHEMA_VERSION} (use a newer release to read it)"
            )));
        }
        Some(_) => {}
        None => {
            return Err(AppError::Input(format!(
                "show: {place} is not a bmw-netcheck report (no schema_version)"
            )));
        }
    }
    sanitize_strings(&mut value);
    serde_json::from_value::<Report>(value).map_err(|e| {
        AppError::Input(format!(
            "show: {place} is not a bmw-netcheck report ({})",
            crate::sanitize::outside(&e.to_string())
        ))
    })
}

/// Every string of the document, keys included, made plain visible text.
fn sanitize_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = crate::sanitize::outside_capped(s, MAX_FIELD_CHARS),
        Value::Array(items) => items.iter_mut().for_each(sanitize_strings),
        Value::Object(map) => {
            let taken = std::mem::take(map);
            for (k, mut item) in taken {
                sanitize_strings(&mut item);
                map.insert(crate::sanitize::outside_capped(&k, MAX_FIELD_CHARS), item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_json(id: &str, version: u32) -> String {
        format!(
            r#"{{"schema_version":{version},"report_id":"{id}","tool":{{"name":"bmw-netcheck","version":"0.1.0"}},"started_at":"2026-01-01T00:00:00.000Z","duration_ms":1.0,"region":"r","status":"pass","checks":[],"suspects":[]}}"#
        )
    }

    #[test]
    fn picks_a_run_from_a_history_log_or_the_newest() {
        let log = format!(
            "{}\n{}\nnot json\n{}\n",
            report_json("aaa", 1),
            report_json("bbb", 1),
            report_json("ccc", 1)
        );
        assert_eq!(
            pick(log.as_bytes(), "h", Some("bbb")).unwrap().report_id,
            "bbb"
        );
        assert_eq!(pick(log.as_bytes(), "h", None).unwrap().report_id, "ccc");
        let err = pick(log.as_bytes(), "h", Some("zzz")).unwrap_err();
        assert!(
            err.to_string().contains("no run with report id zzz"),
            "{err}"
        );
    }

    #[test]
    fn newer_schema_is_refused_naming_the_version_read() {
        let err = pick(report_json("a", 2).as_bytes(), "r.json", None).unwrap_err();
        assert!(matches!(err, AppError::Input(_)));
        assert_eq!(
            err.to_string(),
            "show: r.json has schema_version 2; this bmw-netcheck reads schema_version 1 (use a newer release to read it)"
        );
    }

    #[test]
    fn control_characters_in_a_saved_report_are_made_visible() {
        let doc = report_json("a", 1).replace("\"region\":\"r\"", "\"region\":\"r\\u001b[2J\"");
        let r = pick(doc.as_bytes(), "r.json", None).unwrap();
        assert!(!r.region.contains('\u{1b}'), "{:?}", r.region);
    }
}
