//! The desktop's proxy settings on Linux: GNOME's `org.gnome.system.proxy` (read with the
//! `gsettings` command, so every backend GNOME uses — dconf, the keyfile — is read the way GNOME
//! reads it) and KDE's `kioslaverc`.
//!
//! `gsettings` runs only when a desktop session is plausible (a session bus, a desktop name, or
//! a chosen settings backend in the environment): on a server it would only report defaults.
//! It is bounded ([`GSETTINGS_TIMEOUT`]) and killed when late. What it prints is parsed as
//! outside text.

use super::Desktop;
use crate::platform::proxy::run_bounded;
use std::path::Path;
use std::time::Duration;

/// How long `gsettings` may take.
pub const GSETTINGS_TIMEOUT: Duration = Duration::from_secs(2);

/// GNOME's proxy settings, when a desktop session is plausible and `gsettings` answers.
pub fn gnome() -> Option<Desktop> {
    let plausible = [
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_CURRENT_DESKTOP",
        "GSETTINGS_BACKEND",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !plausible {
        return None;
    }
    let out = run_bounded(
        "gsettings",
        &["list-recursively", "org.gnome.system.proxy"],
        GSETTINGS_TIMEOUT,
    )?;
    Some(parse_gnome(&out))
}

/// `gsettings list-recursively` output (`org.gnome.system.proxy.https host 'p'`) read into
/// what it means.
pub fn parse_gnome(text: &str) -> Desktop {
    let get = |schema: &str, key: &str| -> Option<&str> {
        text.lines().find_map(|l| {
            let mut it = l.splitn(3, ' ');
            (it.next()? == schema && it.next()? == key).then(|| it.next().unwrap_or("").trim())
        })
    };
    let base = "org.gnome.system.proxy";
    match get(base, "mode").map(unquote).as_deref() {
        Some("auto") => {
            let url = get(base, "autoconfig-url").map(unquote).unwrap_or_default();
            if url.is_empty() {
                Desktop::Discover
            } else {
                Desktop::Pac(url)
            }
        }
        Some("manual") => {
            let server = |kind: &str| -> Option<(String, u16)> {
                let schema = format!("{base}.{kind}");
                let host = unquote(get(&schema, "host")?);
                let port = get(&schema, "port")?.parse::<u16>().ok()?;
                (!host.is_empty() && port != 0).then_some((host, port))
            };
            let http = format!("{base}.http");
            let creds = (get(&http, "use-authentication") == Some("true"))
                .then(|| {
                    let user = unquote(get(&http, "authentication-user")?);
                    let pass = unquote(get(&http, "authentication-password")?);
                    (!user.is_empty()).then(|| format!("{user}:{pass}@"))
                })
                .flatten()
                .unwrap_or_default();
            let proxy = if let Some((h, p)) = server("https") {
                format!("http://{}:{p}", bracket(&h))
            } else if let Some((h, p)) = server("http") {
                format!("http://{creds}{}:{p}", bracket(&h))
            } else if let Some((h, p)) = server("socks") {
                format!("socks5://{}:{p}", bracket(&h))
            } else {
                return Desktop::Off;
            };
            let except = get(base, "ignore-hosts").map(list).unwrap_or_default();
            Desktop::Manual { proxy, except }
        }
        _ => Desktop::Off,
    }
}

/// KDE's proxy settings from `$XDG_CONFIG_HOME/kioslaverc` (or `~/.config/kioslaverc`), when
/// the file exists.
pub fn kde() -> Option<Desktop> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))?;
    let path = dir.join("kioslaverc");
    if !Path::new(&path).is_file() {
        return None;
    }
    let bytes = crate::safefile::read_bounded(&path, 64 * 1024, "kioslaverc").ok()?;
    Some(parse_kde(&String::from_utf8_lossy(&bytes)))
}

