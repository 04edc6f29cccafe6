//! Real firewalls (nftables) between the tool and real servers (nginx on ports 80 and 443,
//! dnsmasq on port 53), in network namespaces:
//!
//! ```text
//!  client ns: up0 198.51.100.2 ── veth ── public ns: pub0 198.51.100.1 (dnsmasq :53, nftables input)
//!                                                     api 203.0.113.10, sign-in .11, neutral .12 (nginx :80, :443)
//! ```
//!
//! | case | nftables in the public namespace | code | named cause | first suspect |
//! | --- | --- | --- | --- | --- |
//! | drop | `tcp dport 443 drop` | `tcp.filtered` | port 443, `drop`, control port 80 connected | `vpn_firewall` |
//! | reset | `tcp dport 443 reject with tcp reset` | `tcp.filtered` | port 443, `reject` | `vpn_firewall` |
//! | ICMP | `tcp dport 443 reject with icmpx type admin-prohibited` | `tcp.filtered` | port 443, `icmp_admin_prohibited` | `vpn_firewall` |
//! | UDP/53 | `udp dport 53 drop` (TCP/53 works) | `dns.udp_blocked` | both transports; tcp, tls, http pass | `vpn_firewall` |
//! | one port, one host | `ip daddr 203.0.113.10 tcp dport 443 drop` | `tcp.filtered` on api only | port 443, `drop`; the others pass | `vpn_firewall` |
//!
//! And the weak link (no firewall): the delay line of `netns/` with 300 ms round trips and loss
//! on every packet, every host, run 20 times with 20 seeds: `weak_signal` first every time.
//!
//! Only namespace addresses are used (documentation ranges); nothing leaves the machine. Without
//! root, `ip`, `nft`, `nginx` or `dnsmasq` the test says why and skips.

use crate::netns::bed::{SERVER_V4, Testbed};
use crate::netns::delayline::{Filter, Shaping};
use crate::netns::ns::{self, Netns};
use crate::support::daemon::{Daemon, answers_dns, find};
use crate::support::opensslpki::{LeafSpec, OpensslCa, openssl_available};
use crate::support::profile::LOOPBACK_THRESHOLDS;
use crate::support::*;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const HOSTS: [(&str, &str, &str); 3] = [
    ("api", "203.0.113.10", "service"),
    ("sign-in", "203.0.113.11", "service"),
    ("neutral", "203.0.113.12", "baseline"),
];
/// dnsmasq listens on the public side of the wire.
const RESOLVER: &str = ns::PUBLIC_ADDR;
const DOMAIN: &str = "fw.netcheck.lan";

fn why_not() -> Option<String> {
    if let Some(why) = ns::unavailable_without(&["nft", "dnsmasq"]) {
        return Some(why);
    }
    if let Err(why) = nginxhosts::find() {
        return Some(why);
    }
    if !openssl_available() {
        return Some("the openssl command is not installed".into());
    }
    None
}

fn host(name: &str) -> String {
    format!("{name}.{DOMAIN}")
}

/// The servers of a bed: nginx for every host, dnsmasq for their names, and the certificate.
struct Servers {
    _nginx: Daemon,
    _dnsmasq: Daemon,
    ca: OpensslCa,
}

