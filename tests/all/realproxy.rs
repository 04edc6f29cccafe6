//! A company network whose only way out is the proxy — real squid, with Basic authentication
//! and access rules — against the real binary.
//!
//! The network is built on loopback, honestly: the tool's resolver (a real dnsmasq) points every
//! name at 127.0.0.9, where nothing listens, so each direct connection is refused; squid has its
//! own host table and reaches the fixtures on 127.0.0.1. Only the path through squid works, as
//! on a network whose firewall lets nothing out but the proxy.
//!
//! | case | squid | code | top suspect | verdict |
//! | --- | --- | --- | --- | --- |
//! | proxy-only, credentials right | auth, hosts | http.ok / tls.ok (path proxy); direct tcp.refused as information | (none from the network) | pass |
//! | no credentials | auth | http.proxy_auth_required (407, squid named) | vpn_firewall | fail |
//! | wrong credentials | auth | http.proxy_auth_required ("rejected the credentials") | vpn_firewall | fail |
//! | CONNECT to the port denied | `http_access deny CONNECT` | http.proxy_denied (403, ERR_ACCESS_DENIED, host:port) | vpn_firewall | fail |
//! | tinyproxy, CONNECT only to 443 | tinyproxy `ConnectPort 443` | http.proxy_denied (403 Access violation, tinyproxy named) | vpn_firewall | fail |
//! | mitmproxy (when installed) | `mitmdump`, its own CA | tls.intercepted on the proxy path, mitmproxy named | debugging_proxy | fail |

use crate::support::dnsmasq::Dnsmasq;
use crate::support::squid::{Squid, SquidSpec};
use crate::support::{
    EndpointSpec, HttpBehaviour, HttpsServer, Netcheck, Pki, ProfileFile, code, say, skip, stage,
    top_suspect, via_proxy,
};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

const API: &str = "cocoapi.netcheck.lan";
const STREAM: &str = "streaming.netcheck.lan";
const NEUTRAL: &str = "neutral.netcheck.lan";

static PASSED: AtomicUsize = AtomicUsize::new(0);

/// The fixtures, the direct path's resolver, and a squid that reaches them.
struct Office {
    pki: Pki,
    api: HttpsServer,
    stream: HttpsServer,
    neutral: HttpsServer,
    dns: Dnsmasq,
    squid: Squid,
}

impl Office {
    fn new(test: &str, auth: bool, deny: impl Fn(&Office0) -> Vec<u16>) -> Option<Office> {
        let pki = Pki::new();
        let api = HttpsServer::start(&pki.identity(API), HttpBehaviour::status(401));
        // The stream endpoint speaks TLS only (MQTT over TLS in real life): the handshake is
        // the check.
        let stream = HttpsServer::start(&pki.identity(STREAM), HttpBehaviour::SilentAfterHandshake);
        let neutral = HttpsServer::start(&pki.identity(NEUTRAL), HttpBehaviour::status(200));
        let o0 = Office0 {
            api: api.port(),
            stream: stream.port(),
        };
        // Direct: every name points where nothing listens.
        let lines: String = [API, STREAM, NEUTRAL]
            .iter()
            .map(|h| format!("address=/{h}/127.0.0.9\n"))
            .collect();
        let dns = match Dnsmasq::start(&lines) {
            Ok(d) => d,
            Err(why) => {
                skip(&format!("realproxy::{test}: {why}"));
                return None;
            }
        };
        let spec = SquidSpec {
            auth,
            deny_ports: deny(&o0),
            hosts: [API, STREAM, NEUTRAL]
                .iter()
                .map(|h| ((*h).to_owned(), "127.0.0.1".to_owned()))
                .collect(),
        };
        let squid = match Squid::start(&spec) {
            Ok(s) => s,
            Err(why) => {
                skip(&format!("realproxy::{test}: {why}"));
                return None;
            }
        };
        Some(Office {
            pki,
            api,
            stream,
            neutral,
            dns,
            squid,
        })
    }

    fn profile(&self) -> ProfileFile {
        ProfileFile::new(&[
            EndpointSpec::new("api", API, self.api.port()),
            EndpointSpec::new("stream", STREAM, self.stream.port()).protocol("tls"),
            EndpointSpec::new("neutral", NEUTRAL, self.neutral.port()).role("baseline"),
        ])
    }

