//! The table of TLS-inspection products (`checks/interceptors.toml`), by the names they write
//! into the certificates they issue.
//!
//! Why a data table: the products change names and new ones appear; naming who is in the way is
//! then an edit to a file with its sources, checked by the tests below, not a code change.
//!
//! The same file names the proxies that inspect TLS by the headers they add to the answers they
//! pass on (`[[proxy]]`): a forged certificate often names nobody but its company CA, while the
//! answer that comes through it says `Via: 1.1 gw (squid/5.7)`.

use serde::Deserialize;
use std::sync::OnceLock;

/// The table as written (TOML), for the tests that hold it to its rules.
#[cfg(test)]
pub const SOURCE: &str = include_str!("../checks/interceptors.toml");

/// The table as JSON, converted when the tool was built (`build.rs`; read faster than TOML).
const COMPILED: &str = include_str!(concat!(env!("OUT_DIR"), "/interceptors.json"));

/// The kinds the table may use; each has fix steps of its own in the knowledge base.
#[cfg(test)]
pub const KINDS: [&str; 5] = [
    "antivirus",
    "corporate",
    "debugging",
    "block page",
    "known bad root",
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interceptor {
    pub product: String,
    pub kind: String,
    pub names: Vec<String>,
}

/// A proxy product known by the headers it writes into the answers it passes on or makes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyProduct {
    /// The product's name, as shown ("squid").
    pub product: String,
    /// What its TLS inspection is called ("squid ssl-bump").
    pub inspection: String,
    /// One of [`KINDS`]: chooses the fix steps when it inspects.
    pub kind: String,
    /// Case-insensitive substrings of a `Via` or `Server` value that name it.
    pub names: Vec<String>,
    /// Header names only this product writes (`X-Squid-Error`), lower case.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// A proxy named by the headers of one answer: who, and the header that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySeen {
    pub proxy: &'static ProxyProduct,
    /// The product and version as the header gives them ("squid/5.7"), else the product.
    pub shown: String,
    /// The header line that names it ("Via: 1.1 gw (squid/5.7)").
    pub evidence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    interceptor: Vec<Interceptor>,
    #[serde(default)]
    proxy: Vec<ProxyProduct>,
}

fn parsed() -> &'static (Vec<Interceptor>, Vec<ProxyProduct>) {
    static TABLE: OnceLock<(Vec<Interceptor>, Vec<ProxyProduct>)> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str::<Table>(COMPILED)
            .map(|t| (t.interceptor, t.proxy))
            .unwrap_or_default()
    })
}

/// The built-in table (empty if it could not be read, which a test rules out).
pub fn table() -> &'static [Interceptor] {
    &parsed().0
}

/// The built-in table of proxy products.
pub fn proxies() -> &'static [ProxyProduct] {
    &parsed().1
}

/// The proxy product that the headers of one answer name (`(name, value)` pairs, names in any
/// case), with the header that names it. `Via` counts first (a proxy writes it of itself),
/// then `Server` (on a proxy's own error page), then a header only that product writes.
pub fn proxy_of(headers: &[(String, String)]) -> Option<ProxySeen> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
    };
    for (n, v) in named("via").chain(named("server")) {
        let lower = v.to_lowercase();
        for p in proxies() {
            if let Some(name) = p.names.iter().find(|s| lower.contains(&s.to_lowercase())) {
                return Some(ProxySeen {
                    proxy: p,
                    shown: product_token(v, name).unwrap_or_else(|| p.product.clone()),
                    evidence: format!("{}: {v}", header_name(n)),
                });
            }
        }
    }
    headers.iter().find_map(|(n, v)| {
        let p = proxies()
            .iter()
            .find(|p| p.headers.iter().any(|h| h.eq_ignore_ascii_case(n)))?;
        Some(ProxySeen {
            proxy: p,
            shown: p.product.clone(),
            evidence: format!("{}: {v}", header_name(n)),
        })
    })
}

/// A header's name as it is usually written ("x-squid-error" → "X-Squid-Error").
fn header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| {
                    f.to_uppercase()
                        .chain(c.flat_map(char::to_lowercase))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join("-")
}

