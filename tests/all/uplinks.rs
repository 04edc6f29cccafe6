//! Which uplink: the real binary in a client network namespace with two uplinks — veth pairs
//! into two "ISP" namespaces — run over each with `--interface` and over both with `--via all`.
//! One ISP is healthy; the other is broken in one of several ways (a DNS filter, a refused
//! port, a TLS-intercepting box). The report must say which uplink failed and how, and compare
//! them.
//!
//! ```text
//!  ISP A ns  ispa0 10.231.1.1 ── upa 10.231.1.2 ┐
//!                                                ├ client ns (default routes via both)
//!  ISP B ns  ispb0 10.231.2.1 ── upb 10.231.2.2 ┘
//!  each ISP: the service at 10.231.99.10:443 and a resolver at 10.231.99.53:53 on its loopback
//! ```
//!
//! The addresses exist only inside these namespaces. Needs root and iproute2 (as the netns
//! cases); elsewhere the cases skip through `support::skip`.

use crate::netns::ns::{Netns, unavailable};
use crate::support::*;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const HOST: &str = "api.netcheck.lan";
const SERVICE: Ipv4Addr = Ipv4Addr::new(10, 231, 99, 10);
const RESOLVER: &str = "10.231.99.53:53";

/// How an ISP treats the service.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Isp {
    Healthy,
    /// Its resolver answers BMW's name with 0.0.0.0.
    DnsFilter,
    /// Nothing listens: the service's port is refused.
    Refused,
    /// A box presents its own certificate (a CA the device does not trust).
    Intercepts,
    /// The service's port accepts and then says nothing.
    Silent,
}

/// One ISP namespace and its servers.
struct IspNs {
    dns: DnsServer,
    _https: Option<HttpsServer>,
    _raw: Option<RawTcpServer>,
    _ns: Netns,
}

/// The client namespace with both uplinks; ISP namespaces drop after the client's.
struct TwoUplinks {
    client: Netns,
    a: IspNs,
    b: IspNs,
}

fn write_sysctl(ns: &Netns, path: &str, value: &str) {
    ns.enter(|| std::fs::write(path, value))
        .expect("enter the namespace")
        .unwrap_or_else(|e| panic!("write {path}: {e}"));
}

fn isp(client: &Netns, pki: &Pki, name: &str, subnet: u8, how: Isp) -> IspNs {
    let ns = Netns::create(&format!("isp{name}")).expect("create an ISP namespace");
    let (up, down) = (format!("up{name}"), format!("isp{name}0"));
    client
        .ip(&[
            "link",
            "add",
            &up,
            "type",
            "veth",
            "peer",
            "name",
            &down,
            "netns",
            ns.name(),
        ])
        .expect("create the uplink's veth pair");
    let (isp_ip, client_ip) = (format!("10.231.{subnet}.1"), format!("10.231.{subnet}.2"));
    ns.ip(&["addr", "add", &format!("{isp_ip}/24"), "dev", &down])
        .expect("ISP address");
    ns.ip(&["link", "set", &down, "up"]).expect("ISP link up");
    for addr in [SERVICE.to_string(), "10.231.99.53".to_owned()] {
        ns.ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])
            .expect("service address");
    }
    client
        .ip(&["addr", "add", &format!("{client_ip}/24"), "dev", &up])
        .expect("client address");
    client
        .ip(&["link", "set", &up, "up"])
        .expect("client link up");
    let metric = (100 * u32::from(subnet)).to_string();
    client
        .ip(&[
            "route", "add", "default", "via", &isp_ip, "dev", &up, "metric", &metric,
        ])
        .expect("default route over the uplink");
    // Answers to a socket bound to the second uplink come back on it, though the main route
    // prefers the first: strict reverse-path filtering would drop them.
    write_sysctl(
        client,
        &format!("/proc/sys/net/ipv4/conf/{up}/rp_filter"),
        "0",
    );

    let answer = match how {
        Isp::DnsFilter => DnsAnswer::Sinkhole,
        _ => DnsAnswer::Addrs(vec![IpAddr::V4(SERVICE)]),
    };
    let socket = ns
        .bind_udp(RESOLVER.parse().expect("resolver address"))
        .expect("bind the ISP's resolver");
    let dns = DnsServer::from_socket(socket, [(HOST, answer)]);
    let raw = (how == Isp::Silent).then(|| {
        let listener = ns
            .bind_tcp(SocketAddr::new(IpAddr::V4(SERVICE), 443))
            .expect("bind the silent service");
        RawTcpServer::from_listener(listener, RawMode::Silent)
    });
    let https = match how {
        Isp::Refused | Isp::Silent => None,
        Isp::Intercepts => Some(Pki::new().identity(HOST)),
        _ => Some(pki.identity(HOST)),
    }
    .map(|identity| {
        let listener = ns
            .bind_tcp(SocketAddr::new(IpAddr::V4(SERVICE), 443))
            .expect("bind the service");
        HttpsServer::from_listener(listener, &identity, HttpBehaviour::status(200))
    });
    IspNs {
        dns,
        _https: https,
        _raw: raw,
        _ns: ns,
    }
}

