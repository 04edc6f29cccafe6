//! Diagnosis scenarios (GitHub issue 3): each is a real setup — servers on loopback, the
//! environment, paths — and asserts the suspect the report ranks first. Together they show the
//! ranking follows `checks/suspects.toml` across the causes users actually meet.

use crate::support::*;
use serde_json::Value;

const API: &str = "api.netcheck.lan";
const SIGNIN: &str = "signin.netcheck.lan";
const NEUTRAL: &str = "neutral.netcheck.lan";

fn suspects(report: &Value) -> Vec<(String, String)> {
    report["suspects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["id"].as_str().unwrap_or("").to_owned(),
                        s["confidence"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The (first) check of a device probe.
fn device_check<'a>(report: &'a Value, probe: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["probe"] == probe))
        .unwrap_or_else(|| panic!("no {probe} check in {report}"))
}

fn top(report: &Value) -> String {
    suspects(report)
        .first()
        .map(|s| s.0.clone())
        .unwrap_or_default()
}

/// Two BMW-like service endpoints and a neutral baseline, each on its own HTTPS server.
struct World {
    pki: Pki,
    _servers: Vec<HttpsServer>,
    dns: DnsServer,
    profile: ProfileFile,
}

fn world(
    service: HttpBehaviour,
    service_leaf: Option<Leaf>,
    baseline: HttpBehaviour,
    baseline_leaf: Option<Leaf>,
    extra_toml: &str,
) -> World {
    let pki = Pki::new();
    let id = |host: &str, leaf: &Option<Leaf>| match leaf {
        Some(l) => pki.issue(l),
        None => pki.identity(host),
    };
    let api = HttpsServer::start(&id(API, &service_leaf), service.clone());
    let signin = HttpsServer::start(
        &id(
            SIGNIN,
            &service_leaf.as_ref().map(|l| Leaf {
                names: vec![SIGNIN.into(), "127.0.0.1".into()],
                ..l.clone()
            }),
        ),
        service,
    );
    let neutral = HttpsServer::start(&id(NEUTRAL, &baseline_leaf), baseline);
    let dns = DnsServer::start([
        (API, DnsAnswer::localhost()),
        (SIGNIN, DnsAnswer::localhost()),
        (NEUTRAL, DnsAnswer::localhost()),
    ]);
    let eps = [
        EndpointSpec::new("api", API, api.port()),
        EndpointSpec::new("sign-in", SIGNIN, signin.port()),
        EndpointSpec::new("neutral", NEUTRAL, neutral.port()).role("baseline"),
    ];
    let thresholds = format!("{}{extra_toml}", profile::LOOPBACK_THRESHOLDS);
    let profile = ProfileFile::with_thresholds(&eps, &thresholds);
    World {
        pki,
        _servers: vec![api, signin, neutral],
        dns,
        profile,
    }
}

fn run(w: &World, only: &str) -> Outcome {
    Netcheck::engine(&w.profile)
        .resolver(&w.dns)
        .ca_file(&w.pki)
        .only(only)
        .run()
}

use crate::support::profile;

/// A plain-HTTP server (what a captive-portal check talks to): reads each request's head, sends
/// the canned response, closes. Stops when dropped.
struct PlainHttp {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PlainHttp {
    fn start(response: &'static [u8]) -> PlainHttp {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let _ = s.write_all(response);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        PlainHttp { port, stop }
    }

    fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PlainHttp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

const NET: &str = "dns,tcp,tls,http,latency";

#[test]
fn sinkholed_bmw_hosts_point_to_a_dns_filter() {
    let w = world(
        HttpBehaviour::status(401),
        None,
        HttpBehaviour::status(200),
        None,
        "",
    );
    w.dns.set(API, DnsAnswer::Sinkhole);
    w.dns.set(SIGNIN, DnsAnswer::Sinkhole);
    let out = run(&w, NET);
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "api", "dns"), "dns.sinkholed");
    assert_eq!(code(&r, "neutral", "http"), "http.ok");
    assert_eq!(top(&r), "dns_filter", "{:?}", suspects(&r));
    assert_eq!(suspects(&r)[0].1, "high");
}

#[test]
fn bmw_failing_while_the_baseline_works_points_to_the_service() {
    let w = world(
        HttpBehaviour::status(503),
        None,
        HttpBehaviour::status(200),
        None,
        "",
    );
    let out = run(&w, NET);
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "api", "http"), "http.server_error");
    assert_eq!(code(&r, "neutral", "http"), "http.ok");
    assert_eq!(top(&r), "server_side", "{:?}", suspects(&r));
}

