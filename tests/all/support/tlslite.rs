//! A real tlslite-ng server (PyPI, in the venv `.ci/run` creates) for what OpenSSL 3 no longer
//! serves: SSL 3.0, RC4 and 3DES suites, and Diffie-Hellman over a 768-bit group (RFC 2409
//! group 1).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SERVER: &str = r#"
import socket, sys
from tlslite.api import TLSConnection, HandshakeSettings, X509CertChain, parsePEMKey
from tlslite.mathtls import RFC2409_GROUP1
cert, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
chain = X509CertChain(); chain.parsePemList(open(cert).read())
pkey = parsePEMKey(open(key).read(), private=True)
s = HandshakeSettings()
s.minVersion = (3, 1); s.maxVersion = (3, 3)
if mode == "ssl3":
    s.minVersion = (3, 0); s.maxVersion = (3, 0)
elif mode in ("rc4", "3des"):
    s.cipherNames = [mode]
elif mode == "small-dh":
    s.keyExchangeNames = ["dhe_rsa"]; s.dhParams = RFC2409_GROUP1; s.dhGroups = []
sock = socket.socket(); sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0)); sock.listen(16)
print(sock.getsockname()[1], flush=True)
while True:
    conn, _ = sock.accept()
    try:
        TLSConnection(conn).handshakeServer(certChain=chain, privateKey=pkey, settings=s)
    except Exception:
        pass
    conn.close()
"#;

pub fn python() -> Option<PathBuf> {
    let p = Path::new(super::mitmproxy::VENVS).join("tlslite/bin/python");
    p.exists().then_some(p)
}

pub struct Tlslite {
    child: Child,
    port: u16,
}

impl Tlslite {
    /// `mode`: `ssl3`, `rc4`, `3des` or `small-dh`; `dir` holds the script next to the certificate.
    pub fn start(dir: &Path, cert: &Path, key: &Path, mode: &str) -> Tlslite {
        let script = dir.join("tlslite_server.py");
        std::fs::write(&script, SERVER).expect("write the tlslite server");
        let mut child = Command::new(python().expect("tlslite-ng is installed"))
            .arg(&script)
            .arg(cert)
            .arg(key)
            .arg(mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the tlslite server");
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the tlslite server did not start ({line:?})")
        });
        Tlslite { child, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Tlslite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
