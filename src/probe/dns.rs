//! dns: resolve the endpoint's A and AAAA records and judge the answer.
//!
//! Both queries go out at once. Besides the plain outcomes (NXDOMAIN, SERVFAIL, silence), the probe
//! looks at *what* came back: blocklists (Pi-hole, AdGuard, AdAway) answer BMW hosts with `0.0.0.0`
//! or `::`, and filtering resolvers with loopback or private addresses. Such an answer resolves, yet
//! the app cannot connect — so it is `dns.sinkholed`, a finding of its own.

use crate::iface::Resolver;
use crate::model::{Check, Probe, Status};
use crate::profile::Endpoint;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Builds the resolver for a run: the system's configuration, or one server given by the user.
/// A system without usable DNS configuration is a finding, so the error is kept as text.
pub fn resolver(server: Option<SocketAddr>, timeout: Duration) -> Result<Resolver, String> {
    let mut builder = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                crate::iface::BoundRuntime::default(),
            )
        }
        None => Resolver::builder(crate::iface::BoundRuntime::default())
            .map_err(|e| format!("no usable DNS configuration on this device: {e}"))?,
    };
    let opts = builder.options_mut();
    // One attempt bounded by the step timeout: retries would hide a flaky resolver, and the
    // step's bound must hold.
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 64;
    builder
        .build()
        .map_err(|e| format!("cannot set up DNS resolution: {e}"))
}

/// The answer to one query, sorted into what matters for the diagnosis.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Addrs(Vec<IpAddr>),
    /// No records; `nx` when the name does not exist at all (NXDOMAIN).
    NoRecords {
        nx: bool,
    },
    ServFail,
    Refused,
    Timeout,
    Other(String),
}

impl Answer {
    fn from_result(r: Result<hickory_resolver::lookup::Lookup, NetError>) -> Answer {
        match r {
            Ok(lookup) => Answer::Addrs(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|rec| rec.data.ip_addr())
                    .collect(),
            ),
            Err(e) => Answer::from_error(&e),
        }
    }

    pub fn from_error(e: &NetError) -> Answer {
        match e {
            NetError::Dns(DnsError::NoRecordsFound(nr)) => Answer::NoRecords {
                nx: nr.response_code == ResponseCode::NXDomain,
            },
            NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => Answer::ServFail,
            NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => Answer::Refused,
            NetError::Timeout => Answer::Timeout,
            NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Answer::Timeout,
            other => {
                let text = other.to_string();
                if text.contains("SERVFAIL") || text.contains("ServFail") {
                    Answer::ServFail
                } else if text.contains("timed out") || text.contains("timeout") {
                    Answer::Timeout
                } else {
                    Answer::Other(text)
                }
            }
        }
    }

    pub fn label(&self) -> String {
        match self {
            Answer::Addrs(a) if a.is_empty() => "no addresses".into(),
            Answer::Addrs(a) => format!("{} address(es)", a.len()),
            Answer::NoRecords { nx: true } => "NXDOMAIN".into(),
            Answer::NoRecords { nx: false } => "no records".into(),
            Answer::ServFail => "SERVFAIL".into(),
            Answer::Refused => "REFUSED".into(),
            Answer::Timeout => "timeout".into(),
            Answer::Other(e) => e.clone(),
        }
    }
}

/// Is this answer a sign of a blocklist? `0.0.0.0` and `::` always are; loopback, private and
/// link-local answers are for a name that should be public.
pub fn is_sinkhole(ip: &IpAddr, public: bool) -> bool {
    if ip.is_unspecified() {
        return true;
    }
    if !public {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_sinkhole(&IpAddr::V4(v4), public))
        }
    }
}

/// Judges the two answers: the pure heart of the probe, unit-tested below.
pub fn classify(
    host: &str,
    a: &Answer,
    aaaa: &Answer,
    public: bool,
) -> (Status, &'static str, String) {
    let mut addrs: Vec<IpAddr> = Vec::new();
    for ans in [a, aaaa] {
        if let Answer::Addrs(list) = ans {
            addrs.extend(list.iter().copied());
        }
    }
    if !addrs.is_empty() {
        let sunk: Vec<String> = addrs
            .iter()
            .filter(|ip| is_sinkhole(ip, public))
            .map(IpAddr::to_string)
            .collect();
        if !sunk.is_empty() {
            return (
                Status::Fail,
                "dns.sinkholed",
                format!(
                    "{host} resolves to {} — a blocklist or filtering resolver is hiding it",
                    sunk.join(", ")
                ),
            );
        }
        let shown: Vec<String> = addrs.iter().take(3).map(IpAddr::to_string).collect();
        let more = if addrs.len() > 3 {
            format!(" (+{} more)", addrs.len() - 3)
        } else {
            String::new()
        };
        return (
            Status::Pass,
            "dns.ok",
            format!("{host} → {}{more}", shown.join(", ")),
        );
    }
    let either = |f: &dyn Fn(&Answer) -> bool| f(a) || f(aaaa);
    if either(&|x| matches!(x, Answer::NoRecords { nx: true })) {
        (
            Status::Fail,
            "dns.nxdomain",
            format!("{host} does not exist according to the resolver (NXDOMAIN)"),
        )
    } else if either(&|x| matches!(x, Answer::ServFail)) {
        (
            Status::Fail,
            "dns.servfail",
            format!("the resolver failed to look up {host} (SERVFAIL)"),
        )
    } else if either(&|x| matches!(x, Answer::Refused)) {
        (
            Status::Fail,
            "dns.refused",
            format!("the resolver refused to look up {host} (REFUSED)"),
        )
    } else if either(&|x| matches!(x, Answer::Timeout)) {
        (
            Status::Fail,
            "dns.timeout",
            format!("no answer from the resolver for {host} in time"),
        )
    } else if matches!(a, Answer::NoRecords { nx: false })
        && matches!(aaaa, Answer::NoRecords { nx: false } | Answer::Addrs(_))
    {
        (
            Status::Fail,
            "dns.no_address",
            format!("{host} exists but has no A or AAAA record"),
        )
    } else {
        (
            Status::Fail,
            "dns.error",
            format!(
                "lookup of {host} failed: A: {}; AAAA: {}",
                a.label(),
                aaaa.label()
            ),
        )
    }
}

