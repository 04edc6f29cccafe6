//! Knot Resolver (`kresd`), run for real with a generated configuration (Lua) on a loopback
//! port: its `policy` module answers, denies or refuses names, with Extended DNS Errors of its
//! own. See [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;

pub struct Kresd {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Kresd {
    /// Starts kresd with `hints` (name → address, answered as a local zone would) and `rules`
    /// (Lua lines of `policy.add(...)`). Every other name goes to a closed local port, so it
    /// fails at once instead of reaching for the root servers. `Err` holds why it cannot run
    /// here. Ready when `ready` (one of the hints) resolves.
    pub fn start(hints: &[(&str, &str)], rules: &str, ready: &str) -> Result<Kresd, String> {
        let program = daemon::find("kresd")?;
        let dir = Daemon::scratch("netcheck-kresd");
        let port = daemon::free_port();
        let closed = super::closed_port().port();
        let hints: String = hints
            .iter()
            .map(|(name, ip)| format!("hints['{name}'] = '{ip}'\n"))
            .collect();
        let conf = format!(
            "net.listen('127.0.0.1', {port}, {{ kind = 'dns' }})\nmodules = {{ 'hints > iterate' }}\n{hints}{rules}\npolicy.add(policy.all(policy.STUB('127.0.0.1@{closed}')))\n"
        );
        let path = dir.path().join("kresd.conf");
        std::fs::write(&path, conf).expect("write kresd.conf");
        let path = path.display().to_string();
        let rundir = dir.path().display().to_string();
        let mut daemon = Daemon::spawn("kresd", &program, &["-n", "-c", &path, &rundir], dir);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_until(addr, || super::named::resolves(addr, ready));
        Ok(Kresd { daemon, addr })
    }
}
