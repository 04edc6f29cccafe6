//! A real OpenVPN tunnel (Debian's `openvpn`, a static key made by `openvpn --genkey secret` in
//! the test) in network namespaces, configured the way the field configures it:
//!
//! ```text
//!  client ns: up0 198.51.100.2 ── veth ── public ns: pub0 198.51.100.1
//!             tun0 10.8.0.2 (openvpn)                 tun1 10.8.0.1 (openvpn, when alive)
//!                                                     api 203.0.113.10, sign-in .11, neutral .12 :443
//! ```
//!
//! The client's default route goes through the public namespace, so every endpoint is reachable
//! without the tunnel: the only fault is the tunnel.
//!
//! | case | routes through tun0 | the peer | code | first suspect |
//! | --- | --- | --- | --- | --- |
//! | default route | `default dev tun0` | never started | `vpn.dead_tunnel` (tun0, openvpn) | `vpn_firewall` |
//! | `def1` | 0.0.0.0/1 + 128.0.0.0/1 (beside the default route) | started, its UDP dropped by nftables | `vpn.dead_tunnel` (tun0, openvpn) | `vpn_firewall` |
//! | control | `def1` | alive: answers for the endpoints' addresses | `vpn.active` | not `vpn_firewall` above low |
//!
//! Only namespace addresses are used (documentation ranges); nothing leaves the machine. Without
//! root, `ip`, `openvpn` or `nft` the test says why and skips.

use crate::netns::ns::{self, Netns};
use crate::support::daemon::{Daemon, find};
use crate::support::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const HOSTS: [(&str, &str, &str); 3] = [
    ("api", "203.0.113.10", "service"),
    ("sign-in", "203.0.113.11", "service"),
    ("neutral", "203.0.113.12", "baseline"),
];

/// How the client's traffic is put into the tunnel.
#[derive(Clone, Copy, PartialEq)]
enum Routes {
    /// The default route replaced by one through tun0.
    Default,
    /// OpenVPN's `redirect-gateway def1`: two /1 routes through tun0 beside the default route.
    Def1,
}

/// What the far end of the tunnel does.
#[derive(Clone, Copy, PartialEq)]
enum Peer {
    /// No OpenVPN at the far end.
    Absent,
    /// OpenVPN runs there, but nftables drops the tunnel's UDP before it.
    Dropped,
    /// OpenVPN runs there and answers for the endpoints' addresses.
    Alive,
}

struct Bed {
    client: Netns,
    _public: Netns,
    _listeners: Vec<TcpListener>,
    _vpn: Vec<Daemon>,
    _key: tempfile::TempDir,
}

fn why_not() -> Option<String> {
    ns::unavailable_without(&["openvpn", "nft"])
}

/// One end of the static-key tunnel, in `ns`.
fn openvpn(ns: &Netns, key: &Path, dev: &str, local: &str, remote: &str, extra: &[&str]) -> Daemon {
    let (here, there) = if dev == "tun0" {
        ("10.8.0.2", "10.8.0.1")
    } else {
        ("10.8.0.1", "10.8.0.2")
    };
    let mut cmd = ns.command(find("openvpn").expect("openvpn"));
    cmd.args(["--dev", dev, "--dev-type", "tun", "--proto", "udp"])
        .args(["--local", local, "--lport", "1194"])
        .args(["--remote", remote, "--rport", "1194"])
        .args(["--ifconfig", here, there, "--cipher", "AES-256-CBC"])
        .arg("--secret")
        .arg(key)
        .args(["--verb", "3"])
        .args(extra);
    Daemon::spawn_command(&format!("openvpn-{dev}"), cmd, Daemon::scratch("openvpn"))
}

/// Waits until `ip -n ns route` shows `wanted` (openvpn adds its routes once tun0 is up).
fn wait_route(ns: &Netns, daemon: &Daemon, wanted: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if ns.ip(&["route"]).is_ok_and(|r| r.contains(wanted)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no route `{wanted}`: {:?}\n{}",
        ns.ip(&["route"]),
        daemon.output()
    );
}

fn bed(routes: Routes, peer: Peer) -> Bed {
    let addrs: Vec<&str> = HOSTS.iter().map(|(_, a, _)| *a).collect();
    let (client, public) = ns::client_and_public("vp", &addrs);
    let mut listeners = Vec::new();
    for (_, addr, _) in HOSTS {
        let at: SocketAddr = format!("{addr}:443").parse().expect("address");
        listeners.push(public.bind_tcp(at).expect("listen in the public namespace"));
    }
    let key = tempfile::tempdir().expect("a directory for the key");
    let key_file = key.path().join("static.key");
    let made = std::process::Command::new(find("openvpn").expect("openvpn"))
        .args(["--genkey", "secret"])
        .arg(&key_file)
        .output()
        .expect("run openvpn --genkey");
    assert!(made.status.success(), "{made:?}");

    let mut vpn = Vec::new();
    if peer != Peer::Absent {
        vpn.push(openvpn(
            &public,
            &key_file,
            "tun1",
            ns::PUBLIC_ADDR,
            ns::CLIENT_ADDR,
            &[],
        ));
    }
    if peer == Peer::Dropped {
        let rules = "table inet vpnblock {\n chain in { type filter hook input priority 0; udp dport 1194 drop; }\n}\n";
        public.nft(rules).expect("the rule that drops the tunnel");
    }
    let extra: &[&str] = match routes {
        Routes::Default => &[],
        Routes::Def1 => &[
            "--route",
            "0.0.0.0",
            "128.0.0.0",
            "--route",
            "128.0.0.0",
            "128.0.0.0",
        ],
    };
    let client_vpn = openvpn(
        &client,
        &key_file,
        "tun0",
        ns::CLIENT_ADDR,
        ns::PUBLIC_ADDR,
        extra,
    );
    match routes {
        Routes::Default => {
            wait_route(&client, &client_vpn, "10.8.0.1 dev tun0");
            client
                .ip(&[
                    "route", "replace", "default", "via", "10.8.0.1", "dev", "tun0",
                ])
                .expect("the default route through the tunnel");
        }
        Routes::Def1 => wait_route(&client, &client_vpn, "128.0.0.0/1 via 10.8.0.1 dev tun0"),
    }
    vpn.push(client_vpn);
    if peer == Peer::Alive {
        wait_through_tunnel(&client, &vpn);
    }
    Bed {
        client,
        _public: public,
        _listeners: listeners,
        _vpn: vpn,
        _key: key,
    }
}

