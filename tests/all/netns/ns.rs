//! Network namespaces for tests: created with `ip netns add`, removed (with any process left in
//! them) when dropped, even when the test panics.
//!
//! This file depends on nothing of the test harness, so a benchmark can reuse it.
//!
//! `setns(2)` changes the namespace of the calling *thread* only, and a socket keeps the namespace
//! it was created in: [`Netns::enter`] runs a closure on a fresh thread inside the namespace, which
//! is how servers bind their sockets there and how TUN devices are born there.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace made here is named `nc-<pid>-<n>-<role>`.
pub const PREFIX: &str = "nc-";

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// Why a test with namespaces and `programs` cannot run here: [`unavailable`]'s reason, or
/// the first program that is not installed.
pub fn unavailable_without(programs: &[&str]) -> Option<String> {
    unavailable().or_else(|| {
        programs
            .iter()
            .find_map(|p| crate::support::daemon::find(p).err())
    })
}

/// Why network namespaces cannot be used on this machine, or `None` when they can.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces and TUN devices need it)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Err(e) => return Some(format!("the `ip` command (iproute2) cannot be run: {e}")),
        Ok(o) if !o.status.success() => {
            return Some("the `ip` command (iproute2) does not work".into());
        }
        Ok(_) => {}
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun does not exist".into());
    }
    None
}

fn run_ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A veth pair from `a` (named `an`) to `b` (named `bn`), addressed and up: the wire between
/// two of a test's hosts.
pub fn link(a: &Netns, an: &str, a_cidr: &str, b: &Netns, bn: &str, b_cidr: &str) {
    a.ip(&[
        "link",
        "add",
        an,
        "type",
        "veth",
        "peer",
        "name",
        bn,
        "netns",
        b.name(),
    ])
    .expect("create a veth pair");
    for (ns, dev, cidr) in [(a, an, a_cidr), (b, bn, b_cidr)] {
        ns.ip(&["addr", "add", cidr, "dev", dev]).expect("address");
        ns.ip(&["link", "set", dev, "up"]).expect("link up");
    }
}

/// The client's side of [`client_and_public`]'s wire.
pub const CLIENT_ADDR: &str = "198.51.100.2";
/// The public side of [`client_and_public`]'s wire: the client's default route.
pub const PUBLIC_ADDR: &str = "198.51.100.1";

/// A client and a namespace that stands for the internet, joined by one wire (`up0` ↔ `pub0`,
/// [`CLIENT_ADDR`] ↔ [`PUBLIC_ADDR`]), the client's default route across it, and each of
/// `addrs` on the public side's loopback, where the test's servers listen. `tag` names both
/// (`{tag}c`, `{tag}p`).
pub fn client_and_public(tag: &str, addrs: &[&str]) -> (Netns, Netns) {
    let client = Netns::create(&format!("{tag}c")).expect("client namespace");
    let public = Netns::create(&format!("{tag}p")).expect("public namespace");
    link(
        &client,
        "up0",
        &format!("{CLIENT_ADDR}/24"),
        &public,
        "pub0",
        &format!("{PUBLIC_ADDR}/24"),
    );
    client
        .ip(&["route", "add", "default", "via", PUBLIC_ADDR])
        .expect("the client's default route");
    for addr in addrs {
        public
            .ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])
            .expect("an endpoint address");
    }
    (client, public)
}

/// Removes namespaces left behind by earlier test processes that were killed before their
/// destructors ran (their pid no longer exists).
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let ns = Netns { name };
            drop(ns);
        }
    }
}

/// A network namespace owned by this process.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `nc-<pid>-<n>-<role>` with its loopback up. It has no other interface yet.
    pub fn create(role: &str) -> io::Result<Netns> {
        SWEEP.call_once(sweep_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}-{role}", std::process::id());
        run_ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>` and returns its standard output.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ip(&all)
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result.
    /// A panic in `f` is passed on to the caller.
    pub fn enter<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let file = File::open(format!("/run/netns/{}", self.name))?;
        std::thread::scope(|s| {
            let handle = s.spawn(move || {
                // SAFETY: a valid namespace fd; setns affects only this thread.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(f())
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// A TCP listener bound inside the namespace (backlog 128, as std sets it).
    pub fn bind_tcp(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        self.enter(|| TcpListener::bind(addr))?
    }

    /// A UDP socket bound inside the namespace.
    pub fn bind_udp(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        self.enter(|| UdpSocket::bind(addr))?
    }

    /// `ip netns exec <ns> <program>`: a command that runs inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        // The tool's default control resolver is a public one; a test names its own
        // (`--control`), so nothing run in a namespace ever asks one outside it.
        c.env("BMW_NETCHECK_CONTROL", "off");
        c
    }

    /// Loads an nftables ruleset into the namespace (`nft -f -`); nft's own words when it
    /// refuses the rules.
    pub fn nft(&self, rules: &str) -> io::Result<()> {
        use std::io::Write;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(rules.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "nft refused the rules: {}\n{rules}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }

    /// The processes running inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        run_ip(&["netns", "pids", &self.name])
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            // SAFETY: plain kill(2); a pid that has gone away just gives ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Err(e) = run_ip(&["netns", "del", &self.name]) {
            eprintln!("netns: cannot remove {}: {e}", self.name);
        }
    }
}
