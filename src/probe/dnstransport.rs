//! DNS transport control: is UDP/53 or TCP/53 the one a firewall drops?
//!
//! Shared below the probes (the dns stage calls it; it declares no probe). A resolver that stays
//! silent over UDP may be down, or a firewall may drop UDP/53 while TCP/53 to the same resolver
//! gets through — devices ask over UDP, so names then fail everywhere while the network works.
//! When a lookup timed out, the retry over UDP ([`super::dnsfilter::retry`]) gets a control
//! beside it: the same query to the same resolver over TCP, once, bounded by the step's end.
//! UDP silent again while TCP answers is `dns.udp_blocked`, and the TCP answer's addresses let
//! the later stages run. The reverse (TCP/53 closed while UDP answers, seen when an answer is
//! truncated) stays `dns.tcp_blocked`; both carry the two attempts in `transports`. A retry that
//! UDP answers never waits for the control.

use super::dnsfilter::{self, Second};
use super::dnswire::{self, Ask, Reply, WireError};
use crate::model::{Status, ms};
use hickory_resolver::proto::rr::RecordType;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Instant as Clock;
use tokio::time::Instant;

/// The code of a resolver that answers over TCP only.
pub const UDP_BLOCKED: &str = "dns.udp_blocked";

/// What the control over TCP found.
#[derive(Debug, Clone, PartialEq)]
struct OverTcp {
    reply: Result<Reply, WireError>,
    ms: f64,
}

/// The retry of a silent name, over UDP and over TCP at once. The UDP retry's verdict is
/// returned as [`super::dnsfilter::retry`] gives it, except when UDP stays silent and TCP answers:
/// then the TCP answer, as [`Second::ViaTcp`], with `dns.udp_blocked`'s mark in `extra`
/// ([`verdict`] reads it). Both attempts go into `extra` as `transports`.
///
/// A resolver that has answered over TCP is alive and near: the UDP retry then gets a few more of
/// TCP's round trips ([`super::resolverid::patience`]), not the rest of the step.
pub async fn retry(
    server: SocketAddr,
    host: &str,
    deadline: Instant,
    extra: &mut Vec<(&'static str, Value)>,
) -> Second {
    let mut control = tokio::spawn(over_tcp(server, host.to_owned(), deadline));
    let asked = Clock::now();
    let udp = dnsfilter::retry(server, host, deadline);
    tokio::pin!(udp);
    let (second, tcp) = tokio::select! {
        second = &mut udp => {
            if second != Second::SilentAgain {
                control.abort();
                return second;
            }
            (second, control.await.ok().flatten())
        }
        tcp = &mut control => {
            let tcp = tcp.ok().flatten();
            let answered = tcp.as_ref().is_some_and(|t| t.reply.is_ok());
            let wait = match &tcp {
                Some(t) if answered => patience(t.ms),
                _ => deadline.saturating_duration_since(Instant::now()),
            };
            match tokio::time::timeout(wait, &mut udp).await {
                Ok(second) if second != Second::SilentAgain => return second,
                _ => (Second::SilentAgain, tcp),
            }
        }
    };
    let Some(tcp) = tcp else {
        return second;
    };
    let udp =
        json!({ "transport": "udp", "result": "no answer in time", "ms": ms(asked.elapsed()) });
    let tcp_json = json!({ "transport": "tcp", "result": describe(&tcp.reply), "ms": tcp.ms });
    extra.push(("transports", json!([udp, tcp_json])));
    match tcp.reply {
        Ok(reply) if !reply.truncated => {
            extra.push(("udp_blocked", json!(true)));
            extra.push(("decided_by", json!("tcp_control")));
            Second::ViaTcp(reply)
        }
        _ => second,
    }
}

/// A few of the TCP exchange's round trips (connect and query: two of them).
fn patience(tcp_ms: f64) -> std::time::Duration {
    let round_trip = std::time::Duration::from_secs_f64(tcp_ms.max(0.0) / 2000.0);
    super::resolverid::patience(round_trip)
}

/// The same query over TCP, with the time left in the step (none left: not asked).
async fn over_tcp(server: SocketAddr, host: String, deadline: Instant) -> Option<OverTcp> {
    let budget = deadline.saturating_duration_since(Instant::now());
    if budget.is_zero() {
        return None;
    }
    let asked = Clock::now();
    let mut ask = Ask::udp(RecordType::A);
    ask.tcp = true;
    let reply = dnswire::query(server, &host, ask, budget).await;
    Some(OverTcp {
        reply,
        ms: ms(asked.elapsed()),
    })
}

fn describe(r: &Result<Reply, WireError>) -> String {
    match r {
        Ok(reply) if reply.truncated => "truncated".into(),
        Ok(_) => "answered".into(),
        Err(WireError::Timeout) => "no answer in time".into(),
        Err(WireError::Refused) => "connection refused or closed".into(),
        Err(WireError::Failed(why)) => why.clone(),
    }
}

/// The two attempts of a truncated answer whose TCP retry went nowhere (`dns.tcp_blocked`).
pub fn truncated(tcp: &str) -> (&'static str, Value) {
    let udp = json!({ "transport": "udp", "result": "truncated" });
    let tcp = json!({ "transport": "tcp", "result": tcp });
    ("transports", json!([udp, tcp]))
}

/// `dns.udp_blocked` when [`retry`] marked it: the verdict on the TCP answer becomes the
/// transport's, its addresses kept for the later stages.
pub fn verdict(
    (status, code, summary): (&mut Status, &mut &'static str, &mut String),
    extra: &[(&'static str, Value)],
    host: &str,
) {
    if !extra.iter().any(|(k, _)| *k == "udp_blocked") {
        return;
    }
    let answer = if *code == "dns.ok" {
        "answered".to_owned()
    } else {
        format!("answered ({code})")
    };
    *summary = format!(
        "the resolver does not answer over UDP (port 53; asked twice) but {answer} the same query for {host} over TCP: a firewall drops DNS over UDP, which devices use for every name"
    );
    (*status, *code) = (Status::Fail, UDP_BLOCKED);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_turns_the_tcp_answer_into_the_transport_verdict() {
        let (mut status, mut code, mut summary) = (Status::Pass, "dns.ok", String::new());
        let extra = vec![("udp_blocked", json!(true))];
        verdict((&mut status, &mut code, &mut summary), &extra, "a.example");
        assert_eq!((status, code), (Status::Fail, UDP_BLOCKED));
        assert!(summary.contains("over UDP"), "{summary}");
        assert!(summary.contains("a.example"), "{summary}");

        // No mark: nothing changes.
        let (mut status, mut code, mut summary) = (Status::Pass, "dns.ok", "kept".to_owned());
        verdict((&mut status, &mut code, &mut summary), &[], "a.example");
        assert_eq!(
            (status, code, summary.as_str()),
            (Status::Pass, "dns.ok", "kept")
        );
    }

    #[test]
    fn both_attempts_of_a_truncated_answer() {
        let (key, v) = truncated("no answer in time");
        assert_eq!(key, "transports");
        assert_eq!(v[0]["transport"], "udp");
        assert_eq!(v[1]["result"], "no answer in time");
    }
}
