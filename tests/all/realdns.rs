//! DNS blockers as users, ISPs and companies run them — real dnsmasq (Pi-hole's blocking modes)
//! and real unbound (local zones, an RPZ zone, a validating resolver, Extended DNS Errors) —
//! against the real binary. Each test starts its own instance with a generated configuration on
//! a loopback port; a machine without the program skips through `support::skip`.
//!
//! | case | resolver | BMW names get | code | top suspect |
//! | --- | --- | --- | --- | --- |
//! | Pi-hole NULL | dnsmasq `address=/…/#` | 0.0.0.0 / :: | dns.sinkholed (filter Pi-hole) | dns_filter |
//! | Pi-hole NXDOMAIN | dnsmasq `address=/…/` | NXDOMAIN | dns.nxdomain | dns_filter |
//! | Pi-hole NODATA | dnsmasq `local=` + a TXT | NOERROR, no records | dns.no_address | dns_filter |
//! | Pi-hole IP | dnsmasq `address=/…/<own address>` | the resolver's own (loopback) address | dns.sinkholed, "the resolver's own address" | dns_filter |
//! | Pi-hole IP, public-looking | dnsmasq on 198.51.100.53 in a namespace | the resolver's own address | dns.block_page (filter Pi-hole) | dns_filter |
//! | always_null / always_nxdomain / always_refuse | unbound local-zone | 0.0.0.0 / NXDOMAIN / REFUSED | dns.sinkholed / dns.nxdomain / dns.refused | dns_filter |
//! | silent drop | unbound `deny` | nothing | dns.dropped | dns_filter |
//! | RPZ DROP | unbound RPZ `rpz-drop.` | nothing | dns.dropped | dns_filter |
//! | RPZ CNAME to Umbrella | unbound RPZ → hit-block.opendns.com | Umbrella's block page | dns.block_page (Cisco Umbrella) | dns_filter |
//! | walled garden | unbound `redirect` → one address | one address the baseline does not share; TLS fails | dns.block_page, TLS explained | dns_filter |
//! | ACL refusal | unbound `access-control … refuse` | REFUSED + EDE 18 | dns.filtered | dns_filter |
//! | DNSSEC, EDE | validating unbound, broken trust anchor | SERVFAIL + EDE 9/6 | dns.dnssec_failed | dnssec_validation |
//! | DNSSEC, no EDE | the same, `ede: no` | SERVFAIL; CD answers | dns.dnssec_failed | dnssec_validation |
//! | plain SERVFAIL | unbound forwarding to a refusing upstream | SERVFAIL | dns.servfail | not no_connectivity |
//! | TC, TCP/53 closed | unbound `do-tcp: no`, a large answer | TC, then nothing over TCP | dns.tcp_blocked | vpn_firewall |

