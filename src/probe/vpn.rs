//! vpn: tunnel interfaces that are up, and whether the default route goes through one.
//!
//! VPNs and tunnels are a classic cause of "works at home, not at work" and of TLS handshakes
//! that die half-way. A tunnel that is merely up (split tunnelling) matters less than one that
//! carries the default route, so both facts are reported. The kernel's tables come from
//! `crate::platform` (on Linux /sys/class/net, /proc/net/route, /proc/net/ipv6_route; elsewhere
//! interface names are the only clue).
//!
//! Kept exemplary on purpose: the verdict is the pure [`judge`], tested with made-up tables; the
//! reading of the system is a thin layer in front of it.

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, DeviceFuture, DeviceInput, Run};

/// The vpn probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Vpn,
    name: "vpn",
    description: "tunnel interfaces that are up and whether the default route uses one",
    codes: &["vpn.none", "vpn.active", "vpn.timeout", "vpn.skipped"],
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

/// Name prefixes of tunnel and VPN interfaces across platforms and products.
const TUNNEL_PREFIXES: [&str; 16] = [
    "tun",
    "tap",
    "wg",
    "utun",
    "ppp",
    "ipsec",
    "tailscale",
    "zt",
    "nordlynx",
    "proton",
    "vti",
    "gpd",
    "cscotun",
    "mullvad",
    "ztun",
    "wt",
];

pub fn looks_like_tunnel(name: &str, arp_type: Option<u32>) -> bool {
    let lower = name.to_ascii_lowercase();
    TUNNEL_PREFIXES.iter().any(|p| lower.starts_with(p))
        // ARPHRD_NONE (tun, WireGuard), ARPHRD_PPP, ARPHRD_TUNNEL, ARPHRD_TUNNEL6
        || matches!(arp_type, Some(65534) | Some(512) | Some(768) | Some(769))
}

/// The interface of the default route in a /proc/net/route table.
pub fn default_route_v4(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
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
        .map(|l| Tunnel { name: l.name })
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
    judge(tunnels.iter().map(|t| t.name.clone()).collect(), v4, v6)
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
}
