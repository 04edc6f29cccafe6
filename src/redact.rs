//! Redaction: what leaves the machine in a report must not carry secrets or more of the user than
//! the diagnosis needs.
//!
//! Two levels, because they protect different things:
//! - **credentials** (`user:pass@` in proxy URLs) are a secret. They are removed from every format,
//!   the history file included, whatever the flags say: defence in depth behind the proxy probe,
//!   which should never have put them in a check in the first place.
//! - **personal details** (the device's host name, user names in home-directory paths, private,
//!   loopback and link-local addresses) are not secrets, but a support ticket travels far. They are
//!   removed from Markdown reports unless `--no-redact`.
//!
//! Redaction walks every string of the report (summaries, data values at any depth, suspects,
//! endpoints, the device), so a new probe cannot forget to call it. The report then lists the kinds
//! it removed (never the values) in `redacted`, so whoever reads it knows what is missing.

use crate::model::Report;
use serde_json::Value;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};

/// Replaces private, loopback and link-local addresses.
pub const PRIVATE: &str = "<private>";
/// Replaces the device's host name.
pub const HOSTNAME: &str = "<hostname>";
/// Replaces the public address the egress check found (opt-in, `--egress`).
pub const PUBLIC: &str = "<public address>";
/// Replaces credentials and user names.
pub const MASK: &str = "***";

/// What a redaction pass removed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub credentials: usize,
    pub hostname: usize,
    pub user_names: usize,
    pub addresses: usize,
    /// The public address of `--egress`.
    pub public: usize,
}

impl Counts {
    /// Human-readable kinds for `Report::redacted`, e.g. `"private addresses (3)"`.
    fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |n: usize, what: &str| {
            if n > 0 {
                out.push(format!("{what} ({n})"));
            }
        };
        add(self.credentials, "credentials and secret URL parameters");
        add(self.hostname, "device host name");
        add(self.user_names, "user names in paths");
        add(self.addresses, "private, loopback and link-local addresses");
        add(self.public, "the public address the egress check found");
        out
    }
}

/// Removes credentials from every string of the report. For every format and the history line.
pub fn credentials(report: &mut Report) -> Counts {
    let mut r = Redactor {
        personal: false,
        hostname: None,
        public: Vec::new(),
        counts: Counts::default(),
    };
    r.report(report);
    note(report, &r.counts);
    r.counts
}

/// Removes credentials and personal details (host name, user names in paths, private addresses).
/// For reports that leave the machine: Markdown unless `--no-redact`.
pub fn personal(report: &mut Report) -> Counts {
    let hostname = report
        .device
        .as_ref()
        .map(|d| d.hostname.trim().to_owned())
        .filter(|h| usable_hostname(h));
    let mut r = Redactor {
        personal: true,
        hostname,
        public: public_addresses(report),
        counts: Counts::default(),
    };
    r.report(report);
    // The host name field itself goes even when it was too short to search for elsewhere.
    if let Some(d) = report.device.as_mut()
        && !d.hostname.is_empty()
        && d.hostname != HOSTNAME
    {
        d.hostname = HOSTNAME.to_owned();
        r.counts.hostname += 1;
    }
    note(report, &r.counts);
    r.counts
}

/// Records what was removed, merging with an earlier pass (credentials first, then personal).
fn note(report: &mut Report, counts: &Counts) {
    for kind in counts.describe() {
        let label = kind.split(" (").next().unwrap_or(&kind).to_owned();
        report.redacted.retain(|k| !k.starts_with(&label));
        report.redacted.push(kind);
    }
}

/// The public addresses the egress check found: where the user is, which a ticket does not need.
fn public_addresses(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.probe == crate::model::Probe::Egress)
        .filter_map(|c| c.data_str("public_address"))
        .filter(|a| a.parse::<IpAddr>().is_ok())
        .map(str::to_owned)
        .collect()
}

/// A name short or generic enough to match ordinary words is not searched for in text.
fn usable_hostname(h: &str) -> bool {
    h.len() >= 3 && !h.eq_ignore_ascii_case("localhost")
}

