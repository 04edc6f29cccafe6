//! The kernel's routing tables, as text in the kernel's own format (`/proc/net/route`,
//! `/proc/net/ipv6_route`); the parsing is the callers' pure functions, tested with fixtures.
//! Elsewhere the tables are empty: no default route is known, and nothing is claimed about one.

/// The IPv4 and IPv6 routing tables.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub v4: String,
    pub v6: String,
}

#[cfg(target_os = "linux")]
pub fn tables() -> Tables {
    Tables {
        v4: std::fs::read_to_string("/proc/net/route").unwrap_or_default(),
        v6: std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default(),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn tables() -> Tables {
    Tables::default()
}
