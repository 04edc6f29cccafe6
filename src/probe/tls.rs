//! tls: the TLS handshake on the connected socket, verified the way the app verifies it.
//!
//! The certificate is captured even when verification fails, so an expired or intercepted
//! certificate is shown with its issuer and dates. Failures are classified precisely from rustls'
//! error enum: an expired certificate is `tls.expired`, an intercepting proxy's is `tls.untrusted`,
//! a middlebox that drops the handshake is `tls.handshake_failed` with the reason.

use crate::error::AppError;
use crate::model::{Check, Probe, Status, ms};
use crate::probe::registry::{Definition, Kind};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The tls probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Tls,
    name: "tls",
    description: "TLS handshake with SNI; certificate trust, validity, host name, expiry",
    codes: &[
        "tls.ok",
        "tls.expiring_soon",
        "tls.expired",
        "tls.not_yet_valid",
        "tls.hostname_mismatch",
        "tls.untrusted",
        "tls.timeout",
        "tls.handshake_failed",
        "tls.intercepted",
        "tls.weak_signature",
        "tls.weak_key",
        "tls.old_protocol",
        "tls.no_common_cipher",
        "tls.client_cert_required",
        "tls.chain_too_large",
        "tls.revoked",
        "tls.large_hello_dropped",
        "tls.version_too_low",
        "tls.skipped",
    ],
    keys: &[
        "handshake_ms",
        "version",
        "issuer",
        "not_after",
        "days_left",
    ],
    needs: &[Probe::Dns, Probe::Tcp],
    kind: Kind::Endpoint,
};

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

/// The roots in effect and where they came from (for the report), and the two verifiers that
/// tell, after a chain passed, which kind of root it leads to (see [`Anchor`]).
struct Trust {
    roots: Arc<RootCertStore>,
    source: String,
    /// The bundled Mozilla set alone: what a certificate-pinning app or a fresh device trusts.
    public: Option<Arc<WebPkiServerVerifier>>,
    /// `--ca-file` alone: trust the user declared.
    declared: Option<Arc<WebPkiServerVerifier>>,
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
            let verifier = |store: RootCertStore| {
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), self.provider.clone())
                    .build()
                    .ok()
            };
            let public = verifier(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
            let mut declared = RootCertStore::empty();
            declared.add_parsable_certificates(self.extra.iter().cloned());
            let declared = (!declared.is_empty()).then(|| verifier(declared)).flatten();
            Trust {
                roots: Arc::new(roots),
                source,
                public,
                declared,
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
    /// and would delay the endpoint's other stages. Started when the first endpoint has its
    /// addresses, both overlap its TCP connect; the tls stage waits for them before starting its
    /// clock. A run that never gets that far (every name fails) spends no CPU on them. Only the
    /// first call does anything.
    pub fn warm_up(&self) {
        let this = self.clone();
        let Some(tx) = self.ready_tx.lock().ok().and_then(|mut t| t.take()) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("tls-warm-up".into())
            .spawn(move || {
                let mut buf = [0u8; 32];
                let _ = this.provider.secure_random.fill(&mut buf);
                let _ = this.trust();
                let _ = tx.send(true);
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

    /// A client configuration whose verifier records the server's certificate into `seen`, with
    /// the hello a modern client sends (a post-quantum key share first).
    pub fn client_config(
        &self,
        alpn: &[&[u8]],
        seen: Arc<Mutex<Option<Seen>>>,
    ) -> Result<ClientConfig, String> {
        self.client_config_with(alpn, seen, Hello::Modern)
    }

    /// A client configuration for `hello`; see [`Hello`].
    pub fn client_config_with(
        &self,
        alpn: &[&[u8]],
        seen: Arc<Mutex<Option<Seen>>>,
        hello: Hello,
    ) -> Result<ClientConfig, String> {
        let trust = self.trust();
        let inner =
            WebPkiServerVerifier::builder_with_provider(trust.roots.clone(), self.provider.clone())
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
        let asked = Arc::new(AskedForCert {
            flag: Default::default(),
            seen: seen.clone(),
        });
        let provider = Arc::new(hello.provider(&self.provider));
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Capturing {
                inner,
                public: trust.public.clone(),
                declared: trust.declared.clone(),
                seen,
                asked: asked.clone(),
            }))
            .with_client_cert_resolver(asked);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if hello == Hello::Classic {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Ok(config)
    }
}

/// Which ClientHello to send.
///
/// Modern clients (browsers since late 2024, more and more platform TLS stacks, and so the app)
/// offer a post-quantum hybrid key share (X25519MLKEM768) first: their hello is about 1.2 KB
/// larger and spans two TCP segments, which some middleboxes drop or reset. The classic hello
/// (X25519 alone, no resumption) is the retry that tells such a path from a dead server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    Modern,
    Classic,
}

impl Hello {
    fn provider(self, base: &CryptoProvider) -> CryptoProvider {
        use rustls::crypto::aws_lc_rs::kx_group;
        let kx_groups = match self {
            Hello::Modern => vec![
                kx_group::X25519MLKEM768,
                kx_group::X25519,
                kx_group::SECP256R1,
                kx_group::SECP384R1,
            ],
            Hello::Classic => vec![kx_group::X25519],
        };
        CryptoProvider {
            kx_groups,
            ..base.clone()
        }
    }
}

/// The size in bytes of the ClientHello `config` sends to `name` (built offline, never sent).
pub fn hello_bytes(config: Arc<ClientConfig>, name: ServerName<'static>) -> Option<usize> {
    let mut conn = rustls::ClientConnection::new(config, name).ok()?;
    let mut out = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut out).ok()? == 0 {
            break;
        }
    }
    Some(out.len())
}

