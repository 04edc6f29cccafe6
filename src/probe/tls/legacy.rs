//! What an old server speaks: one legacy ClientHello (TLS 1.2 at most, no supported_versions,
//! every suite from RC4 and export to AES-GCM), and the version and suite of the ServerHello.
//!
//! Why: a server that knows only SSL 3.0, or only RC4 or 3DES suites, answers a modern hello
//! with a bare "handshake failure" alert, which cannot tell an old protocol from a missing
//! cipher. Sent only after such a failure, this hello makes the answer precise and names what
//! the server offers. Nothing is negotiated further: the connection is closed after the
//! ServerHello.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server chose when offered everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The version it answered with, e.g. "SSL 3.0", "TLS 1.2".
    pub version: &'static str,
    /// The suite it chose, by its IANA name.
    pub suite: String,
    /// Is that suite one no current client offers (RC4, 3DES, NULL, export, plain-RSA or
    /// finite-field DH key exchange)?
    pub suite_broken: bool,
    /// Is the version below TLS 1.2?
    pub version_old: bool,
}

/// The suites offered, modern first, with names and whether they are broken for today's clients.
const SUITES: &[(u16, &str, bool)] = &[
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", false),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", false),
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", false),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", false),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", false),
    (
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
    ),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", true),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", true),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", true),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", true),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", true),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", true),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", true),
    (0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", true),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", true),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", true),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", true),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", true),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", true),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", true),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA", true),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5", true),
    (0x003b, "TLS_RSA_WITH_NULL_SHA256", true),
    (0x0002, "TLS_RSA_WITH_NULL_SHA", true),
    (0x0001, "TLS_RSA_WITH_NULL_MD5", true),
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", true),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", true),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", true),
    (0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV", false),
];

