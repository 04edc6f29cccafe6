//! TLS inspection named by evidence, for the run as a whole: a pass of the cross-check.
//!
//! One handshake can name an interceptor only when its product is in
//! `checks/interceptors.toml` or the device trusts its root. A company's own inspection CA
//! ("ExampleCorp TLS Inspection CA" on a squid with ssl-bump) is in no table, and an untrusted
//! one looks like any self-signed server. The run as a whole knows more: when the same issuer,
//! in no public store, signs the certificate of a BMW host and of the neutral baseline host on
//! one path, something on that path forges certificates for every host. That is interception,
//! whatever the product, and whether or not the device trusts it. One self-signed server on one
//! host only is no such evidence and stays `tls.untrusted`.
//!
//! Where an answer came through it, the proxy's own headers (`Via: 1.1 gw (squid/5.7)`, its
//! `Server` or `X-Squid-Error`, read by the http stage) name the product and its kind, and the
//! kind chooses the suspect: a company's gateway, a debugging proxy, an antivirus — or, when
//! nothing names it and the device trusts it, a root someone installed.

use crate::interceptors::{ProxySeen, proxy_of};
use crate::model::{Check, Probe, Status};
use crate::probe::tls::certificate::short_name;
use crate::profile::{Endpoint, Role};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A check that showed a certificate whose root is in no public store: untrusted, or trusted
/// by this device only, and not already named by the product table.
fn foreign(c: &Check) -> Option<(String, String, bool)> {
    let path = c.data_str("path")?;
    let issuer = c.data_str("issuer").filter(|i| !i.is_empty())?;
    if c.data.contains_key("explained_by") || c.data_str("subject") == Some(issuer) {
        // A block page's, or a self-signed leaf: the server's own certificate, not a forged one.
        return None;
    }
    let installed =
        c.code == "tls.intercepted" && c.data_str("interceptor_kind") == Some("installed root");
    let untrusted = match c.probe {
        Probe::Tls => c.code == "tls.untrusted",
        Probe::Http => {
            c.code == "http.proxy_error" && c.data_str("tls_code") == Some("tls.untrusted")
        }
        _ => false,
    };
    (installed || untrusted).then(|| (path.to_owned(), issuer.to_owned(), installed))
}

/// One issuer on one path, and what the run shows of it.
struct Finding {
    issuer: String,
    path: String,
    trusted: bool,
    services: BTreeSet<String>,
    baselines: BTreeSet<String>,
    proxy: Option<ProxySeen>,
}

impl Finding {
    fn interceptor(&self) -> Option<String> {
        let cn = short_name(&self.issuer);
        match &self.proxy {
            Some(p) => Some(p.proxy.inspection.clone()),
            // Trusted, direct, and nothing names it: the installed root keeps its name.
            None if self.trusted && self.path != "proxy" => None,
            None => Some(format!("TLS inspection by '{cn}'")),
        }
    }

    fn kind(&self) -> &str {
        match &self.proxy {
            Some(p) => &p.proxy.kind,
            None if self.trusted && self.path != "proxy" => "installed root",
            // The configured proxy, or a box on the network the device does not trust, forges
            // certificates for every host: a network's gateway.
            None => "corporate",
        }
    }

    /// Who is in the way, in words: "squid ssl-bump, CA 'ExampleCorp TLS Inspection CA'".
    fn who(&self) -> String {
        let cn = short_name(&self.issuer);
        match &self.proxy {
            Some(p) => format!("{} ({}), CA '{cn}'", p.proxy.inspection, p.shown),
            None => format!("TLS inspection by '{cn}'"),
        }
    }

    fn evidence(&self) -> Vec<String> {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut e = vec![format!(
            "the same issuer '{}', in no public store, signs the certificates of {} and of the neutral host {} ({} path)",
            short_name(&self.issuer),
            list(&self.services),
            list(&self.baselines),
            self.path
        )];
        if let Some(p) = &self.proxy {
            e.push(p.evidence.clone());
        }
        e
    }
}

/// The targets' hosts and roles.
fn roles(endpoints: &[Endpoint]) -> HashMap<&str, (&str, Role)> {
    endpoints
        .iter()
        .map(|e| (e.name.as_str(), (e.host.as_str(), e.role)))
        .collect()
}

