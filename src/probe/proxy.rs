//! proxy: proxy settings in the environment (credentials redacted).
//!
//! A proxy changes the path the app's traffic takes, so the http stage goes through it when one
//! applies (and a failure there is the proxy's). The settings are read and redacted by
//! [`crate::probe::proxyenv`]; this probe reports what is configured.

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, DeviceInput, Run};
use crate::probe::proxyenv::{ProxyEnv, shown_value};
use std::sync::Arc;

pub use crate::probe::proxyenv::VARS;

/// The proxy probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Proxy,
    name: "proxy",
    description: "proxy settings in the environment (credentials redacted)",
    codes: &["proxy.none", "proxy.env", "proxy.timeout", "proxy.skipped"],
    keys: &[],
    metrics: &[],
    needs: &[],
    run: Run::Device(|input: Arc<DeviceInput>| {
        let c = check(&input.proxy);
        Box::pin(async move { vec![c] })
    }),
};

/// The proxy check: what is configured, credentials redacted.
pub fn check(env: &ProxyEnv) -> Check {
    if env.vars.is_empty() {
        return Check::new(
            Probe::Proxy,
            None,
            Status::Pass,
            "proxy.none",
            "no proxy configured in the environment",
        )
        .with("variables", serde_json::json!({}));
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
}
