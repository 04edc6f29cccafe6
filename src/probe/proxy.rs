//! proxy: the proxy settings the run follows, where they came from, and what a PAC file chose
//! (credentials redacted).
//!
//! A proxy changes the path the app's traffic takes, so the http stage goes through it when one
//! applies (and a failure there is the proxy's). The settings are found and followed before the
//! run (`crate::proxysettings`: command line, environment, desktop, PAC, WPAD) and redacted by
//! [`crate::probe::proxyenv`]; this probe reports the decision: `proxy.none` and `proxy.env` as
//! before, `proxy.cli`, `proxy.desktop` and `proxy.pac` for the other sources, and
//! `proxy.pac_unreachable` / `proxy.pac_error` when a PAC file could not be followed (the run
//! then goes direct, and says so).

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, DeviceInput, Run};
use crate::probe::proxyenv::{Decision, ProxyEnv, shown_value};
use std::sync::Arc;

pub use crate::probe::proxyenv::VARS;

/// The proxy probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Proxy,
    name: "proxy",
    description: "proxy settings the app follows: flags, environment, desktop, PAC, WPAD (credentials redacted)",
    codes: &[
        "proxy.none",
        "proxy.env",
        "proxy.timeout",
        "proxy.skipped",
        "proxy.cli",
        "proxy.desktop",
        "proxy.pac",
        "proxy.pac_unreachable",
        "proxy.pac_error",
    ],
    keys: &[],
    metrics: &[],
    needs: &[],
    run: Run::Device(|input: Arc<DeviceInput>| {
        let c = check(&input.proxy);
        Box::pin(async move { vec![c] })
    }),
};

/// The proxy check: what is configured and where it came from, credentials redacted.
pub fn check(env: &ProxyEnv) -> Check {
    let c = match env.decision.as_deref() {
        Some(d) if !d.from.is_empty() && d.from != "env" => decided(env, d),
        _ => from_env(env),
    };
    let looked_at = env.decision.as_ref().map(|d| d.looked_at.clone());
    match looked_at.filter(|l| !l.is_empty()) {
        Some(l) => c.with("looked_at", l),
        None => c,
    }
}

/// The settings came from the environment, or from nowhere.
fn from_env(env: &ProxyEnv) -> Check {
    if env.vars.is_empty() {
        return Check::new(
            Probe::Proxy,
            None,
            Status::Pass,
            "proxy.none",
            "no proxy configured in the environment",
        )
        .with("variables", serde_json::json!({}))
        .with("source", "none");
    }
    let shown: serde_json::Map<String, serde_json::Value> = env
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(shown_value(v))))
        .collect();
    let summary = match &env.https {
        Some(p) => format!(
            "HTTPS goes through the proxy {}{}",
            shown_value(p),
            if env.no_proxy.is_empty() {
                String::new()
            } else {
                format!(" (except {})", shown_value(&env.no_proxy.join(", ")))
            }
        ),
        None => "only NO_PROXY or HTTP_PROXY is set; HTTPS goes direct".into(),
    };
    Check::new(Probe::Proxy, None, Status::Pass, "proxy.env", summary)
        .with("variables", serde_json::Value::Object(shown))
        .with("https_proxy", env.https.as_deref().map(shown_value))
        .with("source", "env")
}

/// The settings came from the command line, the desktop, or a PAC file.
fn decided(env: &ProxyEnv, d: &Decision) -> Check {
    let Some(pac) = d.pac_url.as_deref() else {
        return fixed(env, d);
    };
    let whence = match d.from.as_str() {
        "cli" => "given with --pac".to_owned(),
        "wpad" => format!("found by WPAD ({})", env.source.trim_start_matches("wpad:")),
        other => format!("set in the {} settings", place(other)),
    };
    let choices: Vec<serde_json::Value> = d
        .choices
        .iter()
        .map(|c| {
            serde_json::json!({
                "host": crate::sanitize::outside(&c.host),
                "answer": c.answer,
                "path": if c.via.is_some() { "proxy" } else { "direct" },
                "via_proxy": c.via,
                "notes": c.notes,
                "error": c.failed,
            })
        })
        .collect();
    let failed: Vec<String> = d
        .choices
        .iter()
        .filter_map(|c| c.failed.as_ref().map(|f| format!("{}: {f}", c.host)))
        .collect();
    let (code, summary) = if let Some((code, why)) = &d.failure {
        let summary = format!(
            "the PAC file {whence} could not be followed ({why}); every endpoint is tested on the direct path"
        );
        (*code, summary)
    } else if !failed.is_empty() {
        let summary = format!(
            "the PAC file {whence} ({pac}) gave no usable answer for {}; those go direct",
            failed.join("; ")
        );
        ("proxy.pac_error", summary)
    } else {
        let passed_over = d.choices.iter().filter(|c| !c.notes.is_empty()).count();
        let aside = if passed_over == 0 {
            String::new()
        } else {
            format!(
                "; for {passed_over} host(s) an earlier entry was passed over (a proxy that did not accept a connection, or a kind not followed: see pac_choices)"
            )
        };
        (
            "proxy.pac",
            format!("the PAC file {whence} ({pac}) chose: {}{aside}", chosen(d)),
        )
    };
    let status = if code == "proxy.pac" {
        Status::Pass
    } else {
        Status::Warn
    };
    Check::new(Probe::Proxy, None, status, code, summary)
        .with("source", env.source.clone())
        .with("settings_from", d.from.clone())
        .with("pac_url", pac)
        .with("pac_choices", choices)
}

