//! Probes: each file looks at one thing and turns everything it sees into [`crate::model::Check`]s.
//!
//! Endpoint stages (dns → tcp → tls → http, with latency beside tls and http) receive what the
//! earlier stages found; device probes (storage, proxy, vpn, captive, resolvconf) look at the
//! machine itself; clock and ipv6 read what the others measured. None of them owns the run's
//! deadline — the runner does — and none of them knows how results are rendered.
//!
//! Each probe declares itself in a [`definition::Definition`] and is listed in [`registry`]. No
//! probe imports another: what two of them share lives in a module below them (the HTTP
//! [`exchange`], TCP [`attempt`]s, [`sockerr`], the [`portfilter`] control, [`servertime`], [`proxyenv`], [`lookup`], the
//! proxy [`tunnel`], the DNS wire helpers), and `tests/all/layers.rs` keeps it so.

pub mod answer;
pub mod attempt;
pub mod blockpages;
pub mod captive;
pub mod clock;
pub mod control;
pub mod definition;
pub mod dns;
pub mod dnsfilter;
pub mod dnstransport;
pub mod dnswire;
pub mod dohdot;
pub mod egress;
pub mod exchange;
pub mod http;
pub mod ipv6;
pub mod latency;
pub mod lookup;
pub mod nat64;
pub mod oauth;
pub mod portfilter;
pub mod proxy;
pub mod proxyenv;
pub mod registry;
pub mod resolvconf;
pub mod resolverid;
pub mod servertime;
pub mod sockerr;
pub mod storage;
pub mod tcp;
pub mod tls;
pub mod tunnel;
pub mod tunnels;
pub mod vpn;
