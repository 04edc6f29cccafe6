//! Free and total space of the filesystem holding a path: statvfs on Unix-like systems (the
//! disk list of sysinfo hides tmpfs and network mounts, which are exactly what a path may be
//! on); elsewhere an error the storage probe reports as not measured.

use std::path::{Path, PathBuf};

/// The directory standing in for `/` when the system's files are read (`/etc/resolv.conf`,
/// the DHCP leases): `BMW_NETCHECK_RESOLV_ROOT`, or `/` itself.
pub fn root() -> PathBuf {
    std::env::var_os("BMW_NETCHECK_RESOLV_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Free and total bytes of the filesystem holding `path`, and an id to tell filesystems apart.
#[cfg(unix)]
pub fn space(path: &Path) -> std::io::Result<(u64, u64, u64)> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    Ok((
        st.f_bavail.saturating_mul(frsize),
        st.f_blocks.saturating_mul(frsize),
        st.f_fsid,
    ))
}

#[cfg(not(unix))]
pub fn space(path: &Path) -> std::io::Result<(u64, u64, u64)> {
    let _ = path;
    Err(std::io::Error::other(
        "free space is only measured on Unix-like systems",
    ))
}
