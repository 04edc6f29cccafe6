//! unbound answering over DNS over TLS and DNS over HTTPS (its `tls-port` and `https-port`,
//! built with libnghttp2 in Debian 12) as well as plain DNS, with a certificate generated in the
//! test: the resolver behind a phone's Private DNS, and a control resolver. See
//! [`super::unbound`].

use super::pki::ServerIdentity;
use super::unbound::Unbound;
use std::net::SocketAddr;

/// The name the resolver's certificate carries (and the `tls://` / `https://` URLs name).
pub const RESOLVER_NAME: &str = "dns.netcheck.lan";

pub struct EncryptedUnbound {
    pub unbound: Unbound,
    pub dot: SocketAddr,
    pub doh: SocketAddr,
}

impl EncryptedUnbound {
    /// Starts unbound with `server` lines (local zones and data) answering on a plain port, a
    /// DoT port and a DoH port, presenting `identity`. `Err` holds why it cannot run here.
    pub fn start(server: &str, identity: &ServerIdentity) -> Result<EncryptedUnbound, String> {
        let (dot, doh) = (super::daemon::free_port(), super::daemon::free_port());
        let cert: String = identity
            .chain
            .iter()
            .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.as_ref().to_vec())))
            .collect();
        let key = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            identity.key.secret_der().to_vec(),
        ));
        let lines = format!(
            "    interface: 127.0.0.1@{dot}\n    interface: 127.0.0.1@{doh}\n    tls-port: {dot}\n    https-port: {doh}\n    tls-service-key: \"{{dir}}/key.pem\"\n    tls-service-pem: \"{{dir}}/cert.pem\"\n{server}"
        );
        let unbound = Unbound::start_with(
            &lines,
            "",
            &[("cert.pem", cert.as_str()), ("key.pem", key.as_str())],
        )?;
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut this = EncryptedUnbound {
            unbound,
            dot: at(dot),
            doh: at(doh),
        };
        this.unbound.daemon.wait_tcp(this.dot);
        this.unbound.daemon.wait_tcp(this.doh);
        Ok(this)
    }

    /// `tls://dns.netcheck.lan:PORT#127.0.0.1`
    pub fn dot_url(&self) -> String {
        format!("tls://{RESOLVER_NAME}:{}#127.0.0.1", self.dot.port())
    }

    /// `https://dns.netcheck.lan:PORT/dns-query#127.0.0.1`
    pub fn doh_url(&self) -> String {
        format!(
            "https://{RESOLVER_NAME}:{}/dns-query#127.0.0.1",
            self.doh.port()
        )
    }
}
