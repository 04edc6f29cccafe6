//! The fixture servers of `tests/all/support/`, included file by file.
//!
//! `tests/all/support/mod.rs` itself cannot be included: its `netcheck` module finds the binary
//! with `cargo_bin!`, i.e. `CARGO_BIN_EXE_bmw-netcheck`, which Cargo sets for integration tests
//! and benches but not for examples. This file is that `mod.rs` minus `netcheck` and `tcp`: the
//! same `Task` and `runtime()` the included servers expect from their parent module.

#![allow(dead_code, unused_imports)]

#[path = "../tests/all/support/dns.rs"]
pub mod dns;
#[path = "../tests/all/support/https.rs"]
pub mod https;
#[path = "../tests/all/support/pki.rs"]
pub mod pki;
#[path = "../tests/all/support/profile.rs"]
pub mod profile;

pub use dns::{DnsAnswer, DnsServer};
pub use https::{HttpBehaviour, HttpsServer};
pub use pki::{Leaf, Pki};
pub use profile::{EndpointSpec, ProfileFile};

use std::sync::OnceLock;
use tokio::runtime::Runtime;

/// The runtime every fixture server runs on (as in `tests/all/support/mod.rs`).
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

/// A server's background task; dropping it stops the server.
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
