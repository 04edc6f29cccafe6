//! blockpages: the table of known DNS filters (`checks/blockpages.toml`), embedded at build time.
//!
//! A filter that redirects instead of refusing answers with a name or an address of its own block
//! page; a public filtering resolver is known by its address. Either way the product can be named,
//! which tells the user whose settings to change. The table is data with its public sources, so a
//! correction is an edit to that file, checked by the tests below.

use serde::Deserialize;
use std::net::IpAddr;
use std::sync::OnceLock;

/// The table as written (TOML), for the tests that hold it to its rules.
#[cfg(test)]
pub const SOURCE: &str = include_str!("../../checks/blockpages.toml");

/// The table as JSON, converted when the tool was built (`build.rs`; read faster than TOML).
const COMPILED: &str = include_str!(concat!(env!("OUT_DIR"), "/blockpages.json"));

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub product: String,
    /// Where the values are published; read by the tests, kept for people reading the table.
    #[cfg_attr(not(test), allow(dead_code))]
    pub sources: Vec<String>,
    #[serde(default)]
    pub block_names: Vec<String>,
    #[serde(default)]
    pub block_addresses: Vec<Block>,
    #[serde(default)]
    pub resolvers: Vec<Block>,
    /// Names the block page's certificate is issued for (its subject's common name; a leading
    /// dot matches a suffix).
    #[serde(default)]
    pub certificate_names: Vec<String>,
    /// Words in the issuer of the block page's certificate (a filter's own root).
    #[serde(default)]
    pub certificate_issuers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    filter: Vec<Filter>,
}

/// The embedded table; empty (never a panic) if it were ever unreadable — the tests guarantee it
/// is not.
pub fn table() -> &'static [Filter] {
    static T: OnceLock<Vec<Filter>> = OnceLock::new();
    T.get_or_init(|| {
        serde_json::from_str::<Table>(COMPILED)
            .map(|t| t.filter)
            .unwrap_or_default()
    })
}

/// `name` equals `pattern`, or ends with it when the pattern starts with a dot, in any case
/// (compared in place: every name of a run is matched against the whole table).
fn name_matches(name: &str, pattern: &str) -> bool {
    let name = name.trim_end_matches('.').as_bytes();
    let pattern = pattern.as_bytes();
    match pattern.strip_prefix(b".") {
        Some(suffix) => {
            name.eq_ignore_ascii_case(suffix)
                || (name.len() >= pattern.len()
                    && name[name.len() - pattern.len()..].eq_ignore_ascii_case(pattern))
        }
        None => name.eq_ignore_ascii_case(pattern),
    }
}

/// An address literal or a CIDR block (`45.90.28.0/24`), read once with the table (matching a
/// name's every address against text had parsed the table again for each).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Block {
    base: IpAddr,
    /// The prefix length; `None` for a single address.
    bits: Option<u32>,
}

impl TryFrom<String> for Block {
    type Error = String;

    fn try_from(entry: String) -> Result<Block, String> {
        let (base, bits) = match entry.split_once('/') {
            Some((b, n)) => (b, Some(n.parse::<u32>().map_err(|_| entry.clone())?)),
            None => (entry.as_str(), None),
        };
        let base: IpAddr = base
            .parse()
            .map_err(|_| format!("{entry}: not an address"))?;
        let most = if base.is_ipv4() { 32 } else { 128 };
        if bits.is_some_and(|n| n > most) {
            return Err(format!("{entry}: a prefix longer than the address"));
        }
        Ok(Block { base, bits })
    }
}