/// The `[Proxy Settings]` group of a kioslaverc: `ProxyType` 0 none, 1 manual, 2 a PAC URL,
/// 3 WPAD, 4 the environment.
pub fn parse_kde(text: &str) -> Desktop {
    let mut in_group = false;
    let mut keys = std::collections::HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_group = line == "[Proxy Settings]";
        } else if in_group && let Some((k, v)) = line.split_once('=') {
            keys.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    let get = |k: &str| keys.get(k).map(String::as_str).unwrap_or("");
    match get("ProxyType") {
        "1" => {
            let raw = [get("httpsProxy"), get("httpProxy"), get("socksProxy")]
                .into_iter()
                .find(|v| !v.is_empty());
            let Some(raw) = raw else {
                return Desktop::Off;
            };
            // KDE writes "http://host port" or "http://host:port".
            let proxy = match raw.split_once(' ') {
                Some((h, p)) => format!("{h}:{p}"),
                None => raw.to_owned(),
            };
            let except = get("NoProxyFor")
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            Desktop::Manual { proxy, except }
        }
        "2" => {
            let url = get("Proxy Config Script");
            if url.is_empty() {
                Desktop::Off
            } else {
                Desktop::Pac(url.to_owned())
            }
        }
        "3" => Desktop::Discover,
        _ => Desktop::Off,
    }
}

/// A GVariant string (`'a\'b'`) as text.
fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(v);
    inner.replace("\\'", "'").replace("\\\\", "\\")
}

/// A GVariant string array (`['a', 'b']`) as a list.
fn list(v: &str) -> Vec<String> {
    let v = v.trim().trim_start_matches("@as ");
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(unquote)
        .filter(|s| !s.is_empty())
        .take(64)
        .collect()
}

/// An IPv6 literal in brackets, for a URL.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnome_modes() {
        let manual = "org.gnome.system.proxy ignore-hosts ['localhost', '*.corp.lan']\n\
                      org.gnome.system.proxy mode 'manual'\n\
                      org.gnome.system.proxy.http host 'h.corp'\n\
                      org.gnome.system.proxy.http port 8080\n\
                      org.gnome.system.proxy.http use-authentication true\n\
                      org.gnome.system.proxy.http authentication-user 'u'\n\
                      org.gnome.system.proxy.http authentication-password 'p\\'w'\n\
                      org.gnome.system.proxy.https host ''\n\
                      org.gnome.system.proxy.https port 0\n";
        assert_eq!(
            parse_gnome(manual),
            Desktop::Manual {
                proxy: "http://u:p'w@h.corp:8080".into(),
                except: vec!["localhost".into(), "*.corp.lan".into()]
            }
        );
        let auto = "org.gnome.system.proxy autoconfig-url 'http://wpad.corp/proxy.pac'\n\
                    org.gnome.system.proxy mode 'auto'\n";
        assert_eq!(
            parse_gnome(auto),
            Desktop::Pac("http://wpad.corp/proxy.pac".into())
        );
        let discover =
            "org.gnome.system.proxy autoconfig-url ''\norg.gnome.system.proxy mode 'auto'\n";
        assert_eq!(parse_gnome(discover), Desktop::Discover);
        assert_eq!(
            parse_gnome("org.gnome.system.proxy mode 'none'\n"),
            Desktop::Off
        );
    }

    #[test]
    fn kde_types() {
        let manual = "[Proxy Settings]\nProxyType=1\nhttpsProxy=http://p.corp 3128\nNoProxyFor=.lan,localhost\n";
        assert_eq!(
            parse_kde(manual),
            Desktop::Manual {
                proxy: "http://p.corp:3128".into(),
                except: vec![".lan".into(), "localhost".into()]
            }
        );
        let pac = "[General]\nProxyType=1\n[Proxy Settings]\nProxyType=2\nProxy Config Script=http://x/p.pac\n";
        assert_eq!(parse_kde(pac), Desktop::Pac("http://x/p.pac".into()));
        assert_eq!(
            parse_kde("[Proxy Settings]\nProxyType=3\n"),
            Desktop::Discover
        );
        assert_eq!(parse_kde("[Proxy Settings]\nProxyType=0\n"), Desktop::Off);
    }
}
