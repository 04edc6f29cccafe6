//! The path the app really takes: which proxy settings apply, from where, and what they choose
//! for each endpoint.
//!
//! The settings are looked for in order, and the first source that says something decides:
//! the command line (`--proxy URL|direct`, `--pac URL`), the environment (`HTTPS_PROXY` and its
//! kin), the desktop (GNOME, KDE; the system settings on macOS and Windows, in
//! `crate::platform::proxy`), then WPAD (DHCP option 252 in the system's lease, then
//! `wpad.<search domain>`). Reading them ([`read`]) touches only local files and programs and
//! happens before the run; following them ([`decide`]) may fetch and run a PAC file, so it runs
//! at the start of the run, bounded, and its failures become findings of the proxy check. The
//! outcome is a [`ProxyEnv`] the proxied path follows unchanged, carrying the source of the
//! decision for every endpoint check (`data.proxy_source`).

pub mod desktop;
pub mod wpad;

use crate::iface::Resolver;
use crate::probe::proxyenv::{Decision, ProxyEnv, shown_value};
use crate::probe::tls::TlsSetup;
use crate::profile::Endpoint;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `--proxy`: follow the discovery below (`auto`), go direct, or use this proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ProxyFlag {
    #[default]
    Auto,
    Direct,
    Url(String),
}

pub use crate::platform::proxy::Desktop;

/// Where the settings point, read before the run.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Nothing,
    Env,
    Direct,
    Fixed {
        from: String,
        proxy: String,
        except: Vec<String>,
    },
    Pac {
        from: String,
        url: String,
        label: String,
    },
    WpadDns(Vec<String>),
}

/// The proxy settings of a run, read from every source, not yet followed.
#[derive(Debug, Clone)]
pub struct Settings {
    env: ProxyEnv,
    found: Found,
    looked_at: Vec<String>,
}

/// Reads the settings in order; the first source that says something decides.
pub fn read(flag: &ProxyFlag, pac: Option<&str>, env: ProxyEnv) -> Settings {
    let mut looked_at = Vec::new();
    let found = read_found(flag, pac, &env, &mut looked_at);
    Settings {
        env,
        found,
        looked_at,
    }
}

fn read_found(
    flag: &ProxyFlag,
    pac: Option<&str>,
    env: &ProxyEnv,
    looked_at: &mut Vec<String>,
) -> Found {
    if let Some(url) = pac {
        return pac_found("cli", url);
    }
    match flag {
        ProxyFlag::Direct => return Found::Direct,
        ProxyFlag::Url(url) => {
            return Found::Fixed {
                from: "cli".into(),
                proxy: url.clone(),
                except: Vec::new(),
            };
        }
        ProxyFlag::Auto => {}
    }
    if !env.vars.is_empty() {
        return Found::Env;
    }
    looked_at.push("environment: no proxy variables".into());
    let mut discover = false;
    for (name, settings) in desktops() {
        match settings {
            Some(Desktop::Manual { proxy, except }) => {
                return Found::Fixed {
                    from: name.into(),
                    proxy,
                    except,
                };
            }
            Some(Desktop::Pac(url)) => return pac_found(name, &url),
            Some(Desktop::Discover) => discover = true,
            Some(Desktop::Off) => looked_at.push(format!("{name}: no proxy")),
            None => {}
        }
    }
    let root = crate::platform::fs::root();
    if let Some(url) = wpad::dhcp_url(&root) {
        return Found::Pac {
            from: "wpad".into(),
            url,
            label: "wpad:dhcp".into(),
        };
    }
    looked_at.push("wpad: no DHCP lease announces a PAC file (option 252)".into());
    let names = wpad::dns_names(&root);
    if names.is_empty() {
        looked_at.push("wpad: no search domain to look for a wpad name in".into());
        if discover {
            looked_at.push("the desktop asks for WPAD, and it found nothing".into());
        }
        return Found::Nothing;
    }
    Found::WpadDns(names)
}

/// The desktops (or system settings) of this platform, in order, and what each says (`None`:
/// not present).
fn desktops() -> Vec<(&'static str, Option<Desktop>)> {
    #[cfg(target_os = "linux")]
    {
        vec![("gnome", desktop::gnome()), ("kde", desktop::kde())]
    }
    #[cfg(not(target_os = "linux"))]
    {
        crate::platform::proxy::system()
    }
}

fn pac_found(from: &str, url: &str) -> Found {
    Found::Pac {
        from: from.into(),
        url: url.to_owned(),
        label: format!("pac:{}", shown_value(url)),
    }
}

/// What the run needs to follow the settings.
pub struct Follow<'a> {
    pub endpoints: &'a [Endpoint],
    pub resolver: &'a Result<Resolver, String>,
    pub tls: &'a TlsSetup,
    pub timeout: Duration,
}

