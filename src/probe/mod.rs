//! Probes: each file looks at one thing and turns everything it sees into [`crate::model::Check`]s.
//!
//! Endpoint stages (dns → tcp → tls → http, with latency beside tls and http) receive what the
//! earlier stages found; device probes look at the machine itself. None of them owns the run's
//! deadline — the runner does — and none of them knows how results are rendered.

pub mod dns;
pub mod http;
pub mod latency;
pub mod tcp;
pub mod tls;
