//! Sorting a failed TLS handshake into a code and a sentence, and reading the certificate facts
//! that make a failure precise (a SHA-1 signature, a small key, a name only in the CN).
//!
//! Why a file of its own: rustls and webpki describe failures with enums whose debug text means
//! nothing to a driver (`UnsupportedSignatureAlgorithmContext { .. }`, `Other(..)`). Every variant
//! is mapped here to a sentence, exhaustively where the enum allows, so that a new rustls release
//! cannot leak its debug text into a report; a test walks the variants.
//!
//! Kept exemplary on purpose: `classify_rustls` and its neighbours are pure and table-tested,
//! so a new failure class is a row in a table, not a network fixture.

use rustls::{AlertDescription, CertificateError, Error as E, InvalidMessage, PeerIncompatible};
use std::io;
use x509_parser::prelude::*;

/// A classified failure: the code, and the sentence a person reads.
pub type Class = (&'static str, String);

const OLD_PROTOCOL: &str = "the server offers only an old TLS version (SSL 3.0, TLS 1.0 or 1.1); this device and the app need TLS 1.2 or later";
const NO_COMMON_CIPHER: &str = "the server and this device have no cipher suite or key exchange in common: the server offers only broken ones (RC4, 3DES, NULL, export or small Diffie-Hellman groups)";

/// A failed handshake as the socket reported it.
pub fn classify_error(e: &io::Error) -> Class {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_rustls(tls);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => (
            "tls.handshake_failed",
            "the server closed the connection during the handshake (often a VPN, firewall or filter dropping TLS)".into(),
        ),
        io::ErrorKind::ConnectionReset => (
            "tls.handshake_failed",
            "the connection was reset during the handshake (a firewall or filter cut it)".into(),
        ),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => (
            "tls.handshake_failed",
            "the connection was cut during the handshake (a firewall or filter dropped it)".into(),
        ),
        io::ErrorKind::TimedOut => (
            "tls.timeout",
            "the handshake got no answer in time".into(),
        ),
        _ => (
            "tls.handshake_failed",
            "the handshake failed on the connection (the socket reported an error)".into(),
        ),
    }
}

/// A rustls error, in words.
pub fn classify_rustls(e: &rustls::Error) -> Class {
    match e {
        E::InvalidCertificate(ce) => classify_certificate(ce),
        E::AlertReceived(alert) => classify_alert(*alert),
        E::PeerIncompatible(p) => classify_incompatible(p),
        E::InvalidMessage(m) => classify_message(m),
        E::NoCertificatesPresented => (
            "tls.handshake_failed",
            "the server presented no certificate".into(),
        ),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => (
            "tls.handshake_failed",
            "the server sent a TLS message out of order (a broken server or a meddling middlebox)".into(),
        ),
        E::DecryptError => (
            "tls.handshake_failed",
            "data from the server could not be decrypted (something on the path altered the connection)".into(),
        ),
        E::PeerMisbehaved(_) => (
            "tls.handshake_failed",
            "the server broke the TLS protocol (a broken server or a meddling middlebox)".into(),
        ),
        E::PeerSentOversizedRecord => (
            "tls.handshake_failed",
            "the server sent a TLS record larger than the protocol allows".into(),
        ),
        E::InvalidCertRevocationList(_) => (
            "tls.untrusted",
            "a certificate revocation list could not be used".into(),
        ),
        E::FailedToGetCurrentTime => (
            "tls.handshake_failed",
            "this device's clock could not be read to check the certificate's dates".into(),
        ),
        E::FailedToGetRandomBytes => (
            "tls.handshake_failed",
            "this device could not provide random numbers for the handshake".into(),
        ),
        E::NoApplicationProtocol => (
            "tls.handshake_failed",
            "the server speaks none of the application protocols offered (HTTP/1.1)".into(),
        ),
        E::Other(other) => classify_other(other),
        _ => (
            "tls.handshake_failed",
            "the handshake failed for a reason this tool cannot name more precisely".into(),
        ),
    }
}

