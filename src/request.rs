//! Two profile keys of the endpoint sets that go beyond "GET a path": what an endpoint's http
//! stage sends (`method`, `body`) and the opt-in public-address check (`[egress]`).
//!
//! BMW CarData's clients sign in by polling `POST /gcdm/oauth/token`; only a POST shows whether
//! that step works, so an endpoint may say `method = "POST"` with a form `body`. The body is a
//! made-up grant written into the profile: the tool never fills in a credential, and the
//! validation below keeps it to plain form text (no spaces, no control characters, bounded), so
//! what is sent is exactly what `list` shows.
//!
//! The public address is asked of a STUN server on the Internet, so it is never asked unless the
//! user says so (`--egress`, or `enabled = true` in `[egress]`); the servers asked are the
//! profile's or `--stun`'s, and the address goes nowhere else.

use serde::Deserialize;

/// The largest form body a profile may carry: a grant is a few hundred bytes.
const MAX_BODY: usize = 2048;

/// The STUN server asked when neither the profile nor `--stun` names one: Google's public STUN
/// service, the one WebRTC applications use by default.
pub const DEFAULT_STUN: &str = "stun.l.google.com:19302";

/// At most this many STUN servers are asked (two are enough to compare mappings).
pub const MAX_STUN: usize = 4;

/// The http stage's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Method {
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// With a form body (`application/x-www-form-urlencoded`).
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// An endpoint's `method` and `body`, checked: a body belongs to a POST and a POST needs one,
/// a TLS-only endpoint sends nothing, and the body is plain form text.
pub fn checked(
    method: Option<Method>,
    body: Option<String>,
    tls_only: bool,
) -> Result<(Method, Option<String>), String> {
    let method = method.unwrap_or_default();
    if tls_only && (method != Method::Get || body.is_some()) {
        return Err(
            "a TLS-only endpoint (protocol = \"tls\") sends no request: drop method and body"
                .into(),
        );
    }
    match (method, body) {
        (Method::Get, None) => Ok((Method::Get, None)),
        (Method::Get, Some(_)) => Err("body needs method = \"POST\"".into()),
        (Method::Post, None) => {
            Err("method = \"POST\" needs a body (a form, e.g. \"a=1&b=2\")".into())
        }
        (Method::Post, Some(b)) => {
            if b.is_empty() || b.len() > MAX_BODY {
                return Err(format!("body must be 1-{MAX_BODY} bytes of form text"));
            }
            if !b.chars().all(is_form_char) {
                return Err(format!(
                    "body \"{}\" is not form text (letters, digits and -._~%+=&* only; encode the rest as %XX)",
                    crate::sanitize::outside_capped(&b, 64)
                ));
            }
            Ok((Method::Post, Some(b)))
        }
    }
}

/// What `application/x-www-form-urlencoded` text is made of, percent-escapes included.
fn is_form_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%+=&*".contains(c)
}

/// The public-address check of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Egress {
    /// Ask at all (`--egress` or `enabled = true`).
    pub enabled: bool,
    /// `host:port` of the STUN servers asked, in order.
    pub stun: Vec<String>,
}

impl Default for Egress {
    fn default() -> Self {
        Egress {
            enabled: false,
            stun: vec![DEFAULT_STUN.to_owned()],
        }
    }
}

/// The `[egress]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgress {
    enabled: Option<bool>,
    stun: Option<Vec<String>>,
}

/// The `[egress]` table, checked.
pub fn egress(raw: Option<RawEgress>) -> Result<Egress, String> {
    let Some(raw) = raw else {
        return Ok(Egress::default());
    };
    let stun = match raw.stun {
        None => vec![DEFAULT_STUN.to_owned()],
        Some(list) => stun_servers(&list).map_err(|e| format!("[egress] {e}"))?,
    };
    Ok(Egress {
        enabled: raw.enabled.unwrap_or(false),
        stun,
    })
}

/// A list of STUN servers, each `host:port` (`[v6]:port` for an IPv6 literal), checked.
pub fn stun_servers(list: &[String]) -> Result<Vec<String>, String> {
    if list.is_empty() || list.len() > MAX_STUN {
        return Err(format!("stun lists 1-{MAX_STUN} servers"));
    }
    list.iter().map(|s| stun_server(s)).collect()
}

/// One STUN server, `host:port`, checked.
pub fn stun_server(s: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "stun server \"{}\" is not HOST:PORT (e.g. {DEFAULT_STUN})",
            crate::sanitize::outside_capped(s, 64)
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    let bare_v6 = host.contains(':') && !bracketed;
    if port == 0 || bare_v6 || !crate::hostname::valid_host(host) {
        return Err(bad());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_body_go_together() {
        let post = Some(Method::Post);
        let form = || Some("grant_type=x&device_code=y".to_owned());
        assert_eq!(checked(None, None, false), Ok((Method::Get, None)));
        assert_eq!(checked(post, form(), false), Ok((Method::Post, form())));
        assert!(checked(None, form(), false).unwrap_err().contains("POST"));
        assert!(checked(post, None, false).unwrap_err().contains("body"));
        assert!(
            checked(post, form(), true)
                .unwrap_err()
                .contains("TLS-only")
        );
        let spaced = Some("a=1 b=2".to_owned());
        assert!(
            checked(post, spaced, false)
                .unwrap_err()
                .contains("form text")
        );
        let control = Some("a=1\u{1b}[31m".to_owned());
        let e = checked(post, control, false).unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
        let long = Some("a".repeat(MAX_BODY + 1));
        assert!(checked(post, long, false).is_err());
    }

    #[test]
    fn stun_servers_are_host_and_port() {
        for ok in [
            "stun.example.net:3478",
            "192.0.2.1:3478",
            "[2001:db8::1]:3478",
        ] {
            assert_eq!(stun_server(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "stun.example.net",
            "stun.example.net:0",
            "a b:1",
            "2001:db8::1:3478",
            ":1",
        ] {
            assert!(stun_server(bad).is_err(), "{bad}");
        }
        assert!(stun_servers(&[]).is_err());
        let five: Vec<String> = (0..5).map(|i| format!("s{i}.example:3478")).collect();
        assert!(stun_servers(&five).is_err());
        assert_eq!(egress(None), Ok(Egress::default()));
        assert!(!Egress::default().enabled);
    }
}
