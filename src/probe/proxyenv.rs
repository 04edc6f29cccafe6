//! The proxy settings of the environment, read once, and the one place that redacts their
//! credentials.
//!
//! Shared vocabulary below the probes: the proxy probe reports these settings, the http stage and
//! the proxy path (`tunnel`) go through them, and every probe that shows a proxy URL redacts it
//! with [`redact_url`] or [`shown_value`], so no report or history line can ever hold a password.

use crate::error::AppError;

/// The variables we read, in the order curl and most tools honour them.
pub const VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The proxy settings a run follows. Read from the environment by [`ProxyEnv::from_env`]; the
/// other sources (command line, desktop, PAC, WPAD: `crate::proxysettings`) fill the same
/// fields, plus where the decision came from. URLs are kept whole only for connecting;
/// everything shown uses [`redact_url`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyEnv {
    /// (variable, value) pairs that are set and non-empty.
    pub vars: Vec<(String, String)>,
    pub https: Option<String>,
    pub no_proxy: Vec<String>,
    /// Where the decision came from (`cli`, `env`, `gnome`, `kde`, `pac:<url>`, `wpad:dhcp`,
    /// `wpad:dns`, `macos`, `windows`), shown redacted; empty: no proxy anywhere.
    pub source: String,
    /// What a PAC file chose, host by host (a proxy URL, or `None` for direct); when set, it
    /// replaces `https` and `no_proxy`.
    pub routes: Option<std::collections::BTreeMap<String, Option<String>>>,
    /// How the decision was made, for the proxy check.
    pub decision: Option<std::sync::Arc<Decision>>,
}

/// How the proxy decision was made, as the proxy check reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Where the settings were found: `cli`, `env`, `gnome`, `kde`, `wpad`, `macos`,
    /// `windows`, or empty.
    pub from: String,
    /// The PAC file's URL, redacted, when one was followed.
    pub pac_url: Option<String>,
    /// The PAC file's answer per host, when it ran.
    pub choices: Vec<PacChoice>,
    /// Why the PAC file gave no answer (`proxy.pac_unreachable` or `proxy.pac_error`, and the
    /// reason in a sentence), after which the run goes direct.
    pub failure: Option<(&'static str, String)>,
    /// What was looked at and found nothing, in order (e.g. "wpad: no search domain").
    pub looked_at: Vec<String>,
}

/// What a PAC file said for one host, and which entry the run follows.
#[derive(Debug, Clone, PartialEq)]
pub struct PacChoice {
    pub host: String,
    /// The script's answer, sanitized and redacted.
    pub answer: String,
    /// The proxy followed (redacted), or `None` for direct.
    pub via: Option<String>,
    /// Entries passed over and why (a proxy that did not accept a connection, a kind the tool
    /// does not follow, an answer that names nothing).
    pub notes: Vec<String>,
    /// Why the script gave no usable answer for this host (it threw, or answered nonsense):
    /// the host then goes direct.
    pub failed: Option<String>,
}

/// Replaces credentials in any text holding URLs (`user:pass@` → `***@`, secret query values →
/// `***`); text without them is unchanged. One implementation for probes and reports alike.
pub fn redact_url(text: &str) -> String {
    crate::redact::redact_credentials(text).0.into_owned()
}

/// A proxy variable's value as it may be shown: it is one URL, so its userinfo is everything up
/// to the last `@` (a password may hold any character unencoded), secret parameters masked, then
/// sanitized like all outside text. Redaction comes first, on the whole raw value: cutting or
/// escaping it first could hide the `@` and leave part of a password behind.
pub fn shown_value(value: &str) -> String {
    crate::sanitize::outside(&crate::redact::url_value(value).0)
}

/// A proxy URL given as `what` (a variable, a flag), checked like the variables' values and
/// given the `http://` they imply when no scheme is written.
pub fn usable_url(what: &str, value: &str) -> Result<String, AppError> {
    validate(what, value.trim())?;
    Ok(if value.contains("://") {
        value.trim().to_owned()
    } else {
        format!("http://{}", value.trim())
    })
}

