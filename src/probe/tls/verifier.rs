//! The verifier that captures what the server presented, even when verification fails, so an
//! expired or intercepted certificate is shown with its issuer and dates; and the client
//! certificate resolver that notes a server asking for one.
//!
//! A part of the tls probe that the proxy path uses too; it imports no probe.

use super::trust::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};

/// Records whether the server asked for a client certificate; never offers one. TLS 1.3 asks
/// before the server's certificate arrives, TLS 1.2 after: the flag is kept here and copied
/// into [`Seen`] by whichever comes second.
#[derive(Debug)]
pub(super) struct AskedForCert {
    pub(super) flag: std::sync::atomic::AtomicBool,
    pub(super) seen: Arc<Mutex<Option<Seen>>>,
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
pub(super) struct Capturing {
    pub(super) trust: Arc<Trust>,
    pub(super) seen: Arc<Mutex<Option<Seen>>>,
    pub(super) asked: Arc<AskedForCert>,
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
        let (verified, anchor) = self.trust.verify(&Presented {
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        })?;
        self.note(|s| s.anchor = Some(anchor));
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.trust.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.trust.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.algorithms().supported_schemes()
    }
}