/// Which kind of root a chain that passed verification leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// A root of the bundled Mozilla set: what every device trusts.
    Public,
    /// A root from `--ca-file`: trust the user declared.
    Declared,
    /// Only a root installed on this device (its system store) accepts the chain.
    DeviceOnly,
}

/// Records whether the server asked for a client certificate; never offers one. TLS 1.3 asks
/// before the server's certificate arrives, TLS 1.2 after: the flag is kept here and copied
/// into [`Seen`] by whichever comes second.
#[derive(Debug)]
struct AskedForCert {
    flag: std::sync::atomic::AtomicBool,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl rustls::client::ResolvesClientCert for AskedForCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut slot) = self.seen.lock()
            && let Some(s) = slot.as_mut()
        {
            s.asked_for_cert = true;
        }
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// What the verifier saw of the server's chain.
#[derive(Debug, Clone)]
pub struct Seen {
    pub end_entity: CertificateDer<'static>,
    pub intermediates: usize,
    /// The whole chain as sent, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    /// The stapled OCSP answer, if the server sent one.
    pub ocsp: Vec<u8>,
    /// Where the chain leads, once it passed verification.
    pub anchor: Option<Anchor>,
    /// The server asked for a client certificate.
    pub asked_for_cert: bool,
}

/// Delegates every decision to webpki, after noting the certificate it was shown; once a chain
/// passes, notes whether a public root, a declared one or only the device's store accepts it.
#[derive(Debug)]
struct Capturing {
    inner: Arc<WebPkiServerVerifier>,
    public: Option<Arc<WebPkiServerVerifier>>,
    declared: Option<Arc<WebPkiServerVerifier>>,
    seen: Arc<Mutex<Option<Seen>>>,
    asked: Arc<AskedForCert>,
}

