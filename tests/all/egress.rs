//! `--egress` against a real STUN server (coturn's `turnserver`), in network namespaces:
//!
//! ```text
//!  client ns ── veth ── router ns (nftables masquerade) ── veth ── public ns: turnserver :3478
//!  192.168.77.2 or     192.168.77.1 / 100.64.77.1         203.0.113.1      203.0.113.10
//!  100.64.77.2 (CGNAT)
//! ```
//!
//! | case | the client's uplink | what the router does | code | says |
//! | --- | --- | --- | --- | --- |
//! | plain NAT | 192.168.77.2 | masquerade | `egress.ok` | public 203.0.113.1, IPv4, behind NAT |
//! | CGNAT | 100.64.77.2 (RFC 6598) | masquerade | `egress.cgnat` | behind carrier-grade NAT |
//! | no answer | 192.168.77.2 | drops UDP to 3478 | `egress.no_answer` (skip) | said once; exit 0 |
//! | two exits | 192.168.77.2 | reaches a second server (203.0.113.11) from 203.0.113.2 | `egress.cgnat` | each server sees another address |
//!
//! Only namespace addresses are used (203.0.113.0/24 is a documentation range); nothing leaves
//! the machine. Without root, `ip`, `nft` or `turnserver` the test says why and skips.

use crate::netns::ns::{self, Netns};
use crate::support::daemon::{Daemon, find};
use crate::support::*;
use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const STUN: &str = "203.0.113.10:3478";
/// The second STUN server (the same turnserver, on a second address).
const STUN2: &str = "203.0.113.11:3478";
const ROUTER_OUTSIDE: &str = "203.0.113.1";

/// The three namespaces and the STUN server; everything goes when dropped.
struct Bed {
    client: Netns,
    _router: Netns,
    _public: Netns,
    _stun: Daemon,
}

fn why_not() -> Option<String> {
    ns::unavailable_without(&["turnserver", "nft"])
}

fn sysctl(ns: &Netns, path: &str, value: &str) {
    ns.enter(|| std::fs::write(path, value))
        .expect("enter the namespace")
        .unwrap_or_else(|e| panic!("write {path}: {e}"));
}

/// Does a STUN Binding request to `STUN` get an answer (from inside `ns`)?
fn stun_answers(ns: &Netns) -> bool {
    ns.enter(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .ok()?;
        let id = [9u8; 12];
        sock.send_to(&bmw_netcheck::probe::egress::binding_request(&id), STUN)
            .ok()?;
        let mut buf = [0u8; 576];
        let n = sock.recv(&mut buf).ok()?;
        bmw_netcheck::probe::egress::mapped_address(&buf[..n], &id)
    })
    .ok()
    .flatten()
    .is_some()
}

/// What the router does besides masquerading.
#[derive(Clone, Copy, PartialEq)]
enum Router {
    Nat,
    /// Drops UDP to the STUN port: the server never hears the question.
    DropStun,
    /// Reaches the second server from a second outside address, as a carrier's NAT pool may.
    TwoExits,
}

/// The namespaces: the client on `client_net` (`x.y.z` of a /24, the router at `.1`, the client
/// at `.2`), the router masquerading onto 203.0.113.0/24, turnserver in the public namespace.
fn bed(client_net: &str, how: Router) -> Bed {
    let client = Netns::create("egc").expect("client namespace");
    let router = Netns::create("egr").expect("router namespace");
    let public = Netns::create("egp").expect("public namespace");
    ns::link(
        &client,
        "up0",
        &format!("{client_net}.2/24"),
        &router,
        "in0",
        &format!("{client_net}.1/24"),
    );
    ns::link(
        &router,
        "out0",
        "203.0.113.1/24",
        &public,
        "pub0",
        "203.0.113.10/24",
    );
    router
        .ip(&["addr", "add", "203.0.113.2/24", "dev", "out0"])
        .expect("the router's second outside address");
    public
        .ip(&["addr", "add", "203.0.113.11/24", "dev", "pub0"])
        .expect("the second server address");
    client
        .ip(&["route", "add", "default", "via", &format!("{client_net}.1")])
        .expect("the client's default route");
    sysctl(&router, "/proc/sys/net/ipv4/ip_forward", "1");
    let second_exit = if how == Router::TwoExits {
        "ip daddr 203.0.113.11 oifname \"out0\" snat to 203.0.113.2; "
    } else {
        ""
    };
    let mut rules = format!(
        "table ip egress_nat {{\n chain post {{ type nat hook postrouting priority 100; {second_exit}oifname \"out0\" masquerade; }}\n",
    );
    if how == Router::DropStun {
        rules.push_str(
            " chain stunblock { type filter hook forward priority 0; udp dport 3478 drop; }\n",
        );
    }
    rules.push_str("}\n");
    router.nft(&rules).expect("the router's rules");

    let dir = Daemon::scratch("turnserver");
    let mut cmd = public.command(find("turnserver").expect("turnserver"));
    cmd.args([
        "-n",
        "--stun-only",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "-L",
        "203.0.113.10",
        "-L",
        "203.0.113.11",
        "-p",
        "3478",
        "--log-file",
        "stdout",
        "--simple-log",
    ])
    .arg("--pidfile")
    .arg(dir.path().join("turnserver.pid"));
    let mut stun = Daemon::spawn_command("turnserver", cmd, dir);
    let addr: SocketAddr = STUN.parse().expect("address");
    stun.wait_until(addr, || stun_answers(&public));
    Bed {
        client,
        _router: router,
        _public: public,
        _stun: stun,
    }
}

