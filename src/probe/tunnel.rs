//! tunnel: the endpoint reached the way a proxied app reaches it — a CONNECT tunnel through the
//! configured HTTP proxy, a TLS handshake inside it, and (for HTTPS endpoints) the request.
//!
//! On many company networks the proxy is the only way out, so this path, not the direct one,
//! decides whether the app can work. The CONNECT exchange is written here rather than left to an
//! HTTP client because a refusal carries what the user needs to ask the administrator: the
//! proxy's status, its identity (`Server`, `Via`, `X-Squid-Error`) and the host and port it
//! refused. The response head is read byte by byte up to its blank line, so the socket that
//! remains is exactly the tunnel, handed to the tls stage's handshake unchanged.
//!
//! Shared below the probes: it opens the tunnel and words a refusal; what runs inside the tunnel
//! (the tls handshake, the http request) is put together above the probes, in
//! [`crate::proxypath`].

use crate::model::{Check, Probe, Status};
use crate::sanitize::outside;
use base64::Engine;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest CONNECT response head we read.
const HEAD_CAP: usize = 16 * 1024;

/// An `http://` proxy, parsed for connecting. Credentials are kept only as the header value.
#[derive(Clone)]
pub struct ProxyAddr {
    host: String,
    port: u16,
    authorization: Option<String>,
    /// The URL as shown, credentials redacted.
    pub shown: String,
}

impl std::fmt::Debug for ProxyAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl ProxyAddr {
    /// An `http://[user[:pass]@]host[:port][/]` proxy; `None` for other schemes (HTTPS or SOCKS
    /// proxies go through the HTTP client's own support).
    pub fn parse(url: &str) -> Option<ProxyAddr> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("HTTP://"))?;
        let authority = rest.split('/').next()?;
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']')?;
            (h.to_owned(), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => 80,
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let authorization = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let pair = format!("{}:{}", decode(user), decode(pass));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        (!host.is_empty()).then(|| ProxyAddr {
            host,
            port,
            authorization,
            shown: crate::probe::proxyenv::redact_url(url),
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }
}

/// A proxy's answer to CONNECT other than 200.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
    /// `Server`, else `Via`: who the proxy says it is.
    pub server: Option<String>,
    /// `X-Squid-Error` and similar: the proxy's own error name.
    pub error: Option<String>,
}

impl Refusal {
    /// The product, where the proxy's identity names one.
    pub fn product(&self) -> Option<&'static str> {
        let s = self.server.as_deref()?.to_ascii_lowercase();
        [
            "squid",
            "tinyproxy",
            "mitmproxy",
            "privoxy",
            "nginx",
            "apache",
            "zscaler",
        ]
        .into_iter()
        .find(|p| s.contains(p))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TunnelError {
    /// The proxy itself cannot be reached.
    Connect(String),
    Timeout,
    Refused(Refusal),
    /// The proxy's answer is not HTTP.
    Garbled(String),
}

/// Opens a tunnel to `authority` (`host:port`) through the proxy; the stream returned carries the
/// tunnel and nothing has been read past the proxy's answer.
pub async fn open(
    proxy: &ProxyAddr,
    authority: &str,
    timeout: Duration,
) -> Result<TcpStream, TunnelError> {
    let work = async {
        let mut stream = TcpStream::connect((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| {
                TunnelError::Connect(match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        "the proxy refused the connection (is it running?)".to_owned()
                    }
                    _ => format!("cannot connect to the proxy: {e}"),
                })
            })?;
        let mut req = format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {}\r\n",
            crate::probe::exchange::USER_AGENT_VALUE
        );
        if let Some(auth) = &proxy.authorization {
            req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| TunnelError::Garbled(format!("the proxy closed the connection ({e})")))?;
        let head = read_head(&mut stream).await?;
        let refusal = parse_head(&head)?;
        match refusal {
            None => Ok(stream),
            Some(r) => Err(TunnelError::Refused(r)),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(TunnelError::Timeout))
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, TunnelError> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) => {
                return Err(TunnelError::Garbled(
                    "the proxy closed the connection without answering CONNECT".into(),
                ));
            }
            Ok(_) => head.push(byte[0]),
            Err(e) => {
                return Err(TunnelError::Garbled(format!(
                    "the connection to the proxy broke ({e})"
                )));
            }
        }
        if head.len() > HEAD_CAP {
            return Err(TunnelError::Garbled(
                "the proxy's answer to CONNECT is too large".into(),
            ));
        }
    }
    Ok(head)
}

