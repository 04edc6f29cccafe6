//! Certificates generated in the test: a root CA (written to a PEM file for `--ca-file`), an
//! intermediate under it, and leaf certificates in every state the tls stage must recognise.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

pub const ROOT_CN: &str = "Netcheck Test Root CA";
pub const INTERMEDIATE_CN: &str = "Netcheck Test Intermediate CA";
pub const SELF_SIGNED_CN: &str = "Netcheck Self-Signed";

const DAY: i64 = 86_400;

/// When a leaf is valid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validity {
    /// From yesterday for a year.
    Valid,
    /// Ended yesterday.
    Expired,
    /// Starts in 30 days.
    NotYetValid,
    /// Valid now; `days_left` is exactly this many days (it ends N days and 12 hours from now).
    ExpiresInDays(i64),
}

/// Who signs a leaf, and what the server sends with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Issuer {
    /// The root in the CA file.
    Root,
    /// The intermediate; `send_chain: false` is the classic misconfiguration of a server that
    /// forgets to send it (the client cannot build a chain: `tls.untrusted`).
    Intermediate { send_chain: bool },
    /// Nobody: the leaf signs itself and is in no trust store.
    SelfSigned,
}

/// What to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// Subject alternative names: DNS names or IP literals.
    pub names: Vec<String>,
    pub validity: Validity,
    pub issuer: Issuer,
}

impl Leaf {
    /// A valid root-issued leaf for `host` and the loopback addresses `127.0.0.1` and `::1`.
    pub fn for_host(host: &str) -> Leaf {
        Leaf {
            names: vec![host.to_owned(), "127.0.0.1".into(), "::1".into()],
            validity: Validity::Valid,
            issuer: Issuer::Root,
        }
    }

    /// A leaf with exactly these names (no loopback addresses added).
    pub fn only(names: &[&str]) -> Leaf {
        Leaf {
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            validity: Validity::Valid,
            issuer: Issuer::Root,
        }
    }

    pub fn validity(mut self, v: Validity) -> Leaf {
        self.validity = v;
        self
    }

    pub fn issuer(mut self, i: Issuer) -> Leaf {
        self.issuer = i;
        self
    }
}

/// What a TLS server presents: its chain (leaf first) and the leaf's key.
#[derive(Debug)]
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// A test CA: root, intermediate, and the root's PEM file (deleted when dropped).
pub struct Pki {
    dir: TempDir,
    ca_file: PathBuf,
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let root = CertifiedIssuer::self_signed(ca_params(ROOT_CN, None), key())
            .expect("self-sign the test root");
        let intermediate =
            CertifiedIssuer::signed_by(ca_params(INTERMEDIATE_CN, Some(0)), key(), &root)
                .expect("sign the test intermediate");
        let dir = tempfile::Builder::new()
            .prefix("netcheck-pki")
            .tempdir()
            .expect("temporary directory for the CA file");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, root.pem()).expect("write the CA file");
        Pki {
            dir,
            ca_file,
            root,
            intermediate,
        }
    }

    /// The root CA as PEM, for `--ca-file`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A directory that lives as long as this PKI, for other files a test needs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A valid root-issued identity for `host`, `127.0.0.1` and `::1`.
    pub fn identity(&self, host: &str) -> ServerIdentity {
        self.issue(&Leaf::for_host(host))
    }

    pub fn issue(&self, leaf: &Leaf) -> ServerIdentity {
        let key = key();
        let mut params = CertificateParams::new(leaf.names.clone()).expect("leaf names");
        let cn = leaf.names.first().cloned().unwrap_or_else(|| "leaf".into());
        let cn = if leaf.issuer == Issuer::SelfSigned {
            SELF_SIGNED_CN.to_owned()
        } else {
            cn
        };
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = leaf.issuer != Issuer::SelfSigned;
        let (from, until) = match leaf.validity {
            Validity::Valid => (-DAY, 365 * DAY),
            Validity::Expired => (-60 * DAY, -DAY),
            Validity::NotYetValid => (30 * DAY, 60 * DAY),
            Validity::ExpiresInDays(n) => (-DAY, n * DAY + DAY / 2),
        };
        // rcgen takes `time::OffsetDateTime`; build it from the epoch so the tests need no
        // extra dependency to say "now plus N seconds".
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64;
        params.not_before = epoch + Duration::from_secs((now + from) as u64);
        params.not_after = epoch + Duration::from_secs((now + until) as u64);

        let (leaf_cert, chain_rest) = match leaf.issuer {
            Issuer::Root => (params.signed_by(&key, &self.root), vec![]),
            Issuer::Intermediate { send_chain } => (
                params.signed_by(&key, &self.intermediate),
                if send_chain {
                    vec![self.intermediate.der().clone()]
                } else {
                    vec![]
                },
            ),
            Issuer::SelfSigned => (params.self_signed(&key), vec![]),
        };
        let leaf_cert = leaf_cert.expect("sign the leaf");
        let mut chain = vec![leaf_cert.der().clone()];
        chain.extend(chain_rest);
        ServerIdentity {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

fn key() -> KeyPair {
    KeyPair::generate().expect("generate a key pair")
}

fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "bmw-netcheck tests");
    p.is_ca = IsCa::Ca(match path_len {
        None => BasicConstraints::Unconstrained,
        Some(n) => BasicConstraints::Constrained(n),
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}