/// The binary in the client namespace: the egress check alone, against the namespace's server.
fn run(bed: &Bed, format: &str) -> Outcome {
    run_asking(bed, format, &[STUN])
}

/// As [`run`], asking these STUN servers.
fn run_asking(bed: &Bed, format: &str, servers: &[&str]) -> Outcome {
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "api.netcheck.lan", 443)]);
    let mut cmd = bed.client.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
    cmd.args(["run", "--egress"]);
    for s in servers {
        cmd.args(["--stun", s]);
    }
    cmd.args([
        "--only",
        "egress",
        "--timeout",
        "2s",
        "--no-history",
        "--format",
        format,
    ])
    .arg("--profile")
    .arg(profile.path());
    run_command(cmd, Vec::new())
}

#[test]
fn egress_behind_plain_nat_names_the_public_address() {
    if let Some(why) = why_not() {
        return skip(&format!("egress: {why}"));
    }
    let bed = bed("192.168.77", Router::Nat);
    let out = run(&bed, "json");
    out.assert_exit(0);
    let r = out.report();
    let c = device_check(&r, "egress");
    say(&format!("egress, plain NAT: {}", c["summary"]));
    assert_eq!(
        (&c["status"], &c["code"]),
        (&"pass".into(), &"egress.ok".into()),
        "{c:#}"
    );
    let d = &c["data"];
    assert_eq!(d["public_address"], ROUTER_OUTSIDE);
    assert_eq!(d["local_address"], "192.168.77.2");
    assert_eq!(d["family"], "IPv4");
    assert_eq!(
        (&d["nat"], &d["cgnat"], &d["vpn"]),
        (&true.into(), &false.into(), &false.into())
    );
    assert!(
        c["summary"]
            .as_str()
            .is_some_and(|s| s.contains("behind NAT")),
        "{c:#}"
    );

    // A support ticket does not carry where the user is.
    let md = run(&bed, "markdown");
    md.assert_exit(0);
    // (The STUN server's own address, 203.0.113.10, is not the user's and stays.)
    let without_server = md.stdout.replace("203.0.113.10", "");
    assert!(!without_server.contains(ROUTER_OUTSIDE), "{}", md.stdout);
    assert!(md.stdout.contains("public address>"), "{}", md.stdout);
}

#[test]
fn egress_on_a_shared_100_64_uplink_is_carrier_grade_nat() {
    if let Some(why) = why_not() {
        return skip(&format!("egress: {why}"));
    }
    let bed = bed("100.64.77", Router::Nat);
    let out = run(&bed, "json");
    out.assert_exit(0);
    let r = out.report();
    let c = device_check(&r, "egress");
    say(&format!("egress, CGNAT: {}", c["summary"]));
    assert_eq!(c["code"], "egress.cgnat", "{c:#}");
    assert_eq!(c["data"]["local_address"], "100.64.77.2");
    assert_eq!(c["data"]["public_address"], ROUTER_OUTSIDE);
    assert_eq!(c["data"]["cgnat"], true);
    assert!(
        c["summary"]
            .as_str()
            .is_some_and(|s| s.contains("RFC 6598")),
        "{c:#}"
    );
    // The captcha's refusal of a shared address is named, from this evidence.
    let ids: Vec<&str> = r["suspects"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&"captcha_shared_address"), "{ids:?}");
}

#[test]
fn egress_without_an_answer_is_said_once_and_is_not_a_failure() {
    if let Some(why) = why_not() {
        return skip(&format!("egress: {why}"));
    }
    let bed = bed("192.168.77", Router::DropStun);
    let out = run(&bed, "json");
    out.assert_exit(0);
    let r = out.report();
    let egress: Vec<&Value> = r["checks"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["probe"] == "egress").collect())
        .unwrap_or_default();
    assert_eq!(egress.len(), 1, "{r:#}");
    let c = egress[0];
    assert_eq!(
        (&c["status"], &c["code"]),
        (&"skip".into(), &"egress.no_answer".into()),
        "{c:#}"
    );
    assert!(c["data"]["public_address"].is_null());
    assert!(
        c["summary"].as_str().is_some_and(|s| s.contains(STUN)),
        "{c:#}"
    );
}

#[test]
fn egress_seen_from_two_addresses_by_two_servers_is_carrier_grade_nat() {
    if let Some(why) = why_not() {
        return skip(&format!("egress: {why}"));
    }
    let bed = bed("192.168.77", Router::TwoExits);
    let out = run_asking(&bed, "json", &[STUN, STUN2]);
    out.assert_exit(0);
    let r = out.report();
    let c = device_check(&r, "egress");
    say(&format!("egress, two exits: {}", c["summary"]));
    assert_eq!(c["code"], "egress.cgnat", "{c:#}");
    let mapped: Vec<&str> = c["data"]["servers"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["mapped"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(mapped.len(), 2, "{c:#}");
    assert!(
        mapped[0].starts_with("203.0.113.1:") && mapped[1].starts_with("203.0.113.2:"),
        "{mapped:?}"
    );
    assert!(
        c["summary"]
            .as_str()
            .is_some_and(|s| s.contains("each STUN server sees another public address")),
        "{c:#}"
    );
}