use crate::support::dnsmasq::Dnsmasq;
use crate::support::unbound::Unbound;
use crate::support::{
    EndpointSpec, HttpBehaviour, HttpsServer, Leaf, Netcheck, Pki, ProfileFile, code, say, skip,
    stage, suspect_ids, top_suspect,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

const API: &str = "cocoapi.netcheck.lan";
const SIGN_IN: &str = "customer.netcheck.lan";
const NEUTRAL: &str = "neutral.netcheck.lan";

static PASSED: AtomicUsize = AtomicUsize::new(0);

/// The neutral host (a real HTTPS fixture on 127.0.0.1) and its certificates.
struct World {
    pki: Pki,
    neutral: HttpsServer,
}

impl World {
    fn new() -> World {
        let pki = Pki::new();
        let neutral = HttpsServer::start(&pki.identity(NEUTRAL), HttpBehaviour::status(200));
        World { pki, neutral }
    }

    /// Two BMW names (public, as in the built-in profile; their stages stop at dns, so nothing
    /// connects anywhere) and the neutral baseline.
    fn profile(&self) -> ProfileFile {
        self.profile_with(true, 443)
    }

    fn profile_with(&self, public: bool, bmw_port: u16) -> ProfileFile {
        ProfileFile::new(&[
            EndpointSpec::new("api", API, bmw_port).public(public),
            EndpointSpec::new("sign-in", SIGN_IN, bmw_port).public(public),
            EndpointSpec::new("neutral", NEUTRAL, self.neutral.port()).role("baseline"),
        ])
    }

    fn run(&self, resolver: SocketAddr, profile: &ProfileFile) -> Value {
        let out = Netcheck::engine(profile)
            .resolver_addr(&resolver.to_string())
            .ca_file(&self.pki)
            .run();
        assert!(
            out.code == 1 || out.code == 2,
            "a blocked run warns or fails\n{}",
            out.describe()
        );
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

/// Both BMW names have this dns code, and the top suspect is `suspect`; the line for the log.
fn expect(case: &str, r: &Value, dns_code: &str, suspect: &str) {
    for t in ["api", "sign-in"] {
        assert_eq!(
            code(r, t, "dns"),
            dns_code,
            "{case}: {t}\n{:#}",
            r["checks"]
        );
        assert_eq!(
            stage(r, t, "tcp")["status"],
            "skip",
            "{case}: nothing connects after a failed lookup"
        );
    }
    assert_eq!(
        top_suspect(r),
        suspect,
        "{case}: suspects {:?}",
        suspect_ids(r)
    );
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    say(&format!(
        "realdns: ok   {case}: dns {dns_code}, top suspect {suspect} ({n} DNS cases passed so far)"
    ));
}

fn dnsmasq_or_skip(test: &str, lines: &str) -> Option<Dnsmasq> {
    match Dnsmasq::start(lines) {
        Ok(d) => Some(d),
        Err(why) => {
            skip(&format!("realdns::{test}: {why}"));
            None
        }
    }
}

fn unbound_or_skip(
    test: &str,
    server: &str,
    tail: &str,
    files: &[(&str, &str)],
) -> Option<Unbound> {
    match Unbound::start_with(server, tail, files) {
        Ok(u) => Some(u),
        Err(why) => {
            skip(&format!("realdns::{test}: {why}"));
            None
        }
    }
}

/// The baseline's record, and Pi-hole's own name, as a Pi-hole on 127.0.0.1 has them.
fn pihole(block: &str) -> String {
    format!(
        "address=/{NEUTRAL}/127.0.0.1\naddress=/pi.hole/127.0.0.1\n{}",
        [API, SIGN_IN]
            .iter()
            .map(|h| block.replace("{host}", h))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[test]
fn pihole_null_mode_is_a_sinkhole_named_pihole() {
    let w = World::new();
    let Some(d) = dnsmasq_or_skip("pihole-null", &pihole("address=/{host}/#")) else {
        return;
    };
    let r = w.run(d.addr, &w.profile());
    assert_eq!(stage(&r, "api", "dns")["data"]["filter"], "Pi-hole");
    assert!(
        stage(&r, "api", "dns")["summary"]
            .as_str()
            .unwrap_or("")
            .contains("Pi-hole")
    );
    expect(
        "Pi-hole NULL mode (dnsmasq)",
        &r,
        "dns.sinkholed",
        "dns_filter",
    );
}

#[test]
fn pihole_nxdomain_mode_is_a_filter_while_the_baseline_resolves() {
    let w = World::new();
    let Some(d) = dnsmasq_or_skip("pihole-nxdomain", &pihole("address=/{host}/")) else {
        return;
    };
    let r = w.run(d.addr, &w.profile());
    assert_eq!(stage(&r, "api", "dns")["data"]["filter"], "Pi-hole");
    let summary = stage(&r, "api", "dns")["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(summary.ends_with("answered by Pi-hole"), "{summary}");
    expect(
        "Pi-hole NXDOMAIN mode (dnsmasq)",
        &r,
        "dns.nxdomain",
        "dns_filter",
    );
}

#[test]
fn pihole_nodata_mode_is_no_address() {
    let w = World::new();
    let block = "local=/{host}/\ntxt-record={host},\"blocked\"";
    let Some(d) = dnsmasq_or_skip("pihole-nodata", &pihole(block)) else {
        return;
    };
    let r = w.run(d.addr, &w.profile());
    expect(
        "Pi-hole NODATA mode (dnsmasq)",
        &r,
        "dns.no_address",
        "dns_filter",
    );
}

#[test]
fn pihole_ip_mode_answering_its_own_address_is_named() {
    let w = World::new();
    let Some(d) = dnsmasq_or_skip("pihole-ip", &pihole("address=/{host}/127.0.0.1")) else {
        return;
    };
    let r = w.run(d.addr, &w.profile());
    let dns = stage(&r, "api", "dns");
    // A loopback (or LAN) answer for a public name is a sinkhole already; that it is the
    // resolver's own address is said beside it. (A public-looking own address is
    // dns.block_page: dns::block_page's unit test, as loopback has no public addresses.)
    let summary = dns["summary"].as_str().unwrap_or("");
    assert!(summary.contains("the resolver's own address"), "{dns}");
    assert_eq!(dns["data"]["resolver_own_address"], true, "{dns}");
    assert_eq!(dns["data"]["filter"], "Pi-hole");
    expect(
        "Pi-hole IP mode (dnsmasq)",
        &r,
        "dns.sinkholed",
        "dns_filter",
    );
}

/// unbound with these BMW-name zones and the baseline's record.
fn unbound_zones(zone_type: &str) -> String {
    format!(
        "    local-zone: \"{NEUTRAL}.\" static\n    local-data: \"{NEUTRAL}. 60 IN A 127.0.0.1\"\n    local-zone: \"{API}.\" {zone_type}\n    local-zone: \"{SIGN_IN}.\" {zone_type}\n"
    )
}

#[test]
fn unbound_always_zones_keep_their_codes() {
    let w = World::new();
    for (zone, want) in [
        ("always_null", "dns.sinkholed"),
        ("always_nxdomain", "dns.nxdomain"),
        ("always_refuse", "dns.refused"),
    ] {
        let Some(u) = unbound_or_skip("unbound-always", &unbound_zones(zone), "", &[]) else {
            return;
        };
        let r = w.run(u.addr, &w.profile());
        let filter = stage(&r, "api", "dns")["data"]["filter"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(filter.starts_with("unbound"), "{zone}: {filter}");
        expect(&format!("unbound {zone}"), &r, want, "dns_filter");
    }
}

#[test]
fn unbound_deny_drops_silently_and_is_named_a_filter() {
    let w = World::new();
    let Some(u) = unbound_or_skip("unbound-deny", &unbound_zones("deny"), "", &[]) else {
        return;
    };
    let r = w.run(u.addr, &w.profile());
    let dns = stage(&r, "api", "dns");
    assert_eq!(
        dns["data"]["answered"],
        serde_json::json!([NEUTRAL]),
        "{dns}"
    );
    let skipped = stage(&r, "api", "tcp")["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(skipped.contains("(dns.dropped)"), "{skipped}");
    assert!(
        !suspect_ids(&r).iter().take(1).any(|s| s == "weak_signal"),
        "a filter, not the signal"
    );
    expect(
        "unbound deny (silent drop)",
        &r,
        "dns.dropped",
        "dns_filter",
    );
}

const RPZ_HEAD: &str =
    "$TTL 60\n@ IN SOA localhost. root.localhost. 1 3600 600 86400 60\n@ IN NS localhost.\n";

fn rpz(records: &str) -> (String, String) {
    let server = format!(
        "    local-zone: \"{NEUTRAL}.\" static\n    local-data: \"{NEUTRAL}. 60 IN A 127.0.0.1\"\n"
    );
    let zone = format!("{RPZ_HEAD}{records}");
    (server, zone)
}

#[test]
fn an_rpz_drop_is_a_silent_drop() {
    let w = World::new();
    let (server, zone) = rpz(&format!(
        "{API} CNAME rpz-drop.\n{SIGN_IN} CNAME rpz-drop.\n"
    ));
    let tail = "rpz:\n    name: rpz.netcheck\n    zonefile: {dir}/rpz.zone\n";
    let Some(u) = unbound_or_skip("rpz-drop", &server, tail, &[("rpz.zone", &zone)]) else {
        return;
    };
    let r = w.run(u.addr, &w.profile());
    expect("unbound RPZ DROP", &r, "dns.dropped", "dns_filter");
}

#[test]
fn an_rpz_cname_to_umbrella_s_block_page_names_umbrella() {
    let w = World::new();
    let (server, zone) = rpz(&format!(
        "{API} CNAME hit-block.opendns.com.\n{SIGN_IN} CNAME hit-block.opendns.com.\n"
    ));
    // The block page's own record, as Umbrella publishes it, from an upstream unbound forwards
    // to (unbound resolves the CNAME target by iteration, not from its local zones).
    let Some(upstream) =
        dnsmasq_or_skip("rpz-cname", "address=/hit-block.opendns.com/146.112.61.105")
    else {
        return;
    };
    let tail = format!(
        "rpz:\n    name: rpz.netcheck\n    zonefile: {{dir}}/rpz.zone\nforward-zone:\n    name: \"opendns.com.\"\n    forward-addr: {}@{}\n",
        upstream.addr.ip(),
        upstream.addr.port()
    );
    let Some(u) = unbound_or_skip("rpz-cname", &server, &tail, &[("rpz.zone", &zone)]) else {
        return;
    };
    let r = w.run(u.addr, &w.profile());
    let dns = stage(&r, "api", "dns");
    assert_eq!(dns["data"]["filter"], "Cisco Umbrella (OpenDNS)", "{dns}");
    assert!(
        dns["data"]["cname_chain"]
            .as_array()
            .is_some_and(|c| c.iter().any(|n| n == "hit-block.opendns.com")),
        "{dns}"
    );
    expect(
        "unbound RPZ CNAME to Umbrella's block page",
        &r,
        "dns.block_page",
        "dns_filter",
    );
}

#[test]
fn a_walled_garden_explains_the_tls_failure_that_follows() {
    let w = World::new();
    // The walled garden: one server on another loopback address, with its own certificate.
    let garden = match std::net::TcpListener::bind("127.0.0.9:0") {
        Ok(l) => l,
        Err(e) => {
            return skip(&format!(
                "realdns::walled-garden: cannot bind 127.0.0.9: {e}"
            ));
        }
    };
    let garden = HttpsServer::from_listener(
        garden,
        &w.pki.issue(&Leaf::only(&["portal.walled.netcheck.lan"])),
        HttpBehaviour::status(200),
    );
    let server = format!(
        "    local-zone: \"{NEUTRAL}.\" static\n    local-data: \"{NEUTRAL}. 60 IN A 127.0.0.1\"\n    local-zone: \"{API}.\" redirect\n    local-data: \"{API}. 60 IN A 127.0.0.9\"\n    local-zone: \"{SIGN_IN}.\" redirect\n    local-data: \"{SIGN_IN}. 60 IN A 127.0.0.9\"\n"
    );
    let Some(u) = unbound_or_skip("walled-garden", &server, "", &[]) else {
        return;
    };
    let r = w.run(u.addr, &w.profile_with(false, garden.port()));
    for t in ["api", "sign-in"] {
        assert_eq!(code(&r, t, "dns"), "dns.block_page", "{:#}", r["checks"]);
        let tls = stage(&r, t, "tls");
        assert_eq!(tls["code"], "tls.hostname_mismatch", "{tls}");
        assert_eq!(tls["data"]["explained_by"], "dns.block_page", "{tls}");
    }
    let ids = suspect_ids(&r);
    assert_eq!(top_suspect(&r), "dns_filter", "{ids:?}");
    assert!(
        !ids.iter()
            .any(|s| s == "vpn_firewall" || s == "captive_portal"),
        "the TLS failure is the block page's, not interception: {ids:?}"
    );
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    say(&format!(
        "realdns: ok   unbound redirect (walled garden): dns dns.block_page, tls explained, top suspect dns_filter ({n} DNS cases passed so far)"
    ));
}

#[test]
fn a_refusal_with_an_extended_error_is_filtered_with_its_text() {
    let w = World::new();
    let server = format!(
        "{}    access-control: 127.0.0.1/32 refuse\n",
        unbound_zones("static")
    );
    let Some(u) = unbound_or_skip("ede-prohibited", &server, "", &[]) else {
        return;
    };
    let out = Netcheck::engine(&w.profile())
        .resolver_addr(&u.addr.to_string())
        .ca_file(&w.pki)
        .run();
    out.assert_exit(2);
    let r = out.report();
    for t in ["api", "sign-in", "neutral"] {
        let dns = stage(&r, t, "dns");
        assert_eq!(dns["code"], "dns.filtered", "{dns}");
        assert_eq!(dns["data"]["ede"]["code"], 18, "{dns}");
        assert!(
            dns["summary"].as_str().unwrap_or("").contains("Prohibited"),
            "{dns}"
        );
    }
    assert_eq!(top_suspect(&r), "dns_filter", "{:?}", suspect_ids(&r));
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    say(&format!(
        "realdns: ok   unbound access-control refuse (EDE 18): dns dns.filtered, top suspect dns_filter ({n} DNS cases passed so far)"
    ));
}

/// A key that signs nothing: the trust anchor of a zone whose answers are unsigned.
const BOGUS_KEY: &str = "AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjFFVQUTf6v58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoXbfDaUeVPQuYEhg37NZWAJQ9VnMVDxP/VHL496M/QZxkjf5/Efucp2gaDX6RS6CXpoY68LsvPVjR0ZSwzz1apAzvN9dlzEheX7ICJBBtuA6G3LQpzW5hOA2hzCTMjJPJ8LbqF6dsV6DoBQzgul0sGIcGOYl7OyQdXfZ57relSQageu+ipAdTTJ25AsRTAoub8ONGcLmqrAmRLKBP1dfwhYB4N7knNnulqQxA+Uk1ihz0=";

/// A validating unbound forwarding the BMW names to an unsigned upstream (dnsmasq) while it
/// holds a trust anchor for them: validation fails.
fn validating(test: &str, ede: bool) -> Option<(Dnsmasq, Unbound)> {
    let upstream = dnsmasq_or_skip(
        test,
        &format!("address=/{API}/127.0.0.1\naddress=/{SIGN_IN}/127.0.0.1"),
    )?;
    let mut server = format!(
        "    local-zone: \"{NEUTRAL}.\" static\n    local-data: \"{NEUTRAL}. 60 IN A 127.0.0.1\"\n    domain-insecure: \"{NEUTRAL}.\"\n"
    );
    for h in [API, SIGN_IN] {
        server.push_str(&format!(
            "    trust-anchor: \"{h}. DNSKEY 257 3 8 {BOGUS_KEY}\"\n"
        ));
    }
    if !ede {
        server.push_str("    ede: no\n");
    }
    let mut tail = String::new();
    for h in [API, SIGN_IN] {
        tail.push_str(&format!(
            "forward-zone:\n    name: \"{h}.\"\n    forward-addr: {}@{}\n",
            upstream.addr.ip(),
            upstream.addr.port()
        ));
    }
    let u = unbound_or_skip(test, &server, &tail, &[])?;
    Some((upstream, u))
}

#[test]
fn a_failing_dnssec_validation_is_its_own_suspect() {
    let w = World::new();
    let Some((_up, u)) = validating("dnssec-ede", true) else {
        return;
    };
    let r = w.run(u.addr, &w.profile());
    let dns = stage(&r, "api", "dns");
    let ede = dns["data"]["ede"]["code"].as_u64().unwrap_or(0);
    assert!((1..=12).contains(&ede), "a DNSSEC EDE: {dns}");
    assert!(!suspect_ids(&r).iter().any(|s| s == "no_connectivity"));
    expect(
        "validating unbound, EDE",
        &r,
        "dns.dnssec_failed",
        "dnssec_validation",
    );
}

#[test]
fn a_servfail_that_a_non_validating_query_resolves_is_dnssec() {
    let w = World::new();
    let Some((_up, u)) = validating("dnssec-cd", false) else {
        return;
    };
    let r = w.run(u.addr, &w.profile());
    let dns = stage(&r, "api", "dns");
    assert_eq!(dns["data"]["ede"], Value::Null, "{dns}");
    assert_eq!(dns["data"]["resolves_unvalidated"], true, "{dns}");
    expect(
        "validating unbound, no EDE (CD retry)",
        &r,
        "dns.dnssec_failed",
        "dnssec_validation",
    );
}

#[test]
fn a_plain_servfail_with_a_working_baseline_is_not_no_connectivity() {
    let w = World::new();
    // The upstream answers REFUSED for these names; unbound turns that into SERVFAIL.
    let Some(upstream) = dnsmasq_or_skip("servfail", "address=/unrelated.netcheck.lan/127.0.0.1")
    else {
        return;
    };
    let mut tail = String::new();
    for h in [API, SIGN_IN] {
        tail.push_str(&format!(
            "forward-zone:\n    name: \"{h}.\"\n    forward-addr: {}@{}\n",
            upstream.addr.ip(),
            upstream.addr.port()
        ));
    }
    let server = format!(
        "    local-zone: \"{NEUTRAL}.\" static\n    local-data: \"{NEUTRAL}. 60 IN A 127.0.0.1\"\n"
    );
    let Some(u) = unbound_or_skip("servfail", &server, &tail, &[]) else {
        return;
    };
    let r = w.run(u.addr, &w.profile());
    let ids = suspect_ids(&r);
    assert!(!ids.iter().any(|s| s == "no_connectivity"), "{ids:?}");
    expect(
        "unbound SERVFAIL, baseline working",
        &r,
        "dns.servfail",
        "server_side",
    );
}

#[test]
fn a_truncated_answer_with_tcp_53_closed_points_to_a_firewall() {
    let w = World::new();
    let mut server = format!(
        "    do-tcp: no\n    local-zone: \"{NEUTRAL}.\" static\n    local-data: \"{NEUTRAL}. 60 IN A 127.0.0.1\"\n"
    );
    for h in [API, SIGN_IN] {
        server.push_str(&format!("    local-zone: \"{h}.\" static\n"));
        for i in 1..=120 {
            server.push_str(&format!("    local-data: \"{h}. 60 IN A 127.0.1.{i}\"\n"));
        }
    }
    let Some(u) = unbound_or_skip("tc-tcp-blocked", &server, "", &[]) else {
        return;
    };
    let r = w.run(u.addr, &w.profile_with(false, 443));
    let dns = stage(&r, "api", "dns");
    assert!(
        dns["summary"].as_str().unwrap_or("").contains("TCP"),
        "{dns}"
    );
    expect(
        "unbound do-tcp: no, truncated answer",
        &r,
        "dns.tcp_blocked",
        "vpn_firewall",
    );
}

/// Pi-hole's IP blocking mode on a network whose resolver has a public-looking address: a
/// namespace of the test's own, where the loopback interface also holds 198.51.100.53
/// (TEST-NET-2, routed nowhere) and dnsmasq listens there, answering BMW's names with that
/// address. Nothing leaves the namespace.
#[test]
fn pihole_ip_mode_with_a_public_looking_address_is_a_block_page() {
    use crate::netns::ns::{Netns, unavailable};
    const TEST: &str = "pihole-ip-public";
    if let Some(why) = unavailable() {
        return skip(&format!("realdns::{TEST}: {why}"));
    }
    let program = match crate::support::daemon::find("dnsmasq") {
        Ok(p) => p,
        Err(why) => return skip(&format!("realdns::{TEST}: {why}")),
    };
    let ns = Netns::create("pihole").expect("create a namespace");
    ns.ip(&["addr", "add", "198.51.100.53/32", "dev", "lo"])
        .expect("address the resolver");
    let pki = Pki::new();
    let listener = ns
        .bind_tcp("127.0.0.1:0".parse().expect("address"))
        .expect("bind the baseline in the namespace");
    let neutral =
        HttpsServer::from_listener(listener, &pki.identity(NEUTRAL), HttpBehaviour::status(200));
    let dir = crate::support::daemon::Daemon::scratch("netcheck-dnsmasq");
    let port = 5353;
    let conf = format!(
        "no-resolv\nno-hosts\nlisten-address=198.51.100.53\nport={port}\nbind-interfaces\nlog-facility=-\n{}\n",
        pihole("address=/{host}/198.51.100.53").replace("127.0.0.1", "198.51.100.53")
    )
    .replace(
        &format!("address=/{NEUTRAL}/198.51.100.53"),
        &format!("address=/{NEUTRAL}/127.0.0.1"),
    );
    let path = dir.path().join("dnsmasq.conf");
    std::fs::write(&path, conf).expect("write dnsmasq.conf");
    let mut cmd = ns.command(&program);
    cmd.arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", path.display()))
        .arg(format!(
            "--pid-file={}",
            dir.path().join("dnsmasq.pid").display()
        ));
    let mut daemon = crate::support::daemon::Daemon::spawn_command("dnsmasq", cmd, dir);
    let addr: SocketAddr = format!("198.51.100.53:{port}").parse().expect("address");
    daemon.wait_until(addr, || {
        ns.enter(|| crate::support::daemon::answers_dns(addr))
            .unwrap_or(false)
    });
    let profile = ProfileFile::new(&[
        EndpointSpec::new("api", API, 443).public(true),
        EndpointSpec::new("sign-in", SIGN_IN, 443).public(true),
        EndpointSpec::new("neutral", NEUTRAL, neutral.port()).role("baseline"),
    ]);
    let nc = Netcheck::engine(&profile)
        .resolver_addr(&addr.to_string())
        .ca_file(&pki);
    let mut cmd = ns.command(assert_cmd::cargo::cargo_bin!("bmw-netcheck"));
    cmd.args(nc.args());
    for var in crate::support::netcheck::PROXY_VARS {
        cmd.env_remove(var);
    }
    let out = assert_cmd::Command::from_std(cmd)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run bmw-netcheck in the namespace");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(code(&r, "neutral", "http"), "http.ok", "{:#}", r["checks"]);
    let dns = stage(&r, "api", "dns");
    assert!(
        dns["summary"]
            .as_str()
            .unwrap_or("")
            .contains("the resolver's own address"),
        "{dns}"
    );
    assert_eq!(dns["data"]["filter"], "Pi-hole", "{dns}");
    expect(
        "Pi-hole IP mode, public-looking address (dnsmasq in a namespace)",
        &r,
        "dns.block_page",
        "dns_filter",
    );
    drop(daemon);
}