/// The `name/version` token of a header value that contains `name` ("squid/5.7" out of
/// "1.1 gw (squid/5.7)").
fn product_token(value: &str, name: &str) -> Option<String> {
    let lower = value.to_lowercase();
    let at = lower.find(&name.to_lowercase())?;
    let token: String = value[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
        .collect();
    (token.len() >= name.len()).then_some(token)
}

/// The product whose names appear in one of these distinguished names (issuer and subject
/// names of a chain), matched case-insensitively.
pub fn identify<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'static Interceptor> {
    let names: Vec<String> = names.into_iter().map(str::to_lowercase).collect();
    table().iter().find(|i| {
        i.names.iter().any(|n| {
            let n = n.to_lowercase();
            names.iter().any(|dn| dn.contains(&n))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_uses_known_kinds() {
        let t: Table = toml::from_str(SOURCE).expect("checks/interceptors.toml parses");
        assert!(t.interceptor.len() >= 20);
        for i in &t.interceptor {
            assert!(
                KINDS.contains(&i.kind.as_str()),
                "{}: {}",
                i.product,
                i.kind
            );
            assert!(!i.names.is_empty(), "{}", i.product);
            assert!(i.names.iter().all(|n| n.len() >= 5), "{}", i.product);
        }
        // What a run reads (the JSON made at build time) is this file, entry for entry.
        assert_eq!(table(), t.interceptor.as_slice());
        assert_eq!(proxies(), t.proxy.as_slice());
    }

    #[test]
    fn proxies_are_named_from_their_headers() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        let via = proxy_of(&h(&[
            ("Server", "nginx/1.22.1"),
            ("Via", "1.1 netcheck-proxy (squid/5.7)"),
        ]))
        .expect("squid by Via");
        assert_eq!(via.proxy.product, "squid");
        assert_eq!(via.proxy.inspection, "squid ssl-bump");
        assert_eq!(via.shown, "squid/5.7");
        assert_eq!(via.evidence, "Via: 1.1 netcheck-proxy (squid/5.7)");
        let error = proxy_of(&h(&[("X-Squid-Error", "ERR_SECURE_CONNECT_FAIL 0")]))
            .expect("squid by its error header");
        assert_eq!(error.shown, "squid");
        assert_eq!(
            proxy_of(&h(&[("server", "squid")])).map(|p| p.shown),
            Some("squid".to_owned())
        );
        // A web server, a CDN's cache header: nobody's inspection.
        assert_eq!(
            proxy_of(&h(&[
                ("Server", "nginx/1.22.1"),
                ("X-Cache", "Hit from cloudfront"),
                ("Via", "1.1 abc.cloudfront.net (CloudFront)")
            ])),
            None
        );
        for p in proxies() {
            assert!(KINDS.contains(&p.kind.as_str()), "{}", p.product);
            assert!(p.names.iter().all(|n| n.len() >= 5), "{}", p.product);
        }
    }

    #[test]
    fn products_are_named_from_their_issuers() {
        let p = |dn: &str| identify([dn]).map(|i| i.product.as_str());
        assert_eq!(p("CN=mitmproxy, O=mitmproxy"), Some("mitmproxy"));
        assert_eq!(
            p("C=US, O=Zscaler Inc., CN=Zscaler Intermediate Root CA"),
            Some("Zscaler")
        );
        assert_eq!(
            p("CN=Kaspersky Anti-Virus Personal Root Certificate"),
            Some("Kaspersky")
        );
        assert_eq!(p("CN=eDellRoot"), Some("eDellRoot"));
        assert_eq!(
            p("CN=DO_NOT_TRUST_FiddlerRoot, O=DO_NOT_TRUST"),
            Some("Fiddler")
        );
        // Public CAs are nobody's interceptor.
        for public in [
            "C=US, O=Let's Encrypt, CN=R11",
            "C=US, O=DigiCert Inc, CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1",
            "C=US, O=GeoTrust, CN=GeoTrust TLS RSA CA G1",
            "C=BE, O=GlobalSign nv-sa, CN=GlobalSign RSA OV SSL CA 2018",
        ] {
            assert_eq!(p(public), None, "{public}");
        }
    }
}
