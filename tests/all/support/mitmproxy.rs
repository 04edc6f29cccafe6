//! A real mitmproxy (PyPI, in its own venv at a fixed path that `.ci/run` creates), started by
//! the test in a temporary configuration directory, where it writes its own CA.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The venvs `.ci/run` creates, one per Python tool (mitmproxy pins old dependencies).
pub const VENVS: &str = "/opt/bmw-netcheck-venvs";

pub fn mitmdump() -> Option<PathBuf> {
    let p = Path::new(VENVS).join("mitmproxy/bin/mitmdump");
    p.exists().then_some(p)
}

pub struct Mitmproxy {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Mitmproxy {
    /// `mode`: `regular` (an explicit proxy) or `reverse:https://127.0.0.1:PORT` (in front of a
    /// server, as a transparent interceptor would be). The upstream's certificate is not checked.
    pub fn start(mode: &str) -> Mitmproxy {
        let bin = mitmdump().expect("mitmproxy is installed");
        let dir = tempfile::Builder::new()
            .prefix("netcheck-mitm")
            .tempdir()
            .expect("temporary directory");
        let port = super::nginx::free_port();
        let child = Command::new(bin)
            .args([
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port.to_string(),
            ])
            .args(["--mode", mode, "--ssl-insecure", "-q"])
            .arg("--set")
            .arg(format!("confdir={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mitmdump");
        let mut m = Mitmproxy { child, dir, port };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("mitmdump exited: {status}");
            }
            if m.ca_file().exists() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = m.child.kill();
        panic!("mitmdump did not listen within 30 s");
    }

    /// An explicit proxy, or why it cannot run here (mitmproxy not installed): the proxy-path
    /// tests say so and skip.
    pub fn explicit() -> Result<Mitmproxy, String> {
        if mitmdump().is_none() {
            return Err(format!(
                "mitmdump is not installed (PyPI mitmproxy, in {VENVS}/mitmproxy)"
            ));
        }
        Ok(Mitmproxy::start("regular"))
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// mitmproxy's CA certificate (PEM), for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("mitmproxy-ca-cert.pem")
    }
}

impl Drop for Mitmproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
