//! What is on the path, named from control attempts: an SNI filter and a path-MTU black hole
//! between a client and a real nginx, built from network namespaces and the kernel's own
//! filters.
//!
//! ```text
//!  client ns ── veth ── r1 ns ── veth (mid link) ── r2 ns ── veth ── server ns: nginx :443
//!  10.77.1.2           10.77.1.1  10.77.2.1    10.77.2.2  203.0.113.1      203.0.113.10
//!                      (iptables string match)  (MTU 600 on the mid link; ICMP dropped or not)
//! ```
//!
//! | case | on the path | code | first suspect |
//! | --- | --- | --- | --- |
//! | SNI reset | r1 resets packets naming cocoapi.bmwgroup.com (`-m string` on either half of the name, `REJECT --reject-with tcp-reset`) | `tls.sni_blocked` | `vpn_firewall` |
//! | SNI drop | r1 drops them | `tls.sni_blocked` | `vpn_firewall` |
//! | MTU black hole | mid link MTU 600, ICMP "fragmentation needed" dropped on both routers | `tls.mtu_blackhole`, http over the small-MSS connection | `path_mtu` |
//! | MTU with ICMP | the same link, ICMP allowed: path-MTU discovery works | `tls.ok` | – |
//!
//! In the SNI cases a second name on the same address (the neutral baseline) passes. The names
//! resolve through a DNS server the test binds inside the client namespace. Without root, `ip`,
//! `iptables`, `nft`, nginx or openssl the test says why and skips.

use crate::netns::ns::{self, Netns};
use crate::support::daemon::find;
use crate::support::nginx::nginx_binary;
use crate::support::nsnginx::{NsNginx, Site};
use crate::support::opensslpki::{LeafSpec, OpensslCa, openssl_available};
use crate::support::*;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

const SERVICE: &str = "cocoapi.bmwgroup.com";
const NEUTRAL: &str = "www.netcheck.lan";
const SERVER: &str = "203.0.113.10";
const TEST_ROOT: &str = "/O=bmw-netcheck tests/CN=Netcheck Path Root";

/// What the first router does to packets naming the service.
#[derive(Clone, Copy, PartialEq)]
enum Filter {
    None,
    Reset,
    Drop,
}

/// The link between the routers.
#[derive(Clone, Copy, PartialEq)]
enum Mid {
    Plain,
    /// MTU 600; `icmp`: whether the routers may say "fragmentation needed".
    Small {
        icmp: bool,
    },
}

/// The namespaces, the DNS server in the client namespace and nginx; all go when dropped.
struct Bed {
    client: Netns,
    _routers: [Netns; 2],
    _server: Netns,
    _nginx: NsNginx,
    dns: DnsServer,
    ca: OpensslCa,
}

fn why_not() -> Option<String> {
    if let Some(why) = ns::unavailable_without(&["iptables", "nft"]) {
        return Some(why);
    }
    if nginx_binary().is_none() {
        return Some("nginx is not installed (apt-get install nginx-light)".into());
    }
    if !openssl_available() {
        return Some("the openssl command is not installed".into());
    }
    None
}

fn can_run(case: &str) -> bool {
    match why_not() {
        Some(why) => {
            skip(&format!("realpath::{case}: {why}"));
            false
        }
        None => true,
    }
}

fn sysctl(ns: &Netns, path: &str, value: &str) {
    ns.enter(|| std::fs::write(path, value))
        .expect("enter the namespace")
        .unwrap_or_else(|e| panic!("write {path}: {e}"));
}