#[allow(deprecated)] // the old unit variants still reach us from other verifiers
fn classify_certificate(ce: &CertificateError) -> Class {
    use CertificateError as C;
    match ce {
        C::Expired | C::ExpiredContext { .. } => {
            ("tls.expired", "the server's certificate has expired".into())
        }
        C::NotValidYet | C::NotValidYetContext { .. } => (
            "tls.not_yet_valid",
            "the server's certificate is not valid yet (or this device's clock is behind)".into(),
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => (
            "tls.hostname_mismatch",
            "the certificate is for a different host name (a redirecting filter or wrong server)"
                .into(),
        ),
        C::UnknownIssuer => (
            "tls.untrusted",
            "the certificate chain does not lead to a trusted root (self-signed, a missing intermediate, or an intercepting proxy)".into(),
        ),
        C::Revoked => (
            "tls.revoked",
            "the server's certificate has been revoked by its issuer".into(),
        ),
        C::BadSignature => (
            "tls.untrusted",
            "a signature in the certificate chain does not verify (a forged or corrupted certificate)".into(),
        ),
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => (
            "tls.weak_signature",
            "the certificate chain is signed with an algorithm no current client accepts".into(),
        ),
        C::UnhandledCriticalExtension => (
            "tls.untrusted",
            "the certificate carries a critical extension no client understands".into(),
        ),
        C::BadEncoding => (
            "tls.untrusted",
            "the server's certificate is malformed and cannot be read".into(),
        ),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => (
            "tls.untrusted",
            "the certificate is not meant for a TLS server (its key usage says otherwise)".into(),
        ),
        C::UnknownRevocationStatus
        | C::ExpiredRevocationList
        | C::ExpiredRevocationListContext { .. } => (
            "tls.untrusted",
            "the certificate's revocation status cannot be established".into(),
        ),
        C::InvalidOcspResponse => (
            "tls.untrusted",
            "the server's stapled revocation answer (OCSP) is invalid".into(),
        ),
        C::ApplicationVerificationFailure => (
            "tls.untrusted",
            "the certificate was rejected by this tool's own checks".into(),
        ),
        C::Other(other) => classify_other(other),
        _ => (
            "tls.untrusted",
            "the certificate was rejected for a reason this tool cannot name more precisely".into(),
        ),
    }
}

/// webpki's own errors travel inside `Other`; unwrap them into words.
#[allow(deprecated)]
fn classify_other(other: &rustls::OtherError) -> Class {
    use webpki::Error as W;
    let Some(w) = other.0.downcast_ref::<W>() else {
        return (
            "tls.untrusted",
            "the certificate was rejected for a reason this tool cannot name more precisely".into(),
        );
    };
    let untrusted = |s: &str| ("tls.untrusted", s.to_owned());
    match w {
        W::CaUsedAsEndEntity => untrusted(
            "the server presents a certificate authority's certificate as its own (a misconfigured server or filter)",
        ),
        W::EndEntityUsedAsCa => untrusted(
            "a server certificate in the chain is used as if it were a certificate authority",
        ),
        W::CertDistrusted => untrusted("the certificate's issuer is distrusted"),
        W::PathLenConstraintViolated | W::MaximumPathDepthExceeded => {
            untrusted("the certificate chain is longer than its issuers allow")
        }
        W::NameConstraintViolation => {
            untrusted("the certificate names a host its issuer may not certify")
        }
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
            untrusted(
                "the certificate is not meant for a TLS server (its key usage says otherwise)",
            )
        }
        W::InvalidSignatureForPublicKey | W::SignatureAlgorithmMismatch => untrusted(
            "a signature in the certificate chain does not verify (a forged or corrupted certificate)",
        ),
        W::CertExpired { .. } => ("tls.expired", "the server's certificate has expired".into()),
        W::CertNotValidYet { .. } => (
            "tls.not_yet_valid",
            "the server's certificate is not valid yet (or this device's clock is behind)".into(),
        ),
        W::CertNotValidForName(_) => (
            "tls.hostname_mismatch",
            "the certificate is for a different host name (a redirecting filter or wrong server)"
                .into(),
        ),
        W::CertRevoked => (
            "tls.revoked",
            "the server's certificate has been revoked by its issuer".into(),
        ),
        W::UnknownIssuer => untrusted(
            "the certificate chain does not lead to a trusted root (self-signed, a missing intermediate, or an intercepting proxy)",
        ),
        W::MaximumSignatureChecksExceeded | W::MaximumPathBuildCallsExceeded => {
            untrusted("the certificate chain is too complex to verify")
        }
        _ => untrusted("the server's certificate is malformed and cannot be read"),
    }
}

