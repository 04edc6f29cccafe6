//! The trust a run verifies against: the system's roots (or a bundled set when it has none) plus
//! `--ca-file`, loaded off the clock, and which of them a chain leads to ([`Anchor`]).
//!
//! A part of the tls probe that the proxy path uses too (it builds its client configuration
//! here), so it imports no probe.

use super::handshake::*;
use super::verifier::*;
use crate::error::AppError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{ServerName, UnixTime};
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
    trust: Arc<std::sync::OnceLock<Arc<Trust>>>,
    provider: Arc<CryptoProvider>,
    /// Becomes true once the roots are loaded and the random generator is seeded.
    ready: tokio::sync::watch::Receiver<bool>,
    ready_tx: Arc<Mutex<Option<tokio::sync::watch::Sender<bool>>>>,
}

/// The roots in effect and where they came from (for the report), and the two verifiers that
/// tell, after a chain passed, which kind of root it leads to (see [`Anchor`]).
///
/// The system's store is read in two steps ([`super::roots`]): `early` holds its bundle file
/// (or the bundled Mozilla set when the system has none) and `--ca-file`; the certificate
/// directories are added, once, the first time a chain fails against it.
pub(super) struct Trust {
    early: Option<Arc<WebPkiServerVerifier>>,
    early_roots: RootCertStore,
    source: String,
    extra_source: String,
    system: Mutex<super::roots::System>,
    /// `early` with the directories read: built on the first chain `early` refuses.
    full: std::sync::OnceLock<Option<(Arc<WebPkiServerVerifier>, usize)>>,
    provider: Arc<CryptoProvider>,
    /// The bundled Mozilla set alone: what a certificate-pinning app or a fresh device trusts.
    public: Option<Arc<WebPkiServerVerifier>>,
    /// `--ca-file` alone: trust the user declared.
    declared: Option<Arc<WebPkiServerVerifier>>,
}

/// What a server presented, as rustls hands it to a verifier.
pub(super) struct Presented<'a> {
    pub(super) end_entity: &'a CertificateDer<'a>,
    pub(super) intermediates: &'a [CertificateDer<'a>],
    pub(super) server_name: &'a ServerName<'a>,
    pub(super) ocsp_response: &'a [u8],
    pub(super) now: UnixTime,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("source", &self.source())
            .finish()
    }
}

impl Trust {
    /// Where the roots came from: the early store, and what the directories added once read.
    fn source(&self) -> String {
        let mut source = self.source.clone();
        if let Some(Some((_, more))) = self.full.get()
            && *more > 0
        {
            source.push_str(&format!(" + {more} from its certificate directories"));
        }
        source.push_str(&self.extra_source);
        source
    }

