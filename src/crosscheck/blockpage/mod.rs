//! Block pages, decided per name, and the filter named the same on every finding.
//!
//! A filter that redirects instead of refusing (an RPZ CNAME or local-data record, Knot
//! Resolver's `policy.ANSWER`, a Pi-hole in IP mode) gives an answer that resolves, and the
//! failure shows one stage later: the server there presents a certificate that is not the
//! service's. On its own that could be TLS interception. It is a block page when the answer
//! itself carries a filter's mark as well — any one of:
//!
//! - a CNAME, to a listed block host or to any other (`cname`);
//! - an Extended DNS Error 4 Forged Answer, 15 Blocked, 16 Censored or 17 Filtered (`ede`);
//! - the resolver's own address, for a public name (`resolver_address`);
//! - one address answered for several BMW names with different host names, which the neutral
//!   host does not share (`shared_address`);
//! - a certificate listed in `checks/blockpages.toml` (`certificate`).
//!
//! The decision is made for each name. A name at a block page's address whose own port nobody
//! serves there (the CarData stream on :9000: block-page servers answer on 443 and 80 only) is
//! part of the same block page (`same_address`), not a firewall. The failures that follow carry
//! `explained_by = "dns.block_page"`, so the diagnosis does not read them as interception or a
//! firewall.
//!
//! Who is in the way is the run's one answer: the resolver's identity (asked once per run,
//! [`crate::probe::resolverid`]), completed by what its Extended DNS Errors say, applied to every
//! dns check that names a filter — the same product on every check, every run.

use crate::model::{Check, Probe, Role, Status};
use crate::probe::blockpages;
use crate::probe::resolverid::{self, Identity};
use crate::profile::Endpoint;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// The run's resolver as the dns stage asked it: its address and its identity.
pub type RunResolver = (IpAddr, Identity);

/// What the run shows of one name.
struct Name<'a> {
    host: &'a str,
    /// A public name: a local service may well live on the router that resolves.
    public: bool,
    addrs: BTreeSet<String>,
    cnames: Vec<String>,
    /// The mark an Extended DNS Error puts on the answer.
    ede: Option<String>,
    /// The subject and issuer of a certificate that is not the service's.
    foreign: Option<(String, String)>,
    /// A connection stage (tcp, tls, http) failed.
    failed: bool,
}

/// The evidence that one name leads to a block page.
#[derive(Default)]
struct Verdict {
    keys: Vec<&'static str>,
    reasons: Vec<String>,
    product: Option<String>,
}

/// Does the run need to know who its resolver is: a dns check names a filter or carries an
/// Extended DNS Error, or a certificate not the service's may be a block page's.
pub fn wants_resolver(checks: &[Check]) -> bool {
    checks.iter().any(|c| match c.probe {
        Probe::Dns => c.data.contains_key("filter") || c.data.contains_key("ede"),
        Probe::Tls => foreign_certificate(c).is_some(),
        _ => false,
    })
}

/// Applies the rule, then names the filter the same way on every dns check of the run.
pub fn apply(checks: &mut [Check], endpoints: &[Endpoint], resolver: Option<&RunResolver>) {
    let identity = identity(checks, resolver);
    let names = names(checks, endpoints);
    let baseline = baseline_addresses(checks, endpoints);
    let verdicts = judge(&names, &baseline, resolver.map(|r| r.0));
    rewrite(checks, &names, &verdicts, resolver.map(|r| r.0), &identity);
    name_the_filter(checks, resolver.map(|r| r.0), &identity);
}