/// Starts nginx on `addrs` (80 and 443) and dnsmasq on `resolver:53` inside `ns`, names
/// pointing at `HOSTS` as `at` maps them; waits for both from inside `client`.
fn servers(ns: &Netns, client: &Netns, resolver: &str, at: &[(&str, String)]) -> Servers {
    let ca = OpensslCa::new("/CN=netcheck firewall test root");
    let leaf = ca.issue("hosts", &LeafSpec::new(&format!("*.{DOMAIN}")));
    let nginx_bin = nginxhosts::find().expect("nginx");
    let addrs: Vec<&str> = at.iter().map(|(_, a)| a.as_str()).collect();
    let mut nginx = nginxhosts::spawn(ns.command(&nginx_bin), &addrs, &leaf.chain, &leaf.key);
    let lines: String = at
        .iter()
        .map(|(name, a)| format!("address=/{}/{a}\n", host(name)))
        .collect();
    let dir = Daemon::scratch("netcheck-fw-dnsmasq");
    let conf = format!(
        "no-resolv\nno-hosts\nlisten-address={resolver}\nport=53\nbind-interfaces\nlog-facility=-\nuser=root\n{lines}"
    );
    let conf_path = dir.path().join("dnsmasq.conf");
    std::fs::write(&conf_path, conf).expect("write dnsmasq.conf");
    let mut cmd = ns.command(find("dnsmasq").expect("dnsmasq"));
    cmd.arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf_path.display()))
        .arg(format!(
            "--pid-file={}",
            dir.path().join("dnsmasq.pid").display()
        ));
    let mut dnsmasq = Daemon::spawn_command("dnsmasq", cmd, dir);
    let dns: SocketAddr = format!("{resolver}:53").parse().expect("address");
    dnsmasq.wait_until(dns, || client.enter(|| answers_dns(dns)).unwrap_or(false));
    for a in &addrs {
        for port in [80, 443] {
            let at: SocketAddr = format!("{a}:{port}").parse().expect("address");
            nginx.wait_until(at, || {
                client
                    .enter(|| TcpStream::connect_timeout(&at, Duration::from_millis(300)).is_ok())
                    .unwrap_or(false)
            });
        }
    }
    Servers {
        _nginx: nginx,
        _dnsmasq: dnsmasq,
        ca,
    }
}

/// The client and the public namespace, the servers, and `rule` in the public namespace's
/// input chain.
struct Bed {
    client: Netns,
    _public: Netns,
    servers: Servers,
}

fn bed(rule: &str) -> Bed {
    let addrs: Vec<&str> = HOSTS.iter().map(|(_, a, _)| *a).collect();
    let (client, public) = ns::client_and_public("fw", &addrs);
    // Every rejected SYN gets its ICMP answer: the kernel's rate limit (a burst of six, then one
    // a second) would turn some of them into silence.
    public
        .enter(|| std::fs::write("/proc/sys/net/ipv4/icmp_ratelimit", "0"))
        .expect("enter the public namespace")
        .expect("switch off the ICMP rate limit");
    let at: Vec<(&str, String)> = HOSTS
        .iter()
        .map(|(n, a, _)| (*n, (*a).to_owned()))
        .collect();
    let servers = servers(&public, &client, RESOLVER, &at);
    let rules = format!(
        "table inet firewall {{\n chain in {{ type filter hook input priority 0; {rule} }}\n}}\n"
    );
    public.nft(&rules).expect("the firewall rules");
    Bed {
        client,
        _public: public,
        servers,
    }
}

/// The three hosts, with `thresholds` (the suite's relaxed loopback ones, or "" for the
/// tool's defaults).
fn profile_with(thresholds: &str) -> ProfileFile {
    let specs: Vec<EndpointSpec> = HOSTS
        .iter()
        .map(|(name, _, role)| {
            EndpointSpec::new(name, &host(name), 443)
                .public(false)
                .role(role)
        })
        .collect();
    ProfileFile::with_thresholds(&specs, thresholds)
}

fn profile() -> ProfileFile {
    profile_with(LOOPBACK_THRESHOLDS)
}

/// The binary in `client`: the endpoint stages, against the bed's resolver and CA.
fn run(client: &Netns, resolver: &str, ca: &Path, profile: &ProfileFile, timeout: &str) -> Outcome {
    let mut cmd = client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
    cmd.args([
        "run",
        "--only",
        "dns,tcp,tls,http,latency",
        "--timeout",
        timeout,
    ])
    .args(["--deadline", "20s", "--no-history", "--format", "json"])
    .args(["--resolver", resolver, "--samples", "3"])
    .arg("--ca-file")
    .arg(ca)
    .arg("--profile")
    .arg(profile.path());
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    // The arguments after the program, for the schema check of the report.
    let args: Vec<std::ffi::OsString> = cmd.get_args().skip(4).map(|a| a.to_owned()).collect();
    run_command(cmd, args).validated()
}

