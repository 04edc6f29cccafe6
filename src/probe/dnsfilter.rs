//! dnsfilter: a second look at a DNS answer that did not lead to the service, to say who is in
//! the way.
//!
//! The resolver library reports "timeout" or "SERVFAIL" and nothing more. Asked again by hand
//! ([`super::dnswire`]), the same resolver often says more: the truncation bit with a TCP retry
//! that goes nowhere (a firewall closing TCP/53), an Extended DNS Error naming its reason (15
//! Blocked … 18 Prohibited, or a DNSSEC failure), an answer once DNSSEC checking is disabled, or
//! its own software (`version.bind`, Pi-hole's `pi.hole`). Every look is bounded by the time left
//! in the step; a look that finds nothing changes nothing.

use super::blockpages;
use super::dnswire::{self, Ask, Reply, WireError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{DNSClass, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// What the second look found.
#[derive(Debug, Clone, PartialEq)]
pub enum Second {
    /// Nothing new (or no time for it).
    Nothing,
    /// The retry over UDP was answered after all: the first query was lost.
    Answered(Reply),
    /// The retry went unanswered too.
    SilentAgain,
    /// UDP said "truncated" and TCP got no answer.
    TcpBlocked { tcp: String },
    /// UDP was truncated and TCP answered: the full answer.
    ViaTcp(Reply),
    /// The resolver attached a filtering reason (EDE 15–18).
    Filtered(dnswire::Ede, Reply),
    /// DNSSEC validation failed: an EDE 1–12, or a SERVFAIL that a CD query resolves.
    Dnssec(Option<dnswire::Ede>, Option<Reply>),
}

fn left(deadline: Instant) -> Option<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    (d >= Duration::from_millis(20)).then_some(d)
}

/// The retry of a query that timed out (or failed oddly): once over UDP; over TCP when the UDP
/// answer is truncated.
pub async fn retry(server: SocketAddr, host: &str, deadline: Instant) -> Second {
    let Some(budget) = left(deadline) else {
        return Second::Nothing;
    };
    match dnswire::query(server, host, Ask::udp(RecordType::A), budget).await {
        Ok(r) if r.truncated => {
            let Some(budget) = left(deadline) else {
                return Second::TcpBlocked {
                    tcp: "no time left".into(),
                };
            };
            let mut ask = Ask::udp(RecordType::A);
            ask.tcp = true;
            match dnswire::query(server, host, ask, budget).await {
                Ok(full) if !full.truncated => Second::ViaTcp(full),
                Ok(_) => Second::TcpBlocked {
                    tcp: "truncated again".into(),
                },
                Err(WireError::Timeout) => Second::TcpBlocked {
                    tcp: "no answer in time".into(),
                },
                Err(WireError::Refused) => Second::TcpBlocked {
                    tcp: "connection refused or closed".into(),
                },
                Err(WireError::Failed(why)) => Second::TcpBlocked { tcp: why },
            }
        }
        Ok(r) => Second::Answered(r),
        Err(WireError::Timeout) => Second::SilentAgain,
        Err(_) => Second::Nothing,
    }
}

/// Asks again with EDNS for the resolver's reason; on a SERVFAIL without one, asks with DNSSEC
/// checking disabled.
pub async fn reason(server: SocketAddr, host: &str, servfail: bool, deadline: Instant) -> Second {
    let Some(budget) = left(deadline) else {
        return Second::Nothing;
    };
    let Ok(r) = dnswire::query(server, host, Ask::udp(RecordType::A), budget).await else {
        return Second::Nothing;
    };
    if let Some(e) = r.ede.iter().find(|e| e.is_filtering()) {
        return Second::Filtered(e.clone(), r.clone());
    }
    if let Some(e) = r.ede.iter().find(|e| e.is_dnssec()) {
        return Second::Dnssec(Some(e.clone()), None);
    }
    if !(servfail && r.rcode == ResponseCode::ServFail) {
        return Second::Nothing;
    }
    let Some(budget) = left(deadline) else {
        return Second::Nothing;
    };
    let mut ask = Ask::udp(RecordType::A);
    ask.checking_disabled = true;
    match dnswire::query(server, host, ask, budget).await {
        Ok(cd) if cd.rcode == ResponseCode::NoError && !cd.addrs.is_empty() => {
            Second::Dnssec(None, Some(cd))
        }
        _ => Second::Nothing,
    }
}

/// What the resolver says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Its `version.bind` text (sanitized).
    pub software: Option<String>,
    /// It answers `pi.hole`: a Pi-hole.
    pub pihole: bool,
}

/// Asks `version.bind` (class CHAOS), then — for dnsmasq or a resolver that does not say — the
/// name `pi.hole`, which only a Pi-hole answers. Each within the time left, at most 300 ms.
pub async fn identify(server: SocketAddr, deadline: Instant) -> Identity {
    let cap = |left: Duration| left.min(Duration::from_millis(300));
    let Some(budget) = left(deadline) else {
        return Identity::default();
    };
    let mut version = Ask::udp(RecordType::TXT);
    version.class = DNSClass::CH;
    let software = dnswire::query(server, "version.bind", version, cap(budget))
        .await
        .ok()
        .and_then(|r| r.txt.into_iter().next())
        .filter(|s| !s.is_empty());
    let maybe_pihole = software
        .as_deref()
        .is_none_or(|s| s.to_ascii_lowercase().contains("dnsmasq"));
    let mut pihole = false;
    if maybe_pihole && let Some(budget) = left(deadline) {
        pihole = dnswire::query(server, "pi.hole", Ask::udp(RecordType::A), cap(budget))
            .await
            .is_ok_and(|r| r.rcode == ResponseCode::NoError && !r.addrs.is_empty());
    }
    Identity { software, pihole }
}

/// What [`who`] says when nothing names the product.
pub const UNKNOWN: &str = "a DNS filter (unknown product)";

/// Who is in the way, in words: the product where the evidence names it, else "a DNS filter
/// (unknown product)".
pub fn who(server: Option<&IpAddr>, id: &Identity, block_page: Option<&str>) -> String {
    if let Some(p) = block_page {
        return p.to_owned();
    }
    let software = id
        .software
        .as_deref()
        .and_then(blockpages::software_product);
    if id.pihole || software == Some("Pi-hole") {
        return "Pi-hole".into();
    }
    if let Some(f) = server.and_then(blockpages::resolver_product) {
        return f.product.clone();
    }
    match (software, id.software.as_deref()) {
        (Some("unbound"), Some(v)) => format!("unbound ({v}) with a local-zone or RPZ rule"),
        (Some("dnsmasq"), Some(v)) => format!("dnsmasq ({v}) with an address/blocklist rule"),
        (Some(p), Some(v)) => format!("{p} ({v})"),
        _ => UNKNOWN.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_names_the_product_where_it_can() {
        let none = Identity::default();
        assert_eq!(who(None, &none, None), "a DNS filter (unknown product)");
        assert_eq!(
            who(None, &none, Some("Cisco Umbrella (OpenDNS)")),
            "Cisco Umbrella (OpenDNS)"
        );
        let pihole = Identity {
            software: Some("dnsmasq-2.90".into()),
            pihole: true,
        };
        assert_eq!(who(None, &pihole, None), "Pi-hole");
        let unbound = Identity {
            software: Some("unbound 1.17.1".into()),
            pihole: false,
        };
        assert!(who(None, &unbound, None).starts_with("unbound (unbound 1.17.1)"));
        let cb: IpAddr = "185.228.168.9".parse().expect("address");
        assert_eq!(who(Some(&cb), &none, None), "CleanBrowsing");
    }
}
