//! Resolvers that answer names at once but not every question about themselves: the CHAOS
//! queries that say who they are (`version.bind`), a repeated question, TCP. Whatever they leave
//! unanswered, the verdict on the names stands and every check of the run names the same product
//! (the identity is asked once per resolver and run, see `src/probe/resolverid.rs`).

use crate::support::*;
use serde_json::Value;

const HOSTS: [(&str, &str); 4] = [
    ("api", "api.netcheck.lan"),
    ("sign-in", "sign-in.netcheck.lan"),
    ("stream", "stream.netcheck.lan"),
    ("neutral", "neutral.netcheck.lan"),
];

/// Every endpoint's dns check, after one run against `dns` (dns only).
fn dns_checks(dns: &DnsServer) -> Vec<Value> {
    let specs: Vec<EndpointSpec> = HOSTS
        .iter()
        .map(|(name, host)| EndpointSpec::new(name, host, 443))
        .collect();
    let profile = ProfileFile::new(&specs);
    let out = Netcheck::engine(&profile)
        .resolver(dns)
        .only("dns")
        .timeout("5s")
        .run();
    out.assert_exit(2);
    let r = out.report();
    HOSTS
        .iter()
        .map(|(name, _)| stage(&r, name, "dns").clone())
        .collect()
}

#[test]
fn a_resolver_that_drops_a_repeated_question_is_named_the_same_on_every_check() {
    // NXDOMAIN for every name; the last name's second question (the look for an Extended DNS
    // Error) goes unanswered, as some resolvers drop a repeated question.
    let mut table: Vec<(&str, DnsAnswer)> = HOSTS[..3]
        .iter()
        .map(|(_, host)| (*host, DnsAnswer::NxDomain))
        .collect();
    table.push((
        HOSTS[3].1,
        DnsAnswer::FirstOnly(Box::new(DnsAnswer::NxDomain)),
    ));
    table.push((
        "version.bind",
        DnsAnswer::Txt("9.18.28-1~deb12u2-Debian".into()),
    ));
    let dns = DnsServer::start(table);
    let checks = dns_checks(&dns);
    for c in &checks {
        assert_eq!(c["code"], "dns.nxdomain", "{c:#}");
        assert_eq!(
            c["data"]["filter"], "BIND (9.18.28-1~deb12u2-Debian)",
            "every check names the product: {c:#}"
        );
        assert_eq!(c["data"]["resolver_software"], "9.18.28-1~deb12u2-Debian");
        let summary = c["summary"].as_str().unwrap_or_default();
        assert!(summary.contains("answered by BIND"), "{summary}");
    }
    assert_eq!(dns.queries_for("version.bind"), 1, "asked once per run");
}

#[test]
fn a_resolver_that_ignores_chaos_queries_and_refuses_tcp_keeps_the_nxdomain_verdict() {
    // The fixture listens on UDP only: a TCP query to its port is refused.
    let mut table: Vec<(&str, DnsAnswer)> = HOSTS
        .iter()
        .map(|(_, host)| (*host, DnsAnswer::NxDomain))
        .collect();
    for name in ["version.bind", "id.server", "hostname.bind"] {
        table.push((name, DnsAnswer::Silent));
    }
    let dns = DnsServer::start(table);
    let checks = dns_checks(&dns);
    let first = &checks[0]["data"]["filter"];
    assert!(first.is_string(), "{:#}", checks[0]);
    for c in &checks {
        assert_eq!(c["code"], "dns.nxdomain", "{c:#}");
        assert_eq!(
            &c["data"]["filter"], first,
            "the same on every check: {c:#}"
        );
        assert_eq!(c["data"]["resolver_software"], Value::Null, "{c:#}");
    }
    for name in ["version.bind", "id.server", "hostname.bind", "pi.hole"] {
        assert_eq!(dns.queries_for(name), 1, "{name} asked once per run");
    }
}