#[test]
fn everything_timing_out_points_to_the_device_network() {
    let w = world(
        HttpBehaviour::status(200),
        None,
        HttpBehaviour::status(200),
        None,
        "",
    );
    for host in [API, SIGNIN, NEUTRAL] {
        w.dns.set(host, DnsAnswer::Silent);
    }
    let out = Netcheck::engine(&w.profile)
        .resolver(&w.dns)
        .ca_file(&w.pki)
        .only(NET)
        .timeout("500ms")
        .run();
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "neutral", "dns"), "dns.timeout");
    let t = top(&r);
    assert!(
        ["weak_signal", "no_connectivity", "weak_wifi"].contains(&t.as_str()),
        "top suspect {t}: {:?}",
        suspects(&r)
    );
    assert!(suspects(&r).iter().any(|s| s.0 == "weak_signal"));
}

#[test]
fn a_dead_proxy_points_to_vpn_firewall_and_its_password_never_shows() {
    let w = world(
        HttpBehaviour::status(401),
        None,
        HttpBehaviour::status(200),
        None,
        "",
    );
    let dead = closed_port();
    let proxy = format!("http://agent:hunter2@127.0.0.1:{}", dead.port());
    let history = w.profile.dir().join("history.jsonl");
    let mut outputs = Vec::new();
    for format in ["json", "human", "markdown", "prometheus", "nagios"] {
        // Built from scratch: the engine preset disables the history this test inspects.
        let out = Netcheck::bare()
            .arg("--profile")
            .arg(w.profile.path().as_os_str())
            .resolver(&w.dns)
            .ca_file(&w.pki)
            .only("dns,tcp,tls,http,latency,proxy")
            .timeout("1s")
            .samples(2)
            .format(format)
            .env("HTTPS_PROXY", &proxy)
            .env("NO_PROXY", "")
            .arg("--history")
            .arg(history.as_os_str())
            .run();
        out.assert_exit(2);
        outputs.push((format, out));
    }
    let r = outputs[0].1.report();
    assert_eq!(code(&r, "api", "http"), "http.proxy_error");
    assert_eq!(
        code(&r, "api", "tls"),
        "tls.ok",
        "the direct path is still tested"
    );
    assert_eq!(top(&r), "vpn_firewall", "{:?}", suspects(&r));
    let proxy_check = device_check(&r, "proxy");
    assert_eq!(proxy_check["code"], "proxy.env");
    for (format, out) in &outputs {
        assert!(
            !out.stdout.contains("hunter2"),
            "{format} leaks the password"
        );
        assert!(
            !out.stderr.contains("hunter2"),
            "{format} leaks the password on stderr"
        );
        assert!(
            (out.stdout.contains("***@")
                || out.stdout.contains(r"\*\*\*@")
                || matches!(*format, "prometheus" | "nagios")),
            "{format} shows the redacted proxy"
        );
    }
    let hist = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(!hist.is_empty(), "history was written");
    assert!(
        !hist.contains("hunter2"),
        "the history file leaks the password"
    );
}

#[test]
fn untrusted_tls_everywhere_points_to_interception() {
    let leaf = Leaf::for_host(API).issuer(Issuer::SelfSigned);
    let w = world(
        HttpBehaviour::status(200),
        Some(leaf.clone()),
        HttpBehaviour::status(200),
        Some(Leaf {
            names: vec![NEUTRAL.into(), "127.0.0.1".into()],
            ..leaf
        }),
        "",
    );
    let out = run(&w, NET);
    out.assert_exit(2);
    let r = out.report();
    for ep in ["api", "sign-in", "neutral"] {
        assert_eq!(code(&r, ep, "tls"), "tls.untrusted", "{ep}");
    }
    assert_eq!(top(&r), "vpn_firewall", "{:?}", suspects(&r));
}

#[test]
fn skewed_server_dates_point_to_the_device_clock() {
    let skewed = HttpBehaviour::Reply(HttpReply::status(200).date(DateHeader::Offset(3 * 3600)));
    let w = world(skewed.clone(), None, skewed, None, "");
    let out = run(&w, "dns,tcp,tls,http,latency,clock");
    out.assert_exit(2);
    let r = out.report();
    let clock = device_check(&r, "clock");
    assert_eq!(clock["code"], "clock.skew");
    let offset = clock["data"]["offset_s"].as_f64().unwrap_or(0.0);
    assert!((offset - 10_800.0).abs() < 5.0, "offset {offset}");
    assert_eq!(top(&r), "device_clock", "{:?}", suspects(&r));
}

