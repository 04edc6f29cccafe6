//! Filtering resolvers as companies and home labs run them — real BIND 9 with a response-policy
//! zone and real Knot Resolver with its `policy` module — in front of a real block-page server
//! (nginx with its own certificate for the block host's name, on the block address's HTTPS port
//! only), against the real binary. Each test starts its own instances on loopback addresses
//! (127.0.0.77 is the block address: several addresses on `lo` need no namespace); a machine
//! without the programs skips through `support::skip`.
//!
//! The profile has what the app has: two names on the HTTPS port and the CarData stream on a
//! port of its own, which the block page does not serve. Every check must name the filter, the
//! first suspect must be `dns_filter`, and no check may call the block page interception or a
//! firewall.
//!
//! | resolver | rule | name gets | code |
//! | --- | --- | --- | --- |
//! | BIND RPZ | `CNAME block.…` | the block host's address | dns.block_page (CNAME) |
//! | BIND RPZ | local-data `A 127.0.0.77` | the block address | dns.block_page (shared address) |
//! | BIND RPZ | `CNAME block.…`, port nobody serves | a refused connection there | dns.block_page (same address) |
//! | BIND RPZ | `CNAME .` / `CNAME *.` | NXDOMAIN / no records | dns.nxdomain / dns.no_address |
//! | Knot | `policy.ANSWER` | the block address, EDE 4 | dns.block_page (EDE) |
//! | Knot | `policy.DENY` / `policy.REFUSE` | NXDOMAIN + EDE 15 / REFUSED + EDE 18 | dns.filtered |
//! | BIND RPZ, `version none` | as above | as above, named by its policy zone (the SOA in its answers) | dns.block_page |
//! | Pi-hole (dnsmasq), IP mode | `address=/…/<own address>` | its own address, whose web server shows `pi.hole`'s certificate | dns.block_page (certificate) |

use crate::support::dnsmasq::Dnsmasq;
use crate::support::kresd::Kresd;
use crate::support::named::Named;
use crate::support::nginx::{Nginx, free_port, nginx_binary};
use crate::support::opensslpki::{LeafSpec, OpensslCa, openssl_available};
use crate::support::{
    EndpointSpec, HttpBehaviour, HttpsServer, Netcheck, Pki, ProfileFile, code, say, skip, stage,
    suspect_ids,
};
use serde_json::Value;
use std::net::SocketAddr;

const API: &str = "cocoapi.netcheck.lan";
const SIGN_IN: &str = "customer.netcheck.lan";
const STREAM: &str = "streaming.netcheck.lan";
const OAUTH: &str = "oauth.netcheck.lan";
const GCDM: &str = "gcdm.netcheck.lan";
const NEUTRAL: &str = "neutral.netcheck.lan";
const BLOCK_HOST: &str = "block.netcheck.lan";
const BLOCK_IP: &str = "127.0.0.77";

/// The names that lead to the block page, and the two the filter refuses outright.
const PAGED: [&str; 3] = ["api", "sign-in", "stream"];

/// The neutral host, the block page (nginx on the block address's HTTPS port only) and the
/// profile that reaches them.
struct World {
    pki: Pki,
    _neutral: HttpsServer,
    _block_page: Nginx,
    _block_ca: OpensslCa,
    profile: ProfileFile,
}

impl World {
    /// The block page of a filter at `BLOCK_IP`, with a certificate for `BLOCK_HOST`.
    fn new(test: &str) -> Option<World> {
        World::with_block_page(test, BLOCK_IP, BLOCK_HOST)
    }

    fn with_block_page(test: &str, block_ip: &str, block_host: &str) -> Option<World> {
        if nginx_binary().is_none() || !openssl_available() {
            skip(&format!(
                "realrpz::{test}: nginx and openssl are needed (Debian: nginx-light openssl)"
            ));
            return None;
        }
        let pki = Pki::new();
        let neutral = HttpsServer::start(&pki.identity(NEUTRAL), HttpBehaviour::status(200));
        // The filter's own CA, which this device does not trust, as a block page's is.
        let block_ca = OpensslCa::new("/O=Netcheck Filter/CN=Netcheck Filter Block Page CA");
        let leaf = block_ca.issue(block_host, &LeafSpec::new(block_host));
        let https = free_port();
        let block_page = Nginx::start_at(
            (block_ip, https),
            &leaf.chain,
            &leaf.key,
            "",
            "return 200 'blocked by the network filter';",
        );
        // The stream's port: nothing listens there on the block address.
        let stream = free_port();
        let profile = ProfileFile::new(&[
            EndpointSpec::new("api", API, https),
            EndpointSpec::new("sign-in", SIGN_IN, https),
            EndpointSpec::new("stream", STREAM, stream),
            EndpointSpec::new("oauth", OAUTH, https),
            EndpointSpec::new("gcdm", GCDM, https),
            EndpointSpec::new("neutral", NEUTRAL, neutral.port()).role("baseline"),
        ]);
        Some(World {
            pki,
            _neutral: neutral,
            _block_page: block_page,
            _block_ca: block_ca,
            profile,
        })
    }