/// Follows the settings: the [`ProxyEnv`] the run uses, with how it was decided. Bounded by
/// `bound`; a PAC file that cannot be had or run leaves every endpoint direct, said in the
/// decision.
pub async fn decide(s: &Settings, f: &Follow<'_>, bound: Duration) -> ProxyEnv {
    let decision = Decision {
        looked_at: s.looked_at.clone(),
        ..Decision::default()
    };
    match &s.found {
        Found::Nothing => with(ProxyEnv::default(), "", decision),
        Found::Env => {
            let from = Decision {
                from: "env".into(),
                ..decision
            };
            with(s.env.clone(), "env", from)
        }
        Found::Direct => {
            let env = ProxyEnv {
                routes: Some(BTreeMap::new()),
                ..ProxyEnv::default()
            };
            let from = Decision {
                from: "cli".into(),
                ..decision
            };
            with(env, "cli", from)
        }
        Found::Fixed {
            from,
            proxy,
            except,
        } => {
            let env = ProxyEnv {
                https: Some(proxy.clone()),
                no_proxy: except.iter().map(|e| e.to_ascii_lowercase()).collect(),
                ..ProxyEnv::default()
            };
            let d = Decision {
                from: from.clone(),
                ..decision
            };
            with(env, from, d)
        }
        Found::Pac { from, url, label } => {
            let d = Decision {
                from: from.clone(),
                ..decision
            };
            bounded(follow_pac(url, label, d, f), label, bound).await
        }
        Found::WpadDns(names) => {
            let d = Decision {
                from: "wpad".into(),
                ..decision
            };
            bounded(wpad_dns(names, d, f), "wpad:dns", bound).await
        }
    }
}

fn with(mut env: ProxyEnv, source: &str, decision: Decision) -> ProxyEnv {
    env.source = source.to_owned();
    env.decision = Some(Arc::new(decision));
    env
}

/// `work` within `bound`, or every endpoint direct with the reason.
async fn bounded(work: impl Future<Output = ProxyEnv>, label: &str, bound: Duration) -> ProxyEnv {
    match tokio::time::timeout(bound, work).await {
        Ok(env) => env,
        Err(_) => {
            let d = Decision {
                failure: Some((
                    "proxy.pac_unreachable",
                    format!(
                        "the PAC file gave no answer within {}",
                        humantime::format_duration(bound)
                    ),
                )),
                ..Decision::default()
            };
            direct_after(label, d)
        }
    }
}

/// Every endpoint direct, after a PAC file failed.
fn direct_after(label: &str, decision: Decision) -> ProxyEnv {
    let env = ProxyEnv {
        routes: Some(BTreeMap::new()),
        ..ProxyEnv::default()
    };
    with(env, label, decision)
}

/// Fetches and runs the PAC file at `url` for every endpoint.
async fn follow_pac(url: &str, label: &str, mut d: Decision, f: &Follow<'_>) -> ProxyEnv {
    d.pac_url = Some(shown_value(url));
    let (script, near) = match crate::pac::fetch(url, f.resolver, f.tls, f.timeout).await {
        Ok(got) => got,
        Err(failure) => {
            d.failure = Some(failure);
            return direct_after(label, d);
        }
    };
    let mut hosts: Vec<(String, String)> = Vec::new();
    for ep in f.endpoints {
        let host = ep.host.to_ascii_lowercase();
        if !hosts.iter().any(|(_, h)| *h == host) {
            hosts.push((format!("https://{}/", ep.authority()), host));
        }
    }
    match crate::pac::choose(script, hosts, f.resolver, f.timeout, near).await {
        Ok(choices) => {
            let routes = choices
                .iter()
                .map(|c| (c.host.clone(), c.via.clone()))
                .collect();
            d.choices = choices
                .into_iter()
                .map(|mut c| {
                    c.via = c.via.as_deref().map(shown_value);
                    c
                })
                .collect();
            let env = ProxyEnv {
                routes: Some(routes),
                ..ProxyEnv::default()
            };
            with(env, label, d)
        }
        Err(failure) => {
            d.failure = Some(failure);
            direct_after(label, d)
        }
    }
}

/// The first `wpad.<domain>` name that resolves, and its `wpad.dat`; said when none does.
async fn wpad_dns(names: &[String], mut d: Decision, f: &Follow<'_>) -> ProxyEnv {
    for name in names {
        let found = tokio::time::timeout(
            f.timeout,
            crate::probe::lookup::first_address(f.resolver, name),
        )
        .await;
        if let Ok(Ok(_)) = found {
            let url = format!("http://{name}/wpad.dat");
            return follow_pac(&url, "wpad:dns", d, f).await;
        }
        d.looked_at.push(format!(
            "wpad: the name {} does not resolve",
            shown_value(name)
        ));
    }
    // Nothing found: no proxy anywhere, and the places looked at are said.
    d.from.clear();
    with(ProxyEnv::default(), "", d)
}