struct Redactor {
    personal: bool,
    hostname: Option<String>,
    public: Vec<String>,
    counts: Counts,
}

impl Redactor {
    fn report(&mut self, r: &mut Report) {
        self.string(&mut r.region);
        for c in &mut r.checks {
            if let Some(t) = c.target.as_mut() {
                self.string(t);
            }
            self.string(&mut c.summary);
            for v in c.data.values_mut() {
                self.value(v);
            }
        }
        for s in &mut r.suspects {
            self.string(&mut s.title);
            self.string(&mut s.symptom);
            for e in s.evidence.iter_mut().chain(s.steps.iter_mut()) {
                self.string(e);
            }
        }
        for e in &mut r.endpoints {
            self.string(&mut e.name);
            self.string(&mut e.host);
        }
        if let Some(d) = r.device.as_mut() {
            self.string(&mut d.os);
            if !self.personal {
                self.string(&mut d.hostname);
            }
        }
    }

    fn value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => self.string(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.value(i)),
            _ => {}
        }
    }

    fn string(&mut self, s: &mut String) {
        let mut text = match redact_credentials(s) {
            (Cow::Owned(t), n) => {
                self.counts.credentials += n;
                t
            }
            (Cow::Borrowed(_), _) => std::mem::take(s),
        };
        if self.personal {
            if let Some(h) = &self.hostname {
                let (t, n) = replace_word(&text, h, HOSTNAME);
                self.counts.hostname += n;
                text = t;
            }
            for a in &self.public {
                let (t, n) = replace_word(&text, a, PUBLIC);
                self.counts.public += n;
                text = t;
            }
            let (t, n) = redact_user_paths(&text);
            self.counts.user_names += n;
            let (t, n) = redact_private_ips(&t);
            self.counts.addresses += n;
            text = t;
        }
        *s = text;
    }
}

// ---- credentials --------------------------------------------------------------------------------

/// Characters that cannot appear in a URL: they end a token. Everything else may be part of a
/// password (RFC 3986 allows `;,=!$&'()*+` in userinfo), so it is kept inside the token.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '<' | '>' | '`' | '{' | '}' | '|' | '\\' | '^')
}

/// `scheme://user:pass@host` → `scheme://***@host`, and `user:pass@host` (a proxy variable
/// without a scheme) → `***@host`. A plain e-mail address (`name@host`, no scheme, no colon) is
/// left alone. Returns the text and how many credentials it removed.
pub fn redact_credentials(text: &str) -> (Cow<'_, str>, usize) {
    let (text, tokens) = redact_query_secrets(text);
    let (out, n) = redact_userinfo(&text);
    match (out, tokens + n) {
        (_, 0) => (text, 0),
        (out, total) => (Cow::Owned(out.into_owned()), total),
    }
}

/// A single URL as given (a proxy variable's value, the URL of a proxy setting): its userinfo is
/// everything between `scheme://` (or the start) and the **last** `@`, whatever characters a
/// password holds unencoded (`# ? / ^ | " \ { } < >` or a space); then secret parameters go.
/// Returns the text and how many secrets it removed.
pub fn url_value(value: &str) -> (String, usize) {
    let (prefix, rest) = match value.find("://") {
        Some(k) => value.split_at(k + 3),
        None => ("", value),
    };
    let (masked, n) = match rest.rfind('@') {
        Some(at) if at > 0 && &rest[..at] != MASK => (format!("{prefix}{MASK}{}", &rest[at..]), 1),
        _ => (value.to_owned(), 0),
    };
    let (out, m) = redact_query_secrets(&masked);
    (out.into_owned(), n + m)
}

