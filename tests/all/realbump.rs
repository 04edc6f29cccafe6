//! A company's TLS inspection of an unknown product — real squid with ssl-bump and a generated
//! company CA ("ExampleCorp TLS Inspection CA") in front of real nginx servers — named by
//! evidence: the same issuer, in no public store, on the BMW host and on the neutral host.
//!
//! ```text
//!  explicit:     tool ──HTTPS_PROXY──▶ squid http_port ssl-bump (127.0.0.1) ──▶ nginx (127.0.0.1)
//!  transparent:  client ns 10.201.0.2 ── veth ── router ns 10.201.0.1: nftables redirects TCP 443
//!                to squid's `https_port 3129 intercept ssl-bump` ──▶ nginx 10.201.1.1/.2:443
//! ```
//!
//! | case | the device trusts the company CA | code | named | top suspect |
//! | --- | --- | --- | --- | --- |
//! | explicit | no | tls.intercepted on the proxy path (fail) | TLS inspection by 'ExampleCorp TLS Inspection CA' | corporate_tls_inspection |
//! | explicit | yes (system store) | tls.intercepted on the proxy path (warn) | squid ssl-bump (Via: squid/5.7), the CA | corporate_tls_inspection |
//! | explicit, squid cannot verify the server | yes | tls.intercepted (fail), `proxy_error` ERR_SECURE_CONNECT_FAIL | squid ssl-bump, the CA | corporate_tls_inspection |
//! | transparent | no | tls.intercepted on the direct path (fail) | TLS inspection by 'ExampleCorp TLS Inspection CA' | corporate_tls_inspection |
//! | transparent | yes (system store) | tls.intercepted on the direct path (warn) | squid ssl-bump (Via), the CA | corporate_tls_inspection |
//! | control: a self-signed nginx on the BMW host only | – | tls.untrusted | – | – |
//!
//! The device's trust is given the way a root is "installed on this device": `SSL_CERT_FILE`
//! (rustls-native-certs reads it). The servers' own CA is declared with `--ca-file`, which is
//! never judged. Without squid-openssl (or, for the transparent cases, root, `nft` and nginx)
//! the tests say why and skip.

use crate::netns::ns::{self, Netns};
use crate::support::nginx::{Nginx, nginx_binary};
use crate::support::opensslpki::{IssuedLeaf, LeafSpec, OpensslCa, openssl_available};
use crate::support::sslbump::{self, Bump, COMPANY_CA, COMPANY_CN, Mode, Upstreams};
use crate::support::{
    DnsAnswer, DnsServer, EndpointSpec, Netcheck, Outcome, ProfileFile, run_command, say, skip,
    stage, top_suspect, via_proxy,
};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};

const API: &str = "cocoapi.netcheck.lan";
const NEUTRAL: &str = "neutral.netcheck.lan";
const INSPECTION: &str = "TLS inspection by 'ExampleCorp TLS Inspection CA'";

fn can_run(case: &str) -> bool {
    let why = if !openssl_available() {
        Some("the openssl command is not installed".to_owned())
    } else if nginx_binary().is_none() {
        Some("nginx is not installed".to_owned())
    } else {
        sslbump::unavailable()
    };
    match why {
        Some(why) => {
            skip(&format!("realbump::{case}: {why}"));
            false
        }
        None => true,
    }
}

/// The servers' own CA and its leaves for the two names.
struct Sites {
    ca: OpensslCa,
    api: IssuedLeaf,
    neutral: IssuedLeaf,
}

fn sites() -> Sites {
    let ca = OpensslCa::new("/O=Netcheck Test/CN=Netcheck Servers CA");
    let api = ca.issue("api", &LeafSpec::new(API));
    let neutral = ca.issue("neutral", &LeafSpec::new(NEUTRAL));
    Sites { ca, api, neutral }
}

fn nginx(leaf: &IssuedLeaf) -> Nginx {
    Nginx::start(&leaf.chain, &leaf.key, "", "return 200 \"ok\\n\";")
}

fn profile(api_port: u16, neutral_port: u16) -> ProfileFile {
    ProfileFile::new(&[
        EndpointSpec::new("api", API, api_port).public(false),
        EndpointSpec::new("neutral", NEUTRAL, neutral_port)
            .public(false)
            .role("baseline"),
    ])
}

