//! A PAC answer (`"PROXY a:3128; PROXY b:8080; DIRECT"`) read into entries, in order, as
//! browsers read it. The tool follows `DIRECT` and `PROXY`/`HTTP` entries (the proxied path
//! opens an HTTP CONNECT tunnel); `HTTPS` and `SOCKS*` entries are named and passed over.

/// One entry of a PAC answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Direct,
    /// `PROXY host:port` or `HTTP host:port`: an HTTP proxy.
    Proxy(String),
    /// An entry of a kind the tool does not follow (`HTTPS`, `SOCKS`, `SOCKS4`, `SOCKS5`), kept
    /// to say so.
    Unfollowed(String),
}

/// The entries of `answer`, in order; words that are no entry at all are left out (the caller
/// says so when nothing is left).
pub fn parse(answer: &str) -> Vec<Entry> {
    answer
        .split(';')
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let kind = words.next()?.to_ascii_uppercase();
            let target = words.next();
            if words.next().is_some() {
                return None;
            }
            match (kind.as_str(), target) {
                ("DIRECT", None) => Some(Entry::Direct),
                ("PROXY" | "HTTP", Some(t)) => host_port(t).map(Entry::Proxy),
                ("HTTPS" | "SOCKS" | "SOCKS4" | "SOCKS5", Some(t)) => {
                    host_port(t).map(|hp| Entry::Unfollowed(format!("{kind} {hp}")))
                }
                _ => None,
            }
        })
        .take(16)
        .collect()
}

/// `host:port` (port 80 when none is given, as browsers assume), if it names a usable host.
fn host_port(t: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        (h, p.strip_prefix(':'))
    } else {
        match t.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (t, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => 80,
    };
    if host.is_empty() || !crate::profile::valid_host(host) {
        return None;
    }
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_order() {
        assert_eq!(
            parse("PROXY a.corp:3128; proxy b:8080;DIRECT"),
            vec![
                Entry::Proxy("a.corp:3128".into()),
                Entry::Proxy("b:8080".into()),
                Entry::Direct
            ]
        );
        assert_eq!(
            parse("SOCKS5 s:1080; HTTP [::1]:3128; PROXY p"),
            vec![
                Entry::Unfollowed("SOCKS5 s:1080".into()),
                Entry::Proxy("[::1]:3128".into()),
                Entry::Proxy("p:80".into())
            ]
        );
    }

    #[test]
    fn garbage_names_nothing() {
        for bad in [
            "",
            "lol",
            "PROXY",
            "PROXY a:0",
            "PROXY a:99999",
            "DIRECT now",
            "PROXY a b",
            "PROXY \u{1b}[31m:1",
        ] {
            assert!(parse(bad).is_empty(), "{bad:?}");
        }
    }
}
