//! Delivering a finished report: the chosen format, to stdout or atomically to a file.

use crate::cli::{OutputFormat, RunArgs};
use crate::error::AppError;
use crate::model::{Report, Status};
use crate::report::{self, Format};
use std::io::Write;
use std::path::Path;

/// Renders and writes the report as the flags ask.
pub fn deliver(report: &Report, args: &RunArgs) -> Result<(), AppError> {
    let format = match args.format {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
        other => {
            return Err(AppError::usage(format!(
                "--format {other:?} is not available yet"
            )));
        }
    };
    if args.quiet && report.status == Status::Pass {
        return Ok(());
    }
    let bytes = report::render(report, format);
    match &args.output {
        Some(path) => write_atomically(path, &bytes),
        None => {
            write_stdout(&bytes);
            Ok(())
        }
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
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`: a reader sees the
/// old report or the new one, never half of one, and a killed run leaves the old file intact.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let dir = parent_dir(path);
    let fail = |e: std::io::Error| {
        AppError::Output(format!("--output {}: cannot write ({e})", path.display()))
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}