/// `None` for a 2xx (the tunnel is open), the refusal otherwise.
pub fn parse_head(head: &[u8]) -> Result<Option<Refusal>, TunnelError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/"))
        .ok_or_else(|| {
            TunnelError::Garbled(format!(
                "the proxy did not answer CONNECT with HTTP: {}",
                outside(&status_line.chars().take(60).collect::<String>())
            ))
        })?;
    if (200..300).contains(&status) {
        return Ok(None);
    }
    let reason = outside(parts.next().unwrap_or("").trim());
    let mut server = None;
    let mut via = None;
    let mut error = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = outside(v.trim());
        match k.trim().to_ascii_lowercase().as_str() {
            "server" => server = Some(v),
            "via" => via = Some(v),
            "x-squid-error" | "x-error" | "x-proxy-error" => {
                error = v.split_whitespace().next().map(str::to_owned)
            }
            _ => {}
        }
    }
    Ok(Some(Refusal {
        status,
        reason,
        server: server.or(via),
        error,
    }))
}

/// The check for a tunnel that could not be opened.
pub fn tunnel_check(
    probe: Probe,
    target: &str,
    proxy: &ProxyAddr,
    authority: &str,
    err: TunnelError,
    timeout: Duration,
) -> Check {
    let t = Some(target);
    let shown = &proxy.shown;
    let base = |code: &str, summary: String| {
        Check::new(probe, t, Status::Fail, code, summary)
            .with("via_proxy", shown.clone())
            .with("path", "proxy")
            .with("tunnel_to", authority)
    };
    let check = match err {
        TunnelError::Refused(r) => {
            let who = r
                .server
                .as_deref()
                .map_or(String::new(), |s| format!("; proxy: {s}"));
            let named = r
                .error
                .as_deref()
                .map_or(String::new(), |e| format!(", {e}"));
            let (code, summary) = match r.status {
                407 if proxy.has_credentials() => (
                    "http.proxy_auth_required",
                    format!(
                        "the proxy {shown} rejected the credentials given for a tunnel to {authority} ({} {}{named}{who})",
                        r.status, r.reason
                    ),
                ),
                407 => (
                    "http.proxy_auth_required",
                    format!(
                        "the proxy {shown} wants credentials before it opens a tunnel to {authority} ({} {}{named}{who})",
                        r.status, r.reason
                    ),
                ),
                400..=499 => (
                    "http.proxy_denied",
                    format!(
                        "the proxy {shown} refused to open a tunnel (CONNECT) to {authority}: {} {}{named}{who}",
                        r.status, r.reason
                    ),
                ),
                _ => (
                    "http.proxy_error",
                    format!(
                        "the proxy {shown} could not open a tunnel to {authority}: {} {}{named}{who}",
                        r.status, r.reason
                    ),
                ),
            };
            base(code, summary)
                .with("proxy_status", r.status)
                .with("proxy_server", r.server.clone())
                .with("proxy_error", r.error.clone())
                .with("proxy_product", r.product())
        }
        TunnelError::Timeout => base(
            "http.proxy_error",
            format!(
                "through the proxy {shown}: no answer to CONNECT {authority} within {}",
                humantime::format_duration(timeout)
            ),
        ),
        TunnelError::Connect(why) | TunnelError::Garbled(why) => base(
            "http.proxy_error",
            format!("through the proxy {shown}: {why}"),
        ),
    };
    if probe == Probe::Http {
        check
            .with("status_code", serde_json::Value::Null)
            .with("ttfb_ms", serde_json::Value::Null)
    } else {
        check.unmeasured()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = ProxyAddr::parse("http://agent:hunter%32@127.0.0.1:3128").expect("parses");
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
        assert_eq!(
            p.authorization.as_deref(),
            Some("Basic YWdlbnQ6aHVudGVyMg==")
        );
        assert!(!p.shown.contains("hunter"));
        assert!(!format!("{p:?}").contains("hunter"));
        assert_eq!(
            ProxyAddr::parse("http://[::1]:8080/").map(|p| p.port),
            Some(8080)
        );
        assert_eq!(
            ProxyAddr::parse("http://proxy.lan").map(|p| p.port),
            Some(80)
        );
        assert!(ProxyAddr::parse("socks5://h:1080").is_none());
        assert!(ProxyAddr::parse("https://h:443").is_none());
    }

    #[test]
    fn refusals_get_their_codes_and_keep_what_the_proxy_said() {
        let refusal = |status, error: Option<&str>| {
            TunnelError::Refused(Refusal {
                status,
                reason: "Reason".into(),
                server: Some("squid/5.7".into()),
                error: error.map(str::to_owned),
            })
        };
        let with = ProxyAddr::parse("http://u:secret@proxy.lan:3128").expect("parses");
        let without = ProxyAddr::parse("http://proxy.lan:3128").expect("parses");
        let t = Duration::from_secs(1);
        let c = |p: &ProxyAddr, e| tunnel_check(Probe::Http, "api", p, "api.example:443", e, t);
        let auth = c(&without, refusal(407, None));
        assert_eq!(auth.code, "http.proxy_auth_required");
        assert!(
            auth.summary.contains("wants credentials"),
            "{}",
            auth.summary
        );
        let rejected = c(&with, refusal(407, None));
        assert!(rejected.summary.contains("rejected the credentials"));
        assert!(!rejected.summary.contains("secret"), "{}", rejected.summary);
        let denied = c(&without, refusal(403, Some("ERR_ACCESS_DENIED")));
        assert_eq!(denied.code, "http.proxy_denied");
        assert_eq!(denied.data["proxy_error"], "ERR_ACCESS_DENIED");
        assert_eq!(denied.data["proxy_server"], "squid/5.7");
        assert_eq!(denied.data["proxy_product"], "squid");
        assert!(
            denied.summary.contains("api.example:443"),
            "{}",
            denied.summary
        );
        assert_eq!(c(&without, refusal(503, None)).code, "http.proxy_error");
        assert_eq!(c(&without, TunnelError::Timeout).code, "http.proxy_error");
        let tls = tunnel_check(
            Probe::Tls,
            "s",
            &without,
            "s.example:9000",
            refusal(403, None),
            t,
        );
        assert_eq!(tls.probe, Probe::Tls);
        assert!(
            tls.data.contains_key("handshake_ms"),
            "measurement keys present"
        );
    }

    #[test]
    fn connect_answers() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Ok(None)
        );
        let squid = b"HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nVia: 1.1 gw (squid/5.7)\r\n\r\n";
        let r = parse_head(squid).expect("http").expect("a refusal");
        assert_eq!(r.status, 403);
        assert_eq!(r.server.as_deref(), Some("squid/5.7"));
        assert_eq!(r.error.as_deref(), Some("ERR_ACCESS_DENIED"));
        assert_eq!(r.product(), Some("squid"));
        let hostile = b"HTTP/1.1 407 Auth\x1b[2J\r\nVia: evil\x07\r\n\r\n";
        let r = parse_head(hostile).expect("http").expect("a refusal");
        assert_eq!(r.reason, "Auth\\x1b[2J");
        assert_eq!(r.server.as_deref(), Some("evil\\x07"));
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(TunnelError::Garbled(_))
        ));
    }
}
