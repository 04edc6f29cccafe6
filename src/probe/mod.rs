//! Probes: each file looks at one thing and turns everything it sees into [`crate::model::Check`]s.
//!
//! Endpoint stages (dns → tcp → tls → http, with latency beside tls and http) receive what the
//! earlier stages found; device probes (storage, proxy, vpn, captive) look at the machine itself;
//! clock and ipv6 read what the others measured. None of them owns the run's deadline — the runner
//! does — and none of them knows how results are rendered.

pub mod answer;
pub mod blockpages;
pub mod captive;
pub mod clock;
pub mod dns;
pub mod dnsfilter;
pub mod dnswire;
pub mod http;
pub mod ipv6;
pub mod latency;
pub mod ocsp;
pub mod proxy;
pub mod registry;
pub mod resolverid;
pub mod storage;
pub mod tcp;
pub mod tls;
pub mod tls_classify;
pub mod tls_legacy;
pub mod tunnel;
pub mod vpn;
