//! tls: the TLS handshake on the connected socket, verified the way the app verifies it.
//!
//! The certificate is captured even when verification fails, so an expired or intercepted
//! certificate is shown with its issuer and dates. Failures are classified precisely from rustls'
//! error enum: an expired certificate is `tls.expired`, an intercepting proxy's is `tls.untrusted`,
//! a middlebox that drops the handshake is `tls.handshake_failed` with the reason.

use crate::error::AppError;
use crate::model::{Check, Probe, Status, ms};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Trust settings for a run: the system's roots (or a bundled set when it has none) plus `--ca-file`.
///
/// `--ca-file` is read and checked at once (a bad file is the user's mistake, exit 3). The system's
/// roots — some 150 certificates to parse, tens of milliseconds — are loaded by [`TlsSetup::warm_up`]
/// on a background thread while DNS and TCP are under way: no handshake needs them earlier.
#[derive(Clone)]
pub struct TlsSetup {
    extra: Arc<Vec<CertificateDer<'static>>>,
    extra_source: String,
    trust: Arc<std::sync::OnceLock<Trust>>,
    provider: Arc<CryptoProvider>,
    /// Becomes true once the roots are loaded and the random generator is seeded.
    ready: tokio::sync::watch::Receiver<bool>,
    ready_tx: Arc<Mutex<Option<tokio::sync::watch::Sender<bool>>>>,
}

/// The roots in effect and where they came from (for the report).
struct Trust {
    roots: Arc<RootCertStore>,
    source: String,
}

/// Largest `--ca-file` accepted: the whole Mozilla bundle is about 220 KB.
const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;

