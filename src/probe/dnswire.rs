//! dnswire: single DNS queries sent by hand, for what the resolver library hides.
//!
//! The resolver library answers "timeout" or "SERVFAIL" and stops there. A filter's own reason
//! (an Extended DNS Error, RFC 8914), the truncation bit followed by a TCP retry that goes
//! nowhere, the answer to a query with DNSSEC checking disabled, and the resolver's software
//! (`version.bind`) are only visible on the wire. This file sends exactly one query per call, over
//! UDP or TCP, bounded by the caller's timeout, and sorts the answer into [`Reply`]. Every string
//! taken from an answer passes [`crate::sanitize::outside`].

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The EDNS option code of an Extended DNS Error (RFC 8914).
const EDE_OPTION: u16 = 15;

/// The UDP payload size we announce: the DNS flag day's value, so big answers are truncated the
/// way they are for real clients.
pub const UDP_PAYLOAD: u16 = 1232;

/// An Extended DNS Error: the resolver's own reason, code and (sanitized) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ede {
    pub code: u16,
    pub text: String,
}

impl Ede {
    /// The registered name of an info-code (IANA "Extended DNS Error Codes").
    pub fn name(&self) -> &'static str {
        match self.code {
            0 => "Other Error",
            1 => "Unsupported DNSKEY Algorithm",
            2 => "Unsupported DS Digest Type",
            3 => "Stale Answer",
            4 => "Forged Answer",
            5 => "DNSSEC Indeterminate",
            6 => "DNSSEC Bogus",
            7 => "Signature Expired",
            8 => "Signature Not Yet Valid",
            9 => "DNSKEY Missing",
            10 => "RRSIGs Missing",
            11 => "No Zone Key Bit Set",
            12 => "NSEC Missing",
            13 => "Cached Error",
            14 => "Not Ready",
            15 => "Blocked",
            16 => "Censored",
            17 => "Filtered",
            18 => "Prohibited",
            19 => "Stale NXDOMAIN Answer",
            20 => "Not Authoritative",
            21 => "Not Supported",
            22 => "No Reachable Authority",
            23 => "Network Error",
            24 => "Invalid Data",
            _ => "Unassigned",
        }
    }

    /// 15 Blocked, 16 Censored, 17 Filtered, 18 Prohibited: the resolver says it kept the name
    /// from us on purpose.
    pub fn is_filtering(&self) -> bool {
        (15..=18).contains(&self.code)
    }

    /// 1–12: DNSSEC validation failed.
    pub fn is_dnssec(&self) -> bool {
        (1..=12).contains(&self.code)
    }

    /// "15 Blocked" or "15 Blocked: text from the resolver".
    pub fn describe(&self) -> String {
        if self.text.is_empty() {
            format!("{} {}", self.code, self.name())
        } else {
            format!("{} {}: {}", self.code, self.name(), self.text)
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "name": self.name(), "text": self.text })
    }
}

/// One answer, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub truncated: bool,
    pub addrs: Vec<IpAddr>,
    /// The CNAME targets in the order they appear (sanitized, without the trailing dot).
    pub cnames: Vec<String>,
    pub txt: Vec<String>,
    pub ede: Vec<Ede>,
}

/// Why a query produced no reply.
#[derive(Debug, Clone, PartialEq)]
pub enum WireError {
    Timeout,
    /// Nothing listens (TCP connection refused, ICMP port unreachable).
    Refused,
    Failed(String),
}

/// How to ask.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub rtype: RecordType,
    pub class: DNSClass,
    /// Set the CD bit: ask the resolver not to validate DNSSEC.
    pub checking_disabled: bool,
    pub tcp: bool,
}

impl Ask {
    pub fn udp(rtype: RecordType) -> Ask {
        Ask {
            rtype,
            class: DNSClass::IN,
            checking_disabled: false,
            tcp: false,
        }
    }
}

/// The query message for `name`, with EDNS (so the resolver can attach an EDE).
fn build(name: &str, ask: Ask) -> Result<Message, WireError> {
    let name = Name::from_ascii(name).map_err(|_| {
        WireError::Failed(format!(
            "{} is not a DNS name",
            crate::sanitize::outside(name)
        ))
    })?;
    let mut query = Query::query(name, ask.rtype);
    query.set_query_class(ask.class);
    let mut msg = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.checking_disabled = ask.checking_disabled;
    msg.add_query(query);
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    msg.set_edns(edns);
    Ok(msg)
}

/// Sends one query to `server` and waits at most `timeout` for its reply.
pub async fn query(
    server: SocketAddr,
    name: &str,
    ask: Ask,
    timeout: Duration,
) -> Result<Reply, WireError> {
    let msg = build(name, ask)?;
    let id = msg.metadata.id;
    let bytes = msg
        .to_vec()
        .map_err(|e| WireError::Failed(format!("cannot encode the query: {e}")))?;
    let exchange = async {
        if ask.tcp {
            tcp_exchange(server, &bytes).await
        } else {
            udp_exchange(server, &bytes, id).await
        }
    };
    let raw = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| WireError::Timeout)??;
    let reply = Message::from_vec(&raw)
        .map_err(|_| WireError::Failed("the resolver's answer is not valid DNS".into()))?;
    if reply.metadata.id != id {
        return Err(WireError::Failed(
            "the answer does not match the query".into(),
        ));
    }
    Ok(sort(&reply))
}