    fn run(&self, resolver: SocketAddr) -> Value {
        let out = Netcheck::engine(&self.profile)
            .resolver_addr(&resolver.to_string())
            .ca_file(&self.pki)
            .run();
        assert_eq!(out.code, 2, "a filtered run fails\n{}", out.describe());
        let r = out.report();
        assert_eq!(
            code(&r, "neutral", "http"),
            "http.ok",
            "the baseline works\n{}",
            out.describe()
        );
        r
    }
}

/// The dns checks' `filter`, every one of them.
fn filters(r: &Value) -> Vec<String> {
    r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["probe"] == "dns")
        .filter_map(|c| c["data"]["filter"].as_str().map(str::to_owned))
        .collect()
}

/// What every filtered run must show: the block page on each paged name with the filter named,
/// the failures after it explained, `dns_filter` first, no interception or firewall verdicts.
fn expect_block_pages(case: &str, r: &Value, product: &str) {
    for t in PAGED {
        let dns = stage(r, t, "dns");
        assert_eq!(
            dns["code"], "dns.block_page",
            "{case}: {t}\n{:#}",
            r["checks"]
        );
        assert!(
            dns["data"]["filter"]
                .as_str()
                .is_some_and(|f| f.starts_with(product)),
            "{case}: {dns}"
        );
        for s in ["tcp", "tls"] {
            let c = stage(r, t, s);
            if c["status"] == "fail" {
                assert_eq!(c["data"]["explained_by"], "dns.block_page", "{case}: {c}");
            }
        }
    }
    assert_eq!(
        code(r, "stream", "tcp"),
        "tcp.refused",
        "{case}: the block page does not serve the stream's port"
    );
    assert_eq!(
        stage(r, "stream", "dns")["data"]["block_evidence"],
        serde_json::json!(["same_address"]),
        "{case}"
    );
    let all = r["checks"].as_array().cloned().unwrap_or_default();
    assert!(
        !all.iter().any(|c| c["code"] == "tls.intercepted"),
        "{case}: {:#}",
        r["checks"]
    );
    let ids = suspect_ids(r);
    assert_eq!(
        ids.first().map(String::as_str),
        Some("dns_filter"),
        "{case}: {ids:?}"
    );
    assert!(
        ids.iter()
            .all(|s| s != "vpn_firewall" && s != "tls_interception"),
        "{case}: {ids:?}"
    );
    let named = filters(r);
    assert!(
        named.iter().all(|f| f.starts_with(product)),
        "{case}: one product on every check: {named:?}"
    );
}

fn bind_or_skip(test: &str) -> Option<Named> {
    bind_with(test, "")
}

fn bind_with(test: &str, options: &str) -> Option<Named> {
    let zone = format!("neutral IN A 127.0.0.1\nblock IN A {BLOCK_IP}\n");
    let rpz = format!(
        "{API} CNAME {BLOCK_HOST}.\n{SIGN_IN} A {BLOCK_IP}\n{STREAM} CNAME {BLOCK_HOST}.\n{OAUTH} CNAME .\n{GCDM} CNAME *.\n"
    );
    match Named::start_with("netcheck.lan", &zone, &rpz, NEUTRAL, options) {
        Ok(n) => Some(n),
        Err(why) => {
            skip(&format!("realrpz::{test}: {why}"));
            None
        }
    }
}

