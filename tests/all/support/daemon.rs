//! Real third-party servers (unbound, dnsmasq, squid) for the end-to-end tests: each instance
//! gets a generated configuration in its own temporary directory, runs in the foreground on a
//! loopback port, and is killed (and reaped) when its handle drops, even when the test panics.
//!
//! A machine without the program skips the test through `support::skip`, with the reason
//! [`find`] gives; `BMW_NETCHECK_TEST_REQUIRE=1` turns that into a failure (CI installs the
//! programs, so a skip there would hide a gap).

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START: Duration = Duration::from_secs(15);

/// Where the program is, or why the test cannot run here.
pub fn find(program: &str) -> Result<PathBuf, String> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "{program} is not installed (Debian: apt-get install {})",
        match program {
            "dnsmasq" => "dnsmasq-base",
            "squid" => "squid-openssl",
            "basic_ncsa_auth" => "squid-openssl",
            "named" => "bind9",
            "kresd" => "knot-resolver",
            other => other,
        }
    ))
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = tcp.local_addr().expect("address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for both UDP and TCP");
}

/// A running server process; killed when dropped.
pub struct Daemon {
    pub name: String,
    child: Child,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Daemon {
    /// A fresh temporary directory for a server's files, writable by the user a server may
    /// switch to when started as root (squid becomes `proxy`, dnsmasq `nobody`).
    pub fn scratch(prefix: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temporary directory");
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777));
        dir
    }

    /// Spawns `program args`, its output going to `log` in `dir`.
    pub fn spawn(name: &str, program: &Path, args: &[&str], dir: tempfile::TempDir) -> Daemon {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Daemon::spawn_command(name, cmd, dir)
    }

    /// Spawns a prepared command (e.g. `ip netns exec NS program ...`).
    pub fn spawn_command(name: &str, mut cmd: Command, dir: tempfile::TempDir) -> Daemon {
        let log = dir.path().join(format!("{name}.out"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon {
            name: name.into(),
            child,
            dir,
            log,
        }
    }

    /// What the server printed, for assertion messages.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}) before it listened:\n{}",
                self.name,
                self.output()
            )),
            _ => None,
        }
    }

    /// Waits until a DNS query to `addr` gets any answer (`version.bind`, class CHAOS).
    pub fn wait_dns(&mut self, addr: SocketAddr) {
        self.wait_until(addr, || answers_dns(addr));
    }

    /// Waits until `ready` holds, failing when the server exits or takes too long.
    pub fn wait_until(&mut self, addr: SocketAddr, mut ready: impl FnMut() -> bool) {
        let started = Instant::now();
        while started.elapsed() < START {
            if let Some(why) = self.exited() {
                panic!("{why}");
            }
            if ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not answer on {addr}:\n{}", self.name, self.output());
    }

    /// Waits until `addr` accepts TCP connections.
    pub fn wait_tcp(&mut self, addr: SocketAddr) {
        let started = Instant::now();
        while started.elapsed() < START {
            if let Some(why) = self.exited() {
                panic!("{why}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not listen on {addr}:\n{}", self.name, self.output());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Does a DNS server answer at `addr` (any answer to `version.bind`, class CHAOS)? The socket
/// is made in the calling thread's network namespace.
pub fn answers_dns(addr: SocketAddr) -> bool {
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let Ok(sock) = UdpSocket::bind(local) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 512];
    sock.send_to(&version_bind_query(), addr).is_ok() && sock.recv_from(&mut buf).is_ok()
}

/// `version.bind CH TXT`, encoded.
fn version_bind_query() -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{DNSClass, Name, RecordType};
    let mut q = Query::query(
        Name::from_ascii("version.bind.").expect("name"),
        RecordType::TXT,
    );
    q.set_query_class(DNSClass::CH);
    let mut m = Message::new(0x4e43, MessageType::Query, OpCode::Query);
    m.add_query(q);
    m.to_vec().expect("encode")
}
