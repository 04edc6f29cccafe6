//! mitmproxy as an explicit proxy for the proxy-path tests, run for real (`mitmdump`) as an explicit
//! proxy on a loopback port with a fresh configuration directory (its own CA, made at start).
//! It comes from PyPI, in the venv `.ci/run` keeps for the Python tools; where it is missing the
//! test says so and skips. See [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `.ci/run`'s venv puts it, then the PATH.
fn program() -> Result<PathBuf, String> {
    let venv = PathBuf::from("/opt/bmw-netcheck-venvs/mitmproxy/bin/mitmdump");
    if venv.is_file() {
        return Ok(venv);
    }
    daemon::find("mitmdump").map_err(|_| {
        "mitmdump is not installed (PyPI mitmproxy, in /opt/bmw-netcheck-venvs/mitmproxy)".into()
    })
}

pub struct Mitmproxy {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Mitmproxy {
    pub fn start() -> Result<Mitmproxy, String> {
        let program = program()?;
        let dir = Daemon::scratch("netcheck-mitmproxy");
        let port = daemon::free_port();
        let confdir = format!("confdir={}", dir.path().display());
        let port_arg = port.to_string();
        let mut daemon = Daemon::spawn(
            "mitmdump",
            &program,
            &[
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port_arg,
                "--set",
                &confdir,
                "-q",
            ],
            dir,
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_tcp(addr);
        Ok(Mitmproxy { daemon, addr })
    }
}
