//! nginx serving TLS on an address inside a network namespace (`ip netns exec`), with one
//! `server` block per name and certificate: the server behind a test's routers. Stopped when
//! dropped. One process (`master_process off`), so stopping it leaves no worker behind.

use super::daemon::Daemon;
use super::nginx::nginx_binary;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One name the server answers for: `server_name`, its chain (PEM, leaf first) and key. The
/// first is the default server (what a hello with an unknown name or none gets).
pub struct Site {
    pub name: String,
    pub chain: PathBuf,
    pub key: PathBuf,
}

/// The running nginx.
pub struct NsNginx {
    _daemon: Daemon,
}

impl NsNginx {
    /// Starts nginx in `ns` (by name, as `ip netns exec` takes it) on the `listen` addresses,
    /// answering 200 "ok" on `/` for every site; waits until `accepts` holds for each (a connect
    /// made from a namespace that reaches it: the caller's).
    pub fn start(
        ns: &str,
        listen: &[SocketAddr],
        sites: &[Site],
        accepts: impl Fn(SocketAddr) -> bool,
    ) -> NsNginx {
        let bin = nginx_binary().expect("nginx is installed");
        let dir = Daemon::scratch("netcheck-nsnginx");
        let mut servers = String::new();
        for (i, s) in sites.iter().enumerate() {
            let default = if i == 0 { " default_server" } else { "" };
            let listen: String = listen
                .iter()
                .map(|a| format!("    listen {a} ssl{default};\n"))
                .collect();
            servers.push_str(&format!(
                "  server {{\n{listen}    server_name {};\n    ssl_certificate {};\n    ssl_certificate_key {};\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n",
                s.name,
                s.chain.display(),
                s.key.display()
            ));
        }
        let mut launcher = std::process::Command::new("ip");
        launcher.args(["netns", "exec", ns]).arg(bin);
        let cmd = super::nginx::configured(launcher, dir.path(), "off", &servers);
        let mut daemon = Daemon::spawn_command("nginx", cmd, dir);
        for &a in listen {
            daemon.wait_until(a, || accepts(a));
        }
        NsNginx { _daemon: daemon }
    }
}