impl Capturing {
    fn note(&self, f: impl FnOnce(&mut Seen)) {
        if let Ok(mut slot) = self.seen.lock()
            && let Some(s) = slot.as_mut()
        {
            f(s);
        }
    }
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
            let mut chain = vec![end_entity.to_vec()];
            chain.extend(intermediates.iter().map(|c| c.to_vec()));
            *slot = Some(Seen {
                end_entity: end_entity.clone().into_owned(),
                intermediates: intermediates.len(),
                chain,
                ocsp: ocsp_response.to_vec(),
                anchor: None,
                asked_for_cert: self.asked.flag.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let passes = |v: &Option<Arc<WebPkiServerVerifier>>| {
            v.as_ref().is_some_and(|v| {
                v.verify_server_cert(end_entity, intermediates, server_name, &[], now)
                    .is_ok()
            })
        };
        let anchor = if passes(&self.public) {
            Anchor::Public
        } else if passes(&self.declared) {
            Anchor::Declared
        } else {
            Anchor::DeviceOnly
        };
        self.note(|s| s.anchor = Some(anchor));
        Ok(verified)
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

use super::tls_classify::{Weakness, name_only_in_cn, weakness};
pub use super::tls_classify::{classify_error, classify_rustls};

/// What an endpoint asks of its TLS beyond a valid certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// The lowest TLS version the endpoint accepts (`min_tls`); `None` accepts TLS 1.2 and 1.3.
    pub min_tls: Option<rustls::ProtocolVersion>,
    /// An internal service with its own CA: a non-public root is expected, not judged.
    pub private_ca: bool,
    /// The step timeout: after half of it without an answer, a classic hello is tried beside.
    pub timeout: Duration,
}

impl Policy {
    /// The endpoint's `min_tls` and `private_ca`, with the step timeout: the same on the direct
    /// path and inside a proxy's tunnel.
    pub fn for_endpoint(ep: &crate::profile::Endpoint, timeout: Duration) -> Policy {
        use crate::profile::MinTls;
        Policy {
            min_tls: ep.min_tls.map(|v| match v {
                MinTls::V1_2 => rustls::ProtocolVersion::TLSv1_2,
                MinTls::V1_3 => rustls::ProtocolVersion::TLSv1_3,
            }),
            private_ca: ep.private_ca,
            timeout,
        }
    }
}

type Handshake = io::Result<TlsStream<TcpStream>>;

/// One handshake attempt and what its verifier saw.
struct Attempt {
    result: Handshake,
    seen: Option<Seen>,
    elapsed: Duration,
}

async fn attempt(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: ServerName<'static>,
    stream: TcpStream,
    hello: Hello,
) -> Result<Attempt, String> {
    let seen = Arc::new(Mutex::new(None));
    let config = setup.client_config_with(alpn, seen.clone(), hello)?;
    let started = Instant::now();
    let result = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await;
    let elapsed = started.elapsed();
    let seen = seen.lock().ok().and_then(|s| s.clone());
    Ok(Attempt {
        result,
        seen,
        elapsed,
    })
}

/// A failure a path that drops large hellos produces: reset, closed, cut.
fn cut_off(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_none()
        && matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        )
}

/// The classic retry, on a fresh connection to the same address.
async fn classic(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: ServerName<'static>,
    peer: Option<std::net::SocketAddr>,
) -> Option<Attempt> {
    let stream = TcpStream::connect(peer?).await.ok()?;
    let _ = stream.set_nodelay(true);
    let a = attempt(setup, alpn, name, stream, Hello::Classic)
        .await
        .ok()?;
    a.result.is_ok().then_some(a)
}

/// The modern handshake, and beside it a classic one when the modern one is cut off or has no
/// answer after `patience`. Ok(Ok(attempt)): the modern handshake's own outcome; Ok(Err(attempt)):
/// only the classic retry got through; Err: no handshake could be made (the reason).
async fn handshakes(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: ServerName<'static>,
    stream: TcpStream,
    peer: Option<std::net::SocketAddr>,
    patience: Duration,
) -> Result<Result<Attempt, Attempt>, String> {
    let modern = attempt(setup, alpn, name.clone(), stream, Hello::Modern);
    tokio::pin!(modern);
    let outcome: Result<Attempt, Attempt> = tokio::select! {
        done = &mut modern => match done {
            Err(why) => {
                return Err(why);
            }
            Ok(a) => match &a.result {
                Err(e) if cut_off(e) => match classic(setup, alpn, name.clone(), peer).await {
                    Some(c) => Err(c),
                    None => Ok(a),
                },
                _ => Ok(a),
            },
        },
        _ = tokio::time::sleep(patience), if !patience.is_zero() => {
            // No answer yet: try a classic hello beside it. The modern one started first on
            // the same path, so it wins unless the path holds it back.
            let retry = classic(setup, alpn, name.clone(), peer);
            tokio::pin!(retry);
            tokio::select! {
                done = &mut modern => match done {
                    Err(why) => {
                        return Err(why);
                    }
                    Ok(a) => match &a.result {
                        Err(e) if cut_off(e) => match retry.await {
                            Some(c) => Err(c),
                            None => Ok(a),
                        },
                        _ => Ok(a),
                    },
                },
                got = &mut retry => match got {
                    Some(c) => Err(c),
                    None => match modern.await {
                        Ok(a) => Ok(a),
                        Err(why) => {
                            return Err(why);
                        }
                    },
                },
            }
        }
    };
    Ok(outcome)
}

/// A server that refused before showing a certificate, for want of a version or a suite, is
/// asked with a legacy hello what it does speak; a chain too large to accept is measured from a
/// TLS 1.2 server's clear-text Certificate message.
async fn second_looks(
    mut check: Check,
    a: &Attempt,
    peer: Option<std::net::SocketAddr>,
    host: &str,
    policy: Policy,
    started: Instant,
) -> Check {
    // A server that refused before showing a certificate, for want of a version or a suite:
    // ask it with a legacy hello what it does speak.
    if a.seen.is_none()
        && matches!(
            check.code.as_str(),
            "tls.no_common_cipher" | "tls.old_protocol"
        )
        && let Some(addr) = peer
    {
        let left = policy.timeout.saturating_sub(started.elapsed());
        if let Some(answer) = super::tls_legacy::probe(addr, host, left).await {
            check = legacy(check, &answer);
        }
    }
    // A chain too large to accept: how large, from a TLS 1.2 server's clear-text Certificate.
    if check.code == "tls.chain_too_large"
        && let Some(addr) = peer
    {
        let left = policy.timeout.saturating_sub(started.elapsed());
        if let Some(bytes) = super::tls_legacy::chain_bytes(addr, host, left).await {
            check.summary = format!(
                "the server's certificate chain is {} KB, larger than the 64 KiB a TLS client accepts",
                bytes / 1000
            );
            check = check.with("bytes", bytes as u64);
        }
    }
    check
}

/// `tls.large_hello_dropped`: the modern hello was cut off while a classic one got through;
/// the sizes of both hellos as this client sends them.
fn large_hello_dropped(
    mut check: Check,
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: &ServerName<'static>,
) -> Check {
    let size = |hello| {
        let config = setup
            .client_config_with(alpn, Arc::new(Mutex::new(None)), hello)
            .ok()?;
        hello_bytes(Arc::new(config), name.clone())
    };
    let (large, small) = (size(Hello::Modern), size(Hello::Classic));
    let sizes = match (large, small) {
        (Some(l), Some(s)) => format!(" ({l} bytes against {s})"),
        _ => String::new(),
    };
    check.status = Status::Fail;
    check.code = "tls.large_hello_dropped".into();
    check.summary = format!(
        "a modern client's ClientHello{sizes}, with a post-quantum key share, is dropped or reset on the way while a small classic one gets through: a firewall, router or filter on the path mishandles large hellos, and modern apps fail here"
    );
    check = check.with(
        "hello_bytes",
        serde_json::json!({ "large": large, "small": small }),
    );
    check
}

/// Runs the tls stage on a connected socket: the handshake a modern client makes, and when it
/// is cut off or gets no answer while a classic hello gets through, `tls.large_hello_dropped`.
pub async fn run(
    setup: &TlsSetup,
    target: &str,
    host: &str,
    alpn: &[&[u8]],
    stream: TcpStream,
    warn_days: i64,
    policy: Policy,
) -> (Check, Option<TlsStream<TcpStream>>) {
    let t = Some(target);
    // Roots loaded and the RNG seeded, off the clock (see TlsSetup::warm_up).
    setup.ready().await;
    let name = match ServerName::try_from(host.to_owned()) {
        Ok(n) => n,
        Err(_) => {
            return (
                Check::new(
                    Probe::Tls,
                    t,
                    Status::Fail,
                    "tls.handshake_failed",
                    format!("{host} cannot be used as a TLS server name"),
                ),
                None,
            );
        }
    };
    let peer = stream.peer_addr().ok();
    let started = Instant::now();
    let patience = policy.timeout / 2;
    let outcome = match handshakes(setup, alpn, name.clone(), stream, peer, patience).await {
        Ok(o) => o,
        Err(why) => {
            return (
                Check::new(Probe::Tls, t, Status::Fail, "tls.handshake_failed", why),
                None,
            );
        }
    };
    let large_dropped = outcome.is_err();
    let a = match outcome {
        Ok(a) | Err(a) => a,
    };
    let elapsed = if large_dropped {
        started.elapsed()
    } else {
        a.elapsed
    };
    let mut check = judge(setup, target, host, &a, warn_days, policy);
    check = second_looks(check, &a, peer, host, policy, started).await;
    if large_dropped {
        check = large_hello_dropped(check, setup, alpn, &name);
    }
    let check = check.took(elapsed).with("handshake_ms", ms(elapsed));
    (check, a.result.ok())
}

/// A failed check, made precise by what the server chose when offered a legacy hello.
fn legacy(mut c: Check, a: &super::tls_legacy::Answer) -> Check {
    if a.version_old {
        c.code = "tls.old_protocol".into();
        c.summary = format!(
            "the server speaks at most {} (it chose {} when offered everything); this device and the app need TLS 1.2 or later and no longer speak SSL 3.0, TLS 1.0 or 1.1",
            a.version, a.suite
        );
        c = c.with("reason", "protocol_version");
    } else if a.suite_broken {
        c.code = "tls.no_common_cipher".into();
        c.summary = format!(
            "the server and this device have no cipher suite in common: offered everything, the server chose {}, which no current client accepts (RC4, 3DES, NULL, export, plain-RSA or finite-field Diffie-Hellman key exchange)",
            a.suite
        );
        c.data.remove("reason");
    } else {
        return c;
    }
    c.with("offered_versions", vec![a.version])
        .with("server_cipher", a.suite.clone())
}

/// Turns one handshake's outcome into the check: the certificate's facts, then the finest code
/// the evidence allows.
/// What one handshake showed, for [`judge`] and its two halves.
struct Evidence<'a> {
    t: Option<&'a str>,
    host: &'a str,
    elapsed: Duration,
    captured: Option<&'a Seen>,
    facts: Option<CertFacts>,
    now: i64,
    chain_names: Vec<String>,
    top_issuer: String,
    warn_days: i64,
    policy: Policy,
}