fn run_bed(bed: &Bed) -> Outcome {
    run(
        &bed.client,
        RESOLVER,
        &bed.servers.ca.ca_file(),
        &profile(),
        "2s",
    )
}

/// Every host's tcp check is `tcp.filtered` with this class on port 443, the control on port 80
/// named, and `vpn_firewall` first.
fn assert_port_filtered(case: &str, out: &Outcome, class: &str, control: &str) {
    let r = out.report();
    let ids = suspect_ids(&r);
    for (name, addr, _) in HOSTS {
        let tcp = stage(&r, name, "tcp");
        say(&format!(
            "realfirewall: {case}: {name} {} — {} · suspects {ids:?}",
            tcp["code"], tcp["summary"]
        ));
        assert_eq!(tcp["code"], "tcp.filtered", "{tcp:#}\n{}", out.describe());
        assert_eq!(tcp["data"]["filter"], class, "{tcp:#}");
        assert_eq!(tcp["data"]["port"], 443, "{tcp:#}");
        let summary = tcp["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains("port 443") && summary.contains(addr),
            "{summary}"
        );
        assert_eq!(tcp["data"]["control"]["port"], 80, "{tcp:#}");
        assert_eq!(tcp["data"]["control"]["result"], control, "{tcp:#}");
        assert_eq!(code(&r, name, "dns"), "dns.ok", "{}", out.describe());
    }
    assert_eq!(
        top_suspect(&r),
        "vpn_firewall",
        "{ids:?}\n{}",
        out.describe()
    );
}

