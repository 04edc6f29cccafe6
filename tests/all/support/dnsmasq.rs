//! dnsmasq — the resolver inside Pi-hole and most home routers — run for real with a generated
//! configuration on a loopback port. See [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;

pub struct Dnsmasq {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq answering only from its configuration (`lines`, e.g. `address=/x/0.0.0.0`):
    /// no upstream, no hosts file. `Err` holds why it cannot run here.
    pub fn start(lines: &str) -> Result<Dnsmasq, String> {
        let program = daemon::find("dnsmasq")?;
        let dir = Daemon::scratch("netcheck-dnsmasq");
        let port = daemon::free_port();
        let conf = format!(
            "no-resolv\nno-hosts\nlisten-address=127.0.0.1\nport={port}\nbind-interfaces\nlog-facility=-\n{lines}\n"
        );
        let path = dir.path().join("dnsmasq.conf");
        std::fs::write(&path, conf).expect("write dnsmasq.conf");
        let conf_arg = format!("--conf-file={}", path.display());
        let pid_arg = format!("--pid-file={}", dir.path().join("dnsmasq.pid").display());
        let mut daemon = Daemon::spawn(
            "dnsmasq",
            &program,
            &["--keep-in-foreground", &conf_arg, &pid_arg],
            dir,
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_dns(addr);
        Ok(Dnsmasq { daemon, addr })
    }
}
