//! The table of TLS-inspection products (`checks/interceptors.toml`), by the names they write
//! into the certificates they issue.
//!
//! Why a data table: the products change names and new ones appear; naming who is in the way is
//! then an edit to a file with its sources, checked by the tests below, not a code change.

use serde::Deserialize;
use std::sync::OnceLock;

pub const SOURCE: &str = include_str!("../checks/interceptors.toml");

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    interceptor: Vec<Interceptor>,
}

/// The built-in table (empty if it could not be read, which a test rules out).
pub fn table() -> &'static [Interceptor] {
    static TABLE: OnceLock<Vec<Interceptor>> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str::<Table>(SOURCE)
            .map(|t| t.interceptor)
            .unwrap_or_default()
    })
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