#[test]
fn realfirewall_dropped_port_is_a_firewall_not_a_weak_signal() {
    if let Some(why) = why_not() {
        return skip(&format!("realfirewall: {why}"));
    }
    let bed = bed("tcp dport 443 drop;");
    let out = run_bed(&bed);
    out.assert_exit(2);
    assert_port_filtered("drop 443", &out, "drop", "connected");
    let r = out.report();
    let summary = stage(&r, "api", "tcp")["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(summary.contains("drops"), "{summary}");
    assert_eq!(stage(&r, "api", "tcp")["data"]["reason"], "silent_drop");
}

#[test]
fn realfirewall_reset_port_is_a_firewall() {
    if let Some(why) = why_not() {
        return skip(&format!("realfirewall: {why}"));
    }
    let bed = bed("tcp dport 443 reject with tcp reset;");
    let out = run_bed(&bed);
    out.assert_exit(2);
    assert_port_filtered("reset 443", &out, "reject", "connected");
    let r = out.report();
    let summary = stage(&r, "api", "tcp")["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(summary.contains("TCP reset"), "{summary}");
}

#[test]
fn realfirewall_icmp_admin_prohibited_is_read_from_the_error_queue() {
    if let Some(why) = why_not() {
        return skip(&format!("realfirewall: {why}"));
    }
    let bed = bed("tcp dport 443 reject with icmpx type admin-prohibited;");
    let out = run_bed(&bed);
    out.assert_exit(2);
    assert_port_filtered(
        "ICMP admin-prohibited on 443",
        &out,
        "icmp_admin_prohibited",
        "connected",
    );
    let r = out.report();
    let summary = stage(&r, "api", "tcp")["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(summary.contains("administratively prohibited"), "{summary}");
}

#[test]
fn realfirewall_udp53_dropped_while_tcp53_answers() {
    if let Some(why) = why_not() {
        return skip(&format!("realfirewall: {why}"));
    }
    let bed = bed("udp dport 53 drop;");
    let out = run_bed(&bed);
    out.assert_exit(2);
    let r = out.report();
    let ids = suspect_ids(&r);
    for (name, _, _) in HOSTS {
        let dns = stage(&r, name, "dns");
        say(&format!(
            "realfirewall: UDP/53 dropped: {name} {} — {} · suspects {ids:?}",
            dns["code"], dns["summary"]
        ));
        assert_eq!(
            dns["code"],
            "dns.udp_blocked",
            "{dns:#}\n{}",
            out.describe()
        );
        let transports = &dns["data"]["transports"];
        assert_eq!(transports[0]["transport"], "udp", "{dns:#}");
        assert_eq!(transports[0]["result"], "no answer in time", "{dns:#}");
        assert_eq!(transports[1]["transport"], "tcp", "{dns:#}");
        assert_eq!(transports[1]["result"], "answered", "{dns:#}");
        let summary = dns["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains("over UDP") && summary.contains("over TCP"),
            "{summary}"
        );
        // The name's addresses came over TCP: the later stages ran, and passed.
        assert_stages(
            &r,
            name,
            &[
                ("fail", "dns.udp_blocked"),
                ("pass", "tcp.ok"),
                ("pass", "tls.ok"),
                ("pass", "http.ok"),
                ("pass", "latency.ok"),
            ],
        );
    }
    assert_eq!(
        top_suspect(&r),
        "vpn_firewall",
        "{ids:?}\n{}",
        out.describe()
    );
}

#[test]
fn realfirewall_one_port_of_one_host() {
    if let Some(why) = why_not() {
        return skip(&format!("realfirewall: {why}"));
    }
    let bed = bed("ip daddr 203.0.113.10 tcp dport 443 drop;");
    let out = run_bed(&bed);
    out.assert_exit(2);
    let r = out.report();
    let ids = suspect_ids(&r);
    let tcp = stage(&r, "api", "tcp");
    say(&format!(
        "realfirewall: one port of one host: api {} — {} · suspects {ids:?}",
        tcp["code"], tcp["summary"]
    ));
    assert_eq!(tcp["code"], "tcp.filtered", "{tcp:#}\n{}", out.describe());
    assert_eq!(tcp["data"]["filter"], "drop", "{tcp:#}");
    assert_eq!(tcp["data"]["control"]["result"], "connected", "{tcp:#}");
    let summary = tcp["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("port 443") && summary.contains("port 80"),
        "{summary}"
    );
    for name in ["sign-in", "neutral"] {
        assert_eq!(code(&r, name, "tcp"), "tcp.ok", "{}", out.describe());
        assert_eq!(code(&r, name, "http"), "http.ok", "{}", out.describe());
        // A connection that succeeds never gets a control.
        assert!(stage(&r, name, "tcp")["data"].get("control").is_none());
    }
    assert_eq!(
        top_suspect(&r),
        "vpn_firewall",
        "{ids:?}\n{}",
        out.describe()
    );
}

/// The weak link: the delay line's two namespaces, the three hosts on the server side.
fn weak_bed() -> (Testbed, Servers) {
    let bed = Testbed::new(Shaping::default()).expect("the test bed");
    let mut at = Vec::new();
    for (i, (name, _, _)) in HOSTS.iter().enumerate() {
        let a = format!("10.213.0.{}", 10 + i);
        bed.server
            .ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"])
            .expect("an endpoint address");
        at.push((*name, a));
    }
    let servers = servers(&bed.server, &bed.client, &SERVER_V4.to_string(), &at);
    (bed, servers)
}

#[test]
fn realfirewall_weak_link_is_a_weak_signal_in_20_runs_of_20() {
    if let Some(why) = why_not() {
        return skip(&format!("realfirewall: {why}"));
    }
    let (bed, servers) = weak_bed();
    // The tool's own thresholds: a 300 ms median is what they call high.
    let profile = profile_with("");
    let resolver = SERVER_V4.to_string();
    let mut firsts = Vec::new();
    let started = Instant::now();
    for run_no in 0..20u64 {
        // Every packet, both ways, every host: 300 ms round trips and 15 % loss, a new seed each run.
        let seed = 0x00f1_4e00 + run_no;
        let shaping = Shaping::rtt(Duration::from_millis(300)).with_loss(0.15, Filter::all(), seed);
        bed.set(shaping);
        let out = run(
            &bed.client,
            &resolver,
            &servers.ca.ca_file(),
            &profile,
            "1500ms",
        );
        let r = out.report();
        let ids = suspect_ids(&r);
        let codes: Vec<String> = r["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] != "pass")
            .map(|c| {
                format!(
                    "{} {}",
                    c["target"].as_str().unwrap_or("-"),
                    c["code"].as_str().unwrap_or("")
                )
            })
            .collect();
        say(&format!(
            "realfirewall: weak link run {}: first {:?} · {codes:?}",
            run_no + 1,
            ids.first()
        ));
        assert_eq!(
            ids.first().map(String::as_str),
            Some("weak_signal"),
            "run {} (seed {seed:#x}): {ids:?}\n{}",
            run_no + 1,
            out.describe()
        );
        firsts.push(ids.first().cloned().unwrap_or_default());
    }
    say(&format!(
        "realfirewall: weak link: weak_signal first in {} runs of 20 ({:.1} s)",
        firsts.iter().filter(|f| *f == "weak_signal").count(),
        started.elapsed().as_secs_f64()
    ));
}

/// The diagnosis of a silent port, without a network: on a steady path a firewall, where the
/// control itself was slow (or latency is measured high) the link's — the order the 20 runs
/// above rely on, checked on the checks themselves.
#[test]
fn realfirewall_a_silent_port_is_weighed_by_the_path() {
    use bmw_netcheck::diagnose::diagnose;
    use bmw_netcheck::knowledge::Knowledge;
    use bmw_netcheck::model::{Check, EndpointInfo, Probe, Role, Status};
    let kb = Knowledge::builtin().expect("the knowledge base");
    let endpoints: Vec<EndpointInfo> = HOSTS
        .iter()
        .map(|(name, _, role)| EndpointInfo {
            name: (*name).into(),
            host: host(name),
            port: 443,
            role: if *role == "baseline" {
                Role::Baseline
            } else {
                Role::Service
            },
        })
        .collect();
    let silent = |name: &str, slow: bool| {
        let c = Check::new(
            Probe::Tcp,
            Some(name),
            Status::Fail,
            "tcp.filtered",
            "a firewall drops connections to port 443",
        )
        .with("filter", "drop")
        .with("reason", "silent_drop");
        if slow { c.with("slow_path", true) } else { c }
    };
    let first = |checks: &[Check]| {
        diagnose(checks, &endpoints, &kb)
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default()
    };
    let steady: Vec<Check> = ["api", "neutral"]
        .iter()
        .map(|n| silent(n, false))
        .collect();
    assert_eq!(first(&steady), "vpn_firewall");
    let slow: Vec<Check> = ["api", "neutral"].iter().map(|n| silent(n, true)).collect();
    assert_eq!(first(&slow), "weak_signal");
    // Latency measured high on a host that answered: the same silence is the link's.
    let mut measured = steady.clone();
    measured.push(Check::new(
        Probe::Latency,
        Some("sign-in"),
        Status::Warn,
        "latency.high",
        "median 300 ms",
    ));
    assert_eq!(first(&measured), "weak_signal");
    // An ICMP "administratively prohibited" is the firewall's own word, whatever the link.
    let icmp = Check::new(
        Probe::Tcp,
        Some("api"),
        Status::Fail,
        "tcp.filtered",
        "a firewall rejects connections to port 443 with ICMP",
    )
    .with("filter", "icmp_admin_prohibited");
    let mut direct = measured.clone();
    direct.retain(|c| c.probe != Probe::Tcp);
    direct.push(icmp);
    assert_eq!(first(&direct), "vpn_firewall");
}