/// The resolver's identity, and where it says nothing about itself, what its Extended DNS
/// Errors say (the same texts in every run, so the same product).
fn identity(checks: &[Check], resolver: Option<&RunResolver>) -> Identity {
    let mut id = resolver.map(|r| r.1.clone()).unwrap_or_default();
    if id.product().is_none() {
        id.behaviour = checks
            .iter()
            .filter(|c| c.probe == Probe::Dns)
            .filter_map(|c| c.data.get("ede")?.get("text")?.as_str())
            .find_map(resolverid::product_of_ede);
    }
    if id.policy_zone.is_none() {
        id.policy_zone = checks
            .iter()
            .filter(|c| c.probe == Probe::Dns)
            .find_map(|c| c.data_str("policy_zone").map(str::to_owned));
    }
    id
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The certificate codes that say the server is not the service: a wrong name, an unknown
/// issuer, or an issuer the interceptors' table knows (a filter's gateway may serve its block
/// page with its own root).
fn foreign_certificate(c: &Check) -> Option<(String, String)> {
    let foreign = matches!(
        c.code.as_str(),
        "tls.hostname_mismatch" | "tls.untrusted" | "tls.intercepted"
    );
    foreign.then(|| {
        let s = |k| c.data_str(k).unwrap_or_default().to_owned();
        (s("subject"), s("issuer"))
    })
}

/// Every non-baseline name of the run whose lookup resolved, with what its stages showed.
fn names<'a>(checks: &[Check], endpoints: &'a [Endpoint]) -> BTreeMap<&'a str, Name<'a>> {
    let mut names: BTreeMap<&str, Name> = endpoints
        .iter()
        .filter(|e| e.role != Role::Baseline && e.ip_literal().is_none())
        .map(|e| {
            let name = Name {
                host: e.host.as_str(),
                public: e.public,
                addrs: BTreeSet::new(),
                cnames: Vec::new(),
                ede: None,
                foreign: None,
                failed: false,
            };
            (e.name.as_str(), name)
        })
        .collect();
    let mut resolved = BTreeSet::new();
    for c in checks {
        let Some(n) = c.target.as_deref().and_then(|t| names.get_mut(t)) else {
            continue;
        };
        match c.probe {
            Probe::Dns if c.code == "dns.ok" => {
                resolved.insert(c.target.clone().unwrap_or_default());
                n.addrs = strings(c.data.get("addresses")).into_iter().collect();
                n.cnames = strings(c.data.get("cname_chain"));
                n.ede = c.data.get("ede").and_then(|e| {
                    let code = e.get("code")?.as_u64()?;
                    matches!(code, 4 | 15..=17).then(|| ede_words(e))
                });
            }
            // What the proxy path shows is the proxy's, and a failure another finding explains
            // (a working proxy) is not this name's.
            Probe::Tcp | Probe::Tls | Probe::Http
                if c.status == Status::Fail
                    && c.data_str("path") != Some("proxy")
                    && !c.data.contains_key("explained_by") =>
            {
                n.failed = true;
                if c.probe == Probe::Tls {
                    n.foreign = n.foreign.take().or_else(|| foreign_certificate(c));
                }
            }
            _ => {}
        }
    }
    names.retain(|t, n| resolved.contains(*t) && !n.addrs.is_empty());
    names
}

fn ede_words(e: &Value) -> String {
    let code = e.get("code").and_then(Value::as_u64).unwrap_or_default();
    let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
    match e
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        Some(t) => format!("{code} {name}: {t}"),
        None => format!("{code} {name}"),
    }
}

/// The addresses the working baselines resolved to.
fn baseline_addresses(checks: &[Check], endpoints: &[Endpoint]) -> BTreeSet<String> {
    let baselines: BTreeSet<&str> = endpoints
        .iter()
        .filter(|e| e.role == Role::Baseline)
        .map(|e| e.name.as_str())
        .collect();
    checks
        .iter()
        .filter(|c| c.probe == Probe::Dns && c.code == "dns.ok")
        .filter(|c| c.target.as_deref().is_some_and(|t| baselines.contains(t)))
        .flat_map(|c| strings(c.data.get("addresses")))
        .collect()
}

