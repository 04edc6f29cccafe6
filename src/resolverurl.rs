//! Where DNS questions go: a resolver as the command line and profiles name it — `IP[:PORT]` for
//! plain DNS, `tls://host[:port]` for DNS over TLS, `https://host[:port]/path` for DNS over
//! HTTPS — and the control resolver's setting (`--control URL|off`).
//!
//! A phone's Private DNS (Android's DNS over TLS, an iOS DNS profile) is named by a host name, not
//! an address. The host is what the certificate must carry; where to connect is looked up once
//! with the system resolver, unless the URL pins it with a fragment: `tls://dns.example#192.0.2.53`
//! asks 192.0.2.53 and expects a certificate for `dns.example`. A host that is an IP literal
//! (`https://1.1.1.1/dns-query`) is both: no lookup, and the certificate must name that address.
//!
//! Kept at the ground floor (it names nothing else in the crate): the command line, the profile,
//! the plan and the probes all read the same parsed form.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// How the questions travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain DNS on port 53 (UDP, with TCP for a truncated answer).
    Udp,
    /// DNS over TLS (RFC 7858), port 853: Android's Private DNS.
    Dot,
    /// DNS over HTTPS (RFC 8484): iOS DNS profiles, browsers.
    Doh,
}

impl Transport {
    /// The name in a dns check's `transport` field.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Dot => "dot",
            Transport::Doh => "doh",
        }
    }

    /// The transport in words, for summaries.
    pub fn words(self) -> &'static str {
        match self {
            Transport::Udp => "plain DNS",
            Transport::Dot => "DNS over TLS",
            Transport::Doh => "DNS over HTTPS",
        }
    }

    /// Is the transport encrypted (DoT or DoH)?
    pub fn encrypted(self) -> bool {
        self != Transport::Udp
    }
}

/// A resolver to ask, as named on the command line or in a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServer {
    pub transport: Transport,
    /// The URL's host: the name the certificate must carry (an IP literal names itself). For
    /// plain DNS, the address as text.
    pub host: String,
    /// Where to connect when known without a lookup: an IP literal host, or a `#IP` pin.
    pub pinned: Option<IpAddr>,
    pub port: u16,
    /// The DoH request path (`/dns-query` unless the URL names another); empty otherwise.
    pub path: String,
}

/// The public resolver the control asks unless told otherwise: Cloudflare's DNS over HTTPS,
/// named by its address so that a filtering system resolver cannot hide it.
pub const DEFAULT_CONTROL: &str = "https://1.1.1.1/dns-query";

impl DnsServer {
    /// The plain-DNS server at `addr`.
    pub fn plain(addr: SocketAddr) -> DnsServer {
        DnsServer {
            transport: Transport::Udp,
            host: addr.ip().to_string(),
            pinned: Some(addr.ip()),
            port: addr.port(),
            path: String::new(),
        }
    }

    /// The plain-DNS server's address (`None` for DoT and DoH).
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        match (self.transport, self.pinned) {
            (Transport::Udp, Some(ip)) => Some(SocketAddr::new(ip, self.port)),
            _ => None,
        }
    }

    /// Parses `IP[:PORT]`, `tls://host[:port][#IP]` or `https://host[:port][/path][#IP]`.
    pub fn parse(s: &str) -> Result<DnsServer, String> {
        if let Some(rest) = s.strip_prefix("tls://") {
            return encrypted(Transport::Dot, rest, s);
        }
        if let Some(rest) = s.strip_prefix("https://") {
            return encrypted(Transport::Doh, rest, s);
        }
        if s.contains("://") {
            return Err(format!(
                "'{s}': a resolver URL starts with tls:// (DNS over TLS) or https:// (DNS over HTTPS)"
            ));
        }
        plain(s).map(DnsServer::plain)
    }
}

/// `IP` or `IP:PORT` (`[v6]:PORT` for IPv6 with a port); port 53 by default.
fn plain(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err("port must be 1-65535".into());
        }
        return Ok(addr);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "'{s}' is not an IP address with an optional port (e.g. 9.9.9.9 or 127.0.0.1:5353), nor a tls:// or https:// resolver URL"
            )
        })
}