#[test]
fn storage_under_the_threshold_points_to_low_storage() {
    let huge =
        "storage_warn_bytes = 4611686018427387904\nstorage_fail_bytes = 4611686018427387904\n";
    let w = world(
        HttpBehaviour::status(200),
        None,
        HttpBehaviour::status(200),
        None,
        huge,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Netcheck::engine(&w.profile)
        .resolver(&w.dns)
        .ca_file(&w.pki)
        .only("dns,tcp,tls,http,latency,storage")
        .arg("--storage-path")
        .arg(dir.path().as_os_str())
        .run();
    out.assert_exit(2);
    let r = out.report();
    let storage = device_check(&r, "storage");
    assert_eq!(storage["code"], "storage.low");
    assert!(storage["data"]["free_bytes"].as_u64().is_some());
    assert!(storage["data"]["total_bytes"].as_u64().unwrap_or(0) > 0);
    assert_eq!(top(&r), "low_storage", "{:?}", suspects(&r));
}

#[test]
fn a_captive_portal_is_named() {
    // Portals put session tokens in their redirects: a planted one must not reach any output.
    let portal = PlainHttp::start(b"HTTP/1.1 302 Found\r\nLocation: http://portal.netcheck.lan/login?session=s3cr3tSess&lang=en\r\nContent-Length: 0\r\n\r\n");
    let captive = format!(
        "\n[captive]\nurl = \"http://127.0.0.1:{}/generate_204\"\n",
        portal.port()
    );
    let w = world(
        HttpBehaviour::status(200),
        None,
        HttpBehaviour::status(200),
        None,
        &captive,
    );
    let out = run(&w, "dns,tcp,tls,http,latency,captive");
    out.assert_exit(2);
    let r = out.report();
    let c = device_check(&r, "captive");
    assert_eq!(c["code"], "captive.portal");
    assert_eq!(
        c["data"]["location"],
        "http://portal.netcheck.lan/login?session=***&lang=en"
    );
    assert_eq!(top(&r), "captive_portal", "{:?}", suspects(&r));
    for format in ["human", "markdown", "prometheus", "nagios"] {
        let out = Netcheck::engine(&w.profile)
            .resolver(&w.dns)
            .ca_file(&w.pki)
            .only("captive")
            .format(format)
            .run();
        assert!(
            !out.stdout.contains("s3cr3tSess"),
            "{format} leaks the portal's session token"
        );
    }
}

#[test]
fn no_portal_when_the_known_answer_comes_back() {
    let ok = PlainHttp::start(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    let captive = format!(
        "\n[captive]\nurl = \"http://127.0.0.1:{}/generate_204\"\n",
        ok.port()
    );
    let w = world(
        HttpBehaviour::status(200),
        None,
        HttpBehaviour::status(200),
        None,
        &captive,
    );
    let out = run(&w, "captive");
    out.assert_exit(0);
    let r = out.report();
    assert_eq!(r["checks"][0]["code"], "captive.ok");
}

#[test]
fn broken_ipv6_is_detected_when_ipv4_works() {
    if !ipv6_loopback() {
        skip("scenarios::broken_ipv6_is_detected_when_ipv4_works: this machine cannot bind [::1]");
        return;
    }
    let w = world(
        HttpBehaviour::status(200),
        None,
        HttpBehaviour::status(200),
        None,
        "",
    );
    // AAAA points at ::1, where nothing listens on the server's port: IPv6 is refused.
    w.dns.set(API, DnsAnswer::addrs(["127.0.0.1", "::1"]));
    let out = run(&w, "dns,tcp,tls,http,latency,ipv6");
    let r = out.report();
    assert_eq!(code(&r, "api", "tcp"), "tcp.ok");
    let v6 = device_check(&r, "ipv6");
    assert_eq!(v6["code"], "ipv6.broken", "{v6}");
    assert_eq!(top(&r), "broken_ipv6", "{:?}", suspects(&r));
    out.assert_exit(1);
}

#[test]
fn a_clean_run_lists_only_what_a_network_probe_cannot_test() {
    let w = world(
        HttpBehaviour::status(401),
        None,
        HttpBehaviour::status(200),
        None,
        "",
    );
    let out = run(&w, NET);
    out.assert_exit(0);
    let r = out.report();
    let s = suspects(&r);
    let ids: Vec<&str> = s.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "outdated_software",
            "account_credentials",
            "corrupted_app_data",
            "app_permissions",
            "captcha_shared_address"
        ]
    );
    assert!(s.iter().all(|s| s.1 == "low"));
    let human = Netcheck::engine(&w.profile)
        .resolver(&w.dns)
        .ca_file(&w.pki)
        .only(NET)
        .format("human")
        .color("never")
        .run();
    assert!(
        human.stdout.contains("The network path is fine"),
        "{}",
        human.stdout
    );
}

#[test]
fn explain_works_offline_for_every_suspect() {
    let list = Netcheck::bare().arg("explain").run();
    list.assert_exit(0);
    let ids: Vec<String> = list
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(ids.len() >= 14, "{ids:?}");
    for id in ids {
        let out = Netcheck::bare().arg("explain").arg(id.as_str()).run();
        out.assert_exit(0);
        assert!(out.stdout.starts_with(&id), "{}", out.stdout);
        assert!(out.stdout.contains("Steps:"));
    }
}