fn text<'a>(c: &'a Value, key: &str) -> &'a str {
    c["data"][key].as_str().unwrap_or("")
}

/// What every case asserts of an interception by the company CA.
fn assert_named(c: &Value, status: &str, interceptor: &str) {
    assert_eq!(c["code"], "tls.intercepted", "{c:#}");
    assert_eq!(c["status"], status, "{c:#}");
    assert_eq!(c["data"]["interceptor"], interceptor, "{c:#}");
    assert_eq!(c["data"]["interceptor_kind"], "corporate", "{c:#}");
    assert!(text(c, "issuer").contains(COMPANY_CN), "{c:#}");
    assert!(
        c["summary"].as_str().unwrap_or("").contains(COMPANY_CN),
        "{c:#}"
    );
    let evidence = c["data"]["evidence"][0].as_str().unwrap_or("");
    assert!(
        evidence.contains(NEUTRAL) && evidence.contains(API),
        "{c:#}"
    );
}

/// The explicit proxy: the servers on loopback, squid bumping CONNECTs to them.
struct Explicit {
    sites: Sites,
    company: OpensslCa,
    api: Nginx,
    neutral: Nginx,
    dns: DnsServer,
    squid: Bump,
}

impl Explicit {
    /// `verified`: squid is given the servers' CA (else it refuses them with its error page).
    fn new(verified: bool) -> Explicit {
        let sites = sites();
        let company = OpensslCa::new(COMPANY_CA);
        let api = nginx(&sites.api);
        let neutral = nginx(&sites.neutral);
        let dns = DnsServer::start([
            (API, DnsAnswer::addrs(["127.0.0.1"])),
            (NEUTRAL, DnsAnswer::addrs(["127.0.0.1"])),
        ]);
        let hosts = [API, NEUTRAL]
            .iter()
            .map(|h| ((*h).to_owned(), "127.0.0.1".to_owned()))
            .collect();
        let upstream = sites.ca.ca_file();
        let squid = Bump::start(
            &company,
            verified.then_some(upstream.as_path()),
            Mode::Explicit { hosts },
        );
        Explicit {
            sites,
            company,
            api,
            neutral,
            dns,
            squid,
        }
    }

    fn run(&self, trusted: bool) -> Value {
        let profile = profile(self.api.port(), self.neutral.port());
        let mut nc = Netcheck::engine(&profile)
            .resolver(&self.dns)
            .ca_path(&self.sites.ca.ca_file())
            .timeout("5s")
            .env("HTTPS_PROXY", &self.squid.url())
            .env("NO_PROXY", "");
        if trusted {
            nc = nc.env("SSL_CERT_FILE", &self.company.ca_file().to_string_lossy());
        }
        let out = nc.run();
        assert!(
            (0..=2).contains(&out.code),
            "the run completes\n{}\nsquid:\n{}",
            out.describe(),
            self.squid.log()
        );
        out.report()
    }
}

#[test]
fn squid_ssl_bump_as_the_proxy_untrusted_is_inspection_by_its_ca() {
    if !can_run("squid_ssl_bump_as_the_proxy_untrusted_is_inspection_by_its_ca") {
        return;
    }
    let office = Explicit::new(true);
    let r = office.run(false);
    // The direct path reaches the servers themselves.
    assert_eq!(stage(&r, "api", "tls")["code"], "tls.ok", "{r:#}");
    for target in ["api", "neutral"] {
        let h = via_proxy(&r, target);
        assert_named(h, "fail", INSPECTION);
        assert!(
            h["summary"]
                .as_str()
                .unwrap_or("")
                .starts_with("through the proxy"),
            "{h:#}"
        );
    }
    assert_eq!(
        top_suspect(&r),
        "corporate_tls_inspection",
        "{:#}",
        r["suspects"]
    );
    say(
        "realbump: ok   explicit squid ssl-bump, untrusted: tls.intercepted by the company CA, corporate_tls_inspection",
    );
}