/// Parameters whose names say they hold a secret (`?token=…`, `access_token`, `api_key`,
/// `password`, `sig`, `sid`, `SAMLRequest`, `code`, …): their values become `***`, in the query,
/// in the fragment (`#access_token=…`, as OAuth's implicit flow returns it) and in path
/// parameters (`;jsessionid=…`). Captive-portal redirects and signed URLs carry session tokens
/// this way.
fn redact_query_secrets(text: &str) -> (Cow<'_, str>, usize) {
    if !text.contains('=') || !text.contains(['?', '&', '#', ';']) {
        return (Cow::Borrowed(text), 0);
    }
    let secret_name = |name: &str| {
        let n = name.to_ascii_lowercase();
        [
            "token",
            "key",
            "secret",
            "password",
            "passwd",
            "pwd",
            "auth",
            "sig",
            "session",
            "code",
            "ticket",
            "credential",
            "saml",
        ]
        .iter()
        .any(|w| n.contains(w))
            || ["sid", "jsessionid", "phpsessid", "relaystate", "state"].contains(&n.as_str())
    };
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut rest = text;
    // A parameter starts after '?', '&', '#' or ';' and ends at the next of them or at a
    // character that ends a URL.
    while let Some(i) = rest.find(['?', '&', '#', ';']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest
            .find(|c: char| matches!(c, '&' | '#' | ';' | '?') || ends_token(c))
            .unwrap_or(rest.len());
        let param = &rest[..end];
        match param.split_once('=') {
            Some((name, value)) if !value.is_empty() && value != MASK && secret_name(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
                n += 1;
            }
            _ => out.push_str(param),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    if n == 0 {
        (Cow::Borrowed(text), 0)
    } else {
        (Cow::Owned(out), n)
    }
}

/// Free text with URLs in it. A token runs to the next white space: the characters a URL may
/// not hold (`" < > { } | \ ^`) can still be part of a password typed unencoded, so they do not
/// end it. A URL whose userinfo holds a space (`http://u:pa ss@host`) is found by looking ahead
/// to the `@` on the same line.
fn redact_userinfo(text: &str) -> (Cow<'_, str>, usize) {
    if !text.contains('@') {
        return (Cow::Borrowed(text), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        if let Some(clean) = credentials_in_token(token) {
            out.push_str(&clean);
            n += 1;
            rest = &rest[end..];
            continue;
        }
        if let Some((prefix, skip)) = open_userinfo(token, &rest[end..]) {
            out.push_str(prefix);
            out.push_str(MASK);
            n += 1;
            rest = &rest[end + skip..];
            continue;
        }
        out.push_str(token);
        rest = &rest[end..];
    }
    if n == 0 {
        (Cow::Borrowed(text), 0)
    } else {
        (Cow::Owned(out), n)
    }
}

/// A URL token that starts a `user:password` and has no `@`: its password went on past a space.
/// Returns the token's `…scheme://` prefix and how far into `after` the userinfo runs (to its
/// `@`, which stays), when that `@` is on the same line with no other URL before it.
fn open_userinfo<'a>(token: &'a str, after: &str) -> Option<(&'a str, usize)> {
    let k = token.find("://")?;
    let (prefix, userinfo) = token.split_at(k + 3);
    let (_, pass) = userinfo.split_once(':')?;
    // `host:port` is not a password.
    if !pass.is_empty() && pass.chars().all(|c| c.is_ascii_digit() || c == '/') {
        return None;
    }
    let line = &after[..after.find('\n').unwrap_or(after.len())];
    let at = line.find('@')?;
    if line[..at].contains("://") {
        return None;
    }
    Some((prefix, at))
}

fn credentials_in_token(token: &str) -> Option<String> {
    let (prefix, rest) = match token.find("://") {
        Some(k) => token.split_at(k + 3),
        None => ("", token),
    };
    // The authority ends at the path; the last '@' inside it ends the userinfo.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => at,
        // A password with an unencoded '/', '?' or '#': `user:pa/ss@host`. The colon of the
        // userinfo comes before it, and the '@' is followed by a host.
        None if rest[..authority_end].contains(':') && !prefix.is_empty() => {
            let at = rest.rfind('@')?;
            let host = &rest[at + 1..];
            let host = &host[..host.find(['/', '?', '#']).unwrap_or(host.len())];
            let (_, after_colon) = rest[..authority_end].split_once(':')?;
            let port_like = after_colon.chars().all(|c| c.is_ascii_digit());
            let host_like = !host.is_empty()
                && host.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_')
                });
            if port_like || !host_like {
                return None;
            }
            at
        }
        None => return None,
    };
    let userinfo = &rest[..at];
    if userinfo.is_empty() || userinfo == MASK {
        return None;
    }
    if prefix.is_empty() && !userinfo.contains(':') {
        return None; // an e-mail address, not a credential
    }
    Some(format!("{prefix}{MASK}{}", &rest[at..]))
}