fn judge(
    setup: &TlsSetup,
    target: &str,
    host: &str,
    a: &Attempt,
    warn_days: i64,
    policy: Policy,
) -> Check {
    let captured = a.seen.as_ref();
    let ev = Evidence {
        t: Some(target),
        host,
        elapsed: a.elapsed,
        captured,
        facts: captured.and_then(|s| cert_facts(&s.end_entity)),
        now: now_unix(),
        chain_names: captured.map(|s| chain_names(&s.chain)).unwrap_or_default(),
        top_issuer: captured
            .and_then(|s| s.chain.last())
            .and_then(|der| cert_facts(der))
            .map(|f| f.issuer)
            .unwrap_or_default(),
        warn_days,
        policy,
    };
    let check = match &a.result {
        Ok(tls) => judge_session(tls, &ev),
        Err(e) => judge_failure(e, &ev),
    }
    .with("roots", setup.roots_source());
    with_certificate(check, &ev)
}

/// A handshake that completed: the certificate's validity, then revocation, interception and
/// the endpoint's lowest version, finest first.
fn judge_session(tls: &TlsStream<TcpStream>, ev: &Evidence) -> Check {
    let (_, conn) = tls.get_ref();
    let version = version_name(conn.protocol_version());
    let c = match &ev.facts {
        Some(f) => {
            let days = days_left(f.not_after, ev.now);
            let (status, code) = if days < ev.warn_days {
                (Status::Warn, "tls.expiring_soon")
            } else {
                (Status::Pass, "tls.ok")
            };
            let note = if code == "tls.expiring_soon" {
                " — renewal is due"
            } else {
                ""
            };
            Check::new(
                Probe::Tls,
                ev.t,
                status,
                code,
                format!(
                    "{version} in {:.1} ms; certificate by {}, valid until {} ({days} days){note}",
                    ms(ev.elapsed),
                    short_name(&f.issuer),
                    &rfc3339(f.not_after)[..10]
                ),
            )
        }
        None => Check::new(
            Probe::Tls,
            ev.t,
            Status::Pass,
            "tls.ok",
            format!("{version} in {:.1} ms", ms(ev.elapsed)),
        ),
    }
    .with("version", version)
    .with(
        "alpn",
        conn.alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    );
    past_the_certificate(c, conn, version, ev)
}