impl Block {
    /// The block contains `ip`.
    fn contains(&self, ip: &IpAddr) -> bool {
        match (ip, self.base, self.bits) {
            (_, base, None) => *ip == base,
            (IpAddr::V4(a), IpAddr::V4(b), Some(n)) => {
                let mask = u32::MAX.checked_shl(32 - n).unwrap_or(0);
                u32::from(*a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b), Some(n)) => {
                let mask = u128::MAX.checked_shl(128 - n).unwrap_or(0);
                u128::from(*a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The filter whose block page this CNAME chain or these addresses lead to.
pub fn block_page(cnames: &[String], addrs: &[IpAddr]) -> Option<&'static Filter> {
    table().iter().find(|f| {
        cnames
            .iter()
            .any(|c| f.block_names.iter().any(|p| name_matches(c, p)))
            || addrs
                .iter()
                .any(|a| f.block_addresses.iter().any(|b| b.contains(a)))
    })
}

/// The common name (`CN=`) in a certificate's subject or issuer as the tls stage shows it.
pub fn common_name(dn: &str) -> Option<&str> {
    dn.split([',', '/'])
        .map(str::trim)
        .find_map(|part| {
            part.strip_prefix("CN=")
                .or_else(|| part.strip_prefix("CN ="))
        })
        .map(str::trim)
        .filter(|cn| !cn.is_empty())
}

/// The filter whose block page presents a certificate with this subject and issuer.
pub fn certificate_product(subject: &str, issuer: &str) -> Option<&'static Filter> {
    let cn = common_name(subject).unwrap_or_default();
    let issuer = issuer.to_ascii_lowercase();
    table().iter().find(|f| {
        (!cn.is_empty() && f.certificate_names.iter().any(|p| name_matches(cn, p)))
            || f.certificate_issuers
                .iter()
                .any(|w| issuer.contains(&w.to_ascii_lowercase()))
    })
}

/// The filtering service this resolver address belongs to.
pub fn resolver_product(server: &IpAddr) -> Option<&'static Filter> {
    table()
        .iter()
        .find(|f| f.resolvers.iter().any(|b| b.contains(server)))
}

/// The product a resolver's `version.bind` answer names, in the words a user knows.
pub fn software_product(version: &str) -> Option<&'static str> {
    let v = version.to_ascii_lowercase();
    if v.contains("pi-hole") || v.contains("pihole") {
        Some("Pi-hole")
    } else if v.contains("dnsmasq") {
        Some("dnsmasq")
    } else if v.contains("unbound") {
        Some("unbound")
    } else if v.contains("powerdns") {
        Some("PowerDNS Recursor")
    } else if v.contains("knot") {
        Some("Knot Resolver")
    } else if v.contains("adguard") {
        Some("AdGuard Home")
    } else if v.contains("technitium") {
        Some("Technitium DNS Server")
    } else if v.contains("kresd") || v.contains("knot resolver") {
        Some("Knot Resolver")
    } else if v.starts_with("9.") || v.contains("bind") {
        Some("BIND")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_table_parses_and_every_entry_has_a_source_and_valid_addresses() {
        let t: Table = toml::from_str(SOURCE).expect("checks/blockpages.toml parses");
        assert!(t.filter.len() >= 5);
        for f in &t.filter {
            assert!(!f.sources.is_empty(), "{} has no source", f.product);
        }
        // What a run reads (the JSON made at build time) is this file, entry for entry; its
        // addresses were read as addresses (a malformed one fails the parse above).
        assert_eq!(table(), t.filter.as_slice());
    }

    #[test]
    fn address_blocks_are_read_once_and_match_by_prefix() {
        let block = |s: &str| Block::try_from(s.to_owned());
        let net = block("45.90.28.0/24").expect("a v4 block");
        assert!(net.contains(&ip("45.90.28.7")));
        assert!(!net.contains(&ip("45.90.29.7")));
        assert!(!net.contains(&ip("::1")), "another family never matches");
        let one = block("2a07:a8c0::").expect("a v6 address");
        assert!(one.contains(&ip("2a07:a8c0::")));
        assert!(!one.contains(&ip("2a07:a8c0::1")));
        assert!(block("0.0.0.0/0").expect("all").contains(&ip("192.0.2.1")));
        assert!(
            block("2a07:a8c0::/29")
                .expect("v6")
                .contains(&ip("2a07:a8c1::1"))
        );
        for bad in ["1.2.3.4/33", "::/129", "example.com", "1.2.3.4/x", ""] {
            assert!(block(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn block_pages_and_resolvers_are_recognised() {
        let umbrella = block_page(&["hit-block.opendns.com.".into()], &[]).map(|f| &f.product);
        assert_eq!(
            umbrella.map(String::as_str),
            Some("Cisco Umbrella (OpenDNS)")
        );
        assert!(block_page(&[], &[ip("146.112.61.106")]).is_some());
        assert!(block_page(&["cocoapi.bmwgroup.com".into()], &[ip("1.2.3.4")]).is_none());
        assert_eq!(
            resolver_product(&ip("45.90.30.7")).map(|f| f.product.as_str()),
            Some("NextDNS")
        );
        assert_eq!(
            resolver_product(&ip("185.228.168.168")).map(|f| f.product.as_str()),
            Some("CleanBrowsing")
        );
        assert!(resolver_product(&ip("45.90.31.7")).is_none());
        assert!(name_matches("x.block.example", ".block.example"));
        assert!(!name_matches("xblock.example", ".block.example"));
        // Any case, a trailing dot, the suffix's own name; a shorter or non-ASCII name is no match.
        assert!(name_matches("X.Block.Example.", ".block.example"));
        assert!(name_matches("block.EXAMPLE", ".block.example"));
        assert!(name_matches(
            "Hit-Block.OpenDNS.com.",
            "hit-block.opendns.com"
        ));
        assert!(!name_matches("k.example", ".block.example"));
        assert!(!name_matches("bücher.block.exampl", ".block.example"));
    }

    #[test]
    fn block_page_certificates_are_recognised() {
        assert_eq!(common_name("CN=pi.hole"), Some("pi.hole"));
        assert_eq!(common_name("O=Lab, CN=block.lan"), Some("block.lan"));
        assert_eq!(common_name("O=Lab"), None);
        let pihole = certificate_product("CN=pi.hole", "CN=pi.hole").map(|f| &f.product);
        assert_eq!(pihole.map(String::as_str), Some("Pi-hole"));
        let controld = certificate_product("CN=bmw.example", "O=Control D Inc., CN=Control D CA");
        assert_eq!(controld.map(|f| f.product.as_str()), Some("Control D"));
        assert!(certificate_product("CN=cocoapi.bmwgroup.com", "CN=DigiCert").is_none());
    }

    #[test]
    fn resolver_software_is_named() {
        assert_eq!(software_product("dnsmasq-2.90"), Some("dnsmasq"));
        assert_eq!(software_product("dnsmasq-pi-hole-v2.90"), Some("Pi-hole"));
        assert_eq!(software_product("unbound 1.17.1"), Some("unbound"));
        assert_eq!(software_product("9.18.28-1~deb12u2-Debian"), Some("BIND"));
        assert_eq!(
            software_product("Technitium DNS Server v13.2"),
            Some("Technitium DNS Server")
        );
        assert_eq!(software_product("none of your business"), None);
    }
}