#[test]
fn bind_rpz_block_pages_are_named_per_name_and_its_refusals_keep_their_codes() {
    let Some(w) = World::new("bind") else { return };
    let Some(bind) = bind_or_skip("bind") else {
        return;
    };
    let r = w.run(bind.addr);
    expect_block_pages("BIND RPZ", &r, "BIND");
    let api = stage(&r, "api", "dns");
    assert!(
        api["data"]["block_evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|k| k == "cname")),
        "{api}"
    );
    assert!(
        api["summary"]
            .as_str()
            .is_some_and(|s| s.contains(BLOCK_HOST)),
        "{api}"
    );
    assert!(
        api["data"]["resolver_software"]
            .as_str()
            .is_some_and(|s| s.starts_with("9.")),
        "{api}"
    );
    let sign_in = stage(&r, "sign-in", "dns");
    assert!(
        sign_in["data"]["block_evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|k| k == "shared_address")),
        "{sign_in}"
    );
    assert_eq!(code(&r, "oauth", "dns"), "dns.nxdomain");
    assert_eq!(code(&r, "gcdm", "dns"), "dns.no_address");
    for t in ["oauth", "gcdm"] {
        let dns = stage(&r, t, "dns");
        assert!(
            dns["data"]["filter"]
                .as_str()
                .is_some_and(|f| f.starts_with("BIND")),
            "{dns}"
        );
    }
    say(
        "realrpz: ok   BIND RPZ: CNAME, local-data and the stream's port are one block page; NXDOMAIN and NODATA keep their codes; BIND named on every check",
    );
}

#[test]
fn the_same_filtered_profile_names_the_same_product_five_times() {
    let Some(w) = World::new("five-runs") else {
        return;
    };
    let Some(bind) = bind_or_skip("five-runs") else {
        return;
    };
    let mut seen: Vec<Vec<String>> = Vec::new();
    let mut took: Vec<String> = Vec::new();
    for run in 0..5 {
        // BIND answers CHAOS queries (`version.bind`) at most three times a second per client
        // network and drops the rest (its built-in rate limit for the `_bind` view): runs spaced
        // as a user's are, not back to back.
        if run > 0 {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let r = w.run(bind.addr);
        took.push(format!("{}", r["duration_ms"]));
        let named = filters(&r);
        assert_eq!(named.len(), 5, "every filtered name says who: {named:?}");
        assert!(
            named.iter().all(|f| f == &named[0]),
            "one product on every check: {named:?}"
        );
        seen.push(named);
    }
    assert!(
        seen.iter().all(|s| s == &seen[0]),
        "the same product every run: {seen:?}"
    );
    assert!(seen[0][0].starts_with("BIND"), "{seen:?}");
    say(&format!(
        "realrpz: ok   five runs against BIND RPZ name \"{}\" on every check (runs of {} ms)",
        seen[0][0],
        took.join(", ")
    ));
}

#[test]
fn knot_resolver_policies_are_named_by_their_extended_errors() {
    let Some(w) = World::new("knot") else { return };
    let answer = format!(
        "policy.add(policy.suffix(policy.ANSWER({{ [kres.type.A] = {{ rdata = kres.str2ip('{BLOCK_IP}'), ttl = 300 }} }}), {{ todname('{API}.'), todname('{SIGN_IN}.'), todname('{STREAM}.') }}))\n\
         policy.add(policy.suffix(policy.DENY, {{ todname('{OAUTH}.') }}))\n\
         policy.add(policy.suffix(policy.REFUSE, {{ todname('{GCDM}.') }}))\n"
    );
    let knot = match Kresd::start(&[(NEUTRAL, "127.0.0.1")], &answer, NEUTRAL) {
        Ok(k) => k,
        Err(why) => return skip(&format!("realrpz::knot: {why}")),
    };
    let r = w.run(knot.addr);
    expect_block_pages("Knot Resolver", &r, "Knot Resolver");
    let api = stage(&r, "api", "dns");
    assert_eq!(api["data"]["ede"]["code"], 4, "{api}");
    assert!(
        api["data"]["block_evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|k| k == "ede")),
        "{api}"
    );
    for t in ["oauth", "gcdm"] {
        let dns = stage(&r, t, "dns");
        assert_eq!(dns["code"], "dns.filtered", "{dns}");
        assert!(
            dns["data"]["filter"]
                .as_str()
                .is_some_and(|f| f.starts_with("Knot Resolver")),
            "{dns}"
        );
    }
    say(
        "realrpz: ok   Knot Resolver: policy.ANSWER is a block page (EDE 4), DENY and REFUSE are filtered; Knot named on every check",
    );
}

#[test]
fn a_pihole_in_ip_mode_showing_its_own_certificate_is_its_block_page() {
    // Pi-hole's IP blocking mode answers its own address, where its web server presents the
    // certificate it made for `pi.hole`; the neutral host lives on the same machine here.
    let Some(w) = World::with_block_page("pihole-ip", "127.0.0.1", "pi.hole") else {
        return;
    };
    let lines: String = [API, SIGN_IN, STREAM, NEUTRAL, "pi.hole"]
        .iter()
        .map(|h| format!("address=/{h}/127.0.0.1\n"))
        .chain([format!("address=/{OAUTH}/\naddress=/{GCDM}/\n")])
        .collect();
    let pihole = match Dnsmasq::start(&lines) {
        Ok(d) => d,
        Err(why) => return skip(&format!("realrpz::pihole-ip: {why}")),
    };
    let r = w.run(pihole.addr);
    expect_block_pages("Pi-hole IP mode", &r, "Pi-hole");
    let api = stage(&r, "api", "dns");
    let evidence = &api["data"]["block_evidence"];
    // (A loopback address is the resolver's own for a name that is not public, where a local
    // service may live on the resolver's host: the certificate is the mark here.)
    assert_eq!(evidence, &serde_json::json!(["certificate"]), "{api}");
    say(
        "realrpz: ok   Pi-hole IP mode: its own address with its pi.hole certificate is its block page",
    );
}

#[test]
fn bind_keeping_its_version_to_itself_is_named_by_its_policy_zone() {
    let Some(w) = World::new("bind-hidden") else {
        return;
    };
    let hidden = "version none;\n  hostname none;\n  server-id none;";
    let Some(bind) = bind_with("bind-hidden", hidden) else {
        return;
    };
    let r = w.run(bind.addr);
    let zone = "a DNS filter with the response-policy zone rpz.netcheck (RPZ)";
    expect_block_pages("BIND RPZ, version hidden", &r, zone);
    assert_eq!(filters(&r).len(), 5, "every filtered name says who");
    say(
        "realrpz: ok   BIND RPZ with its version hidden: named by the policy zone its answers carry",
    );
}
