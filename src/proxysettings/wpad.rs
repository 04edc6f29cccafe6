//! Web Proxy Auto-Discovery: where a network announces its PAC file. First DHCP option 252 in
//! the lease the system holds (NetworkManager, systemd-networkd, dhclient), then the DNS name
//! `wpad.<search domain>` for each domain of resolv.conf's search list, as browsers try them.
//!
//! Lease files are outside input: read without following a symlink's target blindly, bounded
//! ([`crate::safefile::read_bounded`]), and the URL found must be an `http(s)://` one.
//! `BMW_NETCHECK_RESOLV_ROOT`, the directory that stands in for `/` when resolv.conf is read,
//! also stands in for it here (the tests write their own leases and resolv.conf there).

use std::path::Path;
use std::time::SystemTime;

/// The most of one lease file that is read.
const MAX_LEASE_BYTES: u64 = 256 * 1024;

/// The most search domains tried.
const MAX_DOMAINS: usize = 3;

/// Whether a file in a lease directory is a lease, by its name.
type IsLease = fn(&str) -> bool;

/// Directories holding leases, below the root, and whether a file there is one (by name).
const LEASE_DIRS: [(&str, IsLease); 5] = [
    ("var/lib/NetworkManager", |n| n.ends_with(".lease")),
    ("run/NetworkManager/devices", |_| true),
    ("run/systemd/netif/leases", |_| true),
    ("var/lib/dhcp", |n| {
        n.starts_with("dhclient") && n.contains(".lease")
    }),
    ("var/lib/dhclient", |n| n.contains(".lease")),
];

/// The PAC URL of DHCP option 252 in the newest lease that has one.
pub fn dhcp_url(root: &Path) -> Option<String> {
    let mut found: Vec<(SystemTime, String)> = Vec::new();
    for (dir, wanted) in LEASE_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten().take(64) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || !wanted(&name) {
                continue;
            }
            let Ok(bytes) =
                crate::safefile::read_bounded(&entry.path(), MAX_LEASE_BYTES, "a lease")
            else {
                continue;
            };
            if let Some(url) = url_in_lease(&String::from_utf8_lossy(&bytes)) {
                found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), url));
            }
        }
    }
    found.into_iter().max_by_key(|(t, _)| *t).map(|(_, u)| u)
}

/// Option 252 in one lease file, whichever program wrote it (the last one in a dhclient file,
/// which appends): `option wpad "URL";` / `option unknown-252 "URL";` or colon-separated hex
/// (dhclient), `OPTION_252=<hex>` (systemd-networkd, NetworkManager's internal client),
/// `wpad=URL` (NetworkManager's device state).
pub fn url_in_lease(text: &str) -> Option<String> {
    let mut last = None;
    for line in text.lines().map(str::trim) {
        let value = if let Some(rest) = line
            .strip_prefix("option wpad ")
            .or_else(|| line.strip_prefix("option unknown-252 "))
        {
            let v = rest.trim_end_matches(';').trim();
            match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(quoted) => Some(quoted.to_owned()),
                None => from_hex(&v.replace(':', "")),
            }
        } else if let Some(hex) = line.strip_prefix("OPTION_252=") {
            from_hex(hex.trim())
        } else {
            line.strip_prefix("wpad=").map(|v| v.trim().to_owned())
        };
        if let Some(v) = value.map(|v| v.trim_end_matches('\0').trim().to_owned())
            && (v.starts_with("http://") || v.starts_with("https://"))
            && v.len() <= 2048
        {
            last = Some(v);
        }
    }
    last
}

/// Hex digits to text (a lease may hold the option's bytes so).
fn from_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || hex.len() > 4096 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The WPAD names to try: `wpad.<domain>` for the first search domains of resolv.conf.
pub fn dns_names(root: &Path) -> Vec<String> {
    let path = root.join("etc/resolv.conf");
    let Ok(bytes) = crate::safefile::read_bounded(&path, 64 * 1024, "resolv.conf") else {
        return Vec::new();
    };
    crate::probe::resolvconf::parse(&String::from_utf8_lossy(&bytes))
        .search
        .into_iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty() && d.contains('.') && crate::profile::valid_host(d))
        .take(MAX_DOMAINS)
        .map(|d| format!("wpad.{d}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_252_in_every_lease_format() {
        let dhclient = "lease {\n  interface \"eth0\";\n  option unknown-252 \"http://old/wpad.dat\";\n}\n\
                        lease {\n  option wpad \"http://wpad.corp.lan/wpad.dat\";\n}\n";
        assert_eq!(
            url_in_lease(dhclient).as_deref(),
            Some("http://wpad.corp.lan/wpad.dat")
        );
        let hex = "  option unknown-252 68:74:74:70:3a:2f:2f:70:2f:78;\n";
        assert_eq!(url_in_lease(hex).as_deref(), Some("http://p/x"));
        let networkd = "ADDRESS=10.0.0.5\nOPTION_252=687474703a2f2f702f7800\n";
        assert_eq!(url_in_lease(networkd).as_deref(), Some("http://p/x"));
        let nm = "[dhcp4]\nwpad=http://p/proxy.pac\n";
        assert_eq!(url_in_lease(nm).as_deref(), Some("http://p/proxy.pac"));
        assert_eq!(url_in_lease("option wpad \"file:///etc/passwd\";"), None);
        assert_eq!(url_in_lease("OPTION_252=zz"), None);
    }
}
