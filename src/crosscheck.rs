//! What one check means in the light of the others: a pure pass over a run's endpoint checks,
//! after every pipeline has finished and before the diagnosis.
//!
//! A single stage cannot know what the run as a whole shows:
//! - a name that stays silent (asked twice) while the same resolver answers other names of the
//!   same run is not a weak signal but a filter that drops it: `dns.timeout` becomes `dns.dropped`
//!   (unless loss or latency measured on the hosts that answer shows a weak link);
//! - a name whose answer carries a filter's mark and leads to a server with a certificate not the
//!   service's is a block page or walled garden, decided per name ([`block_pages`], which also
//!   names the filter the same way on every check): `dns.block_page`, and the failures that
//!   follow are explained by it (so they are not blamed on TLS interception or a firewall);
//! - the same issuer, in no public store, on a BMW host and on the neutral host of one path is
//!   TLS inspection whatever its product (`crate::inspection`);
//! - with a proxy, the app's path is the proxy: when it works, a blocked direct path is
//!   information about the network, not a failure.
//!
//! Every endpoint check also gets `data.path`: `"proxy"` for the stages that went through a
//! proxy, `"direct"` for the others.

mod blockpage;

pub use blockpage::{RunResolver, apply as block_pages, wants_resolver};

use crate::model::{Check, Probe, Status};
use crate::probe::dnsfilter::UNKNOWN;
use crate::profile::Endpoint;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Applies every rule, in order.
pub fn apply(checks: &mut [Check], endpoints: &[Endpoint]) {
    label_paths(checks);
    silent_drops(checks, endpoints);
    crate::inspection::by_evidence(checks, endpoints);
    proxy_is_the_way_out(checks);
}

fn label_paths(checks: &mut [Check]) {
    for c in checks.iter_mut().filter(|c| c.target.is_some()) {
        if !c.data.contains_key("path") {
            let path = if c.data.contains_key("via_proxy") {
                "proxy"
            } else {
                "direct"
            };
            c.data.insert("path".into(), json!(path));
        }
    }
}

/// Endpoint name → host, the first endpoint of a name winning: one pass, so that a run with many
/// endpoints does not search the list once per check.
fn hosts(endpoints: &[Endpoint]) -> HashMap<&str, &str> {
    let mut map = HashMap::with_capacity(endpoints.len());
    for e in endpoints {
        map.entry(e.name.as_str()).or_insert(e.host.as_str());
    }
    map
}

fn host_of<'a>(hosts: &HashMap<&str, &'a str>, target: &'a str) -> &'a str {
    hosts.get(target).copied().unwrap_or(target)
}

/// `dns.timeout` (asked twice) on a resolver that answered other names of the run.
fn silent_drops(checks: &mut [Check], endpoints: &[Endpoint]) {
    // On a lossy or slow link two lost questions are the link's, not a filter's.
    if crate::diagnose::link_is_weak(checks) {
        return;
    }
    let hosts = hosts(endpoints);
    // resolver → the hosts it answered (any answer at all: it is alive and reachable).
    let mut answered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in checks.iter().filter(|c| c.probe == Probe::Dns) {
        let silent = matches!(
            c.code.as_str(),
            "dns.timeout" | "dns.error" | "dns.skipped" | "dns.tcp_blocked" | "dns.udp_blocked"
        );
        if let (false, Some(r), Some(t)) = (silent, c.data_str("resolver"), c.target.as_deref()) {
            answered
                .entry(r.to_owned())
                .or_default()
                .insert(host_of(&hosts, t).to_owned());
        }
    }
    let mut dropped: Vec<Option<String>> = Vec::new();
    for c in checks.iter_mut() {
        let retried = c.data.get("retried") == Some(&Value::Bool(true));
        if c.probe != Probe::Dns || c.code != "dns.timeout" || !retried {
            continue;
        }
        let Some(resolver) = c.data_str("resolver").map(str::to_owned) else {
            continue;
        };
        let host = host_of(&hosts, c.target.as_deref().unwrap_or("")).to_owned();
        let Some(others) = answered.get(&resolver).filter(|o| !o.contains(&host)) else {
            continue;
        };
        let names: Vec<String> = others.iter().cloned().collect();
        let who = c.data_str("filter").unwrap_or(UNKNOWN).to_owned();
        let summary = format!(
            "the resolver {resolver} answers other names ({}) but never {host}, asked twice: a filter drops it silently; in the way: {who}",
            names.join(", ")
        );
        c.restate(c.status, "dns.dropped", summary);
        c.data.insert("answered".into(), json!(names));
        dropped.push(c.target.clone());
    }
    // The stages skipped after it name the failed lookup by its final code.
    for c in checks.iter_mut() {
        if c.status == Status::Skip && dropped.contains(&c.target) {
            c.summary = c.summary.replace("(dns.timeout)", "(dns.dropped)");
        }
    }
}

