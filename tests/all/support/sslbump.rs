//! squid with ssl-bump: a company's TLS inspection of an unknown product, run for real.
//!
//! squid forges a certificate for every host with a generated company CA
//! (`security_file_certgen` as its `sslcrtd_program`, `ssl_bump bump all`) and checks the
//! servers behind it against the CA it is given, as an inspecting gateway does. Two ways in:
//! - **explicit**: an `http_port` the tool reaches through `HTTPS_PROXY` (CONNECT, then bumped
//!   client-first with the CONNECT's host name);
//! - **transparent**: an `https_port ... intercept ssl-bump` inside a router namespace, where
//!   nftables redirects TCP 443 to it; squid peeks at the ClientHello for the server name, then
//!   bumps.
//!
//! The upstream servers are nginx with certificates from an openssl CA (see
//! [`super::opensslpki`]); [`Upstreams`] serves several names on namespace addresses at 443.

use super::daemon::{self, Daemon};
use super::opensslpki::{IssuedLeaf, OpensslCa};
use crate::netns::ns::Netns;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

/// The subject of the company CA: in no public store and in no product table.
pub const COMPANY_CA: &str = "/O=ExampleCorp/CN=ExampleCorp TLS Inspection CA";
/// Its common name, as the report names it.
pub const COMPANY_CN: &str = "ExampleCorp TLS Inspection CA";
const CERTGEN: &str = "/usr/lib/squid/security_file_certgen";

/// Why squid with ssl-bump cannot run here, or `None`.
pub fn unavailable() -> Option<String> {
    if let Err(why) = daemon::find("squid") {
        return Some(why);
    }
    if !Path::new(CERTGEN).is_file() {
        return Some(format!(
            "{CERTGEN} is missing (Debian's squid-openssl has it; .ci/run installs it)"
        ));
    }
    let v = Command::new("squid").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&v.stdout);
    (!text.contains("--with-openssl"))
        .then(|| "this squid is built without OpenSSL (install squid-openssl)".to_owned())
}

/// How squid is reached.
pub enum Mode<'a> {
    /// A forward proxy on a loopback port; `hosts` is squid's own host table.
    Explicit { hosts: Vec<(String, String)> },
    /// An intercept port on `listen:3129` inside `ns` (the router), where nftables sends 443.
    /// `hosts` as above: squid checks an intercepted request's `Host` against the address the
    /// client connected to, and must not wait for a resolver the namespace does not have.
    Transparent {
        ns: &'a Netns,
        listen: Ipv4Addr,
        hosts: Vec<(String, String)>,
    },
}

