//! A TCP connection attempt and how it ended, in the words the report uses.
//!
//! Shared below the probes: the tcp stage makes attempts, the runner keeps them per endpoint,
//! and the ipv6 reader compares the two families' attempts afterwards.

use crate::probe::sockerr::is_local_limit;
use serde_json::json;
use std::io;
use std::net::SocketAddr;

/// How a connection attempt ended, sorted by what it tells the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Timeout,
    Unreachable,
    Error,
    /// This device ran out of descriptors, buffers or memory: the tool's own limit, which says
    /// nothing about the network.
    LocalLimit,
}

impl Outcome {
    pub fn of(e: &io::Error) -> Outcome {
        if is_local_limit(e) {
            return Outcome::LocalLimit;
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Outcome::Refused,
            io::ErrorKind::TimedOut => Outcome::Timeout,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                Outcome::Unreachable
            }
            _ => match e.raw_os_error() {
                Some(113) | Some(101) => Outcome::Unreachable, // EHOSTUNREACH, ENETUNREACH
                _ => Outcome::Error,
            },
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Outcome::Ok => "tcp.ok",
            Outcome::Refused => "tcp.refused",
            Outcome::Timeout => "tcp.timeout",
            Outcome::Unreachable => "tcp.unreachable",
            Outcome::Error => "tcp.error",
            Outcome::LocalLimit => "tcp.local_limit",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::Error => "error",
            Outcome::LocalLimit => "local_limit",
        }
    }
}

/// One family's attempt: the address tried last and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub address: SocketAddr,
    pub outcome: Outcome,
    pub connect_ms: f64,
    pub detail: String,
}

impl Attempt {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "address": self.address.to_string(),
            "family": if self.address.is_ipv6() { "ipv6" } else { "ipv4" },
            "result": self.outcome.label(),
            "connect_ms": self.connect_ms,
            "detail": self.detail,
        })
    }
}
