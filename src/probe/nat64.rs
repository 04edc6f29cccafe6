//! NAT64: how an IPv6-only device reaches IPv4 hosts, and what to say when that way is broken.
//!
//! On an IPv6-only network (many mobile carriers, some enterprise Wi-Fi) the resolver answers
//! for an IPv4-only host with an IPv6 address it synthesized (DNS64): the host's IPv4 address
//! inside the network's NAT64 prefix, which a gateway translates back. When that gateway is
//! broken, the stages see only "no answer from 64:ff9b::c000:20a" and "no route to 192.0.2.10"
//! (an IPv4 address on a device that has no IPv4), and never the word NAT64.
//!
//! The prefix is discovered as RFC 7050 says: the AAAA answer for `ipv4only.arpa`, a name with
//! only the IPv4 addresses 192.0.0.170 and 192.0.0.171, carries them inside the prefix. It is
//! asked once per run, beside the endpoints and bounded, and only when the device has no IPv4
//! route (a dual-stack device never uses NAT64 for these hosts). After the run, [`read_run`]
//! says "through NAT64 prefix …" in the tcp checks of synthesized addresses, and names a NAT64
//! that carries nothing while native IPv6 works (`tcp.nat64_failed`).
//!
//! Shared below the probes; no probe of its own.

use crate::iface::Resolver;
use crate::model::{Check, Probe, Status};
use crate::probe::attempt::{Attempt, Outcome};
use hickory_resolver::proto::rr::RecordType;
use serde_json::json;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The well-known IPv4 addresses of `ipv4only.arpa` (RFC 7050, RFC 8880).
const WELL_KNOWN: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// The longest the discovery may take: it runs beside the endpoints and must not hold the run.
pub const BOUND: Duration = Duration::from_millis(700);

/// A NAT64 prefix (RFC 6052: 32, 40, 48, 56, 64 or 96 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    net: Ipv6Addr,
    len: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

/// Where RFC 6052 puts the four IPv4 bytes for each prefix length (bits 64-71 are always zero).
fn positions(len: u8) -> Option<[usize; 4]> {
    Some(match len {
        32 => [4, 5, 6, 7],
        40 => [5, 6, 7, 9],
        48 => [6, 7, 9, 10],
        56 => [7, 9, 10, 11],
        64 => [9, 10, 11, 12],
        96 => [12, 13, 14, 15],
        _ => return None,
    })
}

const LENGTHS: [u8; 6] = [96, 64, 56, 48, 40, 32];

impl Prefix {
    /// The IPv4 address `addr` carries, when it lies in this prefix.
    pub fn embedded(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        let (a, n) = (addr.octets(), self.net.octets());
        let at = positions(self.len)?;
        let whole = usize::from(self.len / 8);
        if a[..whole.min(8)] != n[..whole.min(8)] || (self.len == 96 && a[..12] != n[..12]) {
            return None;
        }
        Some(Ipv4Addr::new(a[at[0]], a[at[1]], a[at[2]], a[at[3]]))
    }

    /// The prefix an answer for `ipv4only.arpa` shows, if it carries a well-known address.
    pub fn from_answer(addr: Ipv6Addr) -> Option<Prefix> {
        LENGTHS.iter().find_map(|&len| {
            let at = positions(len)?;
            let o = addr.octets();
            let v4 = Ipv4Addr::new(o[at[0]], o[at[1]], o[at[2]], o[at[3]]);
            if !WELL_KNOWN.contains(&v4) {
                return None;
            }
            let mut net = [0u8; 16];
            let keep = usize::from(len / 8);
            net[..keep].copy_from_slice(&o[..keep]);
            Some(Prefix {
                net: Ipv6Addr::from(net),
                len,
            })
        })
    }
}

/// Does the device have an IPv4 route to the internet? Asked of the kernel (see
/// `platform::route`): a device with one uses no NAT64 for IPv4 hosts.
fn has_ipv4_route() -> bool {
    crate::platform::route::source_address(IpAddr::V4(WELL_KNOWN[0])).is_some()
}

/// The network's NAT64 prefix, when it is `wanted` (the run connects), this device has no IPv4
/// route and its resolver synthesizes one for `ipv4only.arpa`; bounded by `limit` and [`BOUND`].
pub async fn discover(
    resolver: &Result<Resolver, String>,
    limit: Duration,
    wanted: bool,
) -> Option<Prefix> {
    if !wanted || has_ipv4_route() {
        return None;
    }
    let r = resolver.as_ref().ok()?;
    let ask = r.lookup("ipv4only.arpa.", RecordType::AAAA);
    let found = tokio::time::timeout(limit.min(BOUND), ask)
        .await
        .ok()?
        .ok()?;
    found
        .answers()
        .iter()
        .filter_map(|rec| match rec.data.ip_addr() {
            Some(IpAddr::V6(a)) => Prefix::from_answer(a),
            _ => None,
        })
        .next()
}