/// With a proxy, the app's path is the proxy: the failures of the direct path are information
/// about the network, never evidence of their own. When the proxy path works they pass (the
/// network is built that way); when it fails too they stay failures, and the proxy's refusal is
/// what the diagnosis reads.
fn proxy_is_the_way_out(checks: &mut [Check]) {
    let mut verdict: BTreeMap<String, bool> = BTreeMap::new();
    for c in checks.iter() {
        if let (Some(t), Some("proxy")) = (c.target.as_deref(), c.data_str("path")) {
            let ok = matches!(c.status, Status::Pass | Status::Warn);
            let e = verdict.entry(t.to_owned()).or_insert(true);
            *e = *e && ok;
        }
    }
    for c in checks.iter_mut() {
        let Some(proxy_works) = c.target.as_deref().and_then(|t| verdict.get(t).copied()) else {
            continue;
        };
        if c.status != Status::Fail || c.data_str("path") != Some("direct") {
            continue;
        }
        if proxy_works {
            c.status = Status::Pass;
            c.summary = format!(
                "direct connections are blocked; the proxy is the way out ({})",
                c.summary
            );
        } else {
            c.summary = format!(
                "direct connections are blocked too; the app goes through the proxy ({})",
                c.summary
            );
        }
        c.data.insert("informational".into(), json!(true));
        c.data.insert("explained_by".into(), json!("proxy"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Role;

    fn ep(name: &str, host: &str, role: Role) -> Endpoint {
        Endpoint::for_test(name, host, 443, role)
    }

    fn dns(target: &str, code: &str, addrs: &[&str]) -> Check {
        let status = if code == "dns.ok" {
            Status::Pass
        } else {
            Status::Fail
        };
        Check::new(Probe::Dns, Some(target), status, code, "x")
            .with("resolver", "127.0.0.53:53")
            .with("addresses", addrs.to_vec())
    }

    #[test]
    fn a_name_silent_twice_while_others_answer_is_dropped() {
        let eps = [
            ep("api", "api.example", Role::Service),
            ep("neutral", "www.example", Role::Baseline),
        ];
        let mut c = vec![
            dns("api", "dns.timeout", &[]).with("retried", true),
            dns("neutral", "dns.ok", &["192.0.2.1"]),
        ];
        apply(&mut c, &eps);
        assert_eq!(c[0].code, "dns.dropped");
        assert_eq!(c[0].data["answered"], json!(["www.example"]));
        assert!(c[0].summary.contains("drops it silently"));
        assert_eq!(c[0].data["path"], "direct");

        // Asked once only (the deadline cut it), or nothing else answered: still a timeout.
        let mut c = vec![
            dns("api", "dns.timeout", &[]),
            dns("neutral", "dns.ok", &["192.0.2.1"]),
        ];
        apply(&mut c, &eps);
        assert_eq!(c[0].code, "dns.timeout");
        let mut c = vec![
            dns("api", "dns.timeout", &[]).with("retried", true),
            dns("neutral", "dns.timeout", &[]).with("retried", true),
        ];
        apply(&mut c, &eps);
        assert_eq!(c[0].code, "dns.timeout");

        // On a link that loses and delays packets (latency measured high), no filter is claimed.
        let mut c = vec![
            dns("api", "dns.timeout", &[]).with("retried", true),
            dns("neutral", "dns.ok", &["192.0.2.1"]),
            Check::new(
                Probe::Latency,
                Some("neutral"),
                Status::Warn,
                "latency.high",
                "median 300 ms",
            ),
        ];
        apply(&mut c, &eps);
        assert_eq!(c[0].code, "dns.timeout");
    }

    #[test]
    fn a_working_proxy_turns_direct_failures_into_information() {
        let eps = [ep("api", "api.example", Role::Service)];
        let mut c = vec![
            dns("api", "dns.ok", &["192.0.2.1"]),
            Check::new(
                Probe::Tcp,
                Some("api"),
                Status::Fail,
                "tcp.timeout",
                "no answer",
            ),
            Check::new(
                Probe::Http,
                Some("api"),
                Status::Pass,
                "http.ok",
                "HTTP 401",
            )
            .with("via_proxy", "http://proxy:3128"),
        ];
        apply(&mut c, &eps);
        assert_eq!(c[1].status, Status::Pass);
        assert_eq!(c[1].data["explained_by"], "proxy");
        assert!(c[1].summary.starts_with("direct connections are blocked"));
        assert_eq!(c[2].data["path"], "proxy");

        let mut c = vec![
            Check::new(
                Probe::Tcp,
                Some("api"),
                Status::Fail,
                "tcp.timeout",
                "no answer",
            ),
            Check::new(
                Probe::Http,
                Some("api"),
                Status::Fail,
                "http.proxy_denied",
                "403",
            )
            .with("via_proxy", "http://proxy:3128"),
        ];
        apply(&mut c, &eps);
        assert_eq!(
            c[0].status,
            Status::Fail,
            "a failing proxy leaves it failed"
        );
        assert_eq!(c[0].data["explained_by"], "proxy", "but not as evidence");
        assert!(
            c[0].summary
                .starts_with("direct connections are blocked too")
        );
    }
}