fn classify_alert(alert: AlertDescription) -> Class {
    use AlertDescription as A;
    match alert {
        A::ProtocolVersion => ("tls.old_protocol", OLD_PROTOCOL.into()),
        A::HandshakeFailure | A::InsufficientSecurity => {
            ("tls.no_common_cipher", NO_COMMON_CIPHER.into())
        }
        A::CertificateRequired => (
            "tls.client_cert_required",
            "the server demands a client certificate, which this device does not have".into(),
        ),
        other => (
            "tls.handshake_failed",
            format!(
                "the server aborted the handshake with the alert \"{}\"",
                alert_words(other)
            ),
        ),
    }
}

fn classify_incompatible(p: &PeerIncompatible) -> Class {
    use PeerIncompatible as P;
    match p {
        P::ServerDoesNotSupportTls12Or13
        | P::ServerTlsVersionIsDisabledByOurConfig
        | P::SupportedVersionsExtensionRequired
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled => ("tls.old_protocol", OLD_PROTOCOL.into()),
        P::NoCipherSuitesInCommon | P::NoKxGroupsInCommon | P::NoSignatureSchemesInCommon => {
            ("tls.no_common_cipher", NO_COMMON_CIPHER.into())
        }
        P::NoCertificateRequestSignatureSchemesInCommon => (
            "tls.client_cert_required",
            "the server demands a client certificate, which this device does not have".into(),
        ),
        _ => (
            "tls.handshake_failed",
            "the server asks for TLS features this device does not offer".into(),
        ),
    }
}

fn classify_message(m: &InvalidMessage) -> Class {
    use InvalidMessage as M;
    match m {
        M::HandshakePayloadTooLarge | M::CertificatePayloadTooLarge | M::MessageTooLarge => (
            "tls.chain_too_large",
            "the server's certificate chain is larger than a TLS client accepts (64 KiB)".into(),
        ),
        M::UnknownProtocolVersion => ("tls.old_protocol", OLD_PROTOCOL.into()),
        M::InvalidDhParams | M::UnsupportedKeyExchangeAlgorithm(_) | M::UnsupportedCurveType => {
            ("tls.no_common_cipher", NO_COMMON_CIPHER.into())
        }
        M::InvalidContentType => (
            "tls.handshake_failed",
            "the server did not answer with TLS; something else listens on this port".into(),
        ),
        _ => (
            "tls.handshake_failed",
            "the server's answer is not valid TLS; something else listens on this port, or a middlebox altered it".into(),
        ),
    }
}

/// A TLS alert in words (RFC 8446 names, as a person reads them).
pub fn alert_words(a: AlertDescription) -> &'static str {
    use AlertDescription as A;
    match a {
        A::CloseNotify => "close notify",
        A::UnexpectedMessage => "unexpected message",
        A::BadRecordMac => "bad record MAC",
        A::DecryptionFailed => "decryption failed",
        A::RecordOverflow => "record overflow",
        A::DecompressionFailure => "decompression failure",
        A::HandshakeFailure => "handshake failure",
        A::NoCertificate => "no certificate",
        A::BadCertificate => "bad certificate",
        A::UnsupportedCertificate => "unsupported certificate",
        A::CertificateRevoked => "certificate revoked",
        A::CertificateExpired => "certificate expired",
        A::CertificateUnknown => "certificate unknown",
        A::IllegalParameter => "illegal parameter",
        A::UnknownCA => "unknown CA",
        A::AccessDenied => "access denied",
        A::DecodeError => "decode error",
        A::DecryptError => "decrypt error",
        A::ExportRestriction => "export restriction",
        A::ProtocolVersion => "protocol version",
        A::InsufficientSecurity => "insufficient security",
        A::InternalError => "internal error",
        A::InappropriateFallback => "inappropriate fallback",
        A::UserCanceled => "user canceled",
        A::NoRenegotiation => "no renegotiation",
        A::MissingExtension => "missing extension",
        A::UnsupportedExtension => "unsupported extension",
        A::CertificateUnobtainable => "certificate unobtainable",
        A::UnrecognisedName => "unrecognised name",
        A::BadCertificateStatusResponse => "bad certificate status response",
        A::BadCertificateHashValue => "bad certificate hash value",
        A::UnknownPSKIdentity => "unknown PSK identity",
        A::CertificateRequired => "certificate required",
        A::NoApplicationProtocol => "no application protocol",
        A::EncryptedClientHelloRequired => "encrypted ClientHello required",
        _ => "an alert of unknown number",
    }
}