/// The uplink (`None`: the system's routing), the path and the issuer.
type GroupKey = (Option<String>, String, String);

/// The same issuer, in no public store, on a service host and on the baseline host of one path:
/// interception by evidence, named by the proxy's headers where an answer carries them.
pub fn by_evidence(checks: &mut [Check], endpoints: &[Endpoint]) {
    let roles = roles(endpoints);
    // One path of one uplink: what its checks show together.
    let mut groups: BTreeMap<GroupKey, (Vec<usize>, bool)> = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        if let Some((path, issuer, trusted)) = foreign(c) {
            let key = (c.interface.clone(), path, issuer);
            let g = groups.entry(key).or_insert((Vec::new(), true));
            g.0.push(i);
            g.1 = g.1 && trusted;
        }
    }
    for ((interface, path, issuer), (members, trusted)) in groups {
        let mut f = Finding {
            issuer,
            path,
            trusted,
            services: BTreeSet::new(),
            baselines: BTreeSet::new(),
            proxy: None,
        };
        for &i in &members {
            let target = checks[i].target.as_deref().unwrap_or("");
            match roles.get(target) {
                Some((host, Role::Service)) => f.services.insert((*host).to_owned()),
                Some((host, Role::Baseline)) => f.baselines.insert((*host).to_owned()),
                _ => false,
            };
        }
        if f.services.is_empty() || f.baselines.is_empty() {
            continue;
        }
        let targets: BTreeSet<Option<String>> =
            members.iter().map(|&i| checks[i].target.clone()).collect();
        f.proxy = proxy_named(checks, &targets, (&interface, &f.path));
        for &i in &members {
            name_it(&mut checks[i], &f);
        }
        for c in checks.iter_mut() {
            if c.status == Status::Skip && targets.contains(&c.target) && c.interface == interface {
                c.summary = c.summary.replace("(tls.untrusted)", "(tls.intercepted)");
            }
        }
    }
}

/// The proxy product an answer on this path, for one of these targets, names.
fn proxy_named(
    checks: &[Check],
    targets: &BTreeSet<Option<String>>,
    (interface, path): (&Option<String>, &str),
) -> Option<ProxySeen> {
    checks
        .iter()
        .filter(|c| c.probe == Probe::Http && c.data_str("path") == Some(path))
        .filter(|c| &c.interface == interface)
        .filter(|c| targets.contains(&c.target))
        .filter_map(|c| c.data_str("proxy_header"))
        .find_map(|h| {
            let (name, value) = h.split_once(": ")?;
            proxy_of(&[(name.to_owned(), value.to_owned())])
        })
}

