//! The network interfaces that are up: from `/sys/class/net` on Linux (with the ARP link type,
//! which tells a tunnel from an Ethernet link), from sysinfo elsewhere (names only).

/// An interface that is up.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub name: String,
    /// The kernel's ARP hardware type (`/sys/class/net/<if>/type`), where the system says.
    pub arp_type: Option<u32>,
}

#[cfg(target_os = "linux")]
pub fn up() -> Vec<Link> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).ok();
        let arp_type = read("type").and_then(|t| t.trim().parse().ok());
        let up = read("flags")
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .is_some_and(|f| f & 0x1 != 0);
        if up {
            found.push(Link { name, arp_type });
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
pub fn up() -> Vec<Link> {
    sysinfo::Networks::new_with_refreshed_list()
        .iter()
        .map(|(name, _)| name.clone())
        // macOS always has a few utun devices (iCloud, Back to My Mac): only higher ones can
        // be a VPN's, so the system's own are not listed.
        .filter(|n| !matches!(n.as_str(), "utun0" | "utun1" | "utun2" | "utun3"))
        .map(|name| Link {
            name,
            arp_type: None,
        })
        .collect()
}
