//! Opening files safely: what the tool reads and writes on a machine it does not control.
//!
//! Kept exemplary on purpose: the atomic replace of a report ([`write_report`]) — a temporary
//! file beside the target, the target's mode and owner kept, then a rename — means a reader
//! sees the old report or the new one, never half of one.
//!
//! The tool runs as root from cron, with paths from flags, profiles and the environment. A
//! planted symbolic link would make it append to or truncate another file; a FIFO would make it
//! block past its deadline; `/dev/zero` as a profile would make it allocate until it dies; a
//! device node as `-o` would be replaced by a regular file. So:
//!
//! - **reads** ([`read_bounded`]) open without blocking (a FIFO with no writer cannot stall the
//!   open), check after opening that the file is a regular file, and read at most a cap;
//! - **appends** ([`open_append`]) never follow a symbolic link and check the type after
//!   opening (no race between the check and the use);
//! - **reports** ([`write_report`]) replace a regular file atomically, keeping its mode and owner,
//!   and are written directly (like `tee`) onto a terminal, `/dev/null`, a pipe or a FIFO that has
//!   a reader — never onto a block device, never through a link to a regular file;
//! - **locks** live only in a directory the user owns and nobody else may write
//!   ([`private_dir`]).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn flags(f: rustix::fs::OFlags) -> i32 {
    f.bits() as i32
}

/// What kind of file `meta` describes, in words for a message.
pub fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a local input file (a profile, a CA bundle) of at most `max` bytes. Refuses, with a
/// message fit for one line after the file's name, anything that is not a regular file: a FIFO
/// or a device would hang or never end. `what` names the file's role ("a profile").
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags(rustix::fs::OFlags::NONBLOCK))
        .open(path)
        .map_err(|e| io_reason(&e))?;
    let meta = file.metadata().map_err(|e| io_reason(&e))?;
    if !meta.is_file() {
        return Err(format!(
            "is {}, not a regular file; {what} must be a regular file",
            kind(&meta)
        ));
    }
    if meta.len() > max {
        return Err(format!(
            "is {} bytes; {what} may be at most {max} bytes",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the check and the read: the cap holds regardless.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_reason(&e))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "grew past {max} bytes while being read; {what} may be at most {max} bytes"
        ));
    }
    Ok(bytes)
}

/// An I/O error as the end of a sentence about a file.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "cannot be read (permission denied)".into(),
        _ => format!("cannot be read ({e})"),
    }
}

/// Opens `path` for appending (creating it with mode 0600 when absent) without following a
/// symbolic link and without blocking; errors unless what was opened is a regular file.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(flags(
            rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK,
        ))
        .open(path)
        .map_err(|e| nofollow_error(path, e))?;
    regular_only(file, path)
}

/// Opens (creating it) a lock file: no symbolic link followed, no blocking, regular files only.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(flags(
            rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK,
        ))
        .open(path)
        .map_err(|e| nofollow_error(path, e))?;
    regular_only(file, path)
}

/// The file just opened, if it is a regular file (checked on the open file, not the path, so
/// nothing can be swapped in between).
fn regular_only(file: File, path: &Path) -> std::io::Result<File> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is {}, not a regular file",
            path.display(),
            kind(&meta)
        )));
    }
    Ok(file)
}

/// `ELOOP` from `O_NOFOLLOW` means "this is a symbolic link": say so.
fn nofollow_error(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        std::io::Error::other(format!(
            "{} is a symbolic link; it is not followed",
            path.display()
        ))
    } else {
        e
    }
}

/// The directory a lock file may live in: `dir` when it belongs to this user and nobody else
/// can write to it (so nobody can plant a file or link there), `None` otherwise.
pub fn private_dir(dir: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    let euid = rustix::process::geteuid().as_raw();
    let mode = meta.permissions().mode();
    (meta.is_dir() && meta.uid() == euid && mode & 0o022 == 0).then(|| dir.to_owned())
}

/// Where a report goes, decided from what is at the path now.
enum Target {
    /// Nothing there, or a regular file: replace it atomically.
    Replace(Option<Metadata>),
    /// A terminal, `/dev/null`, a pipe, a FIFO: write into it, as `tee` would.
    Direct,
}