#[test]
fn squid_ssl_bump_as_the_proxy_trusted_is_named_by_its_via_header() {
    if !can_run("squid_ssl_bump_as_the_proxy_trusted_is_named_by_its_via_header") {
        return;
    }
    let office = Explicit::new(true);
    let r = office.run(true);
    let h = via_proxy(&r, "api");
    assert_named(h, "warn", "squid ssl-bump");
    assert!(text(h, "proxy_product").starts_with("squid/"), "{h:#}");
    assert_eq!(h["data"]["status_code"], 200, "{h:#}");
    let summary = h["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains(&format!(
            "squid ssl-bump ({}), CA '{COMPANY_CN}'",
            text(h, "proxy_product")
        )),
        "{summary}"
    );
    assert!(summary.contains("pin"), "{summary}");
    assert!(
        h["data"]["evidence"][1]
            .as_str()
            .unwrap_or("")
            .starts_with("Via: "),
        "{h:#}"
    );
    assert_eq!(
        top_suspect(&r),
        "corporate_tls_inspection",
        "{:#}",
        r["suspects"]
    );
    say(
        "realbump: ok   explicit squid ssl-bump, trusted: squid named by Via with the CA, corporate_tls_inspection",
    );
}

#[test]
fn squid_ssl_bump_answering_its_own_error_page_is_the_proxys_word() {
    if !can_run("squid_ssl_bump_answering_its_own_error_page_is_the_proxys_word") {
        return;
    }
    // squid does not know the servers' CA: it bumps the client, fails upstream, and answers
    // ERR_SECURE_CONNECT_FAIL through its own forged certificate.
    let office = Explicit::new(false);
    let r = office.run(true);
    let h = via_proxy(&r, "api");
    assert_named(h, "fail", "squid ssl-bump");
    assert_eq!(h["data"]["proxy_error"], "ERR_SECURE_CONNECT_FAIL", "{h:#}");
    let summary = h["summary"].as_str().unwrap_or("");
    assert!(summary.contains("ERR_SECURE_CONNECT_FAIL"), "{summary}");
    assert!(summary.contains("proxy's own error page"), "{summary}");
    assert_eq!(
        top_suspect(&r),
        "corporate_tls_inspection",
        "{:#}",
        r["suspects"]
    );
    say(
        "realbump: ok   explicit squid ssl-bump, its error page: tls.intercepted with proxy_error ERR_SECURE_CONNECT_FAIL",
    );
}

#[test]
fn a_self_signed_server_on_one_host_only_stays_untrusted() {
    if !can_run("a_self_signed_server_on_one_host_only_stays_untrusted") {
        return;
    }
    let sites = sites();
    let own = OpensslCa::new(&format!("/CN={API}"));
    let leaf = own.issue("self", &LeafSpec::new(API));
    // The BMW host's server signs its own certificate; nothing else on the path does.
    let self_signed = Nginx::start(&leaf.chain, &leaf.key, "", "return 200 \"ok\\n\";");
    let neutral = nginx(&sites.neutral);
    let dns = DnsServer::start([
        (API, DnsAnswer::addrs(["127.0.0.1"])),
        (NEUTRAL, DnsAnswer::addrs(["127.0.0.1"])),
    ]);
    let profile = profile(self_signed.port(), neutral.port());
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_path(&sites.ca.ca_file())
        .timeout("5s")
        .run();
    let r = out.report();
    let t = stage(&r, "api", "tls");
    assert_eq!(t["code"], "tls.untrusted", "{t:#}");
    assert!(t["data"]["evidence"].is_null(), "{t:#}");
    assert_eq!(stage(&r, "neutral", "tls")["code"], "tls.ok", "{r:#}");
    say("realbump: ok   control: a self-signed server on the BMW host only stays tls.untrusted");
}

/// The transparent network: the tool in a client namespace, squid and the servers behind a
/// router namespace that redirects TCP 443 to squid.
struct Transparent {
    client: Netns,
    _router: Netns,
    company: OpensslCa,
    sites: Sites,
    dns: DnsServer,
    _upstreams: Upstreams,
    squid: Bump,
}

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const API_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 1);
const NEUTRAL_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);

fn transparent_unavailable() -> Option<String> {
    ns::unavailable_without(&["nft"])
}