/// The tcp checks in the light of the prefix: connections to synthesized addresses say so, and
/// an endpoint that reached none of its synthesized addresses, while another endpoint connected
/// over native IPv6, is `tcp.nat64_failed`.
pub fn read_run(checks: &mut [Check], attempts: &[(String, Vec<Attempt>)], prefix: Option<Prefix>) {
    let Some(prefix) = prefix else { return };
    // The control: an endpoint of the same run that connected over native IPv6.
    let native_v6 = attempts.iter().find_map(|(target, tried)| {
        tried
            .iter()
            .find(|a| {
                a.outcome == Outcome::Ok
                    && matches!(a.address.ip(), IpAddr::V6(v6) if prefix.embedded(v6).is_none())
            })
            .map(|a| format!("{target} connected over native IPv6 to {}", a.address))
    });
    let by_target: HashMap<&str, &Vec<Attempt>> =
        attempts.iter().map(|(t, a)| (t.as_str(), a)).collect();
    for c in checks.iter_mut().filter(|c| c.probe == Probe::Tcp) {
        let Some(tried) = c.target.as_deref().and_then(|t| by_target.get(t)) else {
            continue;
        };
        if c.status == Status::Pass {
            through(c, prefix);
        } else if let Some(control) = &native_v6 {
            failed(c, tried, prefix, control);
        }
    }
}

/// "through NAT64 prefix …" on a connection to a synthesized address.
fn through(c: &mut Check, prefix: Prefix) {
    let Some(v6) = c
        .data
        .get("address")
        .and_then(|a| a.as_str())
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .and_then(|a| match a.ip() {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        })
    else {
        return;
    };
    if let Some(v4) = prefix.embedded(v6) {
        let summary = c.summary.trim_end_matches('.').to_owned();
        c.summary = format!("{summary}, through NAT64 prefix {prefix} (to {v4})");
        c.data.insert(
            "nat64".into(),
            json!({ "prefix": prefix.to_string(), "ipv4": v4.to_string() }),
        );
    }
}

/// `tcp.nat64_failed`: every IPv6 address tried was synthesized and none answered; IPv4 (which
/// this device has no route for) is not what to talk about.
fn failed(c: &mut Check, tried: &[Attempt], prefix: Prefix, control: &str) {
    let synthesized: Vec<Ipv4Addr> = tried
        .iter()
        .filter_map(|a| match a.address.ip() {
            IpAddr::V6(v6) => prefix.embedded(v6),
            IpAddr::V4(_) => None,
        })
        .collect();
    let native = tried
        .iter()
        .any(|a| matches!(a.address.ip(), IpAddr::V6(v6) if prefix.embedded(v6).is_none()));
    if synthesized.is_empty() || native {
        return;
    }
    let list: Vec<String> = synthesized.iter().map(Ipv4Addr::to_string).collect();
    c.restate(
        Status::Fail,
        "tcp.nat64_failed",
        format!(
            "this network reaches IPv4 hosts through NAT64 prefix {prefix}, and no connection through it was answered (to {}) while native IPv6 works: the network's NAT64 gateway does not carry the traffic",
            list.join(", ")
        ),
    );
    c.data.insert(
        "nat64".into(),
        json!({ "prefix": prefix.to_string(), "ipv4": list }),
    );
    c.data.insert("control".into(), json!(control));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().expect("address")
    }

    #[test]
    fn the_prefix_is_read_from_ipv4only_arpa_at_every_length() {
        let p = Prefix::from_answer(v6("64:ff9b::c000:aa")).expect("a /96");
        assert_eq!(p.to_string(), "64:ff9b::/96");
        assert_eq!(
            Prefix::from_answer(v6("fd00:64::c000:ab")).map(|p| p.to_string()),
            Some("fd00:64::/96".into())
        );
        // RFC 6052's /64 example form: the IPv4 bytes after the u octet.
        let p = Prefix::from_answer(v6("2001:db8:122:344:c0:0:aa00:0")).expect("a /64");
        assert_eq!(p.to_string(), "2001:db8:122:344::/64");
        assert_eq!(Prefix::from_answer(v6("2001:db8::1")), None);
    }

    #[test]
    fn the_ipv4_address_inside_a_synthesized_one() {
        let p = Prefix::from_answer(v6("64:ff9b::c000:aa")).expect("a /96");
        assert_eq!(
            p.embedded(v6("64:ff9b::c000:20a")),
            Some(Ipv4Addr::new(192, 0, 2, 10))
        );
        assert_eq!(p.embedded(v6("2001:db8::c000:20a")), None);
    }

    fn attempt(addr: &str, outcome: Outcome) -> Attempt {
        Attempt {
            address: addr.parse().expect("address"),
            outcome,
            connect_ms: 1.0,
            detail: String::new(),
        }
    }

    #[test]
    fn a_dead_nat64_is_named_only_while_native_ipv6_works() {
        let prefix = Prefix::from_answer(v6("64:ff9b::c000:aa")).expect("a /96");
        let check = || {
            Check::new(
                Probe::Tcp,
                Some("api"),
                Status::Fail,
                "tcp.unreachable",
                "no route to 192.0.2.10".to_owned(),
            )
        };
        let dead = vec![
            attempt("[64:ff9b::c000:20a]:443", Outcome::Timeout),
            attempt("192.0.2.10:443", Outcome::Unreachable),
        ];
        let native = vec![attempt("[2001:db8::10]:443", Outcome::Ok)];
        let mut checks = vec![check()];
        read_run(&mut checks, &[("api".into(), dead.clone())], Some(prefix));
        assert_eq!(checks[0].code, "tcp.unreachable", "no native IPv6 seen");
        let run = [("api".into(), dead), ("v6".into(), native)];
        read_run(&mut checks, &run, Some(prefix));
        assert_eq!(checks[0].code, "tcp.nat64_failed");
        assert!(checks[0].summary.contains("NAT64 prefix 64:ff9b::/96"));
        assert!(checks[0].summary.contains("192.0.2.10"));
        assert_eq!(
            checks[0].data["control"],
            "v6 connected over native IPv6 to [2001:db8::10]:443"
        );
    }
}