/// Runs the dns stage. Returns the check and, when usable, the addresses (IPv6 first when present,
/// as the system's address selection would prefer them).
pub async fn run(
    resolver: &Result<Resolver, String>,
    server_label: &str,
    ep: &Endpoint,
) -> (Check, Option<Vec<IpAddr>>) {
    let started = Instant::now();
    let target = Some(ep.name.as_str());
    let resolver = match resolver {
        Ok(r) => r,
        Err(why) => {
            let c = Check::new(Probe::Dns, target, Status::Fail, "dns.error", why.clone())
                .with("resolver", server_label)
                .with("addresses", json!([]))
                .with("resolve_ms", 0.0);
            return (c, None);
        }
    };
    let (ra, raaaa) = tokio::join!(
        resolver.lookup(ep.host.as_str(), RecordType::A),
        resolver.lookup(ep.host.as_str(), RecordType::AAAA),
    );
    let elapsed = started.elapsed();
    let (a, aaaa) = (Answer::from_result(ra), Answer::from_result(raaaa));
    let (status, code, summary) = classify(&ep.host, &a, &aaaa, ep.public);
    let mut v6: Vec<IpAddr> = Vec::new();
    let mut v4: Vec<IpAddr> = Vec::new();
    for ans in [&aaaa, &a] {
        if let Answer::Addrs(list) = ans {
            for ip in list {
                if ip.is_ipv6() {
                    v6.push(*ip)
                } else {
                    v4.push(*ip)
                }
            }
        }
    }
    let all: Vec<IpAddr> = v6.iter().chain(v4.iter()).copied().collect();
    let check = Check::new(Probe::Dns, target, status, code, summary)
        .took(elapsed)
        .with(
            "addresses",
            all.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
        )
        .with("resolve_ms", crate::model::ms(elapsed))
        .with("resolver", server_label)
        .with("a", a.label())
        .with("aaaa", aaaa.label());
    let usable = (status == Status::Pass).then_some(all);
    (check, usable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sinkhole_addresses() {
        assert!(is_sinkhole(&ip("0.0.0.0"), false));
        assert!(is_sinkhole(&ip("::"), false));
        assert!(!is_sinkhole(&ip("127.0.0.1"), false));
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_sinkhole(&ip(s), true), "{s}");
        }
        for s in ["8.8.8.8", "2001:db8::1", "100.64.0.1"] {
            assert!(!is_sinkhole(&ip(s), true), "{s}");
        }
    }

    #[test]
    fn classification() {
        let addrs = |v: &[&str]| Answer::Addrs(v.iter().map(|s| ip(s)).collect());
        let none = Answer::NoRecords { nx: false };
        let nx = Answer::NoRecords { nx: true };
        let c = |a: &Answer, b: &Answer, public| classify("h.example", a, b, public).1;
        assert_eq!(c(&addrs(&["1.2.3.4"]), &none, true), "dns.ok");
        assert_eq!(c(&addrs(&["1.2.3.4"]), &Answer::Timeout, true), "dns.ok");
        assert_eq!(
            c(&addrs(&["0.0.0.0"]), &addrs(&["::"]), false),
            "dns.sinkholed"
        );
        assert_eq!(
            c(&addrs(&["1.2.3.4"]), &addrs(&["::"]), true),
            "dns.sinkholed"
        );
        assert_eq!(c(&addrs(&["127.0.0.1"]), &none, true), "dns.sinkholed");
        assert_eq!(c(&addrs(&["127.0.0.1"]), &none, false), "dns.ok");
        assert_eq!(c(&nx, &nx, true), "dns.nxdomain");
        assert_eq!(c(&Answer::Timeout, &nx, true), "dns.nxdomain");
        assert_eq!(
            c(&Answer::ServFail, &Answer::ServFail, true),
            "dns.servfail"
        );
        assert_eq!(c(&Answer::Refused, &Answer::Refused, true), "dns.refused");
        assert_eq!(c(&Answer::Timeout, &Answer::Timeout, true), "dns.timeout");
        assert_eq!(c(&none, &none, true), "dns.no_address");
        assert_eq!(c(&Answer::Other("x".into()), &none, true), "dns.error");
        let (status, _, summary) = classify("h.example", &nx, &nx, true);
        assert_eq!(status, Status::Fail);
        assert!(summary.contains("NXDOMAIN"));
    }
}