/// A proxy (or none) given on the command line or in the desktop's settings.
fn fixed(env: &ProxyEnv, d: &Decision) -> Check {
    let code = if d.from == "cli" {
        "proxy.cli"
    } else {
        "proxy.desktop"
    };
    let whence = if d.from == "cli" {
        "the command line says".to_owned()
    } else {
        format!("the {} settings say", place(&d.from))
    };
    let summary = match env.https.as_deref() {
        Some(p) => format!(
            "{whence}: HTTPS goes through the proxy {}{}",
            shown_value(p),
            if env.no_proxy.is_empty() {
                String::new()
            } else {
                format!(" (except {})", shown_value(&env.no_proxy.join(", ")))
            }
        ),
        None => format!("{whence}: no proxy; every endpoint goes direct"),
    };
    Check::new(Probe::Proxy, None, Status::Pass, code, summary)
        .with("source", env.source.clone())
        .with("https_proxy", env.https.as_deref().map(shown_value))
        .with(
            "no_proxy",
            env.no_proxy
                .iter()
                .map(|n| crate::sanitize::outside(n))
                .collect::<Vec<_>>(),
        )
}

/// Where settings named `from` live, for a sentence.
fn place(from: &str) -> &'static str {
    match from {
        "gnome" => "GNOME desktop's",
        "kde" => "KDE desktop's",
        "macos" => "macOS system",
        "windows" => "Windows (WinINET)",
        _ => "system's",
    }
}

/// What the PAC file chose, host by host, in a few words.
fn chosen(d: &Decision) -> String {
    let mut parts: Vec<String> = d
        .choices
        .iter()
        .take(8)
        .map(|c| match &c.via {
            Some(p) => format!("{} through {p}", crate::sanitize::outside(&c.host)),
            None => format!("{} direct", crate::sanitize::outside(&c.host)),
        })
        .collect();
    if d.choices.len() > 8 {
        parts.push(format!("and {} more", d.choices.len() - 8));
    }
    if parts.is_empty() {
        "no endpoint to decide for".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::proxyenv::PacChoice;

    fn pac_env(failure: Option<(&'static str, String)>, failed: Option<String>) -> ProxyEnv {
        let d = Decision {
            from: "gnome".into(),
            pac_url: Some("http://***@p.corp/x.pac".into()),
            choices: vec![PacChoice {
                host: "a.example".into(),
                answer: "PROXY p:1; DIRECT".into(),
                via: Some("http://p:1".into()),
                notes: vec![],
                failed,
            }],
            failure,
            looked_at: vec![],
        };
        ProxyEnv {
            source: "pac:http://***@p.corp/x.pac".into(),
            routes: Some(Default::default()),
            decision: Some(Arc::new(d)),
            ..ProxyEnv::default()
        }
    }

    #[test]
    fn each_decision_has_its_code() {
        let c = check(&pac_env(None, None));
        assert_eq!((c.code.as_str(), c.status), ("proxy.pac", Status::Pass));
        assert!(
            c.summary.contains("a.example through http://p:1"),
            "{}",
            c.summary
        );
        let c = check(&pac_env(None, Some("the script threw: no".into())));
        assert_eq!(
            (c.code.as_str(), c.status),
            ("proxy.pac_error", Status::Warn)
        );
        let c = check(&pac_env(
            Some(("proxy.pac_unreachable", "no connection".into())),
            None,
        ));
        assert_eq!(c.code, "proxy.pac_unreachable");
        assert!(
            c.summary.contains("GNOME desktop's settings"),
            "{}",
            c.summary
        );
        assert!(c.summary.contains("direct path"), "{}", c.summary);
    }

    #[test]
    fn fixed_settings_and_nothing_found() {
        let env = ProxyEnv {
            https: Some("http://u:pw123@p:3128".into()),
            source: "cli".into(),
            decision: Some(Arc::new(Decision {
                from: "cli".into(),
                ..Decision::default()
            })),
            ..ProxyEnv::default()
        };
        let c = check(&env);
        assert_eq!(c.code, "proxy.cli");
        let all = format!("{} {:?}", c.summary, c.data);
        assert!(
            !all.contains("pw123") && all.contains("***@p:3128"),
            "{all}"
        );
        let env = ProxyEnv {
            decision: Some(Arc::new(Decision {
                looked_at: vec!["wpad: no search domain".into()],
                ..Decision::default()
            })),
            ..ProxyEnv::default()
        };
        let c = check(&env);
        assert_eq!(c.code, "proxy.none");
        assert!(c.data.contains_key("looked_at"));
    }
}
