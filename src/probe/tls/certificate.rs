//! Facts read from a certificate: its dates, issuer, names, serial number and signature
//! algorithm, in the words a report uses.
//!
//! A part of the tls probe, below its verdicts; it imports no probe.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The facts of a certificate that a user can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
}

pub fn cert_facts(der: &[u8]) -> Option<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(CertFacts {
        // Certificate names are written by whoever made the certificate: outside text.
        subject: crate::sanitize::outside(&cert.subject().to_string()),
        issuer: crate::sanitize::outside(&cert.issuer().to_string()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

pub fn rfc3339(unix: i64) -> String {
    if unix >= 0 {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix as u64)).to_string()
    } else {
        "1970-01-01T00:00:00Z".into()
    }
}

pub(super) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whole days from `now` until `not_after`; negative once expired.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// The issuer and subject names of every certificate in a chain, for naming an interceptor.
pub(super) fn chain_names(chain: &[Vec<u8>]) -> Vec<String> {
    chain
        .iter()
        .filter_map(|der| cert_facts(der))
        .flat_map(|f| [f.issuer, f.subject])
        .collect()
}

pub(super) fn leaf_serial(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.raw_serial().to_vec())
}

pub(super) fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(_) => "other",
        None => "unknown",
    }
}

/// The most readable part of a distinguished name: its CN, else its O, else all of it.
pub fn short_name(dn: &str) -> String {
    let part = |key: &str| {
        dn.split(", ")
            .find_map(|p| p.strip_prefix(key))
            .map(str::to_owned)
    };
    part("CN=")
        .or_else(|| part("O="))
        .unwrap_or_else(|| dn.to_owned())
}

pub(super) fn algorithm_words(alg: &str) -> &'static str {
    if alg.contains("md5") {
        "MD5"
    } else if alg.contains("md2") {
        "MD2"
    } else {
        "SHA-1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_rounds_down_and_goes_negative() {
        assert_eq!(days_left(86_400 * 10, 0), 10);
        assert_eq!(days_left(86_400 * 10 - 1, 0), 9);
        assert_eq!(days_left(0, 1), -1);
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("C=US, O=Let's Encrypt, CN=R11"), "R11");
        assert_eq!(short_name("C=DE, O=BMW AG"), "BMW AG");
        assert_eq!(short_name("weird"), "weird");
    }

    #[test]
    fn rfc3339_formats_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