/// The part after `tls://` or `https://`.
fn encrypted(transport: Transport, rest: &str, whole: &str) -> Result<DnsServer, String> {
    let (rest, pin) = match rest.split_once('#') {
        Some((r, p)) => {
            let ip = p
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| format!("'{whole}': '#{p}' is not an IP address to connect to"))?;
            (r, Some(ip))
        }
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') || authority.contains('?') || path.contains('?') {
        return Err(format!(
            "'{whole}': a resolver URL has a host, a port and (for https) a path, nothing else"
        ));
    }
    let path = match (transport, path) {
        (Transport::Doh, "") => "/dns-query".to_owned(),
        (Transport::Doh, p) if p.bytes().all(|b| b.is_ascii_graphic()) => p.to_owned(),
        (Transport::Dot, "" | "/") => String::new(),
        _ => return Err(format!("'{whole}': no path after a tls:// resolver")),
    };
    let (host, port) = host_port(authority, transport)
        .ok_or_else(|| format!("'{whole}': not a host with an optional port"))?;
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    Ok(DnsServer {
        transport,
        host: literal.map_or(host, |ip| ip.to_string()),
        pinned: pin.or(literal),
        port,
        path,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, with the transport's port by default.
fn host_port(authority: &str, transport: Transport) -> Option<(String, u16)> {
    let default = if transport == Transport::Dot {
        853
    } else {
        443
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, after) = v6.split_once(']')?;
        let port = match after {
            "" => default,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        (format!("[{inner}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (authority.to_owned(), default),
        }
    };
    let ok = !host.is_empty() && port != 0 && crate::hostname::valid_host(&host);
    ok.then(|| (host.to_ascii_lowercase(), port))
}

impl fmt::Display for DnsServer {
    /// The form it was given in (default ports left out), which [`DnsServer::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        };
        let pin = match self.pinned {
            Some(ip) if ip.to_string() != self.host => format!("#{ip}"),
            _ => String::new(),
        };
        match self.transport {
            Transport::Udp => match self.plain_addr() {
                Some(a) => write!(f, "{a}"),
                None => write!(f, "{host}"),
            },
            Transport::Dot if self.port == 853 => write!(f, "tls://{host}{pin}"),
            Transport::Dot => write!(f, "tls://{host}:{}{pin}", self.port),
            Transport::Doh if self.port == 443 => write!(f, "https://{host}{}{pin}", self.path),
            Transport::Doh => write!(f, "https://{host}:{}{}{pin}", self.port, self.path),
        }
    }
}

/// The control resolver's setting: the command line's `--control`, else the profile's `control`
/// key, else the default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ControlSetting {
    /// [`DEFAULT_CONTROL`], asked only about a name whose local answer is already suspicious.
    #[default]
    Default,
    /// No control.
    Off,
    /// A resolver named by the user: asked about every name.
    Named(DnsServer),
}

impl ControlSetting {
    /// `off`, or a resolver URL (`tls://…`, `https://…`, `IP[:PORT]`).
    pub fn parse(s: &str) -> Result<ControlSetting, String> {
        match s {
            "off" => Ok(ControlSetting::Off),
            "default" => Ok(ControlSetting::Default),
            url => DnsServer::parse(url).map(ControlSetting::Named),
        }
    }

    /// The resolver asked, if any, and whether it is asked about every name.
    pub fn server(&self) -> Option<(DnsServer, bool)> {
        match self {
            ControlSetting::Default => DnsServer::parse(DEFAULT_CONTROL).ok().map(|s| (s, false)),
            ControlSetting::Off => None,
            ControlSetting::Named(s) => Some((s.clone(), true)),
        }
    }
}

impl fmt::Display for ControlSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlSetting::Default => write!(f, "default"),
            ControlSetting::Off => write!(f, "off"),
            ControlSetting::Named(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DnsServer {
        DnsServer::parse(s).unwrap()
    }

    #[test]
    fn plain_forms() {
        assert_eq!(
            p("9.9.9.9").plain_addr(),
            Some("9.9.9.9:53".parse().unwrap())
        );
        assert_eq!(
            p("[::1]:54").plain_addr(),
            Some("[::1]:54".parse().unwrap())
        );
        assert_eq!(p("::1").plain_addr(), Some("[::1]:53".parse().unwrap()));
        assert!(DnsServer::parse("dns.google").is_err());
        assert!(DnsServer::parse("1.2.3.4:0").is_err());
        assert!(DnsServer::parse("1.2.3.4:70000").is_err());
    }

    #[test]
    fn encrypted_forms() {
        let dot = p("tls://dns.example");
        assert_eq!(
            (dot.transport, dot.host.as_str(), dot.port, dot.pinned),
            (Transport::Dot, "dns.example", 853, None)
        );
        let doh = p("https://dns.example:8443/q#127.0.0.1");
        assert_eq!(doh.transport, Transport::Doh);
        assert_eq!((doh.port, doh.path.as_str()), (8443, "/q"));
        assert_eq!(doh.pinned, Some("127.0.0.1".parse().unwrap()));
        let ip = p("https://1.1.1.1");
        assert_eq!(ip.path, "/dns-query");
        assert_eq!(ip.pinned, Some("1.1.1.1".parse().unwrap()));
        let v6 = p("tls://[2001:db8::1]:8853");
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 8853));
        for bad in [
            "tls://",
            "tls://dns.example/path",
            "https://user@dns.example/dns-query",
            "http://dns.example/dns-query",
            "tls://dns.example#nothere",
            "https://bad_host!/dns-query",
            "tls://dns.example:0",
        ] {
            assert!(DnsServer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_text_form_reads_back() {
        for s in [
            "9.9.9.9:53",
            "[::1]:5353",
            "tls://dns.example",
            "tls://dns.example:8853#127.0.0.1",
            "https://1.1.1.1/dns-query",
            "https://dns.example:8443/q#[::1]",
            "tls://[2001:db8::1]",
        ] {
            let once = p(s);
            assert_eq!(p(&once.to_string()), once, "{s}");
        }
        assert_eq!(
            p("https://dns.example").to_string(),
            "https://dns.example/dns-query"
        );
    }

    #[test]
    fn control_settings() {
        assert_eq!(ControlSetting::parse("off"), Ok(ControlSetting::Off));
        assert_eq!(ControlSetting::Off.server(), None);
        let (s, every) = ControlSetting::Default.server().unwrap();
        assert_eq!((s.transport, every), (Transport::Doh, false));
        let named = ControlSetting::parse("tls://dns.example").unwrap();
        assert!(named.server().unwrap().1);
        assert!(ControlSetting::parse("nonsense").is_err());
    }
}