    /// The whole store: the early one plus the system's certificate directories, read now if no
    /// chain needed them before. `None` when the directories add nothing (or were read at once).
    fn full(&self) -> Option<&Arc<WebPkiServerVerifier>> {
        self.full
            .get_or_init(|| {
                let more = match self.system.lock() {
                    Ok(mut system) if !system.dirs.is_empty() => system.rest(),
                    _ => Vec::new(),
                };
                let mut roots = self.early_roots.clone();
                let (added, _) = roots.add_parsable_certificates(more);
                if added == 0 {
                    return None;
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .ok()
                    .map(|v| (v, added))
            })
            .as_ref()
            .map(|(v, _)| v)
    }

    /// Verifies a chain against the roots in effect, and says which kind of root it leads to.
    ///
    /// `--ca-file` is tried first: a chain it accepts passes any store that holds it, and no
    /// system root need be read. Then the early store, then (once per run, only after a refusal)
    /// the whole store, whose verdict is the one returned.
    pub(super) fn verify(
        &self,
        c: &Presented<'_>,
    ) -> Result<(ServerCertVerified, Anchor), rustls::Error> {
        let passes = |v: Option<&Arc<WebPkiServerVerifier>>| {
            v.is_some_and(|v| {
                v.verify_server_cert(c.end_entity, c.intermediates, c.server_name, &[], c.now)
                    .is_ok()
            })
        };
        let public_or = |other: Anchor| {
            if passes(self.public.as_ref()) {
                Anchor::Public
            } else {
                other
            }
        };
        if passes(self.declared.as_ref()) {
            return Ok((ServerCertVerified::assertion(), public_or(Anchor::Declared)));
        }
        let Some(early) = &self.early else {
            return Err(rustls::Error::General("no root certificates".into()));
        };
        let whole = |v: &WebPkiServerVerifier| {
            v.verify_server_cert(
                c.end_entity,
                c.intermediates,
                c.server_name,
                c.ocsp_response,
                c.now,
            )
        };
        let verified = match whole(early) {
            Ok(v) => v,
            // The name is checked only once the chain reached a root: more roots cannot help.
            Err(e) if made_out_for_another_name(&e) => return Err(e),
            Err(e) => match self.full() {
                Some(full) => whole(full)?,
                None => return Err(e),
            },
        };
        Ok((verified, public_or(Anchor::DeviceOnly)))
    }

    /// The signature algorithms the provider verifies with (the handshake's own signatures).
    pub(super) fn algorithms(&self) -> &rustls::crypto::WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

/// Is this the verifier's "not made out for this name"? rustls checks the name after the chain
/// was built to a root, so a store with more roots would give the same answer.
fn made_out_for_another_name(e: &rustls::Error) -> bool {
    use rustls::CertificateError as C;
    matches!(
        e,
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })
    )
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
            provider: Arc::new(in_app_order(rustls::crypto::aws_lc_rs::default_provider())),
            ready,
            ready_tx: Arc::new(Mutex::new(Some(tx))),
        })
    }

    /// The roots in effect, loading them now if the background load has not done it.
    fn trust(&self) -> &Arc<Trust> {
        self.trust
            .get_or_init(|| Arc::new(self.build(super::roots::System::first())))
    }

    /// The roots of `system`'s first step, `--ca-file`, and the two verifiers beside them.
    fn build(&self, mut system: super::roots::System) -> Trust {
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(std::mem::take(&mut system.certs));
        let source = if added > 0 {
            format!("system ({added} root{})", if added == 1 { "" } else { "s" })
        } else {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            format!(
                "bundled Mozilla set ({} roots; the system has none)",
                roots.len()
            )
        };
        roots.add_parsable_certificates(self.extra.iter().cloned());
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
        // Never empty (the bundled set stands in for an empty system store), so it builds.
        let early = verifier(roots.clone());
        Trust {
            early,
            early_roots: roots,
            source,
            extra_source: self.extra_source.clone(),
            system: Mutex::new(system),
            full: std::sync::OnceLock::new(),
            provider: self.provider.clone(),
            public,
            declared,
        }
    }

    /// Where the roots came from, e.g. `system (146 roots) + 1 from ca.pem`.
    pub fn roots_source(&self) -> String {
        self.trust().source()
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
        let trust = self.trust().clone();
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
                trust,
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

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;

    type Root = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

    fn root(name: &str) -> Root {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rcgen::CertifiedIssuer::self_signed(params, key).expect("self-signed")
    }

    fn leaf(name: &str, ca: &Root) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.signed_by(&key, ca).expect("signed").der().clone()
    }

    fn check(trust: &Trust, cert: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
        let server_name = ServerName::try_from(name.to_owned()).expect("name");
        trust
            .verify(&Presented {
                end_entity: cert,
                intermediates: &[],
                server_name: &server_name,
                ocsp_response: &[],
                now: UnixTime::now(),
            })
            .map(|_| ())
    }

    /// A chain made out for another name reached a root already: the directories are not read
    /// for it. A chain whose root is only in the directories still reads them, once.
    #[test]
    fn another_name_does_not_read_the_certificate_directories() {
        let d = tempfile::tempdir().expect("tempdir");
        let (bundled, local) = (root("bundled.test"), root("local.test"));
        let bundle = d.path().join("bundle.pem");
        std::fs::write(&bundle, bundled.pem()).expect("bundle");
        let dir = d.path().join("certs");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::write(dir.join("local.pem"), local.pem()).expect("local");
        let setup = TlsSetup::load(None).expect("setup");
        let trust = setup.build(super::super::roots::System::with(Some(&bundle), vec![dir]));

        let other = check(&trust, &leaf("a.test", &bundled), "b.test");
        assert!(made_out_for_another_name(&other.expect_err("another name")));
        assert!(trust.full.get().is_none(), "the directories were read");

        check(&trust, &leaf("c.test", &local), "c.test").expect("the directory's root");
        assert!(
            trust
                .source()
                .ends_with(" + 1 from its certificate directories")
        );
    }
}
