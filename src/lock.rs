//! Starting a scheduled run: the opt-in single-instance lock and the start jitter.
//!
//! Both exist for cron and systemd timers. `--jitter` spreads a fleet's runs so thousands of
//! machines with the same crontab do not hit BMW's servers in the same second. `--lock` stops a
//! run from starting while the previous one is still going (a slow network, a long deadline):
//! overlapping runs would measure each other. Without `--lock`, concurrent runs are fine; they
//! only share the history file's own append lock.
//!
//! The lock is an OS file lock (`flock` on Unix, `LockFileEx` on Windows), so it dies with the
//! process: a killed run never leaves a stale lock behind. The file itself stays (removing it
//! would race with a run that has just opened it) and holds the holder's pid for the message.

use crate::error::AppError;
use crate::plan::Start;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Held for the whole run; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Where the single-instance lock lives: beside an explicit `--history` file (runs that keep
/// separate histories are separate instances) when that directory is the user's own and nobody
/// else may write there, else in the state directory. Never in a shared directory such as the
/// temp directory: there anyone could plant the file (or a link) before a root cron run opens it.
pub fn lock_path(history: Option<&Path>) -> Result<PathBuf, AppError> {
    if let Some(h) = history {
        let mut name = h.file_name().unwrap_or_default().to_os_string();
        name.push(".run.lock");
        let dir = match h.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Some(d) = crate::safefile::private_dir(dir) {
            return Ok(d.join(name));
        }
    }
    crate::files::state_dir()
        .map(|dir| dir.join("run.lock"))
        .ok_or_else(|| {
            AppError::Output(
                "--lock: no directory of this user's own for the lock file (no state directory; set XDG_STATE_HOME)"
                    .into(),
            )
        })
}

/// Starts a scheduled run: takes the single-instance lock when `--lock` is given (`None`
/// otherwise), then waits the `--jitter`. Both come before the run's clock starts, so neither
/// counts against `--deadline`; the lock comes first, so a run that may not start says so at
/// once instead of after its jitter.
pub fn start(start: &Start) -> Result<Option<RunLock>, AppError> {
    let lock = acquire_if(start.lock, start.history.as_deref())?;
    jitter(start.jitter);
    Ok(lock)
}

/// Takes the single-instance lock when `wanted`; `None` otherwise.
fn acquire_if(wanted: bool, history: Option<&Path>) -> Result<Option<RunLock>, AppError> {
    if !wanted {
        return Ok(None);
    }
    let path = lock_path(history)?;
    // The state directory is ours to create; a directory beside --history exists already.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    acquire(&path).map(Some)
}

/// Takes the lock at `path` without waiting: if another run holds it, this run must not start.
pub fn acquire(path: &Path) -> Result<RunLock, AppError> {
    let mut file = crate::safefile::open_lock(path)
        .map_err(|e| AppError::Output(format!("--lock: cannot open {} ({e})", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = read_pid(&mut file)
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(AppError::Locked(format!(
                "another bmw-netcheck run{holder} holds the lock {}; not starting (drop --lock to allow concurrent runs)",
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(AppError::Output(format!(
                "--lock: cannot lock {} ({e})",
                path.display()
            )));
        }
    }
    // The pid is only for the message of a run that finds the lock taken; failing to write it
    // does not matter.
    let _ = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|_| file.flush());
    Ok(RunLock { _file: file })
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// A uniformly random delay in `[0, max)`.
pub fn jitter_delay(max: Duration) -> Duration {
    let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(fastrand::u64(0..nanos))
}

/// Sleeps for `--jitter`, before the run's clock starts: the wait never counts against
/// `--deadline`.
fn jitter(max: Option<Duration>) {
    if let Some(max) = max {
        std::thread::sleep(jitter_delay(max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_holder_s_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let first = acquire(&path).unwrap();
        let err = acquire(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, AppError::Locked(_)));
        assert!(
            msg.contains(&format!("(pid {})", std::process::id())),
            "{msg}"
        );
        drop(first);
        acquire(&path).expect("free again once the holder is gone");
    }

    #[test]
    fn lock_sits_beside_an_explicit_history_file_in_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let args = Start {
            history: Some(dir.path().join("h.jsonl")),
            ..Start::default()
        };
        assert_eq!(
            lock_path(args.history.as_deref()).unwrap(),
            dir.path().join("h.jsonl.run.lock")
        );
    }

    #[test]
    fn lock_never_sits_in_a_shared_directory() {
        let args = Start {
            history: Some(PathBuf::from("/tmp/h.jsonl")),
            ..Start::default()
        };
        if let Ok(p) = lock_path(args.history.as_deref()) {
            assert!(!p.starts_with("/tmp/h"), "{}", p.display());
        }
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        assert_eq!(jitter_delay(Duration::ZERO), Duration::ZERO);
        for _ in 0..1000 {
            assert!(jitter_delay(Duration::from_millis(5)) < Duration::from_millis(5));
        }
    }
}
