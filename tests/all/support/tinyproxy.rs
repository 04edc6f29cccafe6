//! tinyproxy, the small proxy of routers and small offices, run for real with a generated
//! configuration on a loopback port; by its default rules it opens CONNECT tunnels only to port
//! 443. See [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;

pub struct Tinyproxy {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Tinyproxy {
    /// Starts tinyproxy allowing CONNECT to `connect_ports` only.
    pub fn start(connect_ports: &[u16]) -> Result<Tinyproxy, String> {
        let program = daemon::find("tinyproxy")?;
        let dir = Daemon::scratch("netcheck-tinyproxy");
        let d = dir.path().display().to_string();
        let port = daemon::free_port();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 10\nMaxClients 10\nLogLevel Info\nPidFile \"{d}/tinyproxy.pid\"\n"
        );
        // As root it must be told whom to become; as anyone else it stays who it is.
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            conf.push_str("User nobody\nGroup nogroup\n");
        }
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, conf).expect("write tinyproxy.conf");
        let path = path.display().to_string();
        let mut daemon = Daemon::spawn("tinyproxy", &program, &["-d", "-c", &path], dir);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_tcp(addr);
        Ok(Tinyproxy { daemon, addr })
    }
}