/// A completed handshake's findings past the certificate's dates: a stapled revocation, an
/// interception, a version under the endpoint's `min_tls`.
fn past_the_certificate(
    mut c: Check,
    conn: &rustls::ClientConnection,
    version: &str,
    ev: &Evidence,
) -> Check {
    let anchor = ev.captured.and_then(|s| s.anchor);
    let revoked = ev.captured.is_some_and(|s| {
        !s.ocsp.is_empty()
            && leaf_serial(&s.end_entity).is_some_and(|serial| {
                super::ocsp::status_of(&s.ocsp, &serial) == Some(super::ocsp::Status::Revoked)
            })
    });
    if let Some(s) = ev.captured
        && !s.ocsp.is_empty()
    {
        c = c.with("ocsp_stapled", true);
    }
    let intercepted = anchor.and_then(|anchor| {
        judge_interception(
            &ev.chain_names,
            &ev.top_issuer,
            Some(anchor),
            ev.policy.private_ca,
        )
    });
    if revoked {
        c.status = Status::Fail;
        c.code = "tls.revoked".into();
        c.summary = "the server's own stapled revocation answer (OCSP) says its certificate has been revoked: the certificate must be replaced".into();
    } else if let Some(i) = intercepted {
        c = i.apply(c);
    } else if let Some(min) = ev.policy.min_tls
        && too_low(conn.protocol_version(), min)
    {
        let need = version_name(Some(min));
        c.status = Status::Fail;
        c.code = "tls.version_too_low".into();
        c.summary = format!(
            "the handshake settled on {}, but this endpoint accepts {} or later only: something on the path (a TLS-inspecting proxy or firewall) or an old TLS library holds the connection back",
            version.replace("TLSv", "TLS "),
            need.replace("TLSv", "TLS ")
        );
    }
    if let Some(min) = ev.policy.min_tls {
        // In the profile's own notation ("1.3"), so scripts compare it with the profile.
        c = c.with(
            "min_tls",
            version_name(Some(min)).trim_start_matches("TLSv"),
        );
    }
    c
}

