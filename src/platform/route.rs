//! Which interface the kernel would send traffic to an address through: asked of the kernel
//! itself, not read from one routing table, so policy rules (WireGuard's fwmark table), OpenVPN's
//! `def1` pair (0.0.0.0/1 + 128.0.0.0/1) and any other split of the address space are answered
//! exactly as the traffic sees them.
//!
//! A UDP socket is connected to the address (no packet is sent: connecting a datagram socket only
//! makes the kernel choose the route and the source address), and the interface holding that
//! source address is the route's interface. This works wherever sockets do; the interface list
//! comes from sysinfo on every platform.

use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The interface the kernel routes traffic to `to` through, or `None` when there is no route
/// (or the source address belongs to no interface the system lists).
pub fn interface_to(to: IpAddr) -> Option<String> {
    Interfaces::read().route_to(to)
}

/// The system's interfaces and their addresses, listed once for many lookups (listing them
/// reads every interface and its counters).
pub struct Interfaces(Vec<(String, Vec<IpAddr>)>);

impl Interfaces {
    pub fn read() -> Interfaces {
        let Ok(nets) = sysinfo::Networks::new_with_refreshed_list() else {
            return Interfaces(Vec::new());
        };
        Interfaces(
            nets.iter()
                .map(|(name, d)| {
                    let addrs = d.ip_networks().iter().map(|n| n.addr).collect();
                    (name.to_string_lossy().into_owned(), addrs)
                })
                .collect(),
        )
    }

    /// The interface that holds the address `local`.
    pub fn holding(&self, local: IpAddr) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, addrs)| addrs.contains(&local))
            .map(|(name, _)| name.as_str())
    }

    /// The interface the kernel routes traffic to `to` through.
    pub fn route_to(&self, to: IpAddr) -> Option<String> {
        self.holding(source_address(to)?).map(str::to_owned)
    }
}

/// The source address the kernel picks for traffic to `to` (its route lookup).
pub fn source_address(to: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = match to {
        IpAddr::V4(_) => "0.0.0.0:0",
        IpAddr::V6(_) => "[::]:0",
    }
    .parse()
    .ok()?;
    let sock = UdpSocket::bind(bind).ok()?;
    // Any port will do; the route does not depend on it, and nothing is sent.
    sock.connect(SocketAddr::new(to, 9)).ok()?;
    let local = sock.local_addr().ok()?.ip();
    (!local.is_unspecified()).then_some(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_routed_through_the_loopback_interface() {
        let to: IpAddr = "127.0.0.1".parse().expect("address");
        assert_eq!(source_address(to), Some(to));
        // Where sysinfo lists the loopback interface, its name is the answer.
        if let Some(name) = interface_to(to) {
            assert!(name.starts_with("lo"), "{name}");
        }
    }
}
