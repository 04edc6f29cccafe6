//! The control resolver and encrypted `--resolver`s against real unbound: DNS over TLS and DNS
//! over HTTPS (unbound's `tls-port` and `https-port`) with a certificate generated in the test,
//! beside a plain unbound that filters. Everything runs on loopback.
//!
//! | case | local resolver | control | BMW name gets | expected |
//! | --- | --- | --- | --- | --- |
//! | filter vs control (DoT, DoH) | unbound, static zone without the API name | unbound over DoT / DoH answering it | NXDOMAIN here, an address there | dns.filtered, control verdict `filtered` |
//! | Private DNS from a laptop | `--resolver tls://…` / `https://…` | off | addresses | dns.ok, transport `dot` / `doh` |
//! | control unreachable | the filtering unbound | a closed port | NXDOMAIN | dns.nxdomain kept; said once; no connectivity blamed |
//! | one connection | a filter hiding both names, or none | unbound over DoT / DoH behind a relay that counts connections | the control asked four questions at once; the same server as `--resolver` | one handshake each |
//! | CDN vs rewritten | unbound answering 127.0.0.1 | 127.0.0.2 | the local address serves the service's / another certificate | pass (`cdn`) / dns.rewritten |

use crate::support::encdns::{EncryptedUnbound, RESOLVER_NAME};
use crate::support::hellorelay::{HelloRelay, OnLarge};
use crate::support::unbound::Unbound;
use crate::support::{
    EndpointSpec, HttpBehaviour, HttpsServer, Netcheck, Pki, ProfileFile, closed_port, code, say,
    skip, stage, suspect_ids,
};
use serde_json::Value;

const API: &str = "cocoapi.netcheck.lan";
const SIGN_IN: &str = "customer.netcheck.lan";

/// A local zone holding `names` (each at `ip`) and nothing else: any other name in it is NXDOMAIN.
fn zone(names: &[&str], ip: &str) -> String {
    let mut s = "    local-zone: \"netcheck.lan.\" static\n".to_owned();
    for n in names {
        s.push_str(&format!("    local-data: \"{n}. A {ip}\"\n"));
    }
    s
}

fn plain_or_skip(test: &str, server: &str) -> Option<Unbound> {
    match Unbound::start(server, "") {
        Ok(u) => Some(u),
        Err(why) => {
            skip(&format!("realcontrol::{test}: {why}"));
            None
        }
    }
}

fn encrypted_or_skip(test: &str, server: &str, pki: &Pki) -> Option<EncryptedUnbound> {
    match EncryptedUnbound::start(server, &pki.identity(RESOLVER_NAME)) {
        Ok(u) => Some(u),
        Err(why) => {
            skip(&format!("realcontrol::{test}: {why}"));
            None
        }
    }
}

fn profile() -> ProfileFile {
    ProfileFile::new(&[
        EndpointSpec::new("api", API, 443),
        EndpointSpec::new("sign-in", SIGN_IN, 443),
    ])
}

/// A dns-only run against `resolver`, with the control `control`.
fn run(profile: &ProfileFile, pki: &Pki, resolver: &str, control: &str) -> (Value, String) {
    let out = Netcheck::engine(profile)
        .only("dns")
        .resolver_addr(resolver)
        .ca_file(pki)
        .timeout("3s")
        .arg("--control")
        .arg(control)
        .run();
    (out.report(), out.describe())
}

