//! vpn: tunnel interfaces that are up, whether they carry the traffic, and whether the traffic
//! they carry comes back.
//!
//! VPNs and tunnels are a classic cause of "works at home, not at work" and of TLS handshakes
//! that die half-way. A tunnel that is merely up (split tunnelling) matters less than one that
//! carries the traffic, so both facts are reported. A tunnel carries the traffic when it holds
//! the default route, OpenVPN's `def1` pair (0.0.0.0/1 + 128.0.0.0/1, which beats a default
//! route without replacing it), or — the kernel's own answer, which policy rules such as
//! WireGuard's fwmark table cannot hide — when the route the kernel picks for an endpoint's
//! address leads through it ([`read_paths`], after the pipelines). When every host routed
//! through a tunnel timed out, the tunnel is dead or blocks the traffic (`vpn.dead_tunnel`):
//! the timeouts are its, not a weak signal's. The software is named from evidence: the program
//! holding the TUN device, else a known VPN program running, else the interface's name.
//! The kernel's answers come from `crate::platform`.
//!
//! Kept exemplary on purpose: the verdict is the pure [`judge`], tested with made-up tables; the
//! reading of the system is a thin layer in front of it.

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, DeviceFuture, DeviceInput, Run};
use crate::probe::tunnels::looks_like_tunnel;

/// The vpn probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Vpn,
    name: "vpn",
    description: "tunnel interfaces that are up, whether the traffic uses one, and whether it comes back",
    codes: &[
        "vpn.none",
        "vpn.active",
        "vpn.dead_tunnel",
        "vpn.timeout",
        "vpn.skipped",
    ],
    keys: &[],
    metrics: &[],
    needs: &[],
    run: Run::Device(start),
};

/// Starts the look: reading the interfaces and routes is blocking file work, off the async workers.
fn start(_: std::sync::Arc<DeviceInput>) -> DeviceFuture {
    Box::pin(async move {
        tokio::task::spawn_blocking(run)
            .await
            .map(|c| vec![c])
            .unwrap_or_default()
    })
}

/// The interface of the default route in a /proc/net/route table, or of OpenVPN's `def1` pair
/// (0.0.0.0/1 and 128.0.0.0/1 through one interface: together they cover every address and,
/// being longer prefixes, win over the default route).
pub fn default_route_v4(table: &str) -> Option<String> {
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<&str>>())
        .filter(|f| f.len() >= 8)
        .collect();
    // The kernel's table is in host byte order: 128.0.0.0 reads 00000080 on little-endian
    // machines and 80000000 on big-endian ones.
    let half = |h: &str| matches!(h, "00000080" | "80000000");
    let def1 = rows.iter().find_map(|low| {
        (low[1] == "00000000" && half(low[7]))
            .then(|| {
                rows.iter()
                    .any(|high| high[0] == low[0] && half(high[1]) && half(high[7]))
                    .then(|| low[0].to_owned())
            })
            .flatten()
    });
    def1.or_else(|| {
        rows.iter()
            .find(|f| f[1] == "00000000" && f[7] == "00000000")
            .map(|f| f[0].to_owned())
    })
}

/// The interface of the default route in a /proc/net/ipv6_route table.
pub fn default_route_v6(table: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 10 && f[0].chars().all(|c| c == '0') && f[1] == "00" && f[9] != "lo")
            .then(|| f[9].to_owned())
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tunnel {
    pub name: String,
}