/// The evidence for each name that shows a foreign certificate, then the names at the same
/// addresses whose connections failed.
fn judge(
    names: &BTreeMap<&str, Name>,
    baseline: &BTreeSet<String>,
    resolver: Option<IpAddr>,
) -> BTreeMap<String, Verdict> {
    // Answer → the hosts that got it, in one pass: a run with many names is not searched once
    // per name.
    let mut sharing: HashMap<&BTreeSet<String>, BTreeSet<&str>> = HashMap::new();
    for n in names.values() {
        sharing.entry(&n.addrs).or_default().insert(n.host);
    }
    let marks = Marks {
        sharing,
        resolver,
        baseline,
    };
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    for (t, n) in names {
        let Some((subject, issuer)) = &n.foreign else {
            continue;
        };
        let mut v = evidence(n, &marks);
        let cn = blockpages::common_name(subject).unwrap_or("an unnamed certificate");
        if let Some(f) = blockpages::certificate_product(subject, issuer) {
            v.keys.push("certificate");
            v.reasons
                .push(format!("the certificate there ({cn}) is {}'s", f.product));
            v.product = v.product.or(Some(f.product.clone()));
        }
        if v.keys.is_empty() {
            continue;
        }
        v.reasons.push(format!(
            "the server there presents a certificate that is not the service's ({cn})"
        ));
        verdicts.insert((*t).to_owned(), v);
    }
    same_address(names, &mut verdicts);
    verdicts
}

/// What the run says about answers: which hosts share each one, the resolver's address, the
/// neutral hosts' addresses.
struct Marks<'a> {
    sharing: HashMap<&'a BTreeSet<String>, BTreeSet<&'a str>>,
    resolver: Option<IpAddr>,
    baseline: &'a BTreeSet<String>,
}

/// Does the certificate claim the service's own name? An interceptor mints one for every name
/// it is asked for; a block page presents its own host's. A CDN's CNAME or a CDN address that
/// several names share is normal, so next to a certificate that claims the name they are no
/// mark of a filter.
fn impersonates(n: &Name) -> bool {
    let Some(cn) = n
        .foreign
        .as_ref()
        .and_then(|(s, _)| blockpages::common_name(s))
    else {
        return false;
    };
    let (cn, host) = (cn.to_ascii_lowercase(), n.host.to_ascii_lowercase());
    match cn.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
        None => cn == host,
    }
}

/// The marks of a filter on one name's answer (the certificate aside).
fn evidence(n: &Name, marks: &Marks) -> Verdict {
    let mut v = Verdict::default();
    let own_page = !impersonates(n);
    if let Some(target) = n.cnames.last() {
        let known = blockpages::block_page(&n.cnames, &[]).map(|f| f.product.clone());
        let cert_for_it = n.foreign.as_ref().is_some_and(|(s, _)| {
            blockpages::common_name(s).is_some_and(|cn| cn.eq_ignore_ascii_case(target))
        });
        if !own_page && known.is_none() {
            // A CDN's CNAME before an interceptor: no mark.
            return shared_and_more(n, marks, v, own_page);
        }
        v.keys.push("cname");
        v.reasons.push(format!(
            "the answer is a CNAME to {target}{}",
            if cert_for_it {
                ", whose certificate the server there presents"
            } else {
                ""
            }
        ));
        v.product = known;
    }
    shared_and_more(n, marks, v, own_page)
}