/// Rewrites one check of the finding: `tls.intercepted`, who, the kind, the evidence.
fn name_it(c: &mut Check, f: &Finding) {
    let prefix = c
        .data_str("via_proxy")
        .map(|p| format!("through the proxy {p}: "))
        .unwrap_or_default();
    let baselines: Vec<&str> = f.baselines.iter().map(String::as_str).collect();
    let mut summary = format!(
        "{prefix}the certificate is not the service's: {} presents its own for every host — the same issuer signs the neutral host {} too",
        f.who(),
        baselines.join(", ")
    );
    let status = if f.trusted {
        summary.push_str(", and this device trusts it; browsers work, but apps that pin BMW's certificates (the My BMW app) fail here");
        c.status.max(Status::Warn)
    } else {
        summary.push_str(", and this device does not trust it");
        Status::Fail
    };
    if let Some(error) = c.data_str("proxy_error") {
        summary.push_str(&format!(
            "; the answer is the proxy's own error page {error}: {}",
            crate::probe::http::proxy_error_words(error)
        ));
    } else if let Some(status) = c.data_f64("status_code") {
        summary.push_str(&format!("; HTTP {status} came through it"));
    }
    c.restate(status, "tls.intercepted", summary);
    let kind = f.kind().to_owned();
    if let Some(name) = f.interceptor() {
        c.data.insert("interceptor".into(), json!(name));
    }
    c.data.insert("interceptor_kind".into(), json!(kind));
    c.data.insert("reason".into(), json!(kind));
    c.data.insert("intercept_trusted".into(), json!(f.trusted));
    c.data.insert("evidence".into(), json!(f.evidence()));
    if let Some(p) = &f.proxy {
        c.data.insert("proxy_product".into(), json!(p.shown));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, host: &str, role: Role) -> Endpoint {
        Endpoint::for_test(name, host, 443, role)
    }

    const CA: &str = "O=ExampleCorp, CN=ExampleCorp TLS Inspection CA";

    fn untrusted(target: &str, issuer: &str, subject: &str) -> Check {
        Check::new(Probe::Tls, Some(target), Status::Fail, "tls.untrusted", "x")
            .with("issuer", issuer)
            .with("subject", subject)
            .with("path", "direct")
    }

    fn eps() -> Vec<Endpoint> {
        vec![
            ep("api", "api.example", Role::Service),
            ep("neutral", "www.example", Role::Baseline),
        ]
    }

    #[test]
    fn one_unknown_issuer_on_the_service_and_the_baseline_is_interception() {
        let mut c = vec![
            untrusted("api", CA, "CN=api.example"),
            untrusted("neutral", CA, "CN=www.example"),
            Check::new(
                Probe::Http,
                Some("api"),
                Status::Skip,
                "http.skipped",
                "needs tls (tls.untrusted)",
            ),
        ];
        by_evidence(&mut c, &eps());
        for t in &c[..2] {
            assert_eq!(
                (t.code.as_str(), t.status),
                ("tls.intercepted", Status::Fail)
            );
            assert_eq!(
                t.data["interceptor"],
                "TLS inspection by 'ExampleCorp TLS Inspection CA'"
            );
            assert_eq!(t.data["reason"], "corporate");
            assert!(
                t.data["evidence"][0]
                    .as_str()
                    .unwrap_or("")
                    .contains("www.example")
            );
        }
        assert!(c[2].summary.contains("(tls.intercepted)"));
    }

    #[test]
    fn a_self_signed_server_or_one_host_only_stays_untrusted() {
        // Self-signed leaves: each host's issuer is itself.
        let mut c = vec![
            untrusted("api", "CN=api.example", "CN=api.example"),
            untrusted("neutral", "CN=www.example", "CN=www.example"),
        ];
        by_evidence(&mut c, &eps());
        assert!(c.iter().all(|c| c.code == "tls.untrusted"));
        // The unknown issuer on the service only.
        let mut c = vec![untrusted("api", CA, "CN=api.example")];
        by_evidence(&mut c, &eps());
        assert_eq!(c[0].code, "tls.untrusted");
        // The same issuer on two paths: no claim either.
        let mut c = vec![
            untrusted("api", CA, "CN=api.example"),
            untrusted("neutral", CA, "CN=www.example").with("path", "proxy"),
        ];
        by_evidence(&mut c, &eps());
        assert_eq!(c[0].code, "tls.untrusted");
    }

    #[test]
    fn the_proxy_headers_name_a_trusted_inspection_on_the_proxy_path() {
        let installed = |t: &str| {
            Check::new(Probe::Http, Some(t), Status::Warn, "tls.intercepted", "x")
                .with(
                    "interceptor",
                    "a root installed on this device: ExampleCorp TLS Inspection CA",
                )
                .with("interceptor_kind", "installed root")
                .with("issuer", CA)
                .with("path", "proxy")
                .with("via_proxy", "http://127.0.0.1:3128")
                .with("status_code", 200)
                .with("proxy_header", "Via: 1.1 gw (squid/5.7)")
        };
        let mut c = vec![installed("api"), installed("neutral")];
        by_evidence(&mut c, &eps());
        let h = &c[0];
        assert_eq!(h.code, "tls.intercepted");
        assert_eq!(h.status, Status::Warn);
        assert_eq!(h.data["interceptor"], "squid ssl-bump");
        assert_eq!(h.data["interceptor_kind"], "corporate");
        assert_eq!(h.data["proxy_product"], "squid/5.7");
        assert!(
            h.summary
                .starts_with("through the proxy http://127.0.0.1:3128: "),
            "{}",
            h.summary
        );
        assert!(
            h.summary
                .contains("squid ssl-bump (squid/5.7), CA 'ExampleCorp TLS Inspection CA'"),
            "{}",
            h.summary
        );
        assert_eq!(h.data["evidence"][1], "Via: 1.1 gw (squid/5.7)");
    }
}