// ---- host name ----------------------------------------------------------------------------------

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Replaces `word` (ASCII case-insensitive) where it is not part of a longer name:
/// `alice-laptop` matches in `alice-laptop.local` but not in `myalice-laptop2`.
fn replace_word(text: &str, word: &str, with: &str) -> (String, usize) {
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
fn redact_user_paths(text: &str) -> (String, usize) {
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
fn redact_private_ips(text: &str) -> (String, usize) {
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

    #[test]
    fn secret_query_parameters_are_masked() {
        let (t, n) = redact_credentials(
            "redirect to http://portal.lan/login?session=ab12&lang=en&access_token=xyz#top",
        );
        assert_eq!(
            t,
            "redirect to http://portal.lan/login?session=***&lang=en&access_token=***#top"
        );
        assert_eq!(n, 2);
        let (t, n) = redact_credentials("http://u:p@h/x?api_key=K1 and more");
        assert_eq!(t, "http://***@h/x?api_key=*** and more");
        assert_eq!(n, 2);
        assert_eq!(redact_credentials("a?b=c&d=e").1, 0);
        assert_eq!(redact_credentials("plain text = fine").1, 0);
    }
    use crate::model::{Check, Confidence, Device, EndpointInfo, Probe, Status, Suspect, Tool};

    fn creds(s: &str) -> String {
        redact_credentials(s).0.into_owned()
    }

    #[test]
    fn credentials_in_urls_and_bare_proxy_values() {
        assert_eq!(
            creds("HTTPS_PROXY=http://alice:s3cret@proxy.corp:3128"),
            "HTTPS_PROXY=http://***@proxy.corp:3128"
        );
        assert_eq!(
            creds("proxy alice:s3cret@proxy:8080 set"),
            "proxy ***@proxy:8080 set"
        );
        assert_eq!(
            creds("socks5h://bob@10.1.1.1:1080/"),
            "socks5h://***@10.1.1.1:1080/"
        );
        // Sub-delimiters and an unencoded '@' inside the password do not leak a part of it.
        assert_eq!(
            creds("http://u:p,a;s=s@w@ord@host/x@y"),
            "http://***@host/x@y"
        );
        assert_eq!(creds("(http://u:pw@h)"), "(http://***@h)");
        assert_eq!(creds("\"http://u:pw@h\""), "\"http://***@h\"");
        // Not credentials.
        assert_eq!(
            creds("write to support@bmw.example"),
            "write to support@bmw.example"
        );
        assert_eq!(creds("http://host/path@v2"), "http://host/path@v2");
        assert_eq!(creds("already http://***@host"), "already http://***@host");
        assert!(matches!(
            redact_credentials("no at sign"),
            (Cow::Borrowed(_), 0)
        ));
    }

    #[test]
    fn passwords_with_unencoded_special_characters() {
        for pw in [
            "p#w", "p?w", "p^w", "p|w", "p\"w", "p\\w", "p{w}", "p<w>", "p/w", "p w", "a@b c",
        ] {
            let url = format!("http://alice:{pw}@proxy.lan:3128");
            let (v, n) = url_value(&url);
            assert_eq!(v, "http://***@proxy.lan:3128", "{url}");
            assert_eq!(n, 1);
            if pw.contains('@') {
                // In free text an '@' inside the password is indistinguishable from the end of
                // the userinfo: the proxy probe redacts the whole value at the source instead.
                continue;
            }
            let text = format!("HTTPS goes through the proxy {url} (except localhost)");
            let t = creds(&text);
            assert!(!t.contains("alice") && !t.contains(pw), "{pw:?}: {t}");
            assert!(t.contains("***@proxy.lan:3128"), "{t}");
        }
        assert_eq!(url_value("u:p w@h:1").0, "***@h:1");
        assert_eq!(url_value("http://proxy:3128").0, "http://proxy:3128");
        // A port is not a password, and an e-mail after a URL is not its userinfo.
        assert_eq!(
            creds("via http://proxy:3128 write to support@bmw.example"),
            "via http://proxy:3128 write to support@bmw.example"
        );
    }

    #[test]
    fn url_secrets_beyond_the_query() {
        assert_eq!(
            creds("https://idp.example/cb#access_token=abc&expires_in=3600"),
            "https://idp.example/cb#access_token=***&expires_in=3600"
        );
        assert_eq!(
            creds("http://portal/login;jsessionid=ABC123?lang=en"),
            "http://portal/login;jsessionid=***?lang=en"
        );
        assert_eq!(
            creds("http://p/x?sid=42&SAMLRequest=fZJN"),
            "http://p/x?sid=***&SAMLRequest=***"
        );
        assert_eq!(
            creds("http://p/cb?code=xyz&side=left"),
            "http://p/cb?code=***&side=left"
        );
    }

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

    fn sample() -> Report {
        let check = Check::new(
            Probe::Proxy,
            None,
            Status::Warn,
            "proxy.env",
            "HTTPS_PROXY=http://alice:hunter2@10.0.0.5:3128 on alice-pc",
        )
        .with(
            "vars",
            serde_json::json!({"https_proxy": "alice:hunter2@proxy:3128", "list": ["/home/alice/x", 3]}),
        );
        let storage = Check::new(Probe::Storage, None, Status::Pass, "storage.ok", "ok")
            .with("path", "/home/alice");
        Report {
            schema_version: 1,
            report_id: "abc".into(),
            tool: Tool::this(),
            started_at: "2025-01-01T00:00:00Z".into(),
            duration_ms: 1.0,
            region: "test".into(),
            status: Status::Warn,
            checks: vec![check, storage],
            suspects: vec![Suspect {
                id: "vpn_firewall".into(),
                title: "t".into(),
                symptom: "s".into(),
                difficulty: None,
                confidence: Confidence::Low,
                evidence: vec!["proxy http://alice:hunter2@10.0.0.5:3128".into()],
                steps: vec!["check /Users/alice/Library".into()],
            }],
            endpoints: vec![EndpointInfo {
                name: "local".into(),
                host: "192.168.0.10".into(),
                port: 443,
                role: crate::model::Role::Service,
            }],
            device: Some(Device {
                os: "Linux".into(),
                hostname: "alice-pc".into(),
            }),
            redacted: vec![],
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn credentials_pass_keeps_personal_details() {
        let mut r = sample();
        let counts = credentials(&mut r);
        assert_eq!(counts.credentials, 3);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("/home/alice"));
        assert!(text.contains("10.0.0.5"));
        assert_eq!(
            r.redacted,
            vec!["credentials and secret URL parameters (3)"]
        );
    }

    #[test]
    fn personal_pass_walks_every_string() {
        let mut r = sample();
        credentials(&mut r);
        personal(&mut r);
        let text = serde_json::to_string(&r).unwrap();
        for secret in ["hunter2", "alice", "10.0.0.5", "192.168.0.10"] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert_eq!(r.device.as_ref().unwrap().hostname, HOSTNAME);
        assert!(r.checks[0].summary.ends_with("on <hostname>"));
        assert_eq!(
            r.redacted,
            vec![
                "credentials and secret URL parameters (3)",
                "device host name (2)",
                "user names in paths (3)",
                "private, loopback and link-local addresses (3)"
            ]
        );
        // A second pass finds nothing new and does not double-count.
        let before = r.clone();
        personal(&mut r);
        assert_eq!(r.checks, before.checks);
    }
}
