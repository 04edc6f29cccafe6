//! dnsfilter: a second look at a DNS answer that did not lead to the service, to say who is in
//! the way.
//!
//! The resolver library reports "timeout" or "SERVFAIL" and nothing more. Asked again by hand
//! ([`super::dnswire`]), the same resolver often says more: the truncation bit with a TCP retry
//! that goes nowhere (a firewall closing TCP/53), an Extended DNS Error naming its reason (15
//! Blocked … 18 Prohibited, or a DNSSEC failure), an answer once DNSSEC checking is disabled, or
//! its own software (asked once per run, [`super::resolverid`]). A retry of a silent name has the
//! time left in the step; a look at an answer that came is bounded by a few of the resolver's
//! round trips. A look that finds nothing changes nothing.

use super::dnswire::{self, Ask, Reply, WireError};
use hickory_resolver::net::NetError;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// What the run-wide judgement says when nothing names the product (see [`super::resolverid`]).
pub use super::resolverid::UNKNOWN;

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

/// An Extended DNS Error the resolver attached to an answer that resolved: 4 Forged Answer
/// (Knot Resolver's `policy.ANSWER`), 15 Blocked, 16 Censored or 17 Filtered. The resolver says
/// the address is its own doing, not the name's owner's — a block page's mark, read from the
/// lookup's own message at no extra cost.
pub fn answer_mark(r: &Result<hickory_resolver::lookup::Lookup, NetError>) -> Option<dnswire::Ede> {
    let lookup = r.as_ref().ok()?;
    dnswire::sort(lookup.message())
        .ede
        .into_iter()
        .find(|e| matches!(e.code, 4 | 15 | 16 | 17))
}

/// The response-policy zone an answer names. BIND adds the policy zone's SOA to the additional
/// section of every answer an RPZ rule rewrote (`add-soa`, on by default), so the zone names the
/// filter even where the resolver keeps its software to itself (`version none`) or rate-limits
/// the questions about it. An SOA of the name's own zone is no such mark.
pub fn policy_zone(
    r: &Result<hickory_resolver::lookup::Lookup, NetError>,
    host: &str,
) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    r.as_ref().ok()?.additionals().iter().find_map(|rec| {
        let RData::SOA(_) = &rec.data else {
            return None;
        };
        let zone = dnswire::show_name(&rec.name);
        let z = zone.to_ascii_lowercase();
        let own = z.is_empty() || host == z || host.ends_with(&format!(".{z}"));
        (!own).then_some(zone)
    })
}

fn left(deadline: Instant) -> Option<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    (d >= Duration::from_millis(20)).then_some(d)
}

/// The time a diagnostic query may take: `patience` (a few of the resolver's round trips, see
/// [`super::resolverid::patience`]), within what is left of the step.
fn diagnostic(deadline: Instant, patience: Duration) -> Option<Duration> {
    left(deadline).map(|d| d.min(patience))
}

/// The retry of a query that timed out (or failed oddly): once over UDP, with all the time left
/// (a silent drop gets its full retry); over TCP when the UDP answer is truncated, for a few of
/// the round trips that UDP answer took.
pub async fn retry(server: SocketAddr, host: &str, deadline: Instant) -> Second {
    let Some(budget) = left(deadline) else {
        return Second::Nothing;
    };
    let asked = Instant::now();
    match dnswire::query(server, host, Ask::udp(RecordType::A), budget).await {
        Ok(r) if r.truncated => {
            let patience = super::resolverid::patience(asked.elapsed());
            let Some(budget) = diagnostic(deadline, patience) else {
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

/// Asks again with EDNS for the resolver's reason; on a SERVFAIL, asks with DNSSEC checking
/// disabled at the same time, the answer read only when the first one gives no reason. Each query
/// waits `patience`, a few of the resolver's round trips: a resolver that answered the lookup at
/// once and keeps silent now will not answer this.
pub async fn reason(
    server: SocketAddr,
    host: &str,
    servfail: bool,
    (deadline, patience): (Instant, Duration),
) -> Second {
    let Some(budget) = diagnostic(deadline, patience) else {
        return Second::Nothing;
    };
    let edns = dnswire::query(server, host, Ask::udp(RecordType::A), budget);
    let cd = async {
        if !servfail {
            return None;
        }
        let mut ask = Ask::udp(RecordType::A);
        ask.checking_disabled = true;
        Some(dnswire::query(server, host, ask, budget).await)
    };
    let (edns, cd) = tokio::join!(edns, cd);
    let Ok(r) = edns else {
        return Second::Nothing;
    };
    if let Some(e) = r.ede.iter().find(|e| e.is_filtering()) {
        return Second::Filtered(e.clone(), r.clone());
    }
    if let Some(e) = r.ede.iter().find(|e| e.is_dnssec()) {
        return Second::Dnssec(Some(e.clone()), None);
    }
    if r.rcode != ResponseCode::ServFail {
        return Second::Nothing;
    }
    match cd {
        Some(Ok(cd)) if cd.rcode == ResponseCode::NoError && !cd.addrs.is_empty() => {
            Second::Dnssec(None, Some(cd))
        }
        _ => Second::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::lookup::Lookup;
    use hickory_resolver::proto::op::Query;
    use hickory_resolver::proto::rr::rdata::SOA;
    use hickory_resolver::proto::rr::{Name, Record};

    fn answer_with_soa(zone: &str) -> Result<Lookup, NetError> {
        let name = |s: &str| Name::from_ascii(s).expect("name");
        let query = Query::query(name("api.example."), RecordType::A);
        let mut lookup = Lookup::new_with_max_ttl(query, []);
        let soa = SOA::new(
            name("localhost."),
            name("root.localhost."),
            1,
            3600,
            600,
            86400,
            60,
        );
        lookup.extend_additionals([Record::from_rdata(name(zone), 60, RData::SOA(soa))]);
        Ok(lookup)
    }

    #[test]
    fn a_policy_zone_s_soa_names_it_and_the_name_s_own_zone_does_not() {
        let rpz = answer_with_soa("rpz.netcheck.");
        assert_eq!(
            policy_zone(&rpz, "api.example"),
            Some("rpz.netcheck".into())
        );
        assert_eq!(
            policy_zone(&answer_with_soa("example."), "api.example"),
            None
        );
        assert_eq!(policy_zone(&Err(NetError::Timeout), "api.example"), None);
    }
}