/// A machine-readable reason for failures the knowledge base treats specially.
pub fn reason_of(code: &str) -> Option<&'static str> {
    (code == "tls.old_protocol").then_some("protocol_version")
}

/// What a certificate chain says about why it was refused, read from the certificates
/// themselves: finer than the verifier's error, which says only "bad signature".
#[derive(Debug, Clone, PartialEq)]
pub enum Weakness {
    /// A certificate (not a self-signed root) signed with SHA-1 or MD5.
    Signature(&'static str),
    /// An RSA key under 2048 bits.
    Key(u32),
}

/// The first weakness of `chain` (leaf first), if any.
pub fn weakness(chain: &[Vec<u8>]) -> Option<Weakness> {
    let certs: Vec<X509Certificate<'_>> = chain
        .iter()
        .filter_map(|der| parse_x509_certificate(der).ok().map(|(_, c)| c))
        .collect();
    for c in &certs {
        if c.subject() == c.issuer() && certs.len() > 1 {
            // A root's self-signature is not checked by anyone.
            continue;
        }
        if let Some(name) = weak_algorithm(&c.signature_algorithm.algorithm.to_id_string()) {
            return Some(Weakness::Signature(name));
        }
    }
    for c in &certs {
        if let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = c.public_key().parsed() {
            let bits = rsa.key_size() as u32;
            if bits < 2048 {
                return Some(Weakness::Key(bits));
            }
        }
    }
    None
}

fn weak_algorithm(oid: &str) -> Option<&'static str> {
    match oid {
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.2" => Some("md2WithRSAEncryption"),
        "1.2.840.113549.1.1.5" => Some("sha1WithRSAEncryption"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10040.4.3" => Some("dsaWithSHA1"),
        "1.3.14.3.2.29" => Some("sha1WithRSASignature"),
        _ => None,
    }
}

/// A certificate without a subject alternative name whose common name is `host`: valid in the
/// browsers of 2016, refused by every client since.
pub fn name_only_in_cn(leaf: &[u8], host: &str) -> bool {
    let Ok((_, c)) = parse_x509_certificate(leaf) else {
        return false;
    };
    let has_san = c.subject_alternative_name().ok().flatten().is_some();
    let cn_is_host = c
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|cn| cn.eq_ignore_ascii_case(host));
    !has_san && cn_is_host
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sanitize::looks_like_debug;

    #[test]
    fn every_alert_is_words() {
        for n in 0..=255u8 {
            let a = AlertDescription::from(n);
            let (code, summary) = classify_alert(a);
            assert!(!looks_like_debug(&summary), "{n}: {summary}");
            assert!(crate::probe::registry::is_known(code), "{code}");
        }
    }