impl TlsSetup {
    pub fn load(ca_file: Option<&Path>) -> Result<TlsSetup, AppError> {
        let mut extra = Vec::new();
        let mut extra_source = String::new();
        if let Some(path) = ca_file {
            let shown = path.display();
            // A regular file of bounded size: `/dev/zero` or a FIFO must not hang or exhaust memory.
            let bytes = crate::safefile::read_bounded(path, MAX_CA_FILE_BYTES, "a CA file")
                .map_err(|e| AppError::Input(format!("--ca-file {shown}: {e}")))?;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                extra.push(cert.map_err(|e| {
                    AppError::Input(format!(
                        "--ca-file {shown}: not a PEM certificate file ({e})"
                    ))
                })?);
            }
            if extra.is_empty() {
                return Err(AppError::Input(format!(
                    "--ca-file {shown}: holds no PEM certificate"
                )));
            }
            let (ok, bad) = RootCertStore::empty().add_parsable_certificates(extra.clone());
            if ok == 0 {
                return Err(AppError::Input(format!(
                    "--ca-file {shown}: none of its {bad} certificate(s) can be used as a root"
                )));
            }
            extra_source = format!(" + {ok} from {shown}");
        }
        let (tx, ready) = tokio::sync::watch::channel(false);
        Ok(TlsSetup {
            extra: Arc::new(extra),
            extra_source,
            trust: Arc::new(std::sync::OnceLock::new()),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            ready,
            ready_tx: Arc::new(Mutex::new(Some(tx))),
        })
    }

    /// The roots in effect, loading them now if the background load has not done it.
    fn trust(&self) -> &Trust {
        self.trust.get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            let mut source = if added > 0 {
                format!("system ({added} roots)")
            } else {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                format!(
                    "bundled Mozilla set ({} roots; the system has none)",
                    roots.len()
                )
            };
            roots.add_parsable_certificates(self.extra.iter().cloned());
            source.push_str(&self.extra_source);
            Trust {
                roots: Arc::new(roots),
                source,
            }
        })
    }

    /// Where the roots came from, e.g. `system (146 roots) + 1 from ca.pem`.
    pub fn roots_source(&self) -> String {
        self.trust().source.clone()
    }

    /// Loads the roots and seeds the crypto library's random generator on a background thread.
    /// The first use of randomness in a process seeds it from CPU jitter, which takes tens of
    /// milliseconds; done inside the first handshake, that time would be counted as network time
    /// and would delay the endpoint's other stages. Started at the beginning of a run, both
    /// overlap DNS and TCP; the tls stage waits for them before starting its clock.
    pub fn warm_up(&self) {
        let this = self.clone();
        let tx = self.ready_tx.lock().ok().and_then(|mut t| t.take());
        let _ = std::thread::Builder::new()
            .name("tls-warm-up".into())
            .spawn(move || {
                let mut buf = [0u8; 32];
                let _ = this.provider.secure_random.fill(&mut buf);
                let _ = this.trust();
                if let Some(tx) = tx {
                    let _ = tx.send(true);
                }
            });
    }

    /// Waits until [`TlsSetup::warm_up`] is done; returns at once if it was never started.
    pub async fn ready(&self) {
        if self.ready_tx.lock().map_or(true, |t| t.is_some()) {
            return;
        }
        let mut rx = self.ready.clone();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// A client configuration whose verifier records the server's certificate into `seen`.
    pub fn client_config(
        &self,
        alpn: &[&[u8]],
        seen: Arc<Mutex<Option<Seen>>>,
    ) -> Result<ClientConfig, String> {
        let inner = WebPkiServerVerifier::builder_with_provider(
            self.trust().roots.clone(),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Capturing { inner, seen }))
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// What the verifier saw of the server's chain.
#[derive(Debug, Clone)]
pub struct Seen {
    pub end_entity: CertificateDer<'static>,
    pub intermediates: usize,
}

/// Delegates every decision to webpki, after noting the certificate it was shown.
#[derive(Debug)]
struct Capturing {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl ServerCertVerifier for Capturing {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(Seen {
                end_entity: end_entity.clone().into_owned(),
                intermediates: intermediates.len(),
            });
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

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

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whole days from `now` until `not_after`; negative once expired.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// Sorts a failed handshake into a contract code and a sentence a user can act on.
pub fn classify_error(e: &io::Error) -> (&'static str, String) {
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
        _ => ("tls.handshake_failed", format!("handshake failed: {e}")),
    }
}

pub fn classify_rustls(e: &rustls::Error) -> (&'static str, String) {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(ce) => match ce {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ("tls.expired", "the server's certificate has expired".into())
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                "tls.not_yet_valid",
                "the server's certificate is not valid yet (or this device's clock is behind)".into(),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
                "tls.hostname_mismatch",
                "the certificate is for a different host name (a redirecting filter or wrong server)".into(),
            ),
            CertificateError::UnknownIssuer => (
                "tls.untrusted",
                "the certificate chain does not lead to a trusted root (self-signed, a missing intermediate, or an intercepting proxy)".into(),
            ),
            CertificateError::BadSignature | CertificateError::UnhandledCriticalExtension => (
                "tls.untrusted",
                format!("the certificate cannot be trusted ({ce:?})"),
            ),
            other => ("tls.untrusted", format!("the certificate was rejected: {other:?}")),
        },
        E::AlertReceived(alert) => {
            let a = format!("{alert:?}");
            if a.contains("ProtocolVersion") {
                (
                    "tls.handshake_failed",
                    "the server offers only an old TLS version (TLS 1.0/1.1); this device and the app need TLS 1.2 or later".into(),
                )
            } else {
                ("tls.handshake_failed", format!("the server aborted the handshake ({a})"))
            }
        }
        E::PeerIncompatible(p) => {
            let a = format!("{p:?}");
            if old_protocol(&a) {
                (
                    "tls.handshake_failed",
                    format!("the server offers only an old TLS version (TLS 1.0/1.1); this device and the app need TLS 1.2 or later ({a})"),
                )
            } else {
                ("tls.handshake_failed", format!("the server is incompatible: {a}"))
            }
        }
        E::InvalidMessage(m) => (
            "tls.handshake_failed",
            format!("the server did not answer with TLS ({m:?}); something else listens on this port"),
        ),
        other => ("tls.handshake_failed", format!("handshake failed: {other}")),
    }
}

/// Does a rustls alert or incompatibility name an old protocol version on the server's side?
fn old_protocol(debug_text: &str) -> bool {
    ["ProtocolVersion", "Version", "Tls12", "Tls13"]
        .iter()
        .any(|k| debug_text.contains(k))
}

/// A machine-readable reason for failures the knowledge base treats specially.
pub fn reason_of(e: &io::Error) -> Option<&'static str> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let text = match tls {
        rustls::Error::AlertReceived(a) => format!("{a:?}"),
        rustls::Error::PeerIncompatible(p) => format!("{p:?}"),
        _ => return None,
    };
    old_protocol(&text).then_some("protocol_version")
}