fn exec(ns: &Netns, program: &str, args: &[&str]) {
    let out = ns.command(program).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The routers' rules: the SNI filter on r1, the ICMP filter on both.
fn filters(r1: &Netns, r2: &Netns, filter: Filter, mid: Mid) {
    let verdict: &[&str] = match filter {
        Filter::None => &[],
        Filter::Reset => &["REJECT", "--reject-with", "tcp-reset"],
        Filter::Drop => &["DROP"],
    };
    // The string match reads one packet at a time, and a modern hello spans two segments: the
    // name may be cut in two at the boundary. Either half of it is then whole in one segment,
    // so the filter looks for both halves, as filters that reassemble nothing must.
    let (first, rest) = SERVICE.split_once('.').expect("a dotted name");
    for part in [first, rest] {
        if verdict.is_empty() {
            break;
        }
        let mut args = vec![
            "-A", "FORWARD", "-p", "tcp", "--dport", "443", "-m", "string", "--algo", "bm",
            "--string", part, "-j",
        ];
        args.extend_from_slice(verdict);
        exec(r1, "iptables", &args);
    }
    if mid == (Mid::Small { icmp: false }) {
        let rules = "table inet pmtu {\n chain local_icmp { type filter hook output priority 0; icmp type destination-unreachable icmp code frag-needed drop; icmpv6 type packet-too-big drop; }\n chain forwarded_icmp { type filter hook forward priority 0; icmp type destination-unreachable icmp code frag-needed drop; icmpv6 type packet-too-big drop; }\n}\n";
        for r in [r1, r2] {
            let file = tempfile::NamedTempFile::new().expect("a file for the rules");
            std::fs::write(file.path(), rules).expect("write the rules");
            let path = file.path().to_string_lossy().into_owned();
            exec(r, "nft", &["-f", &path]);
        }
    }
}

/// The four namespaces, wired and routed; nginx answering for both names on the server.
fn bed(filter: Filter, mid: Mid) -> Bed {
    let client = Netns::create("rpc").expect("client namespace");
    let r1 = Netns::create("rp1").expect("router namespace");
    let r2 = Netns::create("rp2").expect("router namespace");
    let server = Netns::create("rps").expect("server namespace");
    ns::link(&client, "up0", "10.77.1.2/24", &r1, "in0", "10.77.1.1/24");
    ns::link(&r1, "mid0", "10.77.2.1/24", &r2, "mid1", "10.77.2.2/24");
    ns::link(
        &r2,
        "out0",
        "203.0.113.1/24",
        &server,
        "srv0",
        "203.0.113.10/24",
    );
    if let Mid::Small { .. } = mid {
        r1.ip(&["link", "set", "mid0", "mtu", "600"]).expect("mtu");
        r2.ip(&["link", "set", "mid1", "mtu", "600"]).expect("mtu");
    }
    let route = |ns: &Netns, args: &[&str]| ns.ip(args).expect("route");
    route(&client, &["route", "add", "default", "via", "10.77.1.1"]);
    route(&r1, &["route", "add", "default", "via", "10.77.2.2"]);
    route(&r2, &["route", "add", "10.77.1.0/24", "via", "10.77.2.1"]);
    route(&server, &["route", "add", "default", "via", "203.0.113.1"]);
    for r in [&r1, &r2] {
        sysctl(r, "/proc/sys/net/ipv4/ip_forward", "1");
    }
    filters(&r1, &r2, filter, mid);

    let ca = OpensslCa::new(TEST_ROOT);
    let sites: Vec<Site> = [("service", SERVICE), ("neutral", NEUTRAL)]
        .iter()
        .map(|(file, name)| {
            let leaf = ca.issue(file, &LeafSpec::new(name));
            Site {
                name: (*name).into(),
                chain: leaf.chain,
                key: leaf.key,
            }
        })
        .collect();
    let listen: SocketAddr = format!("{SERVER}:443").parse().expect("address");
    let nginx = NsNginx::start(server.name(), &[listen], &sites, |a| {
        client
            .enter(|| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
            .unwrap_or(false)
    });
    let socket = client
        .bind_udp("127.0.0.1:0".parse().expect("address"))
        .expect("a DNS socket in the client namespace");
    let ip: IpAddr = SERVER.parse().expect("address");
    let dns = DnsServer::from_socket(
        socket,
        [
            (SERVICE, DnsAnswer::Addrs(vec![ip])),
            (NEUTRAL, DnsAnswer::Addrs(vec![ip])),
        ],
    );
    Bed {
        client,
        _routers: [r1, r2],
        _server: server,
        _nginx: nginx,
        dns,
        ca,
    }
}

/// The binary in the client namespace: the endpoint stages for the service (and the neutral
/// name as the baseline), with a 3 s step timeout.
fn run(bed: &Bed, with_neutral: bool) -> Value {
    let mut endpoints = vec![EndpointSpec::new("cocoapi", SERVICE, 443)];
    if with_neutral {
        endpoints.push(EndpointSpec::new("neutral", NEUTRAL, 443).role("baseline"));
    }
    let profile = ProfileFile::with_thresholds(&endpoints, profile::LOOPBACK_THRESHOLDS);
    let nc = Netcheck::engine(&profile)
        .resolver_addr(&bed.dns.addr().to_string())
        .ca_path(&bed.ca.ca_file())
        .timeout("3s");
    let mut cmd = bed.client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
    cmd.args(nc.args());
    for var in netcheck::PROXY_VARS {
        cmd.env_remove(var);
    }
    run_command(cmd, nc.args()).validated().report()
}

/// The figures BENCHMARKS.md quotes ("Path controls"): how long the tls stage and the run took.
fn timing(case: &str, r: &Value, target: &str) {
    let t = stage(r, target, "tls");
    say(&format!(
        "realpath: {case}: {} after {} ms of the tls stage; the run took {} ms",
        t["code"].as_str().unwrap_or("?"),
        t["duration_ms"],
        r["duration_ms"]
    ));
}

/// The SNI filter's finding, the same for a reset and a drop but for how the hello naming the
/// service ended.
fn assert_sni_blocked(r: &Value, ended: &str) {
    let t = stage(r, "cocoapi", "tls");
    assert_eq!(t["code"], "tls.sni_blocked", "{t}");
    let summary = t["summary"].as_str().unwrap_or("");
    say(&format!("realpath: {summary}"));
    assert!(
        summary.contains(&format!("blocks connections that name {SERVICE}")),
        "{summary}"
    );
    assert_eq!(
        t["data"]["control"], "same address and hello, another server name",
        "{t}"
    );
    let attempts = t["data"]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{t}");
    assert_eq!(attempts[0]["server_name"], SERVICE, "{t}");
    assert_eq!(attempts[0]["result"], ended, "{t}");
    assert_ne!(attempts[1]["server_name"], SERVICE, "{t}");
    assert_eq!(
        attempts[0]["hello_bytes"], attempts[1]["hello_bytes"],
        "the control's hello is as large: {t}"
    );
    assert_eq!(status(r, "cocoapi", "http"), "skip", "{r:#}");
    // Another name on the same address works.
    assert_eq!(code(r, "neutral", "tls"), "tls.ok", "{r:#}");
    assert_eq!(code(r, "neutral", "http"), "http.ok", "{r:#}");
    assert_eq!(top_suspect(r), "vpn_firewall", "{:#}", r["suspects"]);
    let steps = r["suspects"][0]["steps"].to_string();
    assert!(steps.contains("SNI filter"), "{steps}");
}

#[test]
fn a_filter_resetting_handshakes_that_name_the_service_is_an_sni_filter() {
    if !can_run("a_filter_resetting_handshakes_that_name_the_service_is_an_sni_filter") {
        return;
    }
    let bed = bed(Filter::Reset, Mid::Plain);
    let r = run(&bed, true);
    timing("SNI reset", &r, "cocoapi");
    assert_sni_blocked(&r, "reset");
}

#[test]
fn a_filter_dropping_handshakes_that_name_the_service_is_an_sni_filter() {
    if !can_run("a_filter_dropping_handshakes_that_name_the_service_is_an_sni_filter") {
        return;
    }
    let bed = bed(Filter::Drop, Mid::Plain);
    let r = run(&bed, true);
    timing("SNI drop", &r, "cocoapi");
    assert_sni_blocked(&r, "no answer");
}

#[test]
fn a_small_mtu_link_with_icmp_filtered_is_a_path_mtu_black_hole() {
    if !can_run("a_small_mtu_link_with_icmp_filtered_is_a_path_mtu_black_hole") {
        return;
    }
    let bed = bed(Filter::None, Mid::Small { icmp: false });
    let r = run(&bed, false);
    timing("MTU black hole", &r, "cocoapi");
    let t = stage(&r, "cocoapi", "tls");
    assert_eq!(t["code"], "tls.mtu_blackhole", "{t}");
    say(&format!(
        "realpath: {}",
        t["summary"].as_str().unwrap_or("")
    ));
    assert_eq!(
        t["data"]["control"], "same address and hello, small MSS",
        "{t}"
    );
    assert_eq!(t["data"]["mss"]["small"], 536, "{t}");
    let attempts = t["data"]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts[0]["result"], "no answer", "{t}");
    assert_eq!(attempts[1]["result"], "completed", "{t}");
    // The request goes on over the small-MSS connection.
    assert_eq!(code(&r, "cocoapi", "http"), "http.ok", "{r:#}");
    assert_eq!(top_suspect(&r), "path_mtu", "{:#}", r["suspects"]);
}

#[test]
fn the_same_small_mtu_link_with_icmp_allowed_passes() {
    if !can_run("the_same_small_mtu_link_with_icmp_allowed_passes") {
        return;
    }
    let bed = bed(Filter::None, Mid::Small { icmp: true });
    let r = run(&bed, false);
    timing("MTU with ICMP", &r, "cocoapi");
    assert_eq!(code(&r, "cocoapi", "tls"), "tls.ok", "{r:#}");
    assert_eq!(code(&r, "cocoapi", "http"), "http.ok", "{r:#}");
    let t = stage(&r, "cocoapi", "tls");
    assert!(t["data"].get("control").is_none(), "no control ran: {t}");
}

// ---------------------------------------------------------------------------------------------
// NAT64: an IPv6-only client, unbound doing DNS64, tayga translating to an IPv4 server.
//
//  client ns (IPv6 only) ── veth ── router ns: tayga (fd00:64::/96 ↔ 192.168.255.0/24) ── veth ── server ns
//  fd00:1::2, unbound and        fd00:1::1                 192.0.2.1, fd00:2::1        192.0.2.10 (nginx),
//  its zone on 127.0.0.1                                                               fd00:2::10 (nginx)
//
// api.netcheck.lan has only an IPv4 address (DNS64 synthesizes fd00:64::c000:20a); the neutral
// v6.netcheck.lan has a native IPv6 one. tayga's prefix is a private /96 because it refuses to
// map private IPv4 into 64:ff9b::/96.
// ---------------------------------------------------------------------------------------------

const NAT64_PREFIX: &str = "fd00:64::/96";

/// The IPv6-only client, the router with tayga, the dual-stack server and the resolvers.
struct Nat64Bed {
    client: Netns,
    _router: Netns,
    _server: Netns,
    tayga: Option<crate::support::daemon::Daemon>,
    _nginx: NsNginx,
    _zone: DnsServer,
    _unbound: crate::support::daemon::Daemon,
    resolver: SocketAddr,
    ca: OpensslCa,
}

fn nat64_why_not() -> Option<String> {
    if let Some(why) = ns::unavailable_without(&["tayga", "unbound"]) {
        return Some(why);
    }
    if nginx_binary().is_none() {
        return Some("nginx is not installed (apt-get install nginx-light)".into());
    }
    if !openssl_available() {
        return Some("the openssl command is not installed".into());
    }
    None
}

/// No duplicate address detection: the namespaces' IPv6 addresses are usable at once.
fn no_dad(ns: &Netns) {
    for path in [
        "/proc/sys/net/ipv6/conf/all/accept_dad",
        "/proc/sys/net/ipv6/conf/default/accept_dad",
    ] {
        sysctl(ns, path, "0");
    }
}

/// tayga in the router namespace, its tun device up and routed.
fn start_tayga(router: &Netns) -> crate::support::daemon::Daemon {
    use crate::support::daemon::Daemon;
    let dir = Daemon::scratch("netcheck-tayga");
    let conf = dir.path().join("tayga.conf");
    std::fs::write(
        &conf,
        format!(
            "tun-device nat64\nipv4-addr 192.168.255.1\nprefix {NAT64_PREFIX}\ndynamic-pool 192.168.255.0/24\ndata-dir {}\n",
            dir.path().display()
        ),
    )
    .expect("write tayga.conf");
    let conf = conf.to_string_lossy().into_owned();
    let tayga = find("tayga").expect("tayga");
    let tayga = tayga.to_string_lossy().into_owned();
    exec(router, &tayga, &["--mktun", "-c", &conf]);
    router.ip(&["link", "set", "nat64", "up"]).expect("tun up");
    router
        .ip(&["route", "add", "192.168.255.0/24", "dev", "nat64"])
        .expect("route");
    router
        .ip(&["-6", "route", "add", NAT64_PREFIX, "dev", "nat64"])
        .expect("route");
    let mut cmd = router.command(&tayga);
    cmd.args(["--nodetach", "-c", &conf]);
    Daemon::spawn_command("tayga", cmd, dir)
}

/// unbound in the client namespace: DNS64 with the test's prefix, the test zones and
/// `ipv4only.arpa` from a zone server beside it.
fn start_unbound(client: &Netns, zone: SocketAddr) -> (crate::support::daemon::Daemon, SocketAddr) {
    use crate::support::daemon::{Daemon, free_port};
    let dir = Daemon::scratch("netcheck-unbound64");
    let d = dir.path().display().to_string();
    let port = free_port();
    let stub = |name: &str| {
        format!(
            "stub-zone:\n    name: \"{name}\"\n    stub-addr: {}@{}\n",
            zone.ip(),
            zone.port()
        )
    };
    let conf = format!(
        "server:\n    interface: 127.0.0.1@{port}\n    port: {port}\n    do-daemonize: no\n    use-syslog: no\n    logfile: \"\"\n    username: \"\"\n    chroot: \"\"\n    directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    access-control: 127.0.0.0/8 allow\n    do-not-query-localhost: no\n    qname-minimisation: no\n    module-config: \"dns64 iterator\"\n    dns64-prefix: {NAT64_PREFIX}\n    local-zone: \"lan.\" nodefault\n    local-zone: \"arpa.\" nodefault\n    domain-insecure: \"netcheck.lan\"\n{}{}",
        stub("netcheck.lan"),
        stub("ipv4only.arpa")
    );
    let path = dir.path().join("unbound.conf");
    std::fs::write(&path, conf).expect("write unbound.conf");
    let unbound = find("unbound").expect("unbound");
    let mut cmd = client.command(unbound);
    cmd.arg("-d").arg("-c").arg(&path);
    let mut daemon = Daemon::spawn_command("unbound", cmd, dir);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    daemon.wait_until(addr, || {
        client
            .enter(|| crate::support::daemon::answers_dns(addr))
            .unwrap_or(false)
    });
    (daemon, addr)
}

fn nat64_bed() -> Nat64Bed {
    let client = Netns::create("n6c").expect("client namespace");
    let router = Netns::create("n6r").expect("router namespace");
    let server = Netns::create("n6s").expect("server namespace");
    for n in [&client, &router, &server] {
        no_dad(n);
    }
    ns::link(
        &client,
        "up0",
        "fd00:1::2/64",
        &router,
        "in0",
        "fd00:1::1/64",
    );
    ns::link(
        &router,
        "out0",
        "192.0.2.1/24",
        &server,
        "srv0",
        "192.0.2.10/24",
    );
    router
        .ip(&["addr", "add", "fd00:2::1/64", "dev", "out0"])
        .expect("address");
    server
        .ip(&["addr", "add", "fd00:2::10/64", "dev", "srv0"])
        .expect("address");
    client
        .ip(&["-6", "route", "add", "default", "via", "fd00:1::1"])
        .expect("route");
    server
        .ip(&["route", "add", "default", "via", "192.0.2.1"])
        .expect("route");
    server
        .ip(&["-6", "route", "add", "default", "via", "fd00:2::1"])
        .expect("route");
    sysctl(&router, "/proc/sys/net/ipv4/ip_forward", "1");
    sysctl(&router, "/proc/sys/net/ipv6/conf/all/forwarding", "1");
    let tayga = start_tayga(&router);

    let ca = OpensslCa::new(TEST_ROOT);
    let sites: Vec<Site> = [("api", "api.netcheck.lan"), ("v6", "v6.netcheck.lan")]
        .iter()
        .map(|(file, name)| {
            let leaf = ca.issue(file, &LeafSpec::new(name));
            Site {
                name: (*name).into(),
                chain: leaf.chain,
                key: leaf.key,
            }
        })
        .collect();
    let listen: Vec<SocketAddr> = ["192.0.2.10:443", "[fd00:2::10]:443"]
        .iter()
        .map(|a| a.parse().expect("address"))
        .collect();
    let nginx = NsNginx::start(server.name(), &listen, &sites, |a| {
        let reach = if a.is_ipv6() { &client } else { &router };
        reach
            .enter(|| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
            .unwrap_or(false)
    });
    let socket = client
        .bind_udp("127.0.0.1:0".parse().expect("address"))
        .expect("a DNS socket in the client namespace");
    let v4 = |s: &str| IpAddr::V4(s.parse().expect("address"));
    let zone = DnsServer::from_socket(
        socket,
        [
            ("api.netcheck.lan", DnsAnswer::Addrs(vec![v4("192.0.2.10")])),
            (
                "v6.netcheck.lan",
                DnsAnswer::Addrs(vec!["fd00:2::10".parse().expect("address")]),
            ),
            (
                "ipv4only.arpa",
                DnsAnswer::Addrs(vec![v4("192.0.0.170"), v4("192.0.0.171")]),
            ),
        ],
    );
    let (unbound, resolver) = start_unbound(&client, zone.addr());
    Nat64Bed {
        client,
        _router: router,
        _server: server,
        tayga: Some(tayga),
        _nginx: nginx,
        _zone: zone,
        _unbound: unbound,
        resolver,
        ca,
    }
}

/// The binary in the IPv6-only client: the IPv4-only service and the native IPv6 baseline.
fn run_nat64(bed: &Nat64Bed) -> Value {
    let endpoints = [
        EndpointSpec::new("api", "api.netcheck.lan", 443),
        EndpointSpec::new("v6", "v6.netcheck.lan", 443).role("baseline"),
    ];
    let profile = ProfileFile::with_thresholds(&endpoints, profile::LOOPBACK_THRESHOLDS);
    let nc = Netcheck::engine(&profile)
        .resolver_addr(&bed.resolver.to_string())
        .ca_path(&bed.ca.ca_file())
        .timeout("2s");
    let mut cmd = bed.client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
    cmd.args(nc.args());
    for var in netcheck::PROXY_VARS {
        cmd.env_remove(var);
    }
    run_command(cmd, nc.args()).validated().report()
}

#[test]
fn an_ipv6_only_device_reaches_ipv4_hosts_through_nat64_and_says_so() {
    if let Some(why) = nat64_why_not() {
        skip(&format!("realpath::nat64: {why}"));
        return;
    }
    let mut bed = nat64_bed();
    // Working NAT64: the connection says which prefix carried it.
    let r = run_nat64(&bed);
    let t = stage(&r, "api", "tcp");
    assert_eq!(t["code"], "tcp.ok", "{r:#}");
    let summary = t["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains(&format!("through NAT64 prefix {NAT64_PREFIX}")),
        "{summary}"
    );
    assert_eq!(t["data"]["nat64"]["ipv4"], "192.0.2.10", "{t}");
    say(&format!("realpath: working NAT64: {summary}"));
    assert_eq!(code(&r, "api", "http"), "http.ok", "{r:#}");
    assert!(
        !stage(&r, "v6", "tcp")["summary"]
            .as_str()
            .unwrap_or("")
            .contains("NAT64"),
        "{r:#}"
    );

    // tayga stopped: the synthesized address gets no answer while native IPv6 works.
    drop(bed.tayga.take());
    let r = run_nat64(&bed);
    let t = stage(&r, "api", "tcp");
    assert_eq!(t["code"], "tcp.nat64_failed", "{r:#}");
    let summary = t["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains(&format!("NAT64 prefix {NAT64_PREFIX}")),
        "{summary}"
    );
    say(&format!("realpath: NAT64 stopped: {summary}"));
    assert_eq!(code(&r, "v6", "tcp"), "tcp.ok", "{r:#}");
    assert_eq!(
        t["data"]["control"], "v6 connected over native IPv6 to [fd00:2::10]:443",
        "{t}"
    );
    assert_eq!(
        suspect_ids(&r).first().map(String::as_str),
        Some("nat64_gateway"),
        "{:#}",
        r["suspects"]
    );
}
