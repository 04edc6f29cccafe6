//! A real nginx serving PAC files (`proxy.pac`, `wpad.dat`, and whatever a test writes) over
//! plain HTTP from a temporary directory, with the MIME type browsers expect. One process
//! (`master_process off`), stopped when dropped. See [`super::nginx`] for the TLS server.

use super::daemon::{Daemon, free_port};
use super::nginx::{configured, nginx_binary};
use std::net::SocketAddr;
use std::process::Command;

pub struct PacServer {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl PacServer {
    /// Serves `files` (name, content) at `http://<ip>:<port>/<name>`; port 0 picks a free one.
    /// `Err` holds why it cannot run here.
    pub fn start(ip: &str, port: u16, files: &[(&str, &[u8])]) -> Result<PacServer, String> {
        let bin = nginx_binary().ok_or("nginx is not installed")?;
        let dir = Daemon::scratch("netcheck-pac");
        let d = dir.path().display().to_string();
        let port = if port == 0 { free_port() } else { port };
        std::fs::create_dir_all(dir.path().join("www")).expect("www");
        for (name, body) in files {
            std::fs::write(dir.path().join("www").join(name), body).expect("write a PAC file");
        }
        let http = format!(
            "  types {{ application/x-ns-proxy-autoconfig pac dat; }}\n\
               server {{\n    listen {ip}:{port};\n    root {d}/www;\n  }}\n"
        );
        let access_log = format!("{d}/access.log");
        let cmd = configured(Command::new(bin), dir.path(), &access_log, &http);
        let mut daemon = Daemon::spawn_command("nginx", cmd, dir);
        let addr: SocketAddr = format!("{ip}:{port}").parse().expect("address");
        daemon.wait_tcp(addr);
        Ok(PacServer { daemon, addr })
    }

    /// The URL of a file it serves, by address.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}