impl Transparent {
    fn new() -> Transparent {
        let client = Netns::create("bmc").expect("client namespace");
        let router = Netns::create("bmr").expect("router namespace");
        ns::link(
            &client,
            "up0",
            "10.201.0.2/24",
            &router,
            "in0",
            "10.201.0.1/24",
        );
        client
            .ip(&["route", "add", "default", "via", "10.201.0.1"])
            .expect("the client's default route");
        let rules = format!(
            "table ip bump {{\n chain pre {{\n  type nat hook prerouting priority dstnat;\n  iifname \"in0\" tcp dport 443 redirect to :{}\n }}\n}}\n",
            sslbump::INTERCEPT_PORT
        );
        router.nft(&rules).expect("the redirect rules");
        let sites = sites();
        let upstreams = Upstreams::start(
            &router,
            &[(API_IP, &sites.api), (NEUTRAL_IP, &sites.neutral)],
        );
        let socket = router
            .bind_udp(SocketAddr::from((ROUTER, 53)))
            .expect("bind UDP 53 in the router namespace");
        let dns = DnsServer::from_socket(
            socket,
            [
                (API, DnsAnswer::addrs(["10.201.1.1"])),
                (NEUTRAL, DnsAnswer::addrs(["10.201.1.2"])),
            ],
        );
        let company = OpensslCa::new(COMPANY_CA);
        let upstream = sites.ca.ca_file();
        let squid = Bump::start(
            &company,
            Some(upstream.as_path()),
            Mode::Transparent {
                ns: &router,
                listen: ROUTER,
                hosts: vec![
                    (API.to_owned(), API_IP.to_string()),
                    (NEUTRAL.to_owned(), NEUTRAL_IP.to_string()),
                ],
            },
        );
        Transparent {
            client,
            _router: router,
            company,
            sites,
            dns,
            _upstreams: upstreams,
            squid,
        }
    }

    fn run(&self, trusted: bool) -> Value {
        let profile = profile(443, 443);
        let nc = Netcheck::engine(&profile)
            .resolver_addr(&self.dns.addr().to_string())
            .ca_path(&self.sites.ca.ca_file())
            .timeout("5s");
        let mut cmd = self.client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
        cmd.args(nc.args());
        for var in crate::support::netcheck::PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.env_remove("SSL_CERT_FILE");
        if trusted {
            cmd.env("SSL_CERT_FILE", self.company.ca_file());
        }
        let out: Outcome = run_command(cmd, nc.args());
        assert!(
            (0..=2).contains(&out.code),
            "the run completes\n{}\nsquid:\n{}",
            out.describe(),
            self.squid.log()
        );
        out.report()
    }
}

fn can_run_transparent(case: &str) -> bool {
    if !can_run(case) {
        return false;
    }
    match transparent_unavailable() {
        Some(why) => {
            skip(&format!("realbump::{case}: {why}"));
            false
        }
        None => true,
    }
}

#[test]
fn transparent_squid_ssl_bump_untrusted_is_inspection_by_its_ca() {
    if !can_run_transparent("transparent_squid_ssl_bump_untrusted_is_inspection_by_its_ca") {
        return;
    }
    let net = Transparent::new();
    let r = net.run(false);
    for target in ["api", "neutral"] {
        let t = stage(&r, target, "tls");
        assert_eq!(t["data"]["path"], "direct", "{t:#}");
        assert_named(t, "fail", INSPECTION);
    }
    assert_eq!(
        top_suspect(&r),
        "corporate_tls_inspection",
        "{:#}",
        r["suspects"]
    );
    say(
        "realbump: ok   transparent squid ssl-bump, untrusted: tls.intercepted by the company CA, corporate_tls_inspection",
    );
}

#[test]
fn transparent_squid_ssl_bump_trusted_is_named_by_its_via_header() {
    if !can_run_transparent("transparent_squid_ssl_bump_trusted_is_named_by_its_via_header") {
        return;
    }
    let net = Transparent::new();
    let r = net.run(true);
    let h = stage(&r, "api", "http");
    assert_eq!(h["code"], "http.ok", "{h:#}");
    assert!(text(h, "proxy_header").contains("squid"), "{h:#}");
    let t = stage(&r, "api", "tls");
    assert_named(t, "warn", "squid ssl-bump");
    assert!(text(t, "proxy_product").starts_with("squid/"), "{t:#}");
    assert_eq!(
        top_suspect(&r),
        "corporate_tls_inspection",
        "{:#}",
        r["suspects"]
    );
    say(
        "realbump: ok   transparent squid ssl-bump, trusted: squid named by Via with the CA, corporate_tls_inspection",
    );
}
