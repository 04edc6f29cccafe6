//! Interception: a chain that leads to a known interceptor's root, or to a root only this device
//! trusts, named for what it is — on the direct path and on the proxy path alike.

use super::certificate::*;
use super::trust::*;
use super::verifier::*;
use crate::model::{Check, Status};

/// A certificate that is not the service's: who presents it, and whether this device trusts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interception {
    /// The product, or "a root installed on this device: <issuer>".
    pub interceptor: String,
    /// antivirus, corporate, debugging, block page, known bad root — or "installed root".
    pub kind: String,
    /// The issuer of the certificate presented.
    pub issuer: String,
    /// The device's trust store accepts it (the app's pinning still fails there).
    pub trusted: bool,
}

impl Interception {
    /// Rewrites a tls check (or the http check of a proxied request) to say who is in the way.
    pub fn apply(&self, mut c: Check) -> Check {
        let who = if self.kind == "installed root" {
            self.interceptor.clone()
        } else {
            format!("{} ({})", self.interceptor, self.kind)
        };
        let (status, summary) = if self.trusted {
            (
                c.status.max(Status::Warn),
                format!(
                    "the certificate is not the service's: {who} presents its own, and this device trusts it; browsers work, but apps that pin BMW's certificates (the My BMW app) fail here. {}",
                    c.summary
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "the certificate is not the service's: {who} presents its own (issuer: {}), and this device does not trust it",
                    short_name(&self.issuer)
                ),
            )
        };
        c.restate(status, "tls.intercepted", summary);
        c.with("interceptor", self.interceptor.clone())
            .with("interceptor_kind", self.kind.clone())
            .with("issuer", self.issuer.clone())
            .with("reason", self.kind.clone())
            .with("intercept_trusted", self.trusted)
    }
}

/// Is the presented chain an interceptor's? A pure judgement any path can call (the direct tls
/// stage, a proxy's tunnel):
/// - `names`: issuer and subject names of the chain presented; `top_issuer`: the issuer of its
///   last certificate (the root it claims);
/// - `anchor`: where verification led when it passed (`None`: it failed);
/// - `private_ca`: the endpoint declared its own CA.
///
/// A chain that leads to a public root, or to a root the user declared with `--ca-file`, is the
/// service's. One that only the device's own store accepts is an installed interceptor, named
/// from the table where it can be. One that failed is an interceptor only when the table
/// knows its issuer: an unknown self-signed certificate stays `tls.untrusted`.
pub fn judge_interception(
    names: &[String],
    top_issuer: &str,
    anchor: Option<Anchor>,
    private_ca: bool,
) -> Option<Interception> {
    if private_ca || matches!(anchor, Some(Anchor::Public | Anchor::Declared)) {
        return None;
    }
    let known = crate::interceptors::identify(names.iter().map(String::as_str));
    let trusted = anchor == Some(Anchor::DeviceOnly);
    let issuer = names.first().cloned().unwrap_or_default();
    match known {
        Some(k) => Some(Interception {
            interceptor: k.product.clone(),
            kind: k.kind.clone(),
            issuer,
            trusted,
        }),
        None if trusted => Some(Interception {
            interceptor: format!(
                "a root installed on this device: {}",
                short_name(top_issuer)
            ),
            kind: "installed root".into(),
            issuer,
            trusted,
        }),
        None => None,
    }
}

/// The judgement for a proxied request: the chain the proxy presented, as the verifier saw it.
pub fn judge_seen(seen: Option<&Seen>, private_ca: bool) -> Option<Interception> {
    let s = seen?;
    let names = chain_names(&s.chain);
    let top = s
        .chain
        .last()
        .and_then(|der| cert_facts(der))
        .map(|f| f.issuer)
        .unwrap_or_default();
    judge_interception(&names, &top, s.anchor, private_ca)
}

/// The proxy path's http check (through a proxy that is not an http:// one), judged by the
/// certificate the proxy presented, like the direct path's: an interceptor is named, unless the
/// proxy failed on its own and the certificate was one the device trusts.
pub fn judge_proxied(c: Check, presented: Option<&Seen>, private_ca: bool) -> Check {
    match judge_seen(presented, private_ca) {
        Some(i) if c.code != "http.proxy_error" || !i.trusted => i.apply(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Probe;

    #[test]
    fn interception_is_judged_by_where_the_chain_leads() {
        let names = vec!["CN=mitmproxy, O=mitmproxy".to_owned()];
        let j = |anchor, private| judge_interception(&names, "CN=mitmproxy", anchor, private);
        let trusted = j(Some(Anchor::DeviceOnly), false).expect("named");
        assert_eq!(trusted.interceptor, "mitmproxy");
        assert_eq!(trusted.kind, "debugging");
        assert!(trusted.trusted);
        assert!(!j(None, false).expect("named").trusted);
        assert_eq!(j(Some(Anchor::Public), false), None);
        assert_eq!(j(Some(Anchor::Declared), false), None);
        assert_eq!(j(Some(Anchor::DeviceOnly), true), None);
        let unknown = vec!["CN=Home Router CA".to_owned()];
        let installed = judge_interception(
            &unknown,
            "CN=Home Router CA",
            Some(Anchor::DeviceOnly),
            false,
        )
        .expect("an installed root");
        assert_eq!(
            installed.interceptor,
            "a root installed on this device: Home Router CA"
        );
        // An unknown self-signed certificate that failed stays untrusted.
        assert_eq!(
            judge_interception(&unknown, "CN=Home Router CA", None, false),
            None
        );
        let c = trusted.apply(Check::new(
            Probe::Tls,
            Some("api"),
            Status::Pass,
            "tls.ok",
            "TLSv1.3",
        ));
        assert_eq!(
            (c.status, c.code.as_str()),
            (Status::Warn, "tls.intercepted")
        );
        assert!(c.summary.contains("pin"), "{}", c.summary);
    }
}