/// Checks that a proxy value is a URL we can use: `scheme://[user[:pass]@]host[:port][/]`.
fn validate(var: &str, value: &str) -> Result<(), AppError> {
    let var = if var.starts_with('-') {
        var.to_owned()
    } else {
        format!("environment variable {var}")
    };
    let bad = |why: &str| {
        AppError::Input(format!(
            "{var} is not a usable proxy URL ({why}): {}",
            crate::sanitize::outside_capped(&crate::redact::url_value(value).0, 120)
        ))
    };
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let (scheme, rest) = with_scheme
        .split_once("://")
        .ok_or_else(|| bad("no scheme"))?;
    if !["http", "https", "socks5", "socks5h", "socks4"]
        .contains(&scheme.to_ascii_lowercase().as_str())
    {
        return Err(bad("unknown scheme"));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        let (h, p) = stripped.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        (h, p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || !crate::profile::valid_host(host) {
        return Err(bad("no valid host"));
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Err(bad("invalid port"));
    }
    Ok(())
}

impl ProxyEnv {
    /// Reads the environment. A proxy variable holding garbage is an input error: every
    /// HTTPS request of the run would be meaningless.
    pub fn from_env() -> Result<ProxyEnv, AppError> {
        let mut env = ProxyEnv::default();
        for var in VARS {
            let value = match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
                Ok(_) => continue,
                Err(std::env::VarError::NotPresent) => continue,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(AppError::Input(format!(
                        "environment variable {var} is not valid UTF-8"
                    )));
                }
            };
            if var.eq_ignore_ascii_case("NO_PROXY") {
                env.no_proxy.extend(
                    value
                        .split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty()),
                );
            } else {
                validate(var, &value)?;
                if env.https.is_none() && !var.eq_ignore_ascii_case("HTTP_PROXY") {
                    env.https = Some(if value.contains("://") {
                        value.clone()
                    } else {
                        format!("http://{value}")
                    });
                }
            }
            env.vars.push((var.to_owned(), value));
        }
        if !env.vars.is_empty() {
            env.source = "env".into();
        }
        Ok(env)
    }

    /// The proxy URL for an HTTPS request to `host`: what the PAC file chose for it, or the
    /// configured proxy unless NO_PROXY exempts it.
    pub fn for_host(&self, host: &str) -> Option<&str> {
        if let Some(routes) = &self.routes {
            return routes
                .get(&host.to_ascii_lowercase())
                .and_then(|r| r.as_deref());
        }
        let proxy = self.https.as_deref()?;
        let host = host.to_ascii_lowercase();
        let exempt = self.no_proxy.iter().any(|rule| {
            if rule == "*" {
                return true;
            }
            let rule = rule.trim_start_matches("*.").trim_start_matches('.');
            let rule = rule.split(':').next().unwrap_or(rule);
            host == rule || host.ends_with(&format!(".{rule}"))
        });
        (!exempt).then_some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive_redaction() {
        assert_eq!(
            redact_url("http://user:s3cret@proxy.lan:3128"),
            "http://***@proxy.lan:3128"
        );
        assert_eq!(
            redact_url("see http://u:p@h:1/x and socks5://a@b"),
            "see http://***@h:1/x and socks5://***@b"
        );
        assert_eq!(
            redact_url("http://proxy.lan:3128/"),
            "http://proxy.lan:3128/"
        );
        assert_eq!(redact_url("http://u:p@ss@h:1"), "http://***@h:1");
        assert_eq!(redact_url("no url here"), "no url here");
    }

    #[test]
    fn validation() {
        assert!(validate("HTTPS_PROXY", "http://proxy.lan:3128").is_ok());
        assert!(validate("HTTPS_PROXY", "proxy.lan:3128").is_ok());
        assert!(validate("HTTPS_PROXY", "http://u:p@[::1]:3128").is_ok());
        for bad in [
            "http://",
            "ftp://x:1",
            "http://h:0",
            "http://h:99999",
            "::::",
            "http://a b",
        ] {
            assert!(validate("HTTPS_PROXY", bad).is_err(), "{bad}");
        }
        let e = validate("HTTPS_PROXY", "gopher://u:pw@h")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn no_proxy_rules() {
        let env = ProxyEnv {
            vars: vec![],
            https: Some("http://p:3128".into()),
            no_proxy: vec!["localhost".into(), ".corp.lan".into(), "127.0.0.1".into()],
            ..ProxyEnv::default()
        };
        assert_eq!(env.for_host("cocoapi.bmwgroup.com"), Some("http://p:3128"));
        assert_eq!(env.for_host("a.corp.lan"), None);
        assert_eq!(env.for_host("127.0.0.1"), None);
        assert_eq!(env.for_host("LOCALHOST"), None);
    }
}