/// The marks past the CNAME: the resolver's Extended DNS Error, its own address, an address
/// several names share (only next to a block page's own certificate).
fn shared_and_more(n: &Name, marks: &Marks, mut v: Verdict, own_page: bool) -> Verdict {
    if let Some(e) = &n.ede {
        v.keys.push("ede");
        v.reasons.push(format!(
            "the resolver marks the answer (Extended DNS Error {e})"
        ));
    }
    let own = marks
        .resolver
        .filter(|r| n.public && n.addrs.contains(&r.to_string()));
    if let Some(r) = own {
        v.keys.push("resolver_address");
        v.reasons.push(format!("{r} is the resolver's own address"));
    }
    let others: BTreeSet<&str> = marks
        .sharing
        .get(&n.addrs)
        .map(|hosts| hosts.iter().copied().filter(|h| *h != n.host).collect())
        .unwrap_or_default();
    let apart = !marks.baseline.is_empty() && n.addrs.is_disjoint(marks.baseline);
    if own_page && apart && !others.is_empty() {
        let shown: Vec<&str> = others.iter().take(3).copied().collect();
        let more = match others.len() {
            0..=3 => String::new(),
            n => format!(" and {} more", n - 3),
        };
        v.keys.push("shared_address");
        v.reasons.push(format!(
            "{} is the answer for {}{more} as well, and the neutral host does not share it",
            join(&n.addrs),
            shown.join(", ")
        ));
    }
    v
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Names at a block page's address whose own connection failed there (a port the block page does
/// not serve): the same block page.
fn same_address(names: &BTreeMap<&str, Name>, verdicts: &mut BTreeMap<String, Verdict>) {
    let mut pages: BTreeMap<String, (&str, Option<String>)> = BTreeMap::new();
    for (t, v) in verdicts.iter() {
        if let Some(n) = names.get(t.as_str()) {
            for a in &n.addrs {
                pages
                    .entry(a.clone())
                    .or_insert((n.host, v.product.clone()));
            }
        }
    }
    for (t, n) in names {
        if verdicts.contains_key(*t) || !n.failed {
            continue;
        }
        if !n.addrs.iter().all(|a| pages.contains_key(a)) {
            continue;
        }
        let Some((host, product)) = n.addrs.first().and_then(|a| pages.get(a)) else {
            continue;
        };
        let v = Verdict {
            keys: vec!["same_address"],
            reasons: vec![format!(
                "{} is where {host} meets the block page, and the connection to this name's port there fails: the block page serves only its own ports",
                join(&n.addrs)
            )],
            product: product.clone(),
        };
        verdicts.insert((*t).to_owned(), v);
    }
}

/// The dns check of each block page name becomes `dns.block_page`; the failures that follow are
/// explained by it.
fn rewrite(
    checks: &mut [Check],
    names: &BTreeMap<&str, Name>,
    verdicts: &BTreeMap<String, Verdict>,
    resolver: Option<IpAddr>,
    identity: &Identity,
) {
    for c in checks.iter_mut() {
        let Some(t) = c.target.clone() else { continue };
        let (Some(v), Some(n)) = (verdicts.get(&t), names.get(t.as_str())) else {
            continue;
        };
        if c.probe == Probe::Dns {
            let who = resolverid::who(resolver.as_ref(), identity, v.product.as_deref());
            c.restate(
                Status::Fail,
                "dns.block_page",
                format!(
                    "{} leads to a filter's block page, not to the service: {}; in the way: {who}",
                    n.host,
                    v.reasons.join("; ")
                ),
            );
            c.data.insert("filter".into(), json!(who));
            c.data.insert("block_evidence".into(), json!(v.keys));
            if let Some(s) = &identity.software {
                c.data.insert("resolver_software".into(), json!(s));
            }
        } else if c.status == Status::Fail && !c.data.contains_key("explained_by") {
            // The connection never went to BMW: the root belongs to the block page.
            let code = match c.code.as_str() {
                "tls.intercepted" => "tls.untrusted".to_owned(),
                other => other.to_owned(),
            };
            let summary = format!(
                "{} — expected: the name leads to a block page, not to BMW",
                c.summary
            );
            c.restate(c.status, &code, summary);
            c.data
                .insert("explained_by".into(), json!("dns.block_page"));
        }
    }
}

/// Every dns check that names a filter names the run's one: the products a block page or a
/// listed resolver names stay; the others read the resolver's identity as the run completed it.
fn name_the_filter(checks: &mut [Check], resolver: Option<IpAddr>, identity: &Identity) {
    let listed: BTreeSet<&str> = blockpages::table()
        .iter()
        .map(|f| f.product.as_str())
        .collect();
    let name = resolverid::who(resolver.as_ref(), identity, None);
    let lookups: HashMap<usize, String> = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.probe == Probe::Dns)
        .filter_map(|(i, c)| Some((i, c.data_str("filter")?.to_owned())))
        .filter(|(_, f)| !listed.contains(f.as_str()) && *f != name)
        .collect();
    for (i, old) in lookups {
        let c = &mut checks[i];
        c.summary = c.summary.replace(&old, &name);
        c.data.insert("filter".into(), json!(name));
        if let Some(s) = &identity.software {
            c.data.insert("resolver_software".into(), json!(s));
        }
    }
}

#[cfg(test)]
mod tests;