    #[test]
    #[allow(deprecated)]
    fn every_error_is_a_sentence() {
        use rustls::pki_types::UnixTime;
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
        use CertificateError as C;
        let certs = [
            C::BadEncoding,
            C::Expired,
            C::ExpiredContext {
                time: now,
                not_after: now,
            },
            C::NotValidYet,
            C::NotValidYetContext {
                time: now,
                not_before: now,
            },
            C::Revoked,
            C::UnhandledCriticalExtension,
            C::UnknownIssuer,
            C::UnknownRevocationStatus,
            C::ExpiredRevocationList,
            C::BadSignature,
            C::UnsupportedSignatureAlgorithm,
            C::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: vec![6, 9, 42, 134, 72],
                supported_algorithms: vec![],
            },
            C::NotValidForName,
            C::InvalidPurpose,
            C::InvalidOcspResponse,
            C::ApplicationVerificationFailure,
            C::Other(rustls::OtherError(std::sync::Arc::new(
                webpki::Error::CaUsedAsEndEntity,
            ))),
        ];
        let mut errors: Vec<rustls::Error> = certs.into_iter().map(E::InvalidCertificate).collect();
        errors.extend([
            E::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge),
            E::InvalidMessage(InvalidMessage::InvalidContentType),
            E::InvalidMessage(InvalidMessage::MissingData("x")),
            E::PeerIncompatible(PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig),
            E::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
            E::PeerIncompatible(PeerIncompatible::NullCompressionRequired),
            E::NoCertificatesPresented,
            E::DecryptError,
            E::General("x".into()),
            E::AlertReceived(AlertDescription::BadRecordMac),
        ]);
        for e in &errors {
            let (code, summary) = classify_rustls(e);
            assert!(!looks_like_debug(&summary), "{e:?}: {summary}");
            assert!(crate::probe::registry::is_known(code), "{code}");
        }
        let c = |e: rustls::Error| classify_rustls(&e).0;
        assert_eq!(
            c(E::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge)),
            "tls.chain_too_large"
        );
        assert_eq!(
            c(E::AlertReceived(AlertDescription::HandshakeFailure)),
            "tls.no_common_cipher"
        );
        assert_eq!(
            c(E::AlertReceived(AlertDescription::ProtocolVersion)),
            "tls.old_protocol"
        );
        assert_eq!(
            c(E::AlertReceived(AlertDescription::CertificateRequired)),
            "tls.client_cert_required"
        );
        assert!(
            classify_rustls(&E::AlertReceived(AlertDescription::DecodeError))
                .1
                .contains("\"decode error\"")
        );
    }

    #[test]
    fn the_debug_detector_catches_what_it_must() {
        assert!(looks_like_debug("x (BadSignature)"));
        assert!(looks_like_debug("Other(OtherError(CaUsedAsEndEntity))"));
        assert!(looks_like_debug(
            "UnsupportedSignatureAlgorithmContext { a: 1 }"
        ));
        for fine in [
            "the server closed the connection during the handshake (often a VPN)",
            "interrupted (Ctrl-C) before it finished",
            "the server offers only an old TLS version (SSL 3.0, TLS 1.0 or 1.1)",
            "over IPv4 (IPv6 failed)",
        ] {
            assert!(!looks_like_debug(fine), "{fine}");
        }
    }

    #[test]
    fn every_certificate_error_has_its_code() {
        use rustls::Error as E;
        let c = |e| classify_rustls(&e).0;
        assert_eq!(
            c(E::InvalidCertificate(rustls::CertificateError::Expired)),
            "tls.expired"
        );
        assert_eq!(
            c(E::InvalidCertificate(rustls::CertificateError::NotValidYet)),
            "tls.not_yet_valid"
        );
        assert_eq!(
            c(E::InvalidCertificate(
                rustls::CertificateError::NotValidForName
            )),
            "tls.hostname_mismatch"
        );
        assert_eq!(
            c(E::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )),
            "tls.untrusted"
        );
        assert_eq!(
            c(E::InvalidCertificate(
                rustls::CertificateError::BadSignature
            )),
            "tls.untrusted"
        );
        assert_eq!(
            c(E::AlertReceived(rustls::AlertDescription::ProtocolVersion)),
            "tls.old_protocol"
        );
        assert!(
            classify_rustls(&E::AlertReceived(rustls::AlertDescription::ProtocolVersion))
                .1
                .contains("TLS 1.0 or 1.1")
        );
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(classify_error(&eof).0, "tls.handshake_failed");
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            E::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(classify_error(&wrapped).0, "tls.expired");
    }
}