/// Waits until the api endpoint answers from the client namespace (through the live tunnel).
fn wait_through_tunnel(client: &Netns, vpn: &[Daemon]) {
    let at: SocketAddr = format!("{}:443", HOSTS[0].1).parse().expect("address");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        let ok = client
            .enter(|| TcpStream::connect_timeout(&at, Duration::from_millis(300)).is_ok())
            .unwrap_or(false);
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = vpn.iter().map(Daemon::output).collect();
    panic!(
        "the tunnel never carried a connection:\n{}",
        logs.join("\n---\n")
    );
}

/// The binary in the client namespace: tcp, latency and vpn on the three endpoints.
fn run(bed: &Bed) -> Outcome {
    let specs: Vec<EndpointSpec> = HOSTS
        .iter()
        .map(|(name, addr, role)| EndpointSpec::new(name, addr, 443).public(false).role(role))
        .collect();
    let profile = ProfileFile::new(&specs);
    let mut cmd = bed.client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
    cmd.args(["run", "--only", "tcp,latency,vpn", "--timeout", "1s"])
        .args(["--deadline", "15s", "--no-history", "--format", "json"])
        .arg("--profile")
        .arg(profile.path());
    run_command(cmd, Vec::new())
}

/// The dead-tunnel verdict: the code, the interface and its software, the evidence in words,
/// and `vpn_firewall` first.
fn assert_dead_tunnel(case: &str, out: &Outcome) {
    out.assert_exit(2);
    let r = out.report();
    let vpn = device_check(&r, "vpn");
    let ids = suspect_ids(&r);
    say(&format!(
        "realvpn: {case}: {} · suspects {ids:?}",
        vpn["summary"]
    ));
    assert_eq!(
        (&vpn["status"], &vpn["code"]),
        (&"fail".into(), &"vpn.dead_tunnel".into()),
        "{vpn:#}\n{}",
        out.describe()
    );
    assert_eq!(vpn["data"]["interface"], "tun0", "{vpn:#}");
    assert_eq!(vpn["data"]["vpn_software"], "openvpn", "{vpn:#}");
    // Named by the process that holds the TUN device, not guessed from "tun0".
    assert_eq!(vpn["data"]["vpn_software_from"], "process", "{vpn:#}");
    let summary = vpn["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("every host routed through tun0 timed out")
            && summary.contains("the neutral host too"),
        "{summary}"
    );
    assert_eq!(
        ids.first().map(String::as_str),
        Some("vpn_firewall"),
        "{ids:?}"
    );
}

#[test]
fn realvpn_dead_peer_behind_the_default_route_is_named() {
    if let Some(why) = why_not() {
        return skip(&format!("realvpn: {why}"));
    }
    let bed = bed(Routes::Default, Peer::Absent);
    assert_dead_tunnel("default route, no peer", &run(&bed));
}

#[test]
fn realvpn_dead_peer_behind_def1_routes_is_named() {
    if let Some(why) = why_not() {
        return skip(&format!("realvpn: {why}"));
    }
    let bed = bed(Routes::Def1, Peer::Dropped);
    let out = run(&bed);
    assert_dead_tunnel("def1, peer's UDP dropped", &out);
    // The def1 pair is the default route as far as the traffic goes.
    let vpn = device_check(&out.report(), "vpn");
    assert_eq!(vpn["data"]["default_route_v4"], "tun0", "{vpn:#}");
    assert_eq!(vpn["data"]["default_route_through_tunnel"], true, "{vpn:#}");
}

#[test]
fn realvpn_live_tunnel_is_not_blamed() {
    if let Some(why) = why_not() {
        return skip(&format!("realvpn: {why}"));
    }
    let bed = bed(Routes::Def1, Peer::Alive);
    let out = run(&bed);
    let r = out.report();
    let vpn = device_check(&r, "vpn");
    let ids = suspect_ids(&r);
    say(&format!(
        "realvpn: live tunnel: {} · suspects {ids:?}",
        vpn["summary"]
    ));
    assert_eq!(vpn["code"], "vpn.active", "{vpn:#}\n{}", out.describe());
    assert_eq!(
        vpn["data"]["routed_through_tunnel"],
        serde_json::json!(["api", "neutral", "sign-in"]),
        "{vpn:#}"
    );
    for c in r["checks"].as_array().into_iter().flatten() {
        assert_ne!(c["status"], "fail", "{c:#}");
    }
    let blamed = r["suspects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["id"] == "vpn_firewall" && s["confidence"] != "low");
    assert!(!blamed, "{ids:?}\n{}", out.describe());
}
