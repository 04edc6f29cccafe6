//! Certificates made with the openssl command line, for what rcgen cannot make: SHA-1 and MD5
//! signatures, RSA keys under 2048 bits, a leaf without subject alternative names, an issuer
//! named like a TLS-inspection product, and signed OCSP answers.

use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Is the openssl command there? Tests that need it skip with a printed reason otherwise.
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA made by openssl, in its own directory; leaves are issued into the same directory.
pub struct OpensslCa {
    dir: TempDir,
    pub subject: String,
}

/// What to put in a leaf.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub host: String,
    /// RSA key size.
    pub bits: u32,
    /// `sha256`, `sha1`, `md5`.
    pub digest: &'static str,
    /// Put the host in a subject alternative name (false: only in the CN).
    pub san: bool,
    /// Extra DNS names, to make a very large certificate.
    pub extra_names: usize,
}

impl LeafSpec {
    pub fn new(host: &str) -> LeafSpec {
        LeafSpec {
            host: host.into(),
            bits: 2048,
            digest: "sha256",
            san: true,
            extra_names: 0,
        }
    }
}

/// A leaf's files.
pub struct IssuedLeaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Leaf followed by the CA: what a server sends.
    pub chain: PathBuf,
    pub name: String,
}

impl OpensslCa {
    /// A root CA whose subject is `subject` (openssl `-subj` form, e.g. `/O=Zscaler Inc./CN=Zscaler Root CA`).
    pub fn new(subject: &str) -> OpensslCa {
        let dir = tempfile::Builder::new()
            .prefix("netcheck-openssl")
            .tempdir()
            .expect("temporary directory");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            ],
        );
        OpensslCa {
            dir,
            subject: subject.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM), for `--ca-file` or `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn issue(&self, name: &str, spec: &LeafSpec) -> IssuedLeaf {
        let d = self.dir.path();
        let key = format!("{name}.key");
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{}", spec.bits),
                "-out",
                &key,
            ],
        );
        let csr = format!("{name}.csr");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/CN={}", spec.host),
                "-out",
                &csr,
            ],
        );
        let mut ext = String::from(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        );
        if spec.san {
            let mut names = vec![format!("DNS:{}", spec.host), "IP:127.0.0.1".to_owned()];
            names.extend((0..spec.extra_names).map(|i| format!("DNS:n{i}.{}", spec.host)));
            ext.push_str(&format!("subjectAltName={}\n", names.join(",")));
        }
        let ext_file = format!("{name}.ext");
        std::fs::write(d.join(&ext_file), ext).expect("write the extensions");
        let cert = format!("{name}.pem");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                &format!("-{}", spec.digest),
                "-extfile",
                &ext_file,
                "-out",
                &cert,
            ],
        );
        let chain = format!("{name}.chain.pem");
        let mut text = std::fs::read_to_string(d.join(&cert)).expect("read the leaf");
        text.push_str(&std::fs::read_to_string(d.join("ca.pem")).expect("read the CA"));
        std::fs::write(d.join(&chain), text).expect("write the chain");
        IssuedLeaf {
            cert: d.join(cert),
            key: d.join(key),
            chain: d.join(chain),
            name: name.into(),
        }
    }

    /// A signed OCSP answer (DER) saying `leaf` is revoked, as `openssl ocsp` makes it.
    pub fn ocsp_revoked(&self, leaf: &IssuedLeaf) -> PathBuf {
        let d = self.dir.path();
        let out = Command::new("openssl")
            .current_dir(d)
            .args(["x509", "-in"])
            .arg(&leaf.cert)
            .args(["-noout", "-serial", "-enddate"])
            .output()
            .expect("read the leaf's serial");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let serial = text
            .lines()
            .find_map(|l| l.strip_prefix("serial="))
            .expect("a serial")
            .to_owned();
        // index.txt: status, expiry, revocation time, serial, file, subject (tab-separated).
        let index = format!("R\t351231235959Z\t240101000000Z\t{serial}\tunknown\t/CN=leaf\n");
        std::fs::write(d.join("index.txt"), index).expect("write index.txt");
        let leaf_cert = leaf.cert.to_string_lossy().into_owned();
        openssl(
            d,
            &[
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                &leaf_cert,
                "-no_nonce",
                "-reqout",
                "req.der",
            ],
        );
        openssl(
            d,
            &[
                "ocsp",
                "-index",
                "index.txt",
                "-rsigner",
                "ca.pem",
                "-rkey",
                "ca.key",
                "-CA",
                "ca.pem",
                "-reqin",
                "req.der",
                "-respout",
                "resp.der",
                "-ndays",
                "2",
            ],
        );
        d.join("resp.der")
    }
}