/// Runs the tls stage on a connected socket.
pub async fn run(
    setup: &TlsSetup,
    target: &str,
    host: &str,
    alpn: &[&[u8]],
    stream: TcpStream,
    warn_days: i64,
) -> (Check, Option<TlsStream<TcpStream>>) {
    let t = Some(target);
    // Roots loaded and the RNG seeded, off the clock (see TlsSetup::warm_up).
    setup.ready().await;
    let seen = Arc::new(Mutex::new(None));
    let config = match setup.client_config(alpn, seen.clone()) {
        Ok(c) => c,
        Err(why) => {
            return (
                Check::new(Probe::Tls, t, Status::Fail, "tls.handshake_failed", why),
                None,
            );
        }
    };
    let name = match ServerName::try_from(host.to_owned()) {
        Ok(n) => n,
        Err(e) => {
            return (
                Check::new(
                    Probe::Tls,
                    t,
                    Status::Fail,
                    "tls.handshake_failed",
                    format!("{host} cannot be used as a TLS server name: {e}"),
                ),
                None,
            );
        }
    };
    let started = Instant::now();
    let res = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await;
    let elapsed = started.elapsed();
    let captured = seen.lock().ok().and_then(|s| s.clone());
    let facts = captured.as_ref().and_then(|s| cert_facts(&s.end_entity));
    let now = now_unix();

    let mut check = match &res {
        Ok(tls) => {
            let (_, conn) = tls.get_ref();
            let version = version_name(conn.protocol_version());
            match &facts {
                Some(f) => {
                    let days = days_left(f.not_after, now);
                    let (status, code) = if days < warn_days {
                        (Status::Warn, "tls.expiring_soon")
                    } else {
                        (Status::Pass, "tls.ok")
                    };
                    let note = if code == "tls.expiring_soon" { " — renewal is due" } else { "" };
                    Check::new(
                        Probe::Tls,
                        t,
                        status,
                        code,
                        format!(
                            "{version} in {:.1} ms; certificate by {}, valid until {} ({days} days){note}",
                            ms(elapsed),
                            short_name(&f.issuer),
                            &rfc3339(f.not_after)[..10]
                        ),
                    )
                }
                None => Check::new(Probe::Tls, t, Status::Pass, "tls.ok", format!("{version} in {:.1} ms", ms(elapsed))),
            }
            .with("version", version)
            .with(
                "alpn",
                conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
            )
        }
        Err(e) => {
            let (code, why) = classify_error(e);
            let why = match (&facts, code) {
                (Some(f), "tls.expired") => format!("{why} (expired {})", &rfc3339(f.not_after)[..10]),
                (Some(f), "tls.not_yet_valid") => format!("{why} (valid from {})", &rfc3339(f.not_before)[..10]),
                (Some(f), "tls.untrusted" | "tls.hostname_mismatch") => format!("{why}; issuer: {}", short_name(&f.issuer)),
                _ => why,
            };
            let c = Check::new(Probe::Tls, t, Status::Fail, code, why)
                .with("version", serde_json::Value::Null)
                .with("error", e.to_string());
            match reason_of(e) {
                Some(r) => c.with("reason", r),
                None => c,
            }
        }
    }
    .took(elapsed)
    .with("handshake_ms", ms(elapsed))
    .with("roots", setup.roots_source());
    match &facts {
        Some(f) => {
            check = check
                .with("issuer", f.issuer.clone())
                .with("subject", f.subject.clone())
                .with("not_before", rfc3339(f.not_before))
                .with("not_after", rfc3339(f.not_after))
                .with("days_left", days_left(f.not_after, now));
        }
        None => {
            for k in ["issuer", "not_after", "days_left"] {
                check = check.with(k, serde_json::Value::Null);
            }
        }
    }
    if let Some(s) = &captured {
        check = check.with("chain_intermediates", s.intermediates as u64);
    }
    (check, res.ok())
}

fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
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
    fn every_certificate_error_has_its_code() {
        use rustls::Error as E;
        let c = |e| classify_rustls(&e).0;
        assert_eq!(
            c(E::InvalidCertificate(CertificateError::Expired)),
            "tls.expired"
        );
        assert_eq!(
            c(E::InvalidCertificate(CertificateError::NotValidYet)),
            "tls.not_yet_valid"
        );
        assert_eq!(
            c(E::InvalidCertificate(CertificateError::NotValidForName)),
            "tls.hostname_mismatch"
        );
        assert_eq!(
            c(E::InvalidCertificate(CertificateError::UnknownIssuer)),
            "tls.untrusted"
        );
        assert_eq!(
            c(E::InvalidCertificate(CertificateError::BadSignature)),
            "tls.untrusted"
        );
        assert_eq!(
            c(E::AlertReceived(rustls::AlertDescription::ProtocolVersion)),
            "tls.handshake_failed"
        );
        assert!(
            classify_rustls(&E::AlertReceived(rustls::AlertDescription::ProtocolVersion))
                .1
                .contains("TLS 1.0/1.1")
        );
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(classify_error(&eof).0, "tls.handshake_failed");
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            E::InvalidCertificate(CertificateError::Expired),
        );
        assert_eq!(classify_error(&wrapped).0, "tls.expired");
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
