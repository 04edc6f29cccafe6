//! Which network interfaces are tunnels: by the kernel's link type or a VPN product's interface
//! name. Shared below the probes: the vpn probe lists the tunnels and judges whether one carries
//! the traffic, the egress probe says whether the public address is a tunnel's exit.

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

/// A tunnel interface, by the kernel's link type (none, PPP, IP-in-IP) or a VPN product's name.
pub fn looks_like_tunnel(name: &str, arp_type: Option<u32>) -> bool {
    let lower = name.to_ascii_lowercase();
    TUNNEL_PREFIXES.iter().any(|p| lower.starts_with(p))
        // ARPHRD_NONE (tun, WireGuard), ARPHRD_PPP, ARPHRD_TUNNEL, ARPHRD_TUNNEL6
        || matches!(arp_type, Some(65534) | Some(512) | Some(768) | Some(769))
}
