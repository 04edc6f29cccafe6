//! The log store: appending a run under the lock, trimming in batches, reading it back.

use crate::model::Report;
use crate::redact;
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

/// The default history file, if the platform has a state directory for this user.
pub fn default_path() -> Option<PathBuf> {
    crate::files::state_dir().map(|d| d.join(FILE_NAME))
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
    let locks = crate::files::state_dir()
        .map(|d| d.join("locks"))
        .ok_or_else(|| {
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
/// byte, and the trim check after it reads the newest block, and the newest [`TRIM_AT`] lines
/// only when that block's lines say the log may hold that many ([`trim`]): memory stays the
/// same whatever the log's size. A write that fails half-way (a full
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
/// A full log is tens of megabytes, and a check run every minute must not read it every time
/// to learn that it holds fewer than [`TRIM_AT`] lines. So the newest block (64 KiB) is read
/// first, and its lines' mean length estimates how many the log holds; only a log estimated at
/// [`TRIM_AT`] or more is counted exactly, reading backwards a block at a time until
/// [`TRIM_AT`] line ends (or the start), and the kept tail is copied into the replacement file.
/// A log whose older lines are much shorter than its newest is cut a little later than its
/// count says, never earlier. Memory stays at one block whatever the log's size.
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
    let newest = len.saturating_sub(BLOCK);
    file.read_exact_at(&mut buf[..(len - newest) as usize], newest)?;
    // Line ends in the newest block, the last one (closing the newest line) left out: the
    // complete lines between the first and the last of them.
    let ends: Vec<usize> = memchr::memchr_iter(b'\n', &buf[..(len - newest) as usize]).collect();
    if let [first, .., last] = ends[..]
        && last > first
    {
        let mean = (last - first) as u64 / (ends.len() as u64 - 1);
        // A margin of 1 % for the estimate's rounding: counted exactly from there on.
        if len / mean.max(1) < (TRIM_AT - TRIM_AT / 100) as u64 {
            return Ok(());
        }
    }
    let mut pos = len;
    let mut seen = 0usize;
    let mut cut = None;
    'scan: while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut buf[..(pos - start) as usize];
        file.read_exact_at(chunk, start)?;
        // memchr finds the line ends a vector at a time.
        for i in memchr::memrchr_iter(b'\n', chunk) {
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

pub(super) fn parse(bytes: &[u8], shown: &str) -> Loaded {
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