fn target(path: &Path) -> std::io::Result<Target> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Replace(None)),
        Err(e) => return Err(e),
    };
    let t = meta.file_type();
    if t.is_file() {
        return Ok(Target::Replace(Some(meta)));
    }
    if t.is_symlink() {
        // `/dev/stdout`, `/dev/fd/1` and their kind are links the system made to what this
        // process already holds: writing through them is what the user asked for.
        let target = std::fs::metadata(path)?;
        let system_link = path.starts_with("/dev") || path.starts_with("/proc");
        let device_or_pipe = !target.is_file() && !target.is_dir();
        if !target.is_dir()
            && !target.file_type().is_block_device()
            && (device_or_pipe || system_link)
        {
            return Ok(Target::Direct);
        }
        return Err(std::io::Error::other(format!(
            "is a symbolic link to {}; it is not followed (name the file itself)",
            kind(&target)
        )));
    }
    if t.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    if t.is_block_device() {
        return Err(std::io::Error::other(
            "is a block device; a report is never written onto a disk",
        ));
    }
    Ok(Target::Direct)
}

/// Fails (before any probe runs) when `path` is something a report must not be written to.
pub fn check_target(path: &Path) -> std::io::Result<()> {
    target(path).map(|_| ())
}

/// Writes a report to `path`: atomically (temp file + rename, keeping the old file's mode and
/// owner) onto a regular file or a new name; directly onto a terminal, pipe, FIFO or
/// `/dev/null`. A FIFO nobody reads is an error, not a hang.
pub fn write_report(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match target(path)? {
        Target::Replace(old) => replace(path, bytes, old.as_ref()),
        Target::Direct => {
            let mut f = OpenOptions::new()
                .write(true)
                .custom_flags(flags(rustix::fs::OFlags::NONBLOCK))
                .open(path)
                .map_err(|e| {
                    let fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
                    if fifo && e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                        std::io::Error::other("is a FIFO that nobody is reading")
                    } else {
                        e
                    }
                })?;
            // Blocking from here on: a reader exists, and a pipe's buffer drains.
            let fd = rustix::fs::fcntl_getfl(&f)?;
            rustix::fs::fcntl_setfl(&f, fd - rustix::fs::OFlags::NONBLOCK)?;
            f.write_all(bytes)?;
            f.flush()
        }
    }
}

/// Replaces `path` atomically with what `fill` writes into the temporary file, keeping the mode
/// and owner of `old`. The temporary file is a dot-file in the same directory (a rename cannot
/// cross file systems), named `.<name>.<pid>.<random>.tmp`: it exists only for the moment of
/// the write, and if the process is killed in exactly that moment the leftover is recognisable
/// and safe to delete. Dot-files are also what node_exporter's textfile collector ignores.
pub fn replace_with(
    path: &Path,
    old: Option<&Metadata>,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
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
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(old.map_or(0o666, |m| m.permissions().mode() & 0o7777))
            .custom_flags(flags(rustix::fs::OFlags::NOFOLLOW))
            .open(&tmp)?;
        if let Some(m) = old {
            // The umask narrowed the mode at creation; the old file's mode is what the user set.
            f.set_permissions(std::fs::Permissions::from_mode(
                m.permissions().mode() & 0o7777,
            ))?;
            let me = rustix::process::geteuid().as_raw();
            if m.uid() != me || m.gid() != rustix::process::getegid().as_raw() {
                // Only root may give a file away; for others a group change may still work.
                let uid = (me == 0).then_some(m.uid());
                if let Err(e) = std::os::unix::fs::fchown(&f, uid, Some(m.gid()))
                    && me == 0
                {
                    return Err(e);
                }
            }
        }
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn replace(path: &Path, bytes: &[u8], old: Option<&Metadata>) -> std::io::Result<()> {
    replace_with(path, old, |f| f.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_refuse_what_is_not_a_regular_file() {
        let e = read_bounded(Path::new("/dev/zero"), 1024, "a profile").unwrap_err();
        assert!(e.contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_bounded(dir.path(), 1024, "a profile").unwrap_err();
        assert!(e.contains("directory"), "{e}");
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'a'; 2000]).unwrap();
        let e = read_bounded(&f, 1024, "a profile").unwrap_err();
        assert!(e.contains("at most 1024"), "{e}");
        std::fs::write(&f, b"ok").unwrap();
        assert_eq!(read_bounded(&f, 1024, "a profile").unwrap(), b"ok");
    }

    #[test]
    fn replace_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.prom");
        std::fs::write(&f, b"old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_report(&f, b"new").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn appends_do_not_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("h.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_append(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
