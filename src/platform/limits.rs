//! This process's limit on open files, raised where the system allows (Unix: the soft limit
//! to the hard one). Elsewhere there is no such per-process limit to raise: a generous budget.

/// Raises this process's soft limit on open files to its hard limit (capped at 2^20), where the
/// system allows it. Returns the soft limit in effect afterwards.
#[cfg(unix)]
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let cap = 1 << 20;
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(cap);
    let hard = now.maximum.unwrap_or(cap).min(cap);
    if soft < hard {
        let mut raised = now;
        raised.current = Some(hard);
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return hard;
        }
    }
    soft
}

#[cfg(not(unix))]
pub fn raise_fd_limit() -> u64 {
    8192
}
