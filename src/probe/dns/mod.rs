//! dns: resolve the endpoint's A and AAAA records and judge the answer.
//!
//! Both queries go out at once. Besides the plain outcomes (NXDOMAIN, SERVFAIL, silence), the probe
//! looks at *what* came back: blocklists (Pi-hole, AdGuard, AdAway) answer BMW hosts with `0.0.0.0`
//! or `::`, and filtering resolvers with loopback or private addresses. Such an answer resolves, yet
//! the app cannot connect — so it is `dns.sinkholed`, a finding of its own.
//!
//! Kept exemplary on purpose: the verdict on the two answers is a pure function ([`classify`])
//! with a table of cases in its tests; the network steps around it (the second look, block
//! pages, who is in the way) only gather what it and they judge.

use crate::iface::Resolver;
use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, Key, Metric, Perf, Prometheus, Run, Stage};
use crate::probe::resolverid::{self, Servers};
pub use crate::probe::resolverid::{resolver, servers};
use crate::profile::Endpoint;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The dns probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Dns,
    name: "dns",
    description: "resolve A and AAAA; spot NXDOMAIN, SERVFAIL, timeouts and sinkholed answers",
    codes: &[
        "dns.ok",
        "dns.nxdomain",
        "dns.servfail",
        "dns.refused",
        "dns.timeout",
        "dns.sinkholed",
        "dns.no_address",
        "dns.error",
        "dns.skipped",
        "dns.dropped",
        "dns.block_page",
        "dns.filtered",
        "dns.dnssec_failed",
        "dns.tcp_blocked",
        "dns.rewritten",
        "dns.udp_blocked",
    ],
    keys: &[
        Key::list("addresses"),
        Key::scalar("resolve_ms"),
        Key::scalar("transport"),
    ],
    needs: &[],
    run: Run::Stage(Stage::Resolve),
    metrics: &[Metric {
        key: "resolve_ms",
        prometheus: Prometheus::Phase("resolve"),
        nagios: Perf::None,
    }],
};

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
    // A silent A question beside a refused or failed AAAA one says nothing yet of the name's
    // addresses (a resolver without IPv6 upstreams refuses AAAA; on a lossy link the A answer is
    // the one lost): a timeout, so the A question is asked again.
    let a_silent = matches!(a, Answer::Timeout);
    if either(&|x| matches!(x, Answer::NoRecords { nx: true })) {
        (
            Status::Fail,
            "dns.nxdomain",
            format!("{host} does not exist according to the resolver (NXDOMAIN)"),
        )
    } else if !a_silent && either(&|x| matches!(x, Answer::ServFail)) {
        (
            Status::Fail,
            "dns.servfail",
            format!("the resolver failed to look up {host} (SERVFAIL)"),
        )
    } else if !a_silent && either(&|x| matches!(x, Answer::Refused)) {
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

/// What [`block_page`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockPage {
    /// A CNAME or address of a block page in `checks/blockpages.toml`.
    Known { product: String, summary: String },
    /// A public-looking answer that is the resolver's own address (Pi-hole's IP blocking mode).
    ResolverItself(String),
    /// A sinkhole answer (loopback, private) that is also the resolver's own address: the code
    /// stays `dns.sinkholed`, the summary says whose address it is.
    SinkholeIsResolver(String),
}

/// Does this answer lead to a filter's block page? The resolver's own address only counts for a
/// public endpoint: a local service may well live on the router that resolves.
pub fn block_page(
    host: &str,
    cnames: &[String],
    addrs: &[IpAddr],
    resolvers: &[IpAddr],
    public: bool,
    sinkholed: bool,
) -> Option<BlockPage> {
    if let Some(f) = super::blockpages::block_page(cnames, addrs) {
        let via = if cnames.is_empty() {
            String::new()
        } else {
            format!(" (via {})", cnames.join(" → "))
        };
        return Some(BlockPage::Known {
            product: f.product.clone(),
            summary: format!(
                "{host} leads to a block page of {}{via}, not to the service",
                f.product
            ),
        });
    }
    let own = addrs
        .iter()
        .find(|ip| public && !ip.is_unspecified() && resolvers.contains(ip))?;
    Some(if sinkholed {
        BlockPage::SinkholeIsResolver(format!(
            "{own} is the resolver's own address, as Pi-hole's IP blocking mode answers"
        ))
    } else {
        BlockPage::ResolverItself(format!(
            "{host} resolves to {own}, the resolver's own address: its block page (as Pi-hole's IP blocking mode answers), not the service"
        ))
    })
}