pub struct Bump {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

/// The port squid intercepts on in the router namespace.
pub const INTERCEPT_PORT: u16 = 3129;

impl Bump {
    /// Starts squid bumping with `ca`; it trusts the servers behind it when `upstream_ca` is
    /// given (else it checks them against the system's roots and answers its own error page).
    pub fn start(ca: &OpensslCa, upstream_ca: Option<&Path>, mode: Mode<'_>) -> Bump {
        let dir = Daemon::scratch("netcheck-sslbump");
        let d = dir.path().display().to_string();
        for (from, to) in [
            (ca.ca_file(), "ca.pem"),
            (ca.dir().join("ca.key"), "ca.key"),
        ] {
            let to = dir.path().join(to);
            std::fs::copy(&from, &to).expect("copy the company CA");
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644));
        }
        let db = format!("{d}/ssldb");
        let init = Command::new(CERTGEN)
            .args(["-c", "-s", &db, "-M", "4MB"])
            .output()
            .expect("run security_file_certgen");
        assert!(init.status.success(), "security_file_certgen -c: {init:?}");
        // As root, squid works as `proxy`: its helper must write the database.
        let _ = Command::new("chown").args(["-R", "proxy", &db]).output();
        let bump = format!(
            "ssl-bump tls-cert={d}/ca.pem tls-key={d}/ca.key generate-host-certificates=on"
        );
        let (ports, hosts, rules, addr) = match &mode {
            Mode::Explicit { hosts } => {
                let port = daemon::free_port();
                let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
                (
                    format!("http_port {addr} {bump}\n"),
                    hosts.clone(),
                    "ssl_bump bump all\n",
                    addr,
                )
            }
            Mode::Transparent { listen, hosts, .. } => (
                format!(
                    "http_port 127.0.0.1:3128\nhttps_port {listen}:{INTERCEPT_PORT} intercept {bump}\n"
                ),
                hosts.clone(),
                "acl step1 at_step SslBump1\nssl_bump peek step1\nssl_bump bump all\n",
                SocketAddr::from((*listen, INTERCEPT_PORT)),
            ),
        };
        let table: String = hosts.iter().map(|(n, ip)| format!("{ip} {n}\n")).collect();
        std::fs::write(dir.path().join("hosts"), table).expect("write squid's hosts");
        let outgoing = match upstream_ca {
            Some(p) => {
                std::fs::copy(p, dir.path().join("upstream.pem")).expect("copy the upstream CA");
                format!("tls_outgoing_options cafile={d}/upstream.pem\n")
            }
            None => String::new(),
        };
        let conf = format!(
            "{ports}sslcrtd_program {CERTGEN} -s {db} -M 4MB\nsslcrtd_children 2 startup=1 idle=1\n{rules}{outgoing}pid_filename {d}/squid.pid\ncache_log {d}/cache.log\naccess_log {d}/access.log\ncache_store_log none\ncache deny all\ncoredump_dir {d}\nhosts_file {d}/hosts\nshutdown_lifetime 0 seconds\nvisible_hostname netcheck-proxy\nconnect_timeout 5 seconds\nhttp_access allow all\n"
        );
        let path = dir.path().join("squid.conf");
        std::fs::write(&path, conf).expect("write squid.conf");
        let program = daemon::find("squid").expect("squid");
        match mode {
            Mode::Explicit { .. } => {
                let mut cmd = Command::new(program);
                cmd.arg("-N").arg("-f").arg(&path);
                let mut daemon = Daemon::spawn_command("squid", cmd, dir);
                daemon.wait_tcp(addr);
                Bump { daemon, addr }
            }
            Mode::Transparent { ns, .. } => {
                let mut cmd = ns.command(program);
                cmd.arg("-N").arg("-f").arg(&path);
                let mut daemon = Daemon::spawn_command("squid", cmd, dir);
                // squid 5.7's intercept port stops accepting after a plain connect: ask `ss`.
                daemon.wait_until(addr, || listens(ns, INTERCEPT_PORT));
                Bump { daemon, addr }
            }
        }
    }

    /// The proxy URL for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// squid's log, for assertion messages.
    pub fn log(&self) -> String {
        let cache = std::fs::read_to_string(self.daemon.dir.path().join("cache.log"));
        format!("{}\n{}", self.daemon.output(), cache.unwrap_or_default())
    }
}

/// Does something in `ns` listen on TCP `port`?
fn listens(ns: &Netns, port: u16) -> bool {
    ns.command("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// nginx inside a namespace, serving each leaf on its own address at port 443 (one process).
pub struct Upstreams {
    pub daemon: Daemon,
}

impl Upstreams {
    pub fn start(ns: &Netns, sites: &[(Ipv4Addr, &IssuedLeaf)]) -> Upstreams {
        let dir = Daemon::scratch("netcheck-upstreams");
        let mut servers = String::new();
        for (ip, leaf) in sites {
            ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"])
                .expect("the server's address");
            servers.push_str(&format!(
                "server {{ listen {ip}:443 ssl; ssl_certificate {}; ssl_certificate_key {}; location / {{ return 200 \"ok\\n\"; }} }}\n",
                leaf.chain.display(),
                leaf.key.display()
            ));
        }
        let bin = super::nginx::nginx_binary().expect("nginx is installed");
        let cmd = super::nginx::configured(ns.command(bin), dir.path(), "off", &servers);
        let mut daemon = Daemon::spawn_command("nginx", cmd, dir);
        if let Some((ip, _)) = sites.first() {
            daemon.wait_until(SocketAddr::from((*ip, 443)), || listens(ns, 443));
        }
        Upstreams { daemon }
    }
}