fn tunnels_up() -> Vec<Tunnel> {
    let mut found: Vec<Tunnel> = crate::platform::links::up()
        .into_iter()
        .filter(|l| l.name != "lo" && looks_like_tunnel(&l.name, l.arp_type))
        // The name is shown in summaries and data: a link's name is outside text.
        .map(|l| Tunnel {
            name: crate::sanitize::outside(&l.name),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn default_routes() -> (Option<String>, Option<String>) {
    let tables = crate::platform::routes::tables();
    (default_route_v4(&tables.v4), default_route_v6(&tables.v6))
}

pub fn run() -> Check {
    let tunnels = tunnels_up();
    let (v4, v6) = default_routes();
    let owners: Vec<Option<String>> = tunnels
        .iter()
        .map(|t| crate::platform::processes::tunnel_owner(&t.name))
        .collect();
    // The process list is the next clue, needed only where no program holds a tunnel.
    let running = if owners.iter().any(Option::is_none) {
        crate::platform::processes::running()
    } else {
        Vec::new()
    };
    let found: Vec<(String, String, &str)> = tunnels
        .iter()
        .zip(owners)
        .filter_map(|(t, owner)| {
            software(&t.name, owner, &running).map(|(s, how)| (t.name.clone(), s, how))
        })
        .collect();
    let software: serde_json::Map<String, serde_json::Value> = found
        .iter()
        .map(|(t, s, _)| (t.clone(), s.as_str().into()))
        .collect();
    let from: serde_json::Map<String, serde_json::Value> = found
        .iter()
        .map(|(t, _, how)| (t.clone(), (*how).into()))
        .collect();
    judge(tunnels.iter().map(|t| t.name.clone()).collect(), v4, v6)
        .with("software", software)
        .with("software_from", from)
}

/// VPN programs by process name (as the system lists it, lowercased).
const PROGRAMS: [&str; 14] = [
    "openvpn",
    "wireguard-go",
    "wg-quick",
    "tailscaled",
    "openconnect",
    "vpnc",
    "charon",
    "nordvpnd",
    "mullvad-daemon",
    "warp-svc",
    "zerotier-one",
    "expressvpnd",
    "openfortivpn",
    "pppd",
];

/// Interface name prefixes that name their software.
const NAMED_BY_INTERFACE: [(&str, &str); 6] = [
    ("wg", "WireGuard (wg-quick or wireguard)"),
    ("tailscale", "Tailscale (tailscaled)"),
    ("nordlynx", "NordVPN"),
    ("utun", "a system VPN (utun)"),
    ("zt", "ZeroTier"),
    ("tun", "a TUN-based VPN such as OpenVPN"),
];

/// The software of a tunnel and how it was found: the program holding the interface
/// (`"process"`), a known VPN program that runs (`"running"`), or the interface's name
/// (`"interface name"`). `None` when nothing tells.
pub fn software(
    iface: &str,
    owner: Option<String>,
    running: &[String],
) -> Option<(String, &'static str)> {
    if let Some(owner) = owner.filter(|o| !o.is_empty()) {
        return Some((crate::sanitize::outside(&owner), "process"));
    }
    if let Some(p) = PROGRAMS.iter().find(|p| running.iter().any(|r| r == *p)) {
        return Some(((*p).to_owned(), "running"));
    }
    let lower = iface.to_ascii_lowercase();
    NAMED_BY_INTERFACE
        .iter()
        .find(|(prefix, _)| lower.starts_with(prefix))
        .map(|(_, name)| ((*name).to_owned(), "interface name"))
}

/// The verdict from the tunnels that are up and the default routes' interfaces.
pub fn judge(names: Vec<String>, v4: Option<String>, v6: Option<String>) -> Check {
    let via_tunnel = [&v4, &v6]
        .into_iter()
        .flatten()
        .any(|iface| names.contains(iface) || looks_like_tunnel(iface, None));
    let base = |c: Check| {
        c.with("interfaces", names.clone())
            .with("default_route_v4", v4.clone())
            .with("default_route_v6", v6.clone())
            .with("default_route_through_tunnel", via_tunnel)
    };
    if names.is_empty() && !via_tunnel {
        return base(Check::new(
            Probe::Vpn,
            None,
            Status::Pass,
            "vpn.none",
            "no VPN or tunnel interface is up",
        ));
    }
    // A tunnel that carries all traffic can be what blocks the app: a warning. One that only
    // routes some networks (split tunnelling, a container's tun) is reported, not held against
    // the run.
    let (status, summary) = if via_tunnel {
        (
            Status::Warn,
            format!(
                "a VPN/tunnel is up ({}) and carries the default route: all traffic goes through it",
                names.join(", ")
            ),
        )
    } else {
        (
            Status::Pass,
            format!(
                "a VPN/tunnel interface is up ({}), but the default route does not use it",
                names.join(", ")
            ),
        )
    };
    base(Check::new(Probe::Vpn, None, status, "vpn.active", summary))
}

/// What one endpoint's traffic did, for judging the tunnel it went through.
#[derive(Debug, Clone, PartialEq)]
struct Path {
    target: String,
    interface: String,
    /// Nothing came back: its connection (or, without an address, its resolver) timed out.
    timed_out: bool,
}

/// The address an endpoint's traffic went to: the tcp stage's, else its first resolved one,
/// else — when the name itself got no answer — its resolver's.
fn address_of(checks: &[Check], target: &str) -> Option<(std::net::IpAddr, bool)> {
    let of = |p: Probe| {
        checks
            .iter()
            .find(|c| c.probe == p && c.target.as_deref() == Some(target))
    };
    let ip = |s: &str| {
        s.parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| s.parse())
            .ok()
    };
    if let Some(tcp) = of(Probe::Tcp).filter(|c| c.status != Status::Skip)
        && let Some(addr) = tcp.data_str("address").and_then(ip)
    {
        return Some((addr, tcp.code == "tcp.timeout"));
    }
    let dns = of(Probe::Dns)?;
    if matches!(dns.code.as_str(), "dns.timeout" | "dns.dropped") {
        return dns.data_str("resolver").and_then(ip).map(|a| (a, true));
    }
    let first = dns.data.get("addresses")?.as_array()?.first()?.as_str()?;
    ip(first).map(|a| (a, false))
}

/// Each endpoint's path: the interface the kernel routes its address through (`route`), and
/// whether it timed out.
fn paths(checks: &[Check], route: &dyn Fn(std::net::IpAddr) -> Option<String>) -> Vec<Path> {
    let mut targets: Vec<&str> = checks.iter().filter_map(|c| c.target.as_deref()).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
        .into_iter()
        .filter_map(|t| {
            let (addr, timed_out) = address_of(checks, t)?;
            Some(Path {
                target: t.to_owned(),
                interface: route(addr)?,
                timed_out,
            })
        })
        .collect()
}

/// The tunnel every one of whose hosts timed out, with those hosts; `None` when each tunnel
/// that carries traffic had an answer from some host through it.
fn dead_tunnel<'a>(paths: &'a [Path], tunnels: &[String]) -> Option<(&'a str, Vec<&'a Path>)> {
    let mut through: Vec<&str> = paths
        .iter()
        .map(|p| p.interface.as_str())
        .filter(|i| tunnels.iter().any(|t| t == i) || looks_like_tunnel(i, None))
        .collect();
    through.sort_unstable();
    through.dedup();
    through.into_iter().find_map(|iface| {
        let hosts: Vec<&Path> = paths.iter().filter(|p| p.interface == iface).collect();
        hosts.iter().all(|p| p.timed_out).then_some((iface, hosts))
    })
}

/// After the pipelines: which endpoints the tunnels carry (the kernel's route for each
/// endpoint's address), and whether a tunnel is dead. The vpn check is updated in place; the
/// timeouts a dead tunnel explains are marked `explained_by`, so they are not read as a weak
/// signal as well. `baselines`: the neutral hosts' endpoint names.
pub fn read_paths(
    checks: &mut [Check],
    baselines: &[&str],
    route: &dyn Fn(std::net::IpAddr) -> Option<String>,
) {
    // No tunnel is up: no route leads through one, and the kernel need not be asked.
    let Some(at) = checks
        .iter()
        .position(|c| c.probe == Probe::Vpn && c.code == "vpn.active")
    else {
        return;
    };
    let tunnels: Vec<String> = checks[at]
        .data
        .get("interfaces")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let paths = paths(checks, route);
    let carried: Vec<&Path> = paths
        .iter()
        .filter(|p| tunnels.contains(&p.interface) || looks_like_tunnel(&p.interface, None))
        .collect();
    if carried.is_empty() {
        return;
    }
    let routed: Vec<&str> = carried.iter().map(|p| p.target.as_str()).collect();
    let vpn = &mut checks[at];
    vpn.data
        .insert("routed_through_tunnel".into(), routed.clone().into());
    if let Some((iface, hosts)) = dead_tunnel(&paths, &tunnels) {
        let dead: Vec<String> = hosts.iter().map(|p| p.target.clone()).collect();
        blame(vpn, iface, &dead, baselines);
        for c in checks.iter_mut() {
            let mine = c.target.as_ref().is_some_and(|t| dead.contains(t));
            if mine
                && matches!(
                    c.code.as_str(),
                    "tcp.timeout" | "dns.timeout" | "dns.dropped"
                )
            {
                c.data
                    .insert("explained_by".into(), "vpn.dead_tunnel".into());
            }
        }
    } else if vpn.code == "vpn.active" && vpn.status == Status::Pass {
        // The tables showed no default route through it, yet the kernel sends these hosts there
        // (a policy rule, a split that covers them): it carries the app's traffic after all.
        vpn.status = Status::Warn;
        vpn.summary = format!(
            "a VPN/tunnel is up ({}) and the kernel routes the checked hosts through it ({})",
            tunnels.join(", "),
            routed.join(", ")
        );
    }
}

/// Turns the vpn check into the dead tunnel's finding, saying which evidence decided it.
fn blame(vpn: &mut Check, iface: &str, dead: &[String], baselines: &[&str]) {
    let software = vpn
        .data
        .get("software")
        .and_then(|s| s.get(iface))
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .or_else(|| software(iface, None, &[]).map(|(s, _)| s));
    let from = vpn
        .data
        .get("software_from")
        .and_then(|s| s.get(iface))
        .cloned()
        .unwrap_or_else(|| software.as_ref().map_or("", |_| "interface name").into());
    let neutral = dead.iter().any(|d| baselines.contains(&d.as_str()));
    let evidence = format!(
        "every host routed through {iface} timed out ({}){}",
        dead.join(", "),
        if neutral {
            "; the neutral host too"
        } else {
            ""
        }
    );
    let by = software
        .as_deref()
        .map_or_else(String::new, |s| format!(" ({s})"));
    vpn.restate(
        Status::Fail,
        "vpn.dead_tunnel",
        format!(
            "the VPN tunnel {iface}{by} carries the traffic, but nothing comes back through it: {evidence}"
        ),
    );
    vpn.data.insert("interface".into(), iface.into());
    vpn.data.insert("vpn_software".into(), software.into());
    vpn.data.insert("vpn_software_from".into(), from);
    vpn.data.insert("timed_out".into(), dead.to_vec().into());
    vpn.data.insert("evidence".into(), evidence.into());
}

/// [`read_paths`] with the kernel's routes (or, in a run bound to one interface, that one).
pub fn read_run(checks: &mut [Check], endpoints: &[crate::profile::Endpoint]) {
    let baselines: Vec<&str> = endpoints
        .iter()
        .filter(|e| e.role == crate::model::Role::Baseline)
        .map(|e| e.name.as_str())
        .collect();
    // The interfaces are listed once for every endpoint's lookup.
    let interfaces = std::cell::OnceCell::new();
    let route = |ip| {
        crate::iface::bound().map(str::to_owned).or_else(|| {
            interfaces
                .get_or_init(crate::platform::route::Interfaces::read)
                .route_to(ip)
        })
    };
    read_paths(checks, &baselines, &route);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_names_and_types() {
        for n in [
            "tun0",
            "wg0",
            "utun4",
            "ppp0",
            "tailscale0",
            "ztabc",
            "nordlynx",
        ] {
            assert!(looks_like_tunnel(n, None), "{n}");
        }
        for n in ["eth0", "wlan0", "enp3s0", "ifb0", "docker0", "lo"] {
            assert!(!looks_like_tunnel(n, Some(1)), "{n}");
        }
        assert!(looks_like_tunnel("mycorp", Some(65534)));
    }

    #[test]
    fn only_a_tunnel_carrying_the_default_route_warns() {
        let none = judge(vec![], Some("eth0".into()), None);
        assert_eq!(
            (none.status, none.code.as_str()),
            (Status::Pass, "vpn.none")
        );
        let split = judge(vec!["wg0".into()], Some("eth0".into()), None);
        assert_eq!(
            (split.status, split.code.as_str()),
            (Status::Pass, "vpn.active")
        );
        let full = judge(vec!["wg0".into()], Some("wg0".into()), None);
        assert_eq!(
            (full.status, full.code.as_str()),
            (Status::Warn, "vpn.active")
        );
        let v6 = judge(
            vec!["tun0".into()],
            Some("eth0".into()),
            Some("tun0".into()),
        );
        assert_eq!(v6.status, Status::Warn);
        assert_eq!(v6.data["default_route_through_tunnel"], true);
    }

    #[test]
    fn default_routes_from_kernel_tables() {
        let v4 = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                  eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_v4(v4).as_deref(), Some("wg0"));
        assert_eq!(default_route_v4("Iface\n"), None);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert_eq!(default_route_v6(v6).as_deref(), Some("eth0"));
    }

    #[test]
    fn openvpn_def1_pair_counts_as_the_default_route() {
        let def1 = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    tun0\t00000000\t0200080A\t0003\t0\t0\t0\t00000080\t0\t0\t0\n\
                    tun0\t00000080\t0200080A\t0003\t0\t0\t0\t00000080\t0\t0\t0\n";
        assert_eq!(default_route_v4(def1).as_deref(), Some("tun0"));
        // Half of the pair is a split tunnel, not the default route.
        let half: String = def1.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(default_route_v4(&half).as_deref(), Some("eth0"));
    }

    #[test]
    fn software_is_named_from_the_strongest_evidence() {
        let running = vec!["bash".to_owned(), "tailscaled".to_owned()];
        assert_eq!(
            software("tun0", Some("openvpn".into()), &running),
            Some(("openvpn".to_owned(), "process"))
        );
        assert_eq!(
            software("tailscale0", None, &running),
            Some(("tailscaled".to_owned(), "running"))
        );
        assert_eq!(
            software("wg0", None, &[]).map(|s| s.1),
            Some("interface name")
        );
        assert_eq!(software("mycorp", None, &[]), None);
    }

    fn endpoint(target: &str, tcp: &str, addr: &str) -> Vec<Check> {
        let status = if tcp == "tcp.ok" {
            Status::Pass
        } else {
            Status::Fail
        };
        vec![Check::new(Probe::Tcp, Some(target), status, tcp, "tcp").with("address", addr)]
    }

    fn vpn_up(via_default: bool) -> Check {
        let v4 = if via_default { "tun0" } else { "eth0" };
        judge(vec!["tun0".into()], Some(v4.into()), None)
            .with("software", serde_json::json!({"tun0": "openvpn"}))
    }

    /// 10.9.0.0/16 goes through tun0, everything else through eth0.
    fn route(ip: std::net::IpAddr) -> Option<String> {
        let through_tun = ip.to_string().starts_with("10.9.");
        Some(if through_tun { "tun0" } else { "eth0" }.to_owned())
    }

    #[test]
    fn a_tunnel_whose_every_host_timed_out_is_dead() {
        let mut c = endpoint("api", "tcp.timeout", "10.9.0.10:443");
        c.extend(endpoint("neutral", "tcp.timeout", "10.9.0.20:443"));
        c.push(vpn_up(true));
        read_paths(&mut c, &["neutral"], &route);
        let vpn = c.iter().find(|c| c.probe == Probe::Vpn).expect("vpn check");
        assert_eq!(
            (vpn.status, vpn.code.as_str()),
            (Status::Fail, "vpn.dead_tunnel")
        );
        assert_eq!(vpn.data["interface"], "tun0");
        assert_eq!(vpn.data["vpn_software"], "openvpn");
        assert!(
            vpn.summary
                .contains("every host routed through tun0 timed out")
        );
        assert!(
            vpn.summary.contains("the neutral host too"),
            "{}",
            vpn.summary
        );
        let explained = c
            .iter()
            .filter(|c| c.data.contains_key("explained_by"))
            .count();
        assert_eq!(explained, 2);
    }

    #[test]
    fn a_tunnel_with_one_answer_is_alive_and_other_paths_are_not_its() {
        // One host answered through the tunnel: it works; the other's timeout is not its.
        let mut c = endpoint("api", "tcp.timeout", "10.9.0.10:443");
        c.extend(endpoint("neutral", "tcp.ok", "10.9.0.20:443"));
        c.push(vpn_up(true));
        read_paths(&mut c, &["neutral"], &route);
        let vpn = c.iter().find(|c| c.probe == Probe::Vpn).expect("vpn check");
        assert_eq!(vpn.code, "vpn.active");
        // Timeouts off the tunnel (eth0) say nothing about it.
        let mut c = endpoint("api", "tcp.timeout", "192.0.2.10:443");
        c.push(vpn_up(false));
        read_paths(&mut c, &[], &route);
        let vpn = c.iter().find(|c| c.probe == Probe::Vpn).expect("vpn check");
        assert_eq!(
            (vpn.status, vpn.code.as_str()),
            (Status::Pass, "vpn.active")
        );
    }

    #[test]
    fn a_tunnel_the_kernel_routes_hosts_through_warns_without_a_default_route() {
        // A policy rule (WireGuard's fwmark table) hides from the main table, not from the
        // kernel's answer.
        let mut c = endpoint("api", "tcp.ok", "10.9.0.10:443");
        c.push(vpn_up(false));
        read_paths(&mut c, &[], &route);
        let vpn = c.iter().find(|c| c.probe == Probe::Vpn).expect("vpn check");
        assert_eq!(
            (vpn.status, vpn.code.as_str()),
            (Status::Warn, "vpn.active")
        );
        assert_eq!(
            vpn.data["routed_through_tunnel"],
            serde_json::json!(["api"])
        );
    }
}
