//! The tool's own files: where its state lives, writing to stdout, and the checked, atomic
//! replacement of an output file.
//!
//! These sit below every command (history, lock, output, show, watch use them) so that none of
//! those has to import another for a path or a write. The atomic replace itself is
//! [`crate::safefile::write_report`], kept as it is on purpose: a reader sees the old report or
//! the new one, never half of one, and a killed run leaves the old file intact.

use crate::error::AppError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The tool's state directory: `$XDG_STATE_HOME/bmw-netcheck` or `~/.local/state/bmw-netcheck`
/// on Linux; `~/Library/Application Support/bmw-netcheck` on macOS; `%LOCALAPPDATA%\bmw-netcheck`
/// on Windows.
pub fn state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("bmw-netcheck"))
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