fn summary(r: &Value, target: &str) -> String {
    stage(r, target, "dns")["summary"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// (a) A filtering resolver hides the API name; the control, over DoT and over DoH, answers it:
/// the finding says the resolver hides it and names the control's answer.
#[test]
fn the_control_names_a_filter_that_hides_a_bmw_name() {
    let pki = Pki::new();
    let Some(filter) = plain_or_skip("filter", &zone(&[SIGN_IN], "127.0.0.1")) else {
        return;
    };
    let Some(control) = encrypted_or_skip("filter", &zone(&[API, SIGN_IN], "127.0.0.1"), &pki)
    else {
        return;
    };
    let p = profile();
    for (url, transport) in [(control.dot_url(), "dot"), (control.doh_url(), "doh")] {
        let (r, describe) = run(&p, &pki, &filter.addr.to_string(), &url);
        assert_eq!(code(&r, "api", "dns"), "dns.filtered", "{describe}");
        let data = &stage(&r, "api", "dns")["data"];
        assert_eq!(data["control"]["verdict"], "filtered", "{describe}");
        assert_eq!(data["control"]["transport"], transport);
        assert_eq!(data["control"]["addresses"][0], "127.0.0.1");
        assert!(data["control"]["latency_ms"].is_number());
        assert_eq!(
            data["transport"], "udp",
            "the run's own resolver is plain DNS"
        );
        let s = summary(&r, "api");
        assert!(s.contains("NXDOMAIN"), "{s}");
        assert!(
            s.contains(&format!("the control resolver {url}")) && s.contains("answers 127.0.0.1"),
            "{s}"
        );
        assert_eq!(code(&r, "sign-in", "dns"), "dns.ok", "{describe}");
        let agrees = &stage(&r, "sign-in", "dns")["data"]["control"]["verdict"];
        assert_eq!(agrees, "agrees", "{describe}");
        assert_eq!(
            suspect_ids(&r).first().map(String::as_str),
            Some("dns_filter"),
            "{describe}"
        );
        say(&format!(
            "realcontrol: ok   a filter hides {API}; the control over {transport} answers it"
        ));
    }
}

/// (b) `--resolver tls://…` and `https://…`: what a phone with Private DNS sees, from a laptop.
#[test]
fn an_encrypted_resolver_answers_and_is_named() {
    let pki = Pki::new();
    let Some(dns) = encrypted_or_skip("private_dns", &zone(&[API, SIGN_IN], "127.0.0.1"), &pki)
    else {
        return;
    };
    let p = profile();
    for (url, transport, words) in [
        (dns.dot_url(), "dot", "over DNS over TLS"),
        (dns.doh_url(), "doh", "over DNS over HTTPS"),
    ] {
        let (r, describe) = run(&p, &pki, &url, "off");
        for t in ["api", "sign-in"] {
            assert_eq!(code(&r, t, "dns"), "dns.ok", "{describe}");
            let c = stage(&r, t, "dns");
            assert_eq!(c["data"]["transport"], transport, "{describe}");
            assert_eq!(c["data"]["addresses"][0], "127.0.0.1");
            assert_eq!(c["data"]["resolver"], url.as_str());
            assert!(c["data"].get("control").is_none(), "the control is off");
            assert!(summary(&r, t).contains(words), "{}", summary(&r, t));
        }
        say(&format!(
            "realcontrol: ok   --resolver {url}: dns.ok {words}"
        ));
    }
    // The same resolver with an untrusted certificate (no --ca-file): every lookup fails, and
    // the check says why rather than passing.
    let out = Netcheck::engine(&p)
        .only("dns")
        .resolver_addr(&dns.dot_url())
        .timeout("2s")
        .run();
    let r = out.report();
    assert_eq!(code(&r, "api", "dns"), "dns.error", "{}", out.describe());
    let s = summary(&r, "api");
    assert!(
        s.contains("issued by an authority this device does not trust"),
        "{s}"
    );
    // And a resolver that is not there says so.
    let closed = closed_port();
    let url = format!("tls://{RESOLVER_NAME}:{}#127.0.0.1", closed.port());
    let (r, describe) = run(&p, &pki, &url, "off");
    assert!(
        summary(&r, "api").contains("refused the connection"),
        "{describe}"
    );
}

/// (c) An unreachable control is said once in the run, and the verdict is not blamed on it.
#[test]
fn an_unreachable_control_is_said_once_and_blamed_for_nothing() {
    let pki = Pki::new();
    let Some(filter) = plain_or_skip("unreachable", &zone(&[], "127.0.0.1")) else {
        return;
    };
    let closed = closed_port();
    let url = format!("tls://{RESOLVER_NAME}:{}#127.0.0.1", closed.port());
    let (r, describe) = run(&profile(), &pki, &filter.addr.to_string(), &url);
    let mut said = 0;
    for t in ["api", "sign-in"] {
        assert_eq!(code(&r, t, "dns"), "dns.nxdomain", "{describe}");
        let control = &stage(&r, t, "dns")["data"]["control"];
        assert_eq!(control["verdict"], "unreachable", "{describe}");
        assert!(control["error"].is_string());
        said += usize::from(summary(&r, t).contains("no second opinion"));
    }
    assert_eq!(said, 1, "said once\n{describe}");
    let ids = suspect_ids(&r);
    assert!(!ids.iter().any(|i| i == "no_connectivity"), "{ids:?}");
    // The same run without a control: the same status, codes and suspects.
    let (without, _) = run(&profile(), &pki, &filter.addr.to_string(), "off");
    assert_eq!(r["status"], without["status"]);
    assert_eq!(ids, suspect_ids(&without), "{describe}");
    for t in ["api", "sign-in"] {
        assert_eq!(code(&r, t, "dns"), code(&without, t, "dns"));
    }
    say("realcontrol: ok   an unreachable control: said once, nothing blamed on it");
}

/// (d) Another address from the control: the local one serving the service's own certificate
/// is a CDN's local answer (pass); one serving another certificate is a rewritten answer.
#[test]
fn another_address_is_judged_by_its_certificate() {
    let pki = Pki::new();
    let own = HttpsServer::start(&pki.identity(API), HttpBehaviour::status(200));
    let other = HttpsServer::start(
        &pki.identity("portal.netcheck.lan"),
        HttpBehaviour::status(200),
    );
    let Some(local) = plain_or_skip("cdn", &zone(&[API, SIGN_IN], "127.0.0.1")) else {
        return;
    };
    let Some(control) = encrypted_or_skip("cdn", &zone(&[API, SIGN_IN], "127.0.0.2"), &pki) else {
        return;
    };
    let p = ProfileFile::new(&[
        EndpointSpec::new("api", API, own.port()),
        EndpointSpec::new("sign-in", SIGN_IN, other.port()),
    ]);
    let (r, describe) = run(&p, &pki, &local.addr.to_string(), &control.doh_url());
    assert_eq!(code(&r, "api", "dns"), "dns.ok", "{describe}");
    let cdn = &stage(&r, "api", "dns")["data"]["control"];
    assert_eq!(cdn["verdict"], "cdn", "{describe}");
    assert_eq!(cdn["certificate_is_service"], true);
    assert!(summary(&r, "api").contains("a CDN's local answer"));
    assert_eq!(code(&r, "sign-in", "dns"), "dns.rewritten", "{describe}");
    let rewritten = &stage(&r, "sign-in", "dns")["data"]["control"];
    assert_eq!(rewritten["verdict"], "rewritten");
    assert_eq!(rewritten["addresses"][0], "127.0.0.2");
    assert!(summary(&r, "sign-in").contains("rewritten"));
    assert!(own.handshakes() >= 1, "the service's address was asked");
    say(
        "realcontrol: ok   another address: the service's certificate passes, another is rewritten",
    );
}

/// A resolver or control that cannot be read is a usage error: exit 3, one line.
#[test]
fn a_bad_resolver_or_control_url_is_a_usage_error() {
    for (flag, value) in [
        ("--resolver", "tls://"),
        ("--resolver", "https://user@dns.netcheck.lan/dns-query"),
        ("--resolver", "tls://dns.netcheck.lan#not-an-address"),
        ("--control", "ftp://dns.netcheck.lan"),
        ("--control", "sometimes"),
    ] {
        let out = Netcheck::bare()
            .arg("run")
            .arg("--no-history")
            .arg(flag)
            .arg(value)
            .run();
        assert_eq!(out.code, 3, "{flag} {value}\n{}", out.describe());
        assert!(out.stdout.is_empty(), "{flag} {value}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

/// (e) Questions asked at once share one connection: the control asked about two names (an A
/// and an AAAA question each), and the same server as the run's resolver, over DoT and DoH,
/// each take one handshake (a relay in front of unbound counts them).
#[test]
fn questions_asked_at_once_share_one_connection() {
    let pki = Pki::new();
    let Some(filter) = plain_or_skip("one_connection", &zone(&[], "127.0.0.1")) else {
        return;
    };
    let Some(dns) = encrypted_or_skip("one_connection", &zone(&[API, SIGN_IN], "127.0.0.1"), &pki)
    else {
        return;
    };
    let p = profile();
    for (upstream, scheme, path) in [(dns.dot, "tls", ""), (dns.doh, "https", "/dns-query")] {
        let url = |relay: &HelloRelay| {
            format!(
                "{scheme}://{RESOLVER_NAME}:{}{path}#127.0.0.1",
                relay.port()
            )
        };
        let relay = HelloRelay::start(upstream, usize::MAX, OnLarge::Reset);
        let (r, describe) = run(&p, &pki, &filter.addr.to_string(), &url(&relay));
        for t in ["api", "sign-in"] {
            assert_eq!(code(&r, t, "dns"), "dns.filtered", "{describe}");
        }
        assert_eq!(relay.sizes().len(), 1, "the control: {describe}");

        let relay = HelloRelay::start(upstream, usize::MAX, OnLarge::Reset);
        let (r, describe) = run(&p, &pki, &url(&relay), "off");
        for t in ["api", "sign-in"] {
            assert_eq!(code(&r, t, "dns"), "dns.ok", "{describe}");
        }
        assert_eq!(relay.sizes().len(), 1, "the run's resolver: {describe}");
        say(&format!(
            "realcontrol: ok   {scheme}: four questions at once, one handshake"
        ));
    }
}
