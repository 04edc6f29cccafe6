//! The async runtimes this binary starts, built in one place.
//!
//! A run's probes, the exporter, a push after a run and the watcher of Ctrl-C and SIGTERM for
//! child runs each want tokio, with the timers and the I/O driver on, and differ only in how
//! many threads they need: one (a run's probes, a short push, a signal watcher) or a small
//! fixed pool (an exporter serving scrapes while its runs go on). The pool is small on purpose: the
//! work waits on sockets, and a device with many cores should not start a thread per core for
//! it. Each use names its threads, so `top -H` and a debugger say what a thread is for.

use crate::error::AppError;
use tokio::runtime::{Builder, Runtime};

/// How many threads a runtime runs its tasks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// On the thread that blocks on it: no thread of its own.
    Current,
    /// A pool of this many worker threads.
    Workers(usize),
}

/// A runtime with timers and I/O, its threads named `name` (e.g. `bmw-netcheck-probes`).
pub fn build(threads: Threads, name: &str) -> Result<Runtime, AppError> {
    let mut builder = match threads {
        Threads::Current => Builder::new_current_thread(),
        Threads::Workers(n) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
    };
    builder
        .thread_name(format!("bmw-netcheck-{name}"))
        .enable_all()
        .build()
        .map_err(|e| AppError::Internal(format!("cannot start the async runtime ({name}): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_run_timers_and_name_their_threads() {
        let one = build(Threads::Current, "test-current").unwrap();
        one.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(1)).await });
        let pool = build(Threads::Workers(2), "test-pool").unwrap();
        let name = pool
            .block_on(pool.spawn(async { std::thread::current().name().map(str::to_owned) }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("bmw-netcheck-test-pool"));
    }
}
