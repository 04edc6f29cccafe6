//! DNS over TLS and over HTTPS: a hickory resolver for one [`DnsServer`], and where to reach it.
//!
//! Shared below the probes: the run's resolver when `--resolver` names a `tls://` or `https://`
//! server (to reproduce a phone's Private DNS from a laptop), and the control resolver
//! ([`super::control`]). The TLS configuration comes from the run (the same trust store and
//! `--ca-file` roots every handshake of the run uses), so a test's generated certificate is
//! trusted exactly as a user's corporate root would be.

use crate::iface::Resolver;
use crate::resolverurl::{DnsServer, Transport};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Makes a client configuration for the given ALPN protocols, with the run's trust: built when
/// first needed, so a run that never speaks DoT or DoH loads no roots for it.
pub type TlsMaker =
    Arc<dyn Fn(&[&[u8]]) -> Result<rustls::ClientConfig, String> + Send + Sync + 'static>;

/// Where to connect to `server`: its address when the URL gives one, else the first address the
/// system's resolver gives for its host, asked once and bounded by `timeout`.
pub async fn locate(server: &DnsServer, timeout: Duration) -> Result<SocketAddr, String> {
    if let Some(ip) = server.pinned {
        return Ok(SocketAddr::new(ip, server.port));
    }
    // The system's resolver with the options of every resolver of the run; its failure (no
    // usable configuration, no address) is said in the lookup's own words.
    let system = super::resolverid::resolver(None, timeout);
    let found = tokio::time::timeout(
        timeout,
        super::lookup::first_address(&system, server.host.as_str()),
    )
    .await
    .map_err(|_| {
        format!(
            "the system resolver gave no address for {} in time",
            server.host
        )
    })??;
    Ok(SocketAddr::new(found, server.port))
}

/// A resolver that asks `server` at `addr` over its transport: one attempt per question,
/// bounded by `timeout`, as the run's own resolver.
pub fn resolver(
    server: &DnsServer,
    addr: SocketAddr,
    tls: &TlsMaker,
    timeout: Duration,
) -> Result<Resolver, String> {
    let name: Arc<str> = Arc::from(server.host.as_str());
    let (mut ns, alpn): (NameServerConfig, &[&[u8]]) = match server.transport {
        Transport::Udp => (NameServerConfig::udp_and_tcp(addr.ip()), &[]),
        Transport::Dot => (NameServerConfig::tls(addr.ip(), name), &[]),
        Transport::Doh => (
            NameServerConfig::https(addr.ip(), name, Some(Arc::from(server.path.as_str()))),
            &[b"h2"],
        ),
    };
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        crate::iface::connections(),
    );
    if server.transport.encrypted() {
        builder = builder.with_tls_config(tls(alpn)?);
    }
    super::resolverid::tune(builder.options_mut(), timeout);
    builder.build().map_err(|e| {
        format!(
            "cannot set up DNS resolution over {}: {e}",
            server.transport.words()
        )
    })
}

/// The run's resolver for `--resolver` with a `tls://` or `https://` server: located (once,
/// bounded), then built. A failure is kept as text, as for the system's configuration: every
/// dns check of the run then says why.
pub async fn encrypted_resolver(
    server: &DnsServer,
    tls: &TlsMaker,
    timeout: Duration,
) -> Result<Resolver, String> {
    let addr = locate(server, timeout).await?;
    resolver(server, addr, tls, timeout)
}

/// Why an encrypted resolver gave no answer, in words: one connection and handshake of its own
/// (the resolver library only says it had no connection). `None` when the handshake works (the
/// failure is then past it) or no time is left.
pub async fn why_silent(
    server: &DnsServer,
    tls: &TlsMaker,
    end: tokio::time::Instant,
) -> Option<String> {
    let left = end.checked_duration_since(tokio::time::Instant::now())?;
    let addr = match locate(server, left).await {
        Ok(a) => a,
        Err(why) => return Some(why),
    };
    let alpn: &[&[u8]] = if server.transport == Transport::Doh {
        &[b"h2"]
    } else {
        &[]
    };
    let config = tls(alpn).ok()?;
    let name = rustls::pki_types::ServerName::try_from(server.host.clone()).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = crate::iface::connect(addr).await.map_err(|e| (true, e))?;
        connector.connect(name, tcp).await.map_err(|e| (false, e))
    };
    match tokio::time::timeout_at(end, attempt).await {
        Err(_) => Some(format!("{addr} gave no answer in time")),
        Ok(Ok(_)) => None,
        Ok(Err((true, e))) => Some(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("{addr} refused the connection"),
            std::io::ErrorKind::TimedOut => format!("{addr} gave no answer in time"),
            _ => format!("no connection to {addr}"),
        }),
        Ok(Err((false, e))) => Some(handshake_words(&e, addr, &server.host)),
    }
}

/// A failed handshake with a resolver, in words.
fn handshake_words(e: &std::io::Error, addr: SocketAddr, host: &str) -> String {
    use rustls::CertificateError as C;
    let cert = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => c,
        _ => return format!("the TLS handshake with {addr} failed"),
    };
    let what = match cert {
        C::UnknownIssuer => "issued by an authority this device does not trust",
        C::NotValidForName | C::NotValidForNameContext { .. } => "made out for another name",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet",
        _ => "rejected",
    };
    format!("the certificate {addr} shows for {host} is {what}")
}