fn setup(pki: &Pki, a: Isp, b: Isp) -> TwoUplinks {
    let client = Netns::create("c").expect("create the client namespace");
    write_sysctl(&client, "/proc/sys/net/ipv4/conf/all/rp_filter", "0");
    let a = isp(&client, pki, "a", 1, a);
    let b = isp(&client, pki, "b", 2, b);
    TwoUplinks { client, a, b }
}

/// The profile: the one service endpoint (a 0.0.0.0 answer is a sinkhole all the same).
fn profile() -> ProfileFile {
    ProfileFile::with_thresholds(&[EndpointSpec::new("api", HOST, 443)], "")
}

/// The binary, in the client namespace, killed after a minute; JSON validated.
fn run(t: &TwoUplinks, nc: &Netcheck) -> Outcome {
    let mut cmd = t.client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
    cmd.args(nc.args());
    for var in crate::support::netcheck::PROXY_VARS {
        cmd.env_remove(var);
    }
    run_command(cmd, nc.args()).validated()
}

fn base(pki: &Pki, profile: &ProfileFile) -> Netcheck {
    Netcheck::engine(profile)
        .resolver_addr(RESOLVER)
        .ca_file(pki)
        .only("dns,tcp,tls,http,latency")
}

/// The codes of each check, as `interface target code`.
fn codes(r: &Value) -> Vec<String> {
    r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["interface"].as_str().unwrap_or("-"),
                c["target"].as_str().unwrap_or("-"),
                c["code"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn uplinks(r: &Value) -> Vec<(String, String, String)> {
    r["uplinks"]
        .as_array()
        .expect("uplinks")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or("?").to_owned(),
                u["kind"].as_str().unwrap_or("?").to_owned(),
                u["status"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

fn skip_reason() -> Option<String> {
    unavailable()
}

/// Each case: uplink A broken this way, B healthy; `--via all` finds both, labels every check,
/// and the comparison names the working uplink and the failing one with its cause.
#[test]
fn two_uplinks_one_broken_in_several_ways() {
    if let Some(why) = skip_reason() {
        skip(&format!("uplinks: two-uplink cases: {why}"));
        return;
    }
    let cases = [
        (
            Isp::DnsFilter,
            "upa api dns.sinkholed",
            "a DNS filter or blocklist hides BMW's servers",
        ),
        (
            Isp::Refused,
            "upa api tcp.refused",
            "over upa the tcp stage fails (tcp.refused), so what blocks BMW is on that network's path, not at BMW",
        ),
        (
            Isp::Intercepts,
            "upa api tls.untrusted",
            "a VPN, proxy or firewall is in the way",
        ),
    ];
    let pki = Pki::new();
    let profile = profile();
    for (how, failing, cause) in cases {
        let t = setup(&pki, how, Isp::Healthy);
        let out = run(&t, &base(&pki, &profile).arg("--via").arg("all"));
        out.assert_exit(2);
        let r = out.report();
        assert_eq!(
            uplinks(&r),
            [
                ("upa".into(), "ethernet".into(), "fail".into()),
                ("upb".into(), "ethernet".into(), "pass".into())
            ],
            "{how:?}\n{}",
            out.describe()
        );
        let got = codes(&r);
        assert!(got.contains(&failing.to_owned()), "{how:?}: {got:?}");
        for stage in ["dns.ok", "tcp.ok", "tls.ok", "http.ok", "latency.ok"] {
            assert!(
                got.contains(&format!("upb api {stage}")),
                "{how:?}: upb should pass {stage}: {got:?}"
            );
        }
        assert!(
            got.iter().all(|c| !c.starts_with('-')),
            "every check names its uplink: {got:?}"
        );
        let top = &r["suspects"][0];
        assert_eq!(top["id"], "uplink_specific", "{how:?}: {:#}", r["suspects"]);
        let title = top["title"].as_str().unwrap_or("");
        assert!(
            title.starts_with("BMW works over upb (Ethernet) but not over upa (Ethernet)"),
            "{title}"
        );
        assert!(title.contains(cause), "{how:?}: {title}");
        // BMW answers over upb: its side is not to blame.
        assert!(
            r["suspects"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["id"] != "server_side")),
            "{how:?}: {:#}",
            r["suspects"]
        );
        let evidence = top["evidence"].to_string();
        assert!(evidence.contains(&failing[4..]), "{how:?}: {evidence}");
        // DNS went to each uplink's own resolver.
        assert!(t.a.dns.queries() > 0 && t.b.dns.queries() > 0, "{how:?}");
        say(&format!("uplinks: ok {how:?}: {title}"));
    }
}

/// `--interface` alone: only that uplink's resolver and service see traffic; the report is
/// labelled and grouped; Markdown and Prometheus (via `show`) carry the interface.
#[test]
fn one_interface_binds_every_socket_and_reports_carry_it() {
    if let Some(why) = skip_reason() {
        skip(&format!("uplinks: interface case: {why}"));
        return;
    }
    let pki = Pki::new();
    let profile = profile();
    let t = setup(&pki, Isp::DnsFilter, Isp::Healthy);
    // The main routing table prefers upa (metric 100): bound to upb, the run must pass.
    let out = run(&t, &base(&pki, &profile).arg("--interface").arg("upb"));
    out.assert_exit(0);
    let r = out.report();
    assert_eq!(
        uplinks(&r),
        [("upb".into(), "ethernet".into(), "pass".into())]
    );
    assert!(
        codes(&r).iter().all(|c| c.starts_with("upb ")),
        "{:?}",
        codes(&r)
    );
    assert_eq!(
        t.a.dns.queries(),
        0,
        "nothing went to the other uplink's resolver"
    );
    assert!(t.b.dns.queries() > 0);
    // And over upa, the filter shows.
    let out = run(&t, &base(&pki, &profile).arg("--interface").arg("upa"));
    out.assert_exit(2);
    assert!(codes(&out.report()).contains(&"upa api dns.sinkholed".to_owned()));

    // The merged report through every format.
    let both = run(&t, &base(&pki, &profile).arg("--via").arg("all"));
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = dir.path().join("both.json");
    std::fs::write(&saved, &both.stdout).expect("save the report");
    let show = |format: &str| {
        Netcheck::bare()
            .arg("show")
            .arg(&saved)
            .arg("--format")
            .arg(format)
            .arg("--color")
            .arg("never")
            .run()
    };
    let prom = show("prometheus");
    prom.assert_exit(2);
    assert!(
        prom.stdout
            .contains("bmw_netcheck_uplink_status{interface=\"upa\",kind=\"ethernet\"} 2"),
        "{}",
        prom.stdout
    );
    assert!(
        prom.stdout.contains(
            "bmw_netcheck_check_status{probe=\"dns\",target=\"api\",code=\"dns.sinkholed\",interface=\"upa\"} 2"
        ),
        "{}",
        prom.stdout
    );
    let md = show("markdown");
    assert!(md.stdout.contains("### Uplinks"), "{}", md.stdout);
    assert!(
        md.stdout.contains("| upb | Ethernet | ✓ PASS |"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("api via upa"), "{}", md.stdout);
    let human = show("human");
    let a = human
        .stdout
        .find("over upa (Ethernet)")
        .expect("a group per uplink");
    let b = human
        .stdout
        .find("over upb (Ethernet)")
        .expect("a group per uplink");
    assert!(
        a < b && human.stdout[a..b].contains("dns.sinkholed"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("BMW works over upb (Ethernet) but not over upa (Ethernet)"),
        "{}",
        human.stdout
    );
}

#[test]
fn an_unknown_interface_is_exit_3_before_any_probe() {
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", closed_port().port())]);
    let out = Netcheck::engine(&profile)
        .arg("--interface")
        .arg("nosuchif9")
        .run();
    out.assert_exit(3);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(
        out.stderr
            .contains("--interface nosuchif9: this device has no such interface")
    );
    let out = Netcheck::engine(&profile)
        .arg("--interface")
        .arg("a/b")
        .run();
    out.assert_exit(3);
}

/// Ctrl-C during a run over both uplinks: the run over the silent one is cut short and said so,
/// the other's results stand, and the merged report comes at once.
#[test]
fn ctrl_c_over_two_uplinks_reports_what_finished() {
    if let Some(why) = skip_reason() {
        skip(&format!("uplinks: Ctrl-C case: {why}"));
        return;
    }
    let pki = Pki::new();
    let profile = profile();
    let t = setup(&pki, Isp::Silent, Isp::Healthy);
    let nc = base(&pki, &profile)
        .timeout("15s")
        .deadline("30s")
        .arg("--via")
        .arg("all");
    let child = t
        .client
        .command(env!("CARGO_BIN_EXE_bmw-netcheck"))
        .args(nc.args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the run");
    std::thread::sleep(Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: plain kill(2) to the process this test spawned (`ip netns exec` execs the tool).
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("wait for the run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the report comes at once after Ctrl-C"
    );
    let r: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    crate::support::schema::assert_valid(crate::support::schema::Doc::Report, &r);
    let got = codes(&r);
    assert!(got.contains(&"upb api http.ok".to_owned()), "{got:?}");
    let tls_a = r["checks"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["interface"] == "upa" && c["probe"] == "tls")
        })
        .unwrap_or_else(|| panic!("no tls check over upa: {got:?}"));
    assert_eq!(tls_a["status"], "skip", "{tls_a:#}");
    assert!(
        tls_a["summary"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted"),
        "{tls_a:#}"
    );
}

/// A local stub resolver (on loopback, as systemd-resolved's 127.0.0.53) cannot be reached
/// through an uplink: it is asked unbound, and the rest of the run is still bound.
#[test]
fn a_loopback_resolver_is_asked_unbound() {
    if let Some(why) = skip_reason() {
        skip(&format!("uplinks: loopback-resolver case: {why}"));
        return;
    }
    let pki = Pki::new();
    let profile = profile();
    let t = setup(&pki, Isp::Refused, Isp::Healthy);
    let socket = t
        .client
        .bind_udp("127.0.0.1:5353".parse().expect("address"))
        .expect("bind the stub resolver");
    let stub = DnsServer::from_socket(
        socket,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVICE)]))],
    );
    let nc = Netcheck::engine(&profile)
        .resolver_addr("127.0.0.1:5353")
        .ca_file(&pki)
        .arg("--interface")
        .arg("upb");
    let out = run(&t, &nc);
    out.assert_exit(0);
    assert!(stub.queries() > 0);
    assert!(codes(&out.report()).contains(&"upb api http.ok".to_owned()));
    // Over upa the stub still answers, and the refused port shows.
    let nc = Netcheck::engine(&profile)
        .resolver_addr("127.0.0.1:5353")
        .ca_file(&pki)
        .arg("--interface")
        .arg("upa");
    let out = run(&t, &nc);
    out.assert_exit(2);
    let got = codes(&out.report());
    assert!(got.contains(&"upa api dns.ok".to_owned()), "{got:?}");
    assert!(got.contains(&"upa api tcp.refused".to_owned()), "{got:?}");
}
