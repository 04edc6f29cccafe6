//! The system's proxy settings where the operating system keeps them: macOS's
//! SystemConfiguration (read with `scutil --proxy`, which prints the dynamic store's proxy
//! dictionary) and Windows' WinINET settings (the per-user `Internet Settings` key, read with
//! `reg query`; WinHTTP's machine-wide setting, `netsh winhttp show proxy`, is what services
//! use). Linux desktops are read in `crate::proxysettings::desktop`.
//!
//! The programs are run bounded ([`run_bounded`]) and their output is parsed as outside text.
//! The parsers build and are tested everywhere; the macOS and Windows readers are written for
//! those systems and not built or run here (README "Proxies the tool follows").

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a desktop's (or the system's) proxy settings say. The Linux desktops are read in
/// `crate::proxysettings::desktop`; the type lives here, below both.
#[derive(Debug, Clone, PartialEq)]
pub enum Desktop {
    /// No proxy.
    Off,
    /// A proxy URL and the hosts that go around it.
    Manual { proxy: String, except: Vec<String> },
    /// A PAC file's URL.
    Pac(String),
    /// Find the PAC file with WPAD.
    Discover,
}

/// How long a settings program may take.
#[cfg(any(target_os = "macos", target_os = "windows"))]
const TIMEOUT: Duration = Duration::from_secs(2);

/// The system settings, named as `data.proxy_source` names them.
#[cfg(target_os = "macos")]
pub fn system() -> Vec<(&'static str, Option<Desktop>)> {
    let out = run_bounded("/usr/sbin/scutil", &["--proxy"], TIMEOUT);
    vec![("macos", out.as_deref().map(parse_scutil))]
}

/// The system settings, named as `data.proxy_source` names them.
#[cfg(target_os = "windows")]
pub fn system() -> Vec<(&'static str, Option<Desktop>)> {
    let key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings";
    let out = run_bounded("reg", &["query", key], TIMEOUT);
    vec![("windows", out.as_deref().map(parse_reg))]
}

/// No system settings are known on other systems (Android, the BSDs).
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
pub fn system() -> Vec<(&'static str, Option<Desktop>)> {
    Vec::new()
}

/// `scutil --proxy` output: `HTTPSEnable : 1`, `HTTPSProxy : host`, `HTTPSPort : 3128`,
/// `ProxyAutoConfigEnable : 1`, `ProxyAutoConfigURLString : url`, `ProxyAutoDiscoveryEnable`,
/// `ExceptionsList : <array> { 0 : *.local }`.
#[cfg(any(target_os = "macos", test))]
pub fn parse_scutil(text: &str) -> Desktop {
    let mut keys = std::collections::HashMap::new();
    let mut except = Vec::new();
    let mut in_list = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("ExceptionsList") {
            in_list = true;
            continue;
        }
        if in_list && line == "}" {
            in_list = false;
            continue;
        }
        if let Some((k, v)) = line.split_once(" : ") {
            if in_list {
                except.push(v.trim().to_owned());
            } else {
                keys.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }
    let on = |k: &str| keys.get(k).is_some_and(|v| v == "1");
    if on("ProxyAutoConfigEnable")
        && let Some(url) = keys.get("ProxyAutoConfigURLString")
    {
        return Desktop::Pac(url.clone());
    }
    for kind in ["HTTPS", "HTTP"] {
        if on(&format!("{kind}Enable"))
            && let (Some(h), Some(p)) = (
                keys.get(&format!("{kind}Proxy")),
                keys.get(&format!("{kind}Port")),
            )
        {
            return Desktop::Manual {
                proxy: format!("http://{h}:{p}"),
                except,
            };
        }
    }
    if on("ProxyAutoDiscoveryEnable") {
        return Desktop::Discover;
    }
    Desktop::Off
}

/// `reg query` output of WinINET's `Internet Settings`: `ProxyEnable REG_DWORD 0x1`,
/// `ProxyServer REG_SZ host:port` (or `http=a:1;https=b:2`), `ProxyOverride REG_SZ a;<local>`,
/// `AutoConfigURL REG_SZ url`, `AutoDetect`.
#[cfg(any(target_os = "windows", test))]
pub fn parse_reg(text: &str) -> Desktop {
    let value = |name: &str| -> Option<String> {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == name).then(|| {
                w.next();
                w.collect::<Vec<_>>().join(" ")
            })
        })
    };
    if let Some(url) = value("AutoConfigURL").filter(|u| !u.is_empty()) {
        return Desktop::Pac(url);
    }
    if value("ProxyEnable").as_deref() == Some("0x1")
        && let Some(server) = value("ProxyServer")
    {
        let chosen = if server.contains('=') {
            server.split(';').find_map(|part| {
                let (k, v) = part.split_once('=')?;
                (k.eq_ignore_ascii_case("https") || k.eq_ignore_ascii_case("http"))
                    .then(|| v.to_owned())
            })
        } else {
            Some(server)
        };
        if let Some(hp) = chosen {
            let except = value("ProxyOverride")
                .unwrap_or_default()
                .split(';')
                .filter(|e| !e.is_empty() && *e != "<local>")
                .map(str::to_owned)
                .collect();
            return Desktop::Manual {
                proxy: format!("http://{hp}"),
                except,
            };
        }
    }
    if value("AutoDetect").as_deref() == Some("0x1") {
        return Desktop::Discover;
    }
    Desktop::Off
}

/// A program's stdout, when it exits successfully within `timeout` (at most 64 KiB read); it
/// is killed when late.
pub fn run_bounded(program: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let mut out = Vec::new();
    child
        .stdout
        .take()?
        .take(64 * 1024)
        .read_to_end(&mut out)
        .ok()?;
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_settings() {
        let pac = "<dictionary> {\n  ProxyAutoConfigEnable : 1\n  ProxyAutoConfigURLString : http://p/x.pac\n}\n";
        assert_eq!(parse_scutil(pac), Desktop::Pac("http://p/x.pac".into()));
        let manual = "<dictionary> {\n  ExceptionsList : <array> {\n    0 : *.local\n  }\n  HTTPSEnable : 1\n  HTTPSPort : 3128\n  HTTPSProxy : p.corp\n}\n";
        assert_eq!(
            parse_scutil(manual),
            Desktop::Manual {
                proxy: "http://p.corp:3128".into(),
                except: vec!["*.local".into()]
            }
        );
        assert_eq!(parse_scutil("<dictionary> {\n}\n"), Desktop::Off);
    }

    #[test]
    fn windows_settings() {
        let manual = "    ProxyEnable    REG_DWORD    0x1\n    ProxyServer    REG_SZ    http=a:1;https=b:2\n    ProxyOverride    REG_SZ    *.corp;<local>\n";
        assert_eq!(
            parse_reg(manual),
            Desktop::Manual {
                proxy: "http://a:1".into(),
                except: vec!["*.corp".into()]
            }
        );
        let pac = "    AutoConfigURL    REG_SZ    http://p/x.pac\n";
        assert_eq!(parse_reg(pac), Desktop::Pac("http://p/x.pac".into()));
        assert_eq!(
            parse_reg("    ProxyEnable    REG_DWORD    0x0\n"),
            Desktop::Off
        );
    }
}