/// The CNAME targets in a lookup's answers, sanitized, in order.
fn cname_chain(r: &Result<hickory_resolver::lookup::Lookup, NetError>) -> Vec<String> {
    match r {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                hickory_resolver::proto::rr::RData::CNAME(c) => {
                    Some(super::dnswire::show_name(&c.0))
                }
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Codes that say a filter or blocklist is answering: the resolver is asked who it is.
const FILTER_CODES: [&str; 6] = [
    "dns.sinkholed",
    "dns.block_page",
    "dns.filtered",
    "dns.refused",
    "dns.nxdomain",
    "dns.no_address",
];

/// Runs the dns stage. Returns the check and, when usable, the addresses (IPv6 first when present,
/// as the system's address selection would prefer them).
///
/// The first lookup gets 40% of the step; a name that stays silent is asked once more by hand
/// (to rule out a lost packet, and to see a truncated answer whose TCP retry goes nowhere), and
/// an answer that is a refusal is asked for the resolver's reason, for a few of the round trips
/// the lookup took. Who the resolver is gets asked once per run, alongside the first lookup; a
/// verdict that names a filter reads that answer.
pub async fn run(
    resolver: &Result<Resolver, String>,
    server_label: &str,
    servers: &Servers,
    ep: &Endpoint,
    timeout: Duration,
) -> (Check, Option<Vec<IpAddr>>) {
    let started = Instant::now();
    // The probe keeps to the step itself; the runner's bound is a safety net just past it.
    let step_end = tokio::time::Instant::now() + timeout;
    let target = Some(ep.name.as_str());
    let resolver = match resolver {
        Ok(r) => r,
        Err(why) => {
            let why = crate::sanitize::outside(why);
            let c = Check::new(Probe::Dns, target, Status::Fail, "dns.error", why.clone())
                .with("resolver", server_label)
                .with("addresses", json!([]))
                .with("resolve_ms", 0.0);
            return (c, None);
        }
    };
    let server = servers.first();
    if let Some(s) = server {
        servers.start(s);
    }
    let first = timeout.mul_f64(0.4);
    let timed = |rtype| async move {
        let asked = Instant::now();
        let r = tokio::time::timeout(first, resolver.lookup(ep.host.as_str(), rtype)).await;
        (r.unwrap_or(Err(NetError::Timeout)), asked.elapsed())
    };
    let ((ra, ta), (raaaa, taaaa)) = tokio::join!(timed(RecordType::A), timed(RecordType::AAAA));
    let mut elapsed = started.elapsed();
    let mut cnames = cname_chain(&ra);
    for c in cname_chain(&raaaa) {
        if !cnames.contains(&c) {
            cnames.push(c);
        }
    }
    let mark = super::dnsfilter::answer_mark(&ra).or_else(|| super::dnsfilter::answer_mark(&raaaa));
    let mut extra: Vec<_> = mark.map(|e| ("ede", e.to_json())).into_iter().collect();
    extra.extend(super::dnsfilter::policy_zone(&ra, &ep.host).map(|z| ("policy_zone", json!(z))));
    let (a, aaaa) = (Answer::from_result(ra), Answer::from_result(raaaa));
    // The round trip this lookup measured: its quicker answer (a timeout measures nothing).
    let rtt = [(&a, ta), (&aaaa, taaaa)]
        .into_iter()
        .filter(|(x, _)| !matches!(x, Answer::Timeout))
        .map(|(_, t)| t)
        .min();
    if let (Some(s), Some(t)) = (server, rtt) {
        servers.measured(s, t);
    }
    let (status, code, summary) = classify(&ep.host, &a, &aaaa, ep.public);
    let mut f = Finding {
        status,
        code,
        summary,
        a,
        cnames,
        extra,
        block_product: None,
    };
    // The second look, for what the library does not tell.
    if let Some(server) = server {
        // The run's first round trip to this resolver: the quickest answer, the least overhead.
        let patience = servers
            .rtt(server)
            .or(rtt)
            .map_or(resolverid::MOST, resolverid::patience);
        second_look(&mut f, server, ep, &aaaa, (step_end, patience)).await;
    }
    // Answers that lead to a filter's block page rather than the service.
    if f.code == "dns.ok" || f.code == "dns.sinkholed" {
        block_pages(&mut f, ep, &aaaa, &servers.addrs());
    }
    if let Some(server) = server {
        who_is_in_the_way(&mut f, servers, server, step_end).await;
    }
    elapsed = elapsed.max(started.elapsed());
    finish(f, &aaaa, target, server_label, elapsed)
}

/// What the dns stage has found so far: the verdict, the A answer (a retry may replace it),
/// the CNAME chain and the extra data, and what the filter checks learnt on the way.
struct Finding {
    status: Status,
    code: &'static str,
    summary: String,
    a: Answer,
    cnames: Vec<String>,
    extra: Vec<(&'static str, serde_json::Value)>,
    block_product: Option<String>,
}

/// Asks the resolver again, directly, for what the library does not tell: a retry of a silent
/// name (with the time left), the reason of a refusal (EDE), DNSSEC, a truncated answer's TCP
/// retry (each for `patience`).
async fn second_look(
    f: &mut Finding,
    server: SocketAddr,
    ep: &Endpoint,
    aaaa: &Answer,
    bounds: (tokio::time::Instant, Duration),
) {
    use super::dnsfilter::{self, Second};
    use super::dnstransport;
    let second = match f.code {
        "dns.timeout" => dnstransport::retry(server, &ep.host, bounds.0, &mut f.extra).await,
        "dns.error" => dnsfilter::retry(server, &ep.host, bounds.0).await,
        "dns.servfail" | "dns.refused" | "dns.nxdomain" | "dns.no_address" | "dns.sinkholed" => {
            dnsfilter::reason(server, &ep.host, f.code == "dns.servfail", bounds).await
        }
        _ => Second::Nothing,
    };
    match second {
        Second::Nothing => {}
        Second::SilentAgain => {
            f.extra.push(("retried", json!(true)));
            f.summary = format!("{} (asked twice)", f.summary);
        }
        Second::Answered(r) | Second::ViaTcp(r) => {
            // The retry was answered: judge that answer instead of the lost one.
            f.extra.push(("retried", json!(true)));
            match r.rcode {
                ResponseCode::NoError => f.a = Answer::Addrs(r.addrs.clone()),
                ResponseCode::NXDomain => f.a = Answer::NoRecords { nx: true },
                ResponseCode::ServFail => f.a = Answer::ServFail,
                ResponseCode::Refused => f.a = Answer::Refused,
                _ => {}
            }
            for c in r.cnames {
                if !f.cnames.contains(&c) {
                    f.cnames.push(c);
                }
            }
            (f.status, f.code, f.summary) = classify(&ep.host, &f.a, aaaa, ep.public);
            let verdict = (&mut f.status, &mut f.code, &mut f.summary);
            dnstransport::verdict(verdict, &f.extra, &ep.host);
        }
        Second::TcpBlocked { tcp } => {
            f.extra.push(dnstransport::truncated(&tcp));
            f.extra.push(("tcp_retry", json!(tcp)));
            (f.status, f.code) = (Status::Fail, "dns.tcp_blocked");
            f.summary = format!(
                "the answer for {} is too large for UDP (truncated) and the same query over TCP got no answer ({tcp}): a firewall blocks DNS over TCP (port 53)",
                ep.host
            );
        }
        Second::Filtered(ede, _) => {
            f.extra.push(("ede", ede.to_json()));
            (f.status, f.code) = (Status::Fail, "dns.filtered");
            f.summary = format!(
                "the resolver says it blocked {} on purpose (Extended DNS Error {})",
                ep.host,
                ede.describe()
            );
        }
        Second::Dnssec(ede, cd) => {
            f.extra
                .push(("ede", ede.as_ref().map_or(json!(null), |e| e.to_json())));
            let resolves = cd.as_ref().is_some_and(|r| !r.addrs.is_empty());
            f.extra.push(("resolves_unvalidated", json!(resolves)));
            (f.status, f.code) = (Status::Fail, "dns.dnssec_failed");
            f.summary = match &ede {
                Some(e) => format!(
                    "the resolver's DNSSEC validation failed for {} (Extended DNS Error {})",
                    ep.host,
                    e.describe()
                ),
                None => format!(
                    "the resolver answers SERVFAIL for {}, but answers once DNSSEC checking is disabled: its DNSSEC validation fails for this name",
                    ep.host
                ),
            };
        }
    }
}

/// Answers that lead to a filter's block page rather than the service.
fn block_pages(f: &mut Finding, ep: &Endpoint, aaaa: &Answer, servers: &[SocketAddr]) {
    let addrs: Vec<IpAddr> = [&f.a, aaaa]
        .into_iter()
        .filter_map(|x| match x {
            Answer::Addrs(list) => Some(list.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    let own: Vec<IpAddr> = servers.iter().map(SocketAddr::ip).collect();
    match block_page(
        &ep.host,
        &f.cnames,
        &addrs,
        &own,
        ep.public,
        f.code == "dns.sinkholed",
    ) {
        Some(BlockPage::Known {
            product,
            summary: s,
        }) => {
            f.block_product = Some(product);
            (f.status, f.code, f.summary) = (Status::Fail, "dns.block_page", s);
        }
        Some(BlockPage::ResolverItself(s)) => {
            (f.status, f.code, f.summary) = (Status::Fail, "dns.block_page", s);
        }
        Some(BlockPage::SinkholeIsResolver(note)) => {
            f.summary = format!("{}; {note}", f.summary);
            f.extra.push(("resolver_own_address", json!(true)));
        }
        None => {}
    }
}

/// Who is in the way: the resolver's product or the filter's, when a finding points to one. The
/// resolver's identity is the run's one answer ([`Servers::identity`]), so every check of the
/// run names the same product.
async fn who_is_in_the_way(
    f: &mut Finding,
    servers: &Servers,
    server: SocketAddr,
    step_end: tokio::time::Instant,
) {
    if FILTER_CODES.contains(&f.code)
        || (f.code == "dns.timeout" && f.extra.iter().any(|(k, _)| *k == "retried"))
    {
        let id = servers.identity(server, step_end).await;
        let name = resolverid::who(Some(&server.ip()), &id, f.block_product.as_deref());
        let known = name != resolverid::UNKNOWN;
        match f.code {
            // Kept for the run-wide judgement (a drop says who, or not, there).
            "dns.timeout" => {}
            // A name may really not exist: say who answered, only when it is known.
            "dns.nxdomain" | "dns.no_address" if known => {
                f.summary = format!("{}; answered by {name}", f.summary);
            }
            "dns.nxdomain" | "dns.no_address" => {}
            _ => f.summary = format!("{}; in the way: {name}", f.summary),
        }
        f.extra.push(("filter", json!(name)));
        if let Some(s) = id.software {
            f.extra.push(("resolver_software", json!(s)));
        }
    }
}

/// The check: the addresses (IPv6 first), the timing and what was learnt.
fn finish(
    f: Finding,
    aaaa: &Answer,
    target: Option<&str>,
    server_label: &str,
    elapsed: Duration,
) -> (Check, Option<Vec<IpAddr>>) {
    let mut v6: Vec<IpAddr> = Vec::new();
    let mut v4: Vec<IpAddr> = Vec::new();
    for ans in [aaaa, &f.a] {
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
    let mut check = Check::new(Probe::Dns, target, f.status, f.code, f.summary)
        .took(elapsed)
        .with(
            "addresses",
            all.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
        )
        .with("resolve_ms", crate::model::ms(elapsed))
        .with("resolver", server_label)
        .with("a", f.a.label())
        .with("aaaa", aaaa.label())
        .with("cname_chain", f.cnames);
    for (k, v) in f.extra {
        check = check.with(k, v);
    }
    let usable =
        (f.status == Status::Pass || f.code == super::dnstransport::UDP_BLOCKED).then_some(all);
    (check, usable)
}

#[cfg(test)]
mod tests;
