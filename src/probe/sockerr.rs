//! Socket errors that are this device's, not the network's.
//!
//! Shared below the probes: the tcp stage and the latency samples both must tell "the path
//! refused" from "this machine ran out of descriptors or buffers", which is the tool's limit and
//! never network evidence.

use std::io;

/// `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: the error is this machine's resources, not the path.
pub fn is_local_limit(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let local = [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM];
    e.raw_os_error()
        .is_some_and(|n| local.iter().any(|l| l.raw_os_error() == n))
}