/// The legacy ClientHello for `host` (its SNI when it is a name).
pub fn client_hello(host: &str) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend((0..32).map(|_| fastrand::u8(..)));
    body.push(0); // no session id
    let suites: Vec<u8> = SUITES
        .iter()
        .flat_map(|(id, _, _)| id.to_be_bytes())
        .collect();
    body.extend((suites.len() as u16).to_be_bytes());
    body.extend(suites);
    body.extend([1, 0]); // compression: null
    let mut ext = Vec::new();
    let mut add = |kind: u16, data: &[u8]| {
        ext.extend(kind.to_be_bytes());
        ext.extend((data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    };
    if host.parse::<std::net::IpAddr>().is_err() && host.len() < 256 {
        let name = host.as_bytes();
        let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        sni.push(0);
        sni.extend((name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        add(0x0000, &sni);
    }
    add(0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]); // x25519, secp256r1, secp384r1
    add(0x000b, &[1, 0]); // point formats: uncompressed
    // rsa_pkcs1 sha256/sha384/sha1/md5, ecdsa sha256/sha1, rsa_pss sha256
    add(0x000d, &[0, 14, 4, 1, 5, 1, 2, 1, 1, 1, 4, 3, 2, 3, 8, 4]);
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![0x01];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((hs.len() as u16).to_be_bytes());
    record.extend(hs);
    record
}

/// Reads a ServerHello's version and suite from the start of a server's answer.
pub fn parse_server_hello(data: &[u8]) -> Option<Answer> {
    // record: type 22, version, length; handshake: type 2, length (3), version, random, sid
    if data.len() < 5 + 4 + 2 + 32 + 1 || data[0] != 0x16 || data[5] != 0x02 {
        return None;
    }
    let v = [data[9], data[10]];
    let sid_len = data[43] as usize;
    let at = 44 + sid_len;
    let suite = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
    let version = match v {
        [3, 0] => "SSL 3.0",
        [3, 1] => "TLS 1.0",
        [3, 2] => "TLS 1.1",
        [3, 3] => "TLS 1.2",
        _ => return None,
    };
    let known = SUITES.iter().find(|(id, _, _)| *id == suite);
    Some(Answer {
        version,
        suite: known.map_or_else(|| format!("suite 0x{suite:04x}"), |k| k.1.to_owned()),
        suite_broken: known.is_some_and(|k| k.2),
        version_old: v != [3, 3],
    })
}

/// Offers the legacy hello to `addr` and reads the answer, within `limit`.
pub async fn probe(addr: SocketAddr, host: &str, limit: Duration) -> Option<Answer> {
    let work = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let _ = s.set_nodelay(true);
        s.write_all(&client_hello(host)).await.ok()?;
        // Enough for the ServerHello's version and suite: at most 44 + 32 (session id) + 2.
        let mut buf = [0u8; 128];
        let mut have = 0;
        while have < buf.len() {
            let n = s.read(&mut buf[have..]).await.ok()?;
            if n == 0 {
                break;
            }
            have += n;
            if let Some(a) = parse_server_hello(&buf[..have]) {
                return Some(a);
            }
            if buf[0] != 0x16 {
                return None;
            }
        }
        parse_server_hello(&buf[..have])
    };
    tokio::time::timeout(limit, work).await.ok().flatten()
}

/// The length of the server's Certificate message, from the handshake stream (records' payloads
/// put together) that follows a legacy hello: TLS 1.2 sends it in the clear.
pub fn certificate_length(handshake: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at + 4 <= handshake.len() {
        let kind = handshake[at];
        let len = u32::from_be_bytes([0, handshake[at + 1], handshake[at + 2], handshake[at + 3]]);
        if kind == 11 {
            return Some(len as usize + 4);
        }
        at += 4 + len as usize;
    }
    None
}

/// How large the server's certificate chain is (its Certificate message, in bytes), asked with
/// the legacy hello, within `limit`; for a chain too large for a client to accept.
pub async fn chain_bytes(addr: SocketAddr, host: &str, limit: Duration) -> Option<usize> {
    let work = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let _ = s.set_nodelay(true);
        s.write_all(&client_hello(host)).await.ok()?;
        let mut raw = Vec::new();
        let mut handshake = Vec::new();
        let mut buf = [0u8; 4096];
        while raw.len() < 64 * 1024 {
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            raw.extend_from_slice(&buf[..n]);
            // Put the handshake records' payloads together, as far as they have arrived.
            handshake.clear();
            let mut at = 0;
            while at + 5 <= raw.len() {
                if raw[at] != 0x16 {
                    return None;
                }
                let len = u16::from_be_bytes([raw[at + 3], raw[at + 4]]) as usize;
                let end = (at + 5 + len).min(raw.len());
                handshake.extend_from_slice(&raw[at + 5..end]);
                at += 5 + len;
            }
            if let Some(n) = certificate_length(&handshake) {
                return Some(n);
            }
        }
        None
    };
    tokio::time::timeout(limit, work).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_well_formed() {
        let h = client_hello("api.example.com");
        assert_eq!(h[0], 0x16);
        let record = u16::from_be_bytes([h[3], h[4]]) as usize;
        assert_eq!(record + 5, h.len());
        let hs = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
        assert_eq!(hs + 4, record);
        assert!(h.windows(15).any(|w| w == b"api.example.com"));
        assert!(
            !client_hello("127.0.0.1")
                .windows(9)
                .any(|w| w == b"127.0.0.1")
        );
    }

    #[test]
    fn server_hellos_are_read() {
        let mut sh = vec![0x16, 3, 1, 0, 42, 2, 0, 0, 38, 3, 0];
        sh.extend([0x5a; 32]);
        sh.push(0);
        sh.extend([0x00, 0x05, 0]);
        let a = parse_server_hello(&sh).expect("a ServerHello");
        assert_eq!(a.version, "SSL 3.0");
        assert_eq!(a.suite, "TLS_RSA_WITH_RC4_128_SHA");
        assert!(a.version_old && a.suite_broken);
        assert_eq!(parse_server_hello(&[0x15, 3, 3, 0, 2, 2, 40]), None);
        assert_eq!(parse_server_hello(b"SSH-2.0-OpenSSH_9.0\r\n"), None);
    }

    #[test]
    fn the_certificate_message_is_found_after_the_server_hello() {
        let mut hs = vec![2, 0, 0, 3, 1, 2, 3];
        hs.extend([11, 0x04, 0x60, 0x00]);
        assert_eq!(certificate_length(&hs), Some(0x046000 + 4));
        assert_eq!(certificate_length(&hs[..7]), None);
    }
}