/// A handshake that failed: the rustls error classified, refined by what the server showed.
fn judge_failure(e: &std::io::Error, ev: &Evidence) -> Check {
    let (code, why) = classify_error(e);
    let (code, why) = refine(code, why, ev.captured, ev.facts.as_ref(), ev.host, e);
    let mut c = Check::new(Probe::Tls, ev.t, Status::Fail, code, why)
        .with("version", serde_json::Value::Null)
        .with("error", crate::sanitize::outside(&e.to_string()));
    if code == "tls.untrusted"
        && let Some(i) =
            judge_interception(&ev.chain_names, &ev.top_issuer, None, ev.policy.private_ca)
    {
        c = i.apply(c);
    }
    if let Some(w) = ev.captured.and_then(|s| weakness(&s.chain)) {
        c = match w {
            Weakness::Signature(alg) if code == "tls.weak_signature" => {
                c.with("signature_algorithm", alg)
            }
            Weakness::Key(bits) if code == "tls.weak_key" => c.with("key_bits", bits),
            _ => c,
        };
    }
    match super::tls_classify::reason_of(code) {
        Some(r) => c.with("reason", r),
        None => c,
    }
}

/// The certificate's facts (null where none was seen), the chain's length, a client
/// certificate request.
fn with_certificate(mut check: Check, ev: &Evidence) -> Check {
    match &ev.facts {
        Some(f) => {
            check = check
                .with("issuer", f.issuer.clone())
                .with("subject", f.subject.clone())
                .with("not_before", rfc3339(f.not_before))
                .with("not_after", rfc3339(f.not_after))
                .with("days_left", days_left(f.not_after, ev.now));
        }
        None => {
            for k in ["issuer", "not_after", "days_left"] {
                check = check.with(k, serde_json::Value::Null);
            }
        }
    }
    if let Some(s) = ev.captured {
        check = check.with("chain_intermediates", s.intermediates as u64);
        if s.asked_for_cert {
            check = check.with("client_cert_requested", true);
        }
    }
    check
}