    fn run(&self, creds: Option<bool>) -> (i32, Value) {
        let out = Netcheck::engine(&self.profile())
            .resolver_addr(&self.dns.addr.to_string())
            .ca_file(&self.pki)
            .env("HTTPS_PROXY", &self.squid.url(creds))
            .env("NO_PROXY", "")
            .run();
        assert!(
            !out.stdout.contains(crate::support::squid::PASSWORD)
                && !out.stderr.contains(crate::support::squid::PASSWORD),
            "the proxy password leaked\n{}",
            out.describe()
        );
        assert!(
            (0..=2).contains(&out.code),
            "the run completes\n{}\nsquid:\n{}",
            out.describe(),
            self.squid.daemon.output()
        );
        (out.code, out.report())
    }
}

/// What the squid configuration needs before squid starts.
struct Office0 {
    api: u16,
    #[allow(dead_code)]
    stream: u16,
}

fn log(case: &str, detail: &str) {
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    say(&format!(
        "realproxy: ok   {case}: {detail} ({n} proxy cases passed so far)"
    ));
}

#[test]
fn a_network_where_only_the_proxy_gets_out_passes() {
    let Some(o) = Office::new("proxy-only", true, |_| vec![]) else {
        return;
    };
    let (exit, r) = o.run(Some(true));
    assert!(
        exit == 0 || exit == 1,
        "pass or warn, got {exit}: {:#}",
        r["checks"]
    );
    assert!(
        r["status"] == "pass" || r["status"] == "warn",
        "{}",
        r["status"]
    );
    let http = via_proxy(&r, "api");
    assert_eq!(http["probe"], "http");
    assert_eq!(http["code"], "http.ok", "{http}");
    let tls = via_proxy(&r, "stream");
    assert_eq!(tls["probe"], "tls");
    assert_eq!(
        tls["code"], "tls.ok",
        "a TLS handshake inside the tunnel: {tls}"
    );
    assert_eq!(code(&r, "neutral", "http"), "http.ok");
    for t in ["api", "stream", "neutral"] {
        let tcp = stage(&r, t, "tcp");
        assert_eq!(tcp["data"]["path"], "direct", "{tcp}");
        assert_eq!(tcp["code"], "tcp.refused", "{tcp}");
        assert_eq!(
            tcp["status"], "pass",
            "a blocked direct path is information: {tcp}"
        );
        assert_eq!(tcp["data"]["explained_by"], "proxy");
        assert!(
            tcp["summary"]
                .as_str()
                .unwrap_or("")
                .starts_with("direct connections are blocked; the proxy is the way out"),
            "{tcp}"
        );
    }
    let ids: Vec<&str> = r["suspects"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !ids.iter().any(|s| [
            "server_side",
            "weak_signal",
            "no_connectivity",
            "vpn_firewall"
        ]
        .contains(s)),
        "nothing blames the network or BMW: {ids:?}"
    );
    assert!(
        o.api.requests().len() == 1,
        "the request went through squid"
    );
    log(
        "squid with credentials, direct path blocked",
        &format!(
            "http.ok and tls.ok via the proxy, direct tcp.refused as information, verdict {}",
            r["status"]
        ),
    );
}

#[test]
fn a_proxy_wanting_credentials_says_so_and_names_squid() {
    let Some(o) = Office::new("proxy-407", true, |_| vec![]) else {
        return;
    };
    for (creds, words) in [
        (None, "wants credentials"),
        (Some(false), "rejected the credentials"),
    ] {
        let (exit, r) = o.run(creds);
        assert_eq!(exit, 2);
        let http = via_proxy(&r, "api");
        assert_eq!(http["code"], "http.proxy_auth_required", "{http}");
        assert_eq!(http["data"]["proxy_status"], 407, "{http}");
        let server = http["data"]["proxy_server"].as_str().unwrap_or("");
        assert!(server.contains("squid"), "{http}");
        let summary = http["summary"].as_str().unwrap_or("");
        assert!(summary.contains(words), "{summary}");
        assert!(
            summary.contains(&format!("{API}:{}", o.api.port())),
            "{summary}"
        );
        assert_eq!(via_proxy(&r, "stream")["code"], "http.proxy_auth_required");
        assert_eq!(top_suspect(&r), "vpn_firewall", "{:#}", r["suspects"]);
        let ids: Vec<&str> = r["suspects"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            !ids.iter()
                .any(|s| ["server_side", "no_connectivity"].contains(s)),
            "the blocked direct path is not evidence of its own: {ids:?}"
        );
        let steps = r["suspects"][0]["steps"].to_string();
        assert!(steps.contains("administrator"), "{steps}");
        log(
            &format!(
                "squid 407 ({})",
                if creds.is_none() {
                    "no credentials"
                } else {
                    "wrong credentials"
                }
            ),
            "http.proxy_auth_required, proxy squid, top suspect vpn_firewall",
        );
    }
}

