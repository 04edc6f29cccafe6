//! BIND 9 (`named`), the resolver with response-policy zones (RPZ), run for real in the
//! foreground (`named -g`) with a generated configuration on a loopback port. See
//! [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;

pub struct Named {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Named {
    /// Starts named serving `zone` (the zone file of `lan`, a zone it is primary for) and the
    /// response-policy zone `rpz` (its records after the SOA and NS). `Err` holds why it cannot
    /// run here: named is not installed, or this is not root (the tests run it as root, as a
    /// resolver on a router runs). Ready when `ready` (a name of `zone`) resolves: named answers
    /// CHAOS queries before its zones are loaded.
    pub fn start(lan: &str, zone: &str, rpz: &str, ready: &str) -> Result<Named, String> {
        Named::start_with(lan, zone, rpz, ready, "")
    }

    /// Like [`Named::start`], with `options` lines added to its `options` clause (e.g.
    /// `version none;`).
    pub fn start_with(
        lan: &str,
        zone: &str,
        rpz: &str,
        ready: &str,
        options: &str,
    ) -> Result<Named, String> {
        let program = daemon::find("named")?;
        if !is_root() {
            return Err("named runs as root in these tests, and this is not root".into());
        }
        let dir = Daemon::scratch("netcheck-named");
        let d = dir.path().display().to_string();
        let head = "$TTL 60\n@ IN SOA localhost. root.localhost. 1 3600 600 86400 60\n@ IN NS localhost.\n";
        std::fs::write(dir.path().join("lan.zone"), format!("{head}{zone}"))
            .expect("write the zone");
        std::fs::write(dir.path().join("rpz.zone"), format!("{head}{rpz}"))
            .expect("write the policy zone");
        let port = daemon::free_port();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  recursion yes;\n  allow-query {{ 127.0.0.0/8; }};\n  dnssec-validation no;\n  response-policy {{ zone \"rpz.netcheck\"; }} qname-wait-recurse no;\n  {options}\n}};\ncontrols {{ }};\nzone \"{lan}\" {{ type primary; file \"lan.zone\"; }};\nzone \"rpz.netcheck\" {{ type primary; file \"rpz.zone\"; }};\n"
        );
        let path = dir.path().join("named.conf");
        std::fs::write(&path, conf).expect("write named.conf");
        let path = path.display().to_string();
        let mut daemon = Daemon::spawn("named", &program, &["-g", "-c", &path], dir);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_until(addr, || resolves(addr, ready));
        Ok(Named { daemon, addr })
    }
}

/// Is this process root? (`id -u`, so no extra crate for one question.)
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Does the server at `addr` answer `name` (type A) with an address? One UDP query, 200 ms.
pub fn resolves(addr: SocketAddr, name: &str) -> bool {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
        return false;
    };
    let mut m = Message::new(0x5244, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(qname, RecordType::A));
    m.metadata.recursion_desired = true;
    let Ok(bytes) = m.to_vec() else { return false };
    let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    let mut buf = [0u8; 1232];
    if sock.send_to(&bytes, addr).is_err() {
        return false;
    }
    let Ok((n, _)) = sock.recv_from(&mut buf) else {
        return false;
    };
    Message::from_vec(&buf[..n])
        .is_ok_and(|r| r.metadata.response_code == ResponseCode::NoError && !r.answers.is_empty())
}
