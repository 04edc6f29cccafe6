//! The trust a run verifies against: the system's roots (or a bundled set when it has none) plus
//! `--ca-file`, loaded off the clock, and which of them a chain leads to ([`Anchor`]).
//!
//! A part of the tls probe that the proxy path uses too (it builds its client configuration
//! here), so it imports no probe.

use super::handshake::*;
use super::verifier::*;
use crate::error::AppError;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, Mutex};

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
pub(super) struct Trust {
    roots: Arc<RootCertStore>,
    source: String,
    /// The bundled Mozilla set alone: what a certificate-pinning app or a fresh device trusts.
    public: Option<Arc<WebPkiServerVerifier>>,
    /// `--ca-file` alone: trust the user declared.
    declared: Option<Arc<WebPkiServerVerifier>>,
}

/// Largest `--ca-file` accepted: the whole Mozilla bundle is about 220 KB.
pub(super) const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;

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
    /// The first use of randomness in a process seeds it (from the operating system, as this
    /// project builds aws-lc; from CPU jitter, tens of milliseconds, in a build without
    /// `.cargo/config.toml`); done inside the first handshake, that time would be counted as
    /// network time and would delay the endpoint's other stages. Started when the first endpoint has its
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