/// The finest code the captured chain allows for a failure the verifier named coarsely.
fn refine(
    code: &'static str,
    why: String,
    captured: Option<&Seen>,
    facts: Option<&CertFacts>,
    host: &str,
    e: &io::Error,
) -> (&'static str, String) {
    let weak = captured.and_then(|s| weakness(&s.chain));
    let signature_trouble = matches!(
        code,
        "tls.untrusted" | "tls.weak_signature" | "tls.handshake_failed"
    ) || e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::PeerMisbehaved(_)));
    match weak {
        Some(Weakness::Signature(alg)) if signature_trouble => {
            return (
                "tls.weak_signature",
                format!(
                    "the certificate chain is signed with {}, a broken algorithm that no current client accepts",
                    algorithm_words(alg)
                ),
            );
        }
        Some(Weakness::Key(bits)) if signature_trouble => {
            return (
                "tls.weak_key",
                format!(
                    "the server's RSA key has only {bits} bits; clients refuse keys under 2048 bits"
                ),
            );
        }
        _ => {}
    }
    if captured.is_some_and(|s| s.asked_for_cert)
        && e.get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .is_some_and(|r| matches!(r, rustls::Error::AlertReceived(_)))
    {
        return (
            "tls.client_cert_required",
            "the server demands a client certificate, which this device does not have, and ended the handshake without one".into(),
        );
    }
    match (code, facts) {
        ("tls.hostname_mismatch", _)
            if captured.is_some_and(|s| name_only_in_cn(&s.end_entity, host)) =>
        {
            (
                code,
                format!(
                    "the certificate names {host} only in its common name (CN) and has no subject alternative name; clients have required the name there since 2017, so the server's operator must reissue it"
                ),
            )
        }
        ("tls.expired", Some(f)) => (
            code,
            format!("{why} (expired {})", &rfc3339(f.not_after)[..10]),
        ),
        ("tls.not_yet_valid", Some(f)) => (
            code,
            format!("{why} (valid from {})", &rfc3339(f.not_before)[..10]),
        ),
        ("tls.untrusted" | "tls.hostname_mismatch", Some(f)) => {
            (code, format!("{why}; issuer: {}", short_name(&f.issuer)))
        }
        _ => (code, why),
    }
}

