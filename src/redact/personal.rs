//! Personal details in text: the host name as a word, user names in home-directory paths, and
//! private, loopback and link-local addresses. Removed from Markdown reports unless
//! `--no-redact`.

use super::{MASK, PRIVATE, ends_token};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Replaces `word` (ASCII case-insensitive) where it is not part of a longer name:
/// `alice-laptop` matches in `alice-laptop.local` but not in `myalice-laptop2`.
pub(super) fn replace_word(text: &str, word: &str, with: &str) -> (String, usize) {
    let lower = text.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut last = 0;
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = !text[..start].chars().next_back().is_some_and(is_name_char);
        let after_ok = !text[end..].chars().next().is_some_and(is_name_char);
        if before_ok && after_ok {
            out.push_str(&text[last..start]);
            out.push_str(with);
            last = end;
            n += 1;
        }
        from = end;
    }
    out.push_str(&text[last..]);
    (out, n)
}

// ---- user names in paths ------------------------------------------------------------------------

/// `/home/alice/x` → `/home/***/x`, `/Users/alice` → `/Users/***`, `C:\Users\alice\x` →
/// `C:\Users\***\x` (also with forward slashes, any case of `users`).
pub(super) fn redact_user_paths(text: &str) -> (String, usize) {
    const ROOTS: [&str; 4] = ["/home/", "/users/", "\\users\\", "/var/home/"];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut i = 0;
    while i < text.len() {
        let hit = ROOTS
            .iter()
            .filter(|root| lower[i..].starts_with(**root))
            .max_by_key(|root| root.len());
        if let Some(root) = hit {
            let name_start = i + root.len();
            let name_len = text[name_start..]
                .find(|c: char| matches!(c, '/' | '\\') || ends_token(c) || c == '\'')
                .unwrap_or(text.len() - name_start);
            out.push_str(&text[i..name_start]);
            let name = &text[name_start..name_start + name_len];
            if name.is_empty() || name == MASK {
                out.push_str(name);
            } else {
                out.push_str(MASK);
                n += 1;
            }
            i = name_start + name_len;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    (out, n)
}

// ---- private addresses --------------------------------------------------------------------------

/// Is this address one that says something about the local network rather than the Internet?
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            let first = v6.segments()[0];
            v6 == Ipv6Addr::LOCALHOST
                || (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (first & 0xffc0) == 0xfe80 // fe80::/10 link-local
        }
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    ip.is_private() || ip.is_loopback() || ip.is_link_local()
}

fn is_ip_char(c: char) -> bool {
    c.is_ascii_hexdigit() || c == '.' || c == ':'
}

/// Replaces private addresses (with or without an IPv4 `:port`) by [`PRIVATE`]. Candidates are
/// maximal runs of hex digits, dots and colons that are not glued to a longer word, so
/// `host10.0.0.1x` and version strings stay as they are.
pub(super) fn redact_private_ips(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if !is_ip_char(c) {
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let len = text[i..]
            .find(|c: char| !is_ip_char(c))
            .unwrap_or(text.len() - i);
        let run = &text[i..i + len];
        let glued_before = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let glued_after = text[i + len..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        // Trailing punctuation of a sentence ("... at 10.0.0.1.") is not part of the address.
        let core = run.trim_end_matches(['.', ':']);
        let tail = &run[core.len()..];
        match (glued_before || glued_after, private_in(core)) {
            (false, Some(port)) => {
                out.push_str(PRIVATE);
                out.push_str(port);
                out.push_str(tail);
                n += 1;
            }
            _ => out.push_str(run),
        }
        i += len;
    }
    (out, n)
}

/// If `s` is a private address, optionally with an IPv4 port, returns the `:port` part to keep.
fn private_in(s: &str) -> Option<&str> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return is_private(ip).then_some("");
    }
    if let Ok(sa) = s.parse::<SocketAddrV4>() {
        let colon = s.rfind(':')?;
        return private_v4(*sa.ip()).then_some(&s[colon..]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::HOSTNAME;

    #[test]
    fn user_names_in_paths() {
        let r = |s: &str| redact_user_paths(s).0;
        assert_eq!(r("/home/alice/.cache"), "/home/***/.cache");
        assert_eq!(r("free space on /home/alice"), "free space on /home/***");
        assert_eq!(r("/Users/bob/Library"), "/Users/***/Library");
        assert_eq!(r(r"C:\Users\alice\AppData"), r"C:\Users\***\AppData");
        assert_eq!(r("c:/users/alice/x"), "c:/users/***/x");
        assert_eq!(r("/var/home/carol/x"), "/var/home/***/x");
        assert_eq!(r("/tmp and /home/"), "/tmp and /home/");
        assert_eq!(r("ünïcode /home/zoë/x ✓"), "ünïcode /home/***/x ✓");
    }

    #[test]
    fn user_names_with_spaces_keep_the_rest_of_the_path() {
        // A space ends the token: the name is redacted up to it; better than leaking it.
        assert_eq!(
            redact_user_paths("/Users/Bob Smith/Library").0,
            "/Users/*** Smith/Library"
        );
    }

    #[test]
    fn private_addresses() {
        let r = |s: &str| redact_private_ips(s).0;
        assert_eq!(r("answered 10.0.0.1"), "answered <private>");
        assert_eq!(
            r("connected to 192.168.1.20:443."),
            "connected to <private>:443."
        );
        assert_eq!(
            r("172.16.0.1 172.31.255.255 172.32.0.1"),
            "<private> <private> 172.32.0.1"
        );
        assert_eq!(
            r("127.0.0.1 169.254.1.1 8.8.8.8"),
            "<private> <private> 8.8.8.8"
        );
        assert_eq!(
            r("[::1]:443 fe80::1%eth0 fd12:3456::1"),
            "[<private>]:443 <private>%eth0 <private>"
        );
        assert_eq!(r("2001:db8::1 ::ffff:10.0.0.1"), "2001:db8::1 <private>");
        // 0.0.0.0 is evidence of a sinkhole, not a private detail.
        assert_eq!(r("0.0.0.0 and ::"), "0.0.0.0 and ::");
        // Not addresses, or glued to a word.
        assert_eq!(
            r("TLSv1.3 at 12:30:45, v10.0.0.1x, host10.0.0.1"),
            "TLSv1.3 at 12:30:45, v10.0.0.1x, host10.0.0.1"
        );
        assert_eq!(r("2025-01-01T10:00:00Z"), "2025-01-01T10:00:00Z");
    }

    #[test]
    fn host_name_as_a_word() {
        let (t, n) = replace_word(
            "ALICE-LAPTOP.local alice-laptop2 myalice-laptop (alice-laptop)",
            "alice-laptop",
            HOSTNAME,
        );
        assert_eq!(
            t,
            "<hostname>.local alice-laptop2 myalice-laptop (<hostname>)"
        );
        assert_eq!(n, 2);
    }
}
