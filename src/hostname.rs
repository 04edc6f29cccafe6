//! What counts as a host in a profile, a proxy setting or a STUN server: a DNS name (RFC 1123
//! labels) or an IP literal. One rule for every place a host is written, so `a..b` or `1.2.3` is
//! refused the same way wherever it appears.

use std::net::{IpAddr, Ipv6Addr};

/// A DNS name (RFC 1123 labels, underscores tolerated as resolvers do) or an IP literal.
pub fn valid_host(host: &str) -> bool {
    // Brackets belong around an IPv6 literal, both of them or neither: `[::1` is a typo.
    let bare = match host.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']') {
            Some(v6) => return v6.parse::<Ipv6Addr>().is_ok(),
            None => return false,
        },
        None if host.ends_with(']') => return false,
        None => host,
    };
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        // All-numeric names that are not valid addresses (e.g. "1.2.3") are typos, not hosts.
        && !name.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for h in [
            "a.example",
            "cocoapi.bmwgroup.com",
            "127.0.0.1",
            "::1",
            "[::1]",
            "x_y.lan",
            "a.",
        ] {
            assert!(valid_host(h), "{h}");
        }
        for h in ["", "a..b", "-a.b", "a b", "1.2.3", "a/b", &"a".repeat(64)] {
            assert!(!valid_host(h), "{h}");
        }
    }
}
