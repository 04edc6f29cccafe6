//! unbound, the validating resolver (local zones, RPZ, DNSSEC, Extended DNS Errors), run for real
//! with a generated configuration on a loopback port. See [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;

pub struct Unbound {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Unbound {
    /// Starts unbound with `server` lines appended to its `server:` clause and `tail` (other
    /// clauses: `rpz:`, `forward-zone:`) after it. `{dir}` in either is replaced by the
    /// instance's directory. `Err` holds why it cannot run here.
    pub fn start(server: &str, tail: &str) -> Result<Unbound, String> {
        Unbound::start_with(server, tail, &[])
    }

    /// Like [`Unbound::start`], with files (name, contents) written to the directory first.
    pub fn start_with(server: &str, tail: &str, files: &[(&str, &str)]) -> Result<Unbound, String> {
        let program = daemon::find("unbound")?;
        let dir = Daemon::scratch("netcheck-unbound");
        let d = dir.path().display().to_string();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text.replace("{dir}", &d))
                .expect("write a file for unbound");
        }
        let port = daemon::free_port();
        let conf = format!(
            "server:\n    interface: 127.0.0.1@{port}\n    port: {port}\n    do-daemonize: no\n    use-syslog: no\n    logfile: \"\"\n    username: \"\"\n    chroot: \"\"\n    directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    do-ip6: no\n    access-control: 127.0.0.0/8 allow\n    do-not-query-localhost: no\n    ede: yes\n    val-log-level: 2\n    module-config: \"respip validator iterator\"\n{}\n{}\n",
            server.replace("{dir}", &d),
            tail.replace("{dir}", &d)
        );
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, conf).expect("write unbound.conf");
        let path = path.display().to_string();
        let mut daemon = Daemon::spawn("unbound", &program, &["-d", "-c", &path], dir);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_dns(addr);
        Ok(Unbound { daemon, addr })
    }
}