fn io_error(e: std::io::Error) -> WireError {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
            WireError::Refused
        }
        std::io::ErrorKind::TimedOut => WireError::Timeout,
        _ => WireError::Failed(e.to_string()),
    }
}

async fn udp_exchange(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Vec<u8>, WireError> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| WireError::Failed("address".into()))?
    } else {
        "[::]:0"
            .parse()
            .map_err(|_| WireError::Failed("address".into()))?
    };
    // Bound like every other socket of the run (`--interface`).
    let sock = crate::iface::udp(local).await.map_err(io_error)?;
    sock.connect(server).await.map_err(io_error)?;
    sock.send(bytes).await.map_err(io_error)?;
    // We announce a payload of UDP_PAYLOAD bytes; an answer larger than this buffer is cut and
    // fails to decode, which is what a client announcing that size would see as well.
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await.map_err(io_error)?;
        // A stray datagram (a late answer to someone else) is not ours: wait for the real one.
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Ok(buf[..n].to_vec());
        }
    }
}

async fn tcp_exchange(server: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut stream = crate::iface::connect(server).await.map_err(io_error)?;
    let len =
        u16::try_from(bytes.len()).map_err(|_| WireError::Failed("query too large".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(io_error)?;
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => WireError::Refused,
            _ => io_error(e),
        })?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.map_err(io_error)?;
    Ok(buf)
}

/// Sorts a decoded reply.
pub fn sort(msg: &Message) -> Reply {
    let mut addrs = Vec::new();
    let mut cnames = Vec::new();
    let mut txt = Vec::new();
    for rec in &msg.answers {
        match &rec.data {
            RData::CNAME(target) => cnames.push(show_name(&target.0)),
            RData::TXT(t) => {
                let text: Vec<String> = t
                    .txt_data
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect();
                txt.push(crate::sanitize::outside(&text.concat()));
            }
            other => {
                if let Some(ip) = other.ip_addr() {
                    addrs.push(ip);
                }
            }
        }
    }
    let ede = msg
        .edns
        .as_ref()
        .map(|e| {
            e.options()
                .options
                .iter()
                .filter_map(|(code, opt)| match (code, opt) {
                    (EdnsCode::Unknown(EDE_OPTION), EdnsOption::Unknown(_, data)) => {
                        parse_ede(data)
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Reply {
        rcode: msg.metadata.response_code,
        truncated: msg.metadata.truncation,
        addrs,
        cnames,
        txt,
        ede,
    }
}

/// The payload of an EDE option: a two-byte info-code, then UTF-8 text (which may be empty).
pub fn parse_ede(data: &[u8]) -> Option<Ede> {
    if data.len() < 2 {
        return None;
    }
    let code = u16::from_be_bytes([data[0], data[1]]);
    let text = String::from_utf8_lossy(&data[2..]);
    let text = text.trim_matches(char::from(0)).trim();
    Some(Ede {
        code,
        text: crate::sanitize::outside(text),
    })
}

/// A DNS name from an answer, as a person reads it: no trailing dot, sanitized.
pub fn show_name(name: &Name) -> String {
    let s = name.to_ascii();
    crate::sanitize::outside(s.strip_suffix('.').unwrap_or(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ede_payloads() {
        let e = parse_ede(b"\x00\x0fblocked by policy\x00").expect("parses");
        assert_eq!(e.code, 15);
        assert_eq!(e.text, "blocked by policy");
        assert!(e.is_filtering() && !e.is_dnssec());
        assert_eq!(e.describe(), "15 Blocked: blocked by policy");
        let e = parse_ede(b"\x00\x09").expect("parses");
        assert!(e.is_dnssec());
        assert_eq!(e.describe(), "9 DNSKEY Missing");
        assert_eq!(parse_ede(b"\x00"), None);
        let hostile = parse_ede(b"\x00\x11\x1b[2Jgone").expect("parses");
        assert_eq!(hostile.text, "\\x1b[2Jgone");
    }

    #[test]
    fn a_query_round_trips_with_edns() {
        let mut ask = Ask::udp(RecordType::TXT);
        ask.class = DNSClass::CH;
        ask.checking_disabled = true;
        let msg = build("version.bind", ask).expect("builds");
        let bytes = msg.to_vec().expect("encodes");
        let back = Message::from_vec(&bytes).expect("decodes");
        assert!(back.metadata.checking_disabled);
        assert_eq!(back.queries[0].query_class(), DNSClass::CH);
        assert_eq!(back.edns.map(|e| e.max_payload()), Some(UDP_PAYLOAD));
    }
}
