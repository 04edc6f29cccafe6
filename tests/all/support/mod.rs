//! Hermetic fixtures for the end-to-end tests: servers the tests start themselves on loopback
//! (or on sockets the caller bound, e.g. inside a network namespace), certificates generated in
//! the test, profiles written to a temporary directory, and a runner for the real binary.
//!
//! Nothing here talks to any address the tests did not bind. Every server runs on a shared
//! background tokio runtime and stops — with every connection it holds — when its handle drops.
//! Kept so on purpose: a test states its scenario with these fixtures and real programs, and
//! the benchmarks (`bench/`) include the same files, so what is measured is what is tested.

// Fixtures (and their re-exports below) are shared by several test modules; not every module
// uses every knob.
#![allow(dead_code, unused_imports)]

pub mod daemon;
pub mod dns;
pub mod dnsmasq;
pub mod encdns;
pub mod hellorelay;
pub mod https;
pub mod kresd;
pub mod mitmproxy;
pub mod named;
// The runner of the real binary needs `CARGO_BIN_EXE_*`, which Cargo sets for tests only; the
// benchmark (an example) includes this module without it.
#[cfg(test)]
pub mod netcheck;
pub mod nginx;
pub mod nginxhosts;
pub mod nsnginx;
pub mod opensslpki;
pub mod pacserver;
pub mod pki;
pub mod profile;
pub mod prometheus;
#[cfg(test)]
pub mod schema;
pub mod squid;
// Uses the test binary's network namespaces, which the benchmarks do not include.
#[cfg(test)]
pub mod sslbump;
pub mod tcp;
pub mod tinyproxy;
pub mod tlslite;
pub mod unbound;

pub use dns::{DnsAnswer, DnsServer};
pub use https::{DateHeader, HttpBehaviour, HttpReply, HttpsServer};
#[cfg(test)]
pub use netcheck::{
    ALL_OK, Netcheck, Outcome, assert_stages, checks_of, code, device_check, run_command, stage,
    status, suspect_ids, top_suspect, via_proxy,
};
pub use pki::{Issuer, Leaf, Pki, ServerIdentity, Validity};
pub use profile::{EndpointSpec, ProfileFile};
pub use tcp::{RawMode, RawTcpServer, closed_port};

use std::sync::OnceLock;
use tokio::runtime::Runtime;

/// The runtime every fixture server runs on. Two workers: the servers only shuffle a few bytes.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fixture")
            .enable_all()
            .build()
            .expect("start the fixtures' runtime")
    })
}

/// A server's background task; dropping it stops the server and every connection it spawned
/// (they live in a `JoinSet` owned by the task).
pub struct Task(tokio::task::AbortHandle);

impl Task {
    pub fn spawn<F>(fut: F) -> Task
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Task(runtime().spawn(fut).abort_handle())
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Is IPv6 loopback usable here? Containers without IPv6 cannot bind `[::1]`.
pub fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Held by tests that compare timings (netns) and by tests that load the machine for a moment
/// (thousands of endpoints, a 64 MiB file): timings are only compared on a quiet machine.
pub fn quiet_machine() -> std::sync::MutexGuard<'static, ()> {
    static QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());
    QUIET.lock().unwrap_or_else(|p| p.into_inner())
}

/// A line for the test log that shows even when the test passes (the harness captures
/// `println!`, not direct writes): the counts CI should display.
pub fn say(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// The variable that turns every skip into a failure. `.ci/run` sets it: CI installs every
/// program, is root and can make namespaces, so a skip there would hide a gap.
pub const REQUIRE: &str = "BMW_NETCHECK_TEST_REQUIRE";

/// The suite's one way to skip a test: prints the reason on stderr (which the harness shows
/// with `--nocapture` and keeps for a failing test), or panics with it when
/// `BMW_NETCHECK_TEST_REQUIRE=1`. The caller returns right after.
pub fn skip(reason: &str) {
    if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
        panic!("{REQUIRE}=1 and this test would skip: {reason}");
    }
    say(&format!("SKIP: {reason}"));
}
