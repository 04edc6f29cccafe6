//! One name to one address, for a probe that is not the dns stage but must reach a host by name
//! (the captive-portal check's plain-HTTP host).
//!
//! Shared below the probes. The dns stage reads every answer closely (second looks, filters,
//! sinkholes); a probe that only needs an address wants the first one, or a short reason in the
//! resolver's words why there is none, for its own summary.

use crate::iface::Resolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use std::net::IpAddr;

/// The first address of `host` (an IP literal is its own), or why there is none.
pub async fn first_address(
    resolver: &Result<Resolver, String>,
    host: &str,
) -> Result<IpAddr, String> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(ip);
    }
    let r = resolver.as_ref().map_err(Clone::clone)?;
    let found = r
        .lookup_ip(host)
        .await
        .map_err(|e| format!("cannot resolve {host} ({})", reason(&e)))?;
    found
        .iter()
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

/// A failed lookup in the resolver's words: NXDOMAIN, no records, SERVFAIL, REFUSED, timeout,
/// or the library's own text.
pub fn reason(e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            "NXDOMAIN".into()
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => "no records".into(),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => "SERVFAIL".into(),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => "REFUSED".into(),
        NetError::Timeout => "timeout".into(),
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => "timeout".into(),
        other => {
            let text = other.to_string();
            if text.contains("SERVFAIL") || text.contains("ServFail") {
                "SERVFAIL".into()
            } else if text.contains("timed out") || text.contains("timeout") {
                "timeout".into()
            } else {
                text
            }
        }
    }
}
