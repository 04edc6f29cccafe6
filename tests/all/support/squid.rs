//! squid, the proxy of most company networks, run for real with a generated configuration on a
//! loopback port: optional Basic authentication (squid's own `basic_ncsa_auth` helper and a
//! password file), CONNECT refused to chosen ports, and its own host table so it reaches the
//! fixtures by names the tool's resolver points elsewhere. See [`super::daemon`].

use super::daemon::{self, Daemon};
use std::net::SocketAddr;

/// The user and password squid accepts when authentication is on.
pub const USER: &str = "agent";
pub const PASSWORD: &str = "hunter2";
/// `openssl passwd -1 -salt netcheck hunter2`: the MD5-crypt line basic_ncsa_auth checks.
const PASSWORD_HASH: &str = "$1$netcheck$lbBWAvxg0IGabsL4F2o.F1";

#[derive(Debug, Clone, Default)]
pub struct SquidSpec {
    /// Require Basic authentication as [`USER`] / [`PASSWORD`].
    pub auth: bool,
    /// Refuse CONNECT to these ports (squid answers 403 with ERR_ACCESS_DENIED).
    pub deny_ports: Vec<u16>,
    /// Squid's own host table: name → address.
    pub hosts: Vec<(String, String)>,
}

pub struct Squid {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

impl Squid {
    pub fn start(spec: &SquidSpec) -> Result<Squid, String> {
        let program = daemon::find("squid")?;
        let helper = [
            "/usr/lib/squid/basic_ncsa_auth",
            "/usr/lib64/squid/basic_ncsa_auth",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
        if spec.auth && helper.is_none() {
            return Err("squid's basic_ncsa_auth helper is not installed".into());
        }
        let dir = Daemon::scratch("netcheck-squid");
        let d = dir.path().display().to_string();
        let port = daemon::free_port();
        let mut hosts = String::new();
        for (name, ip) in &spec.hosts {
            hosts.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(dir.path().join("hosts"), hosts).expect("write squid's hosts");
        std::fs::write(
            dir.path().join("passwd"),
            format!("{USER}:{PASSWORD_HASH}\n"),
        )
        .expect("write squid's passwd");
        let mut conf = format!(
            "http_port 127.0.0.1:{port}\npid_filename {d}/squid.pid\ncache_log {d}/cache.log\naccess_log {d}/access.log\ncache_store_log none\ncache deny all\ncoredump_dir {d}\nhosts_file {d}/hosts\nshutdown_lifetime 0 seconds\nvisible_hostname netcheck-proxy\nconnect_timeout 5 seconds\n"
        );
        if let (true, Some(helper)) = (spec.auth, helper) {
            conf.push_str(&format!(
                "auth_param basic program {helper} {d}/passwd\nauth_param basic realm netcheck\nacl authed proxy_auth REQUIRED\n"
            ));
        }
        for (i, p) in spec.deny_ports.iter().enumerate() {
            conf.push_str(&format!(
                "acl denied_port{i} port {p}\nhttp_access deny CONNECT denied_port{i}\n"
            ));
        }
        conf.push_str(if spec.auth {
            "http_access allow authed\nhttp_access deny all\n"
        } else {
            "http_access allow all\n"
        });
        let path = dir.path().join("squid.conf");
        std::fs::write(&path, conf).expect("write squid.conf");
        let path = path.display().to_string();
        let mut daemon = Daemon::spawn("squid", &program, &["-N", "-f", &path], dir);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        daemon.wait_tcp(addr);
        Ok(Squid { daemon, addr })
    }

    /// The proxy URL, with the right credentials when `creds` is `Some(true)`, wrong ones for
    /// `Some(false)`, none for `None`.
    pub fn url(&self, creds: Option<bool>) -> String {
        match creds {
            Some(true) => format!("http://{USER}:{PASSWORD}@{}", self.addr),
            Some(false) => format!("http://{USER}:not-{PASSWORD}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }
}