fn algorithm_words(alg: &str) -> &'static str {
    if alg.contains("md5") {
        "MD5"
    } else if alg.contains("md2") {
        "MD2"
    } else {
        "SHA-1"
    }
}

/// Is `got` below `min`?
fn too_low(got: Option<rustls::ProtocolVersion>, min: rustls::ProtocolVersion) -> bool {
    let rank = |v: rustls::ProtocolVersion| match v {
        rustls::ProtocolVersion::TLSv1_3 => 4,
        rustls::ProtocolVersion::TLSv1_2 => 3,
        _ => 0,
    };
    got.is_none_or(|g| rank(g) < rank(min))
}

/// The issuer and subject names of every certificate in a chain, for naming an interceptor.
fn chain_names(chain: &[Vec<u8>]) -> Vec<String> {
    chain
        .iter()
        .filter_map(|der| cert_facts(der))
        .flat_map(|f| [f.issuer, f.subject])
        .collect()
}

fn leaf_serial(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.raw_serial().to_vec())
}

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
        if self.trusted {
            c.status = c.status.max(Status::Warn);
            c.summary = format!(
                "the certificate is not the service's: {who} presents its own, and this device trusts it; browsers work, but apps that pin BMW's certificates (the My BMW app) fail here. {}",
                c.summary
            );
        } else {
            c.status = Status::Fail;
            c.summary = format!(
                "the certificate is not the service's: {who} presents its own (issuer: {}), and this device does not trust it",
                short_name(&self.issuer)
            );
        }
        c.code = "tls.intercepted".into();
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

/// A server that asked for a client certificate and then refused the request without one
/// (HTTP 400, 403, 495 or 496 from nginx and most servers): the tls check says so, and the http
/// check, whose answer is only the consequence, is marked as such.
pub fn client_cert_refusal(checks: &mut [Check], target: &str) {
    let asked = checks.iter().any(|c| {
        c.probe == Probe::Tls
            && c.target.as_deref() == Some(target)
            && c.data.get("client_cert_requested") == Some(&serde_json::Value::Bool(true))
    });
    let refused = checks.iter().find(|c| {
        c.probe == Probe::Http
            && c.target.as_deref() == Some(target)
            && matches!(c.data_f64("status_code"), Some(s) if [400.0, 403.0, 495.0, 496.0].contains(&s))
    });
    let Some(status) = refused.and_then(|c| c.data_f64("status_code")) else {
        return;
    };
    if !asked {
        return;
    }
    for c in checks
        .iter_mut()
        .filter(|c| c.target.as_deref() == Some(target))
    {
        match c.probe {
            Probe::Tls => {
                c.status = Status::Fail;
                c.code = "tls.client_cert_required".into();
                c.summary = format!(
                    "the server demands a client certificate, which this device does not have: it asked for one in the handshake and refused the request without it (HTTP {status})"
                );
            }
            Probe::Http => {
                c.status = Status::Skip;
                c.code = "http.skipped".into();
                c.summary = format!(
                    "needs a session the server accepts; tls failed (tls.client_cert_required), the server answered HTTP {status}"
                );
            }
            _ => {}
        }
    }
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

    #[test]
    fn a_refusal_after_a_certificate_request_is_named() {
        let tls = Check::new(Probe::Tls, Some("api"), Status::Pass, "tls.ok", "ok")
            .with("client_cert_requested", true);
        let http = Check::new(
            Probe::Http,
            Some("api"),
            Status::Pass,
            "http.ok",
            "HTTP 400",
        )
        .with("status_code", 400);
        let mut checks = vec![tls.clone(), http.clone()];
        client_cert_refusal(&mut checks, "api");
        assert_eq!(checks[0].code, "tls.client_cert_required");
        assert_eq!(checks[1].status, Status::Skip);
        // Asked but answered normally: an optional certificate, nothing to report.
        let ok = http.clone().with("status_code", 200);
        let mut checks = vec![tls, ok];
        client_cert_refusal(&mut checks, "api");
        assert_eq!(checks[0].code, "tls.ok");
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