#[test]
fn a_proxy_denying_the_port_names_its_error_and_the_host() {
    let Some(o) = Office::new("proxy-403", false, |p| vec![p.api]) else {
        return;
    };
    let (exit, r) = o.run(None);
    assert_eq!(exit, 2);
    let http = via_proxy(&r, "api");
    assert_eq!(http["code"], "http.proxy_denied", "{http}");
    assert_eq!(http["data"]["proxy_status"], 403, "{http}");
    assert_eq!(http["data"]["proxy_error"], "ERR_ACCESS_DENIED", "{http}");
    assert!(
        http["data"]["proxy_server"]
            .as_str()
            .unwrap_or("")
            .contains("squid")
    );
    let summary = http["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains(&format!("{API}:{}", o.api.port())),
        "{summary}"
    );
    assert!(summary.contains("ERR_ACCESS_DENIED"), "{summary}");
    // The other endpoints get through.
    assert_eq!(via_proxy(&r, "stream")["code"], "tls.ok");
    assert_eq!(via_proxy(&r, "neutral")["code"], "http.ok");
    assert_eq!(top_suspect(&r), "vpn_firewall", "{:#}", r["suspects"]);
    log(
        "squid 403 to the API's port",
        "http.proxy_denied with ERR_ACCESS_DENIED and host:port, top suspect vpn_firewall",
    );
}

#[test]
fn tinyproxy_refusing_the_port_is_named_too() {
    let Some(o) = Office::new("tinyproxy-403", false, |_| vec![]) else {
        return;
    };
    let tiny = match crate::support::tinyproxy::Tinyproxy::start(&[443]) {
        Ok(t) => t,
        Err(why) => return skip(&format!("realproxy::tinyproxy-403: {why}")),
    };
    let out = Netcheck::engine(&o.profile())
        .resolver_addr(&o.dns.addr.to_string())
        .ca_file(&o.pki)
        .env("HTTPS_PROXY", &format!("http://{}", tiny.addr))
        .env("NO_PROXY", "")
        .run();
    out.assert_exit(2);
    let r = out.report();
    let http = via_proxy(&r, "api");
    assert_eq!(http["code"], "http.proxy_denied", "{http}");
    assert_eq!(http["data"]["proxy_status"], 403, "{http}");
    assert_eq!(http["data"]["proxy_product"], "tinyproxy", "{http}");
    let summary = http["summary"].as_str().unwrap_or("");
    assert!(summary.contains("Access violation"), "{summary}");
    assert!(
        summary.contains(&format!("{API}:{}", o.api.port())),
        "{summary}"
    );
    assert_eq!(top_suspect(&r), "vpn_firewall", "{:#}", r["suspects"]);
    log(
        "tinyproxy 403 to a port other than 443",
        "http.proxy_denied, proxy tinyproxy, top suspect vpn_firewall",
    );
}

/// mitmproxy as the configured proxy: the tunnel opens, and the certificate inside it is
/// mitmproxy's own. The direct path (trusted fixture) works; the app's path does not.
#[test]
fn mitmproxy_intercepting_the_tunnel_is_named() {
    let pki = Pki::new();
    let api = HttpsServer::start(&pki.identity("127.0.0.1"), HttpBehaviour::status(401));
    let mitm = match crate::support::mitmproxy::Mitmproxy::explicit() {
        Ok(m) => m,
        // A PyPI tool, installed with the Python venvs of `.ci/run`.
        Err(why) => return skip(&format!("realproxy::mitmproxy: {why}")),
    };
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", api.port())]);
    let out = Netcheck::engine(&profile)
        .ca_file(&pki)
        .env("HTTPS_PROXY", &format!("http://{}", mitm.addr()))
        .env("NO_PROXY", "")
        .run();
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "api", "tls"), "tls.ok", "the direct path works");
    let http = via_proxy(&r, "api");
    // The tls probe's interceptor table names it inside the tunnel too.
    assert_eq!(http["code"], "tls.intercepted", "{http}");
    assert_eq!(http["status"], "fail", "{http}");
    assert_eq!(http["data"]["interceptor"], "mitmproxy", "{http}");
    let summary = http["summary"].as_str().unwrap_or("");
    assert!(summary.contains("mitmproxy"), "{summary}");
    assert_eq!(top_suspect(&r), "debugging_proxy", "{:#}", r["suspects"]);
    log(
        "mitmproxy intercepting the tunnel",
        "tls.intercepted on the proxy path (untrusted), mitmproxy named, top suspect debugging_proxy",
    );
}
