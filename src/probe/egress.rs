//! egress (opt-in): this device's public address, as a STUN server on the Internet sees it.
//!
//! Sign-in's captcha judges the public address, not the device: behind carrier-grade NAT or a
//! VPN exit many people share one, and "too many requests" counts all of them. A network probe
//! cannot see the captcha's verdict, but it can say what the address is: its family, whether the
//! device is behind NAT, behind carrier-grade NAT (the uplink itself holds an RFC 6598 address in
//! 100.64.0.0/10, or two STUN servers see two different public addresses) and whether the
//! traffic leaves through a VPN tunnel.
//!
//! The question goes to a STUN server, so it is asked only when the user says so (`--egress`,
//! `[egress] enabled = true`), of the servers the profile or `--stun` name, and the answer goes
//! nowhere else; Markdown reports redact it like the other addresses. The client is RFC 8489's
//! Binding request over UDP, written here (a header and one attribute to read), retransmitted
//! at 0, 0.5 and 1.5 s within the step timeout. A server that does not answer is said once,
//! as a skip: UDP to a STUN server is not something the app needs.

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, DeviceFuture, DeviceInput, Key, Run};
use crate::probe::tunnels::looks_like_tunnel;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The egress probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Egress,
    name: "egress",
    description: "opt-in (--egress): this device's public address from a STUN server; NAT, carrier-grade NAT, VPN exit",
    codes: &[
        "egress.ok",
        "egress.cgnat",
        "egress.vpn",
        "egress.no_answer",
        "egress.timeout",
        "egress.skipped",
    ],
    keys: &[
        Key::scalar("public_address"),
        Key::scalar("family"),
        Key::scalar("nat"),
        Key::scalar("cgnat"),
        Key::scalar("vpn"),
    ],
    metrics: &[],
    needs: &[],
    run: Run::Device(start),
};

/// Asks the profile's STUN servers (only when the run asked for the check: `--egress`).
fn start(input: Arc<DeviceInput>) -> DeviceFuture {
    Box::pin(async move { vec![run(&input.profile.egress.stun, input.timeout).await] })
}

/// RFC 8489's magic cookie.
const COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// RFC 3489's attribute, which older servers send instead.
const MAPPED_ADDRESS: u16 = 0x0001;

/// When the request is sent (again), after the first: RFC 8489's 500 ms RTO, doubled.
const RESEND_AT: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1500)];

/// A Binding request with this transaction id.
pub fn binding_request(id: &[u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    m[4..8].copy_from_slice(&COOKIE.to_be_bytes());
    m[8..].copy_from_slice(id);
    m
}

/// The mapped address of a Binding success response for transaction `id`; `None` for anything
/// else (another transaction, an error response, a malformed message).
pub fn mapped_address(msg: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    let head = msg.get(..20)?;
    let kind = u16::from_be_bytes([head[0], head[1]]);
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if kind != BINDING_SUCCESS || head[4..8] != COOKIE.to_be_bytes() || &head[8..20] != id {
        return None;
    }
    let body = msg.get(20..20 + len)?;
    let (mut at, mut plain) = (0, None);
    while let Some(h) = body.get(at..at + 4) {
        let (t, l) = (
            u16::from_be_bytes([h[0], h[1]]),
            usize::from(u16::from_be_bytes([h[2], h[3]])),
        );
        let value = body.get(at + 4..at + 4 + l)?;
        match t {
            XOR_MAPPED_ADDRESS => return address(value, Some(id)),
            MAPPED_ADDRESS => plain = address(value, None),
            _ => {}
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    plain
}

/// An address attribute's value; XORed with the cookie (and the id, for IPv6) when `xor` names
/// the transaction.
fn address(v: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let mut key = [0u8; 16];
    if let Some(id) = xor {
        key[..4].copy_from_slice(&COOKIE.to_be_bytes());
        key[4..].copy_from_slice(id);
    }
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ u16::from_be_bytes([key[0], key[1]]);
    let ip = match v.get(1)? {
        0x01 => {
            let b: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            IpAddr::from(std::array::from_fn::<u8, 4, _>(|i| b[i] ^ key[i]))
        }
        0x02 => {
            let b: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            IpAddr::from(std::array::from_fn::<u8, 16, _>(|i| b[i] ^ key[i]))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One server's answer: the address this device's socket had and the one the server saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub server: String,
    pub local: SocketAddr,
    pub mapped: SocketAddr,
}

/// Asks one STUN server (`host:port`) within `timeout`.
async fn ask(server: &str, timeout: Duration) -> Result<Seen, String> {
    let until = tokio::time::Instant::now() + timeout;
    let found = tokio::time::timeout_at(until, tokio::net::lookup_host(server))
        .await
        .map_err(|_| "its name did not resolve in time".to_owned())?
        .map_err(|_| "its name does not resolve".to_owned())?;
    let addrs: Vec<SocketAddr> = found.collect();
    let to = *addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .ok_or("its name has no address")?;
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let udp_failed =
        |e: std::io::Error| format!("this device could not send to it over UDP ({})", e.kind());
    // Bound to the run's interface (`--interface`) like every other socket of the run.
    let sock = crate::iface::udp(any).await.map_err(udp_failed)?;
    sock.connect(to).await.map_err(udp_failed)?;
    let local = sock.local_addr().map_err(udp_failed)?;
    let mut id = [0u8; 12];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| "no random transaction id".to_owned())?;
    let request = binding_request(&id);
    let started = tokio::time::Instant::now();
    let sends = RESEND_AT.iter().map(|d| (started + *d).min(until));
    let mut refused = false;
    let _ = sock.send(&request).await;
    for next in sends.chain(std::iter::once(until)) {
        if let Some(mapped) = listen(&sock, &id, next, &mut refused).await {
            return Ok(Seen {
                server: server.to_owned(),
                local,
                mapped,
            });
        }
        if next >= until {
            break;
        }
        let _ = sock.send(&request).await;
    }
    Err(if refused {
        "its port is closed: the server's host refused the request".to_owned()
    } else {
        format!("no answer within {}", humantime::format_duration(timeout))
    })
}

/// Waits until `until` for the answer to transaction `id`; an ICMP refusal (a closed port) is
/// noted in `refused` and waited out, as RFC 8489 retransmits regardless.
async fn listen(
    sock: &UdpSocket,
    id: &[u8; 12],
    until: tokio::time::Instant,
    refused: &mut bool,
) -> Option<SocketAddr> {
    let mut buf = [0u8; 576];
    loop {
        match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                if let Some(mapped) = mapped_address(&buf[..n], id) {
                    return Some(mapped);
                }
            }
            Ok(Err(_)) => {
                *refused = true;
                tokio::time::sleep_until(until).await;
                return None;
            }
            Err(_) => return None,
        }
    }
}

/// The uplink a local address belongs to, and whether it is a tunnel (a VPN exit).
fn uplink_of(local: IpAddr) -> (Option<String>, bool) {
    let Some(name) = crate::platform::route::Interfaces::read()
        .holding(local)
        .map(crate::sanitize::outside)
    else {
        return (None, false);
    };
    let arp = crate::platform::links::up()
        .into_iter()
        .find(|l| l.name == name)
        .and_then(|l| l.arp_type);
    (Some(name.clone()), looks_like_tunnel(&name, arp))
}

/// Asks every server at once and judges what they saw.
pub async fn run(servers: &[String], timeout: Duration) -> Check {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in servers.iter().enumerate() {
        let s = s.clone();
        tasks.spawn(async move { (i, s.clone(), ask(&s, timeout).await) });
    }
    let mut answers = Vec::new();
    while let Some(Ok(a)) = tasks.join_next().await {
        answers.push(a);
    }
    answers.sort_by_key(|(i, _, _)| *i);
    let mut seen = Vec::new();
    let mut silent = Vec::new();
    for (_, server, result) in answers {
        match result {
            Ok(s) => seen.push(s),
            Err(why) => silent.push((server, why)),
        }
    }
    let uplink = seen
        .first()
        .map_or((None, false), |s| uplink_of(s.local.ip()));
    judge(&seen, &silent, uplink).took(started.elapsed())
}

/// Is this address in RFC 6598's shared address space (100.64.0.0/10), used for carrier-grade NAT?
pub fn is_shared(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
}

/// The verdict from the servers' answers, those that stayed silent, and the uplink of the
/// first answer's socket (its interface and whether it is a tunnel).
pub fn judge(seen: &[Seen], silent: &[(String, String)], uplink: (Option<String>, bool)) -> Check {
    let silent_json: Vec<Value> = silent
        .iter()
        .map(|(s, why)| json!({ "server": crate::sanitize::outside(s), "error": why }))
        .collect();
    let Some(first) = seen.first() else {
        let names: Vec<&str> = silent.iter().map(|(s, _)| s.as_str()).collect();
        let why = silent.first().map_or("", |(_, w)| w.as_str());
        return Check::new(
            Probe::Egress,
            None,
            Status::Skip,
            "egress.no_answer",
            format!(
                "the public address is not known: {} did not answer ({why}); UDP to a STUN server may be blocked here, which the app does not need",
                crate::sanitize::outside(&names.join(", "))
            ),
        )
        .unmeasured()
        .with("silent", silent_json);
    };
    let public = first.mapped.ip();
    let family = if public.is_ipv4() { "IPv4" } else { "IPv6" };
    let nat = first.local.ip() != public;
    let shared_uplink = is_shared(first.local.ip());
    let differs = seen.iter().any(|s| s.mapped.ip() != public);
    let cgnat = shared_uplink || differs;
    let (iface, vpn) = uplink;
    let mut parts = vec![format!(
        "this device's public address is {public} ({family})"
    )];
    parts.push(match (nat, shared_uplink, differs) {
        (_, true, _) => format!(
            "behind carrier-grade NAT: the uplink holds {}, an RFC 6598 shared address (100.64.0.0/10)",
            first.local.ip()
        ),
        (_, _, true) => "behind carrier-grade NAT: each STUN server sees another public address".into(),
        (true, _, _) => format!("behind NAT (this device has {})", first.local.ip()),
        (false, _, _) => "not behind NAT: the device holds its public address itself".into(),
    });
    if vpn {
        parts.push(format!(
            "it leaves through a VPN tunnel ({}): the address is the VPN's exit, shared with its other users",
            iface.as_deref().unwrap_or("a tunnel interface")
        ));
    } else if cgnat {
        parts.push("many users share this address, and sign-in's captcha counts them all".into());
    }
    if !silent.is_empty() {
        let names: Vec<String> = silent
            .iter()
            .map(|(s, _)| crate::sanitize::outside(s))
            .collect();
        parts.push(format!("{} did not answer", names.join(", ")));
    }
    let code = match (vpn, cgnat) {
        (true, _) => "egress.vpn",
        (false, true) => "egress.cgnat",
        _ => "egress.ok",
    };
    let servers: Vec<Value> = seen
        .iter()
        .map(|s| json!({ "server": crate::sanitize::outside(&s.server), "mapped": s.mapped.to_string() }))
        .collect();
    Check::new(Probe::Egress, None, Status::Pass, code, parts.join("; "))
        .with("public_address", public.to_string())
        .with("family", family)
        .with("local_address", first.local.ip().to_string())
        .with("nat", nat)
        .with("cgnat", cgnat)
        .with("vpn", vpn)
        .with("uplink", iface)
        .with("servers", servers)
        .with("silent", silent_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 12] = [7; 12];

    /// A Binding success carrying `attr` (type, value).
    fn success(id: &[u8; 12], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in attrs {
            body.extend_from_slice(&t.to_be_bytes());
            body.extend_from_slice(&(v.len() as u16).to_be_bytes());
            body.extend_from_slice(v);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&COOKIE.to_be_bytes());
        m.extend_from_slice(id);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn the_request_is_rfc_8489s_binding_request() {
        let r = binding_request(&ID);
        assert_eq!(&r[..4], &[0, 1, 0, 0]);
        assert_eq!(&r[4..8], &[0x21, 0x12, 0xA4, 0x42]);
        assert_eq!(&r[8..], &ID);
    }

    #[test]
    fn xor_mapped_addresses_are_read_for_both_families() {
        // RFC 5769's sample response: 192.0.2.1:32853.
        let v4 = vec![0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        let m = success(&ID, &[(0x8022, b"test".to_vec()), (XOR_MAPPED_ADDRESS, v4)]);
        assert_eq!(mapped_address(&m, &ID), "192.0.2.1:32853".parse().ok());
        // RFC 5769's IPv6 sample: 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
        let id6: [u8; 12] = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let v6 = vec![
            0, 2, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4,
            0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        ];
        let m = success(&id6, &[(XOR_MAPPED_ADDRESS, v6)]);
        assert_eq!(
            mapped_address(&m, &id6),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().ok()
        );
        // An old server's plain MAPPED-ADDRESS.
        let plain = vec![0, 1, 0x0d, 0x96, 203, 0, 113, 9];
        let m = success(&ID, &[(MAPPED_ADDRESS, plain)]);
        assert_eq!(mapped_address(&m, &ID), "203.0.113.9:3478".parse().ok());
    }

    #[test]
    fn other_messages_are_not_answers() {
        let v4 = vec![0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        let m = success(&ID, &[(XOR_MAPPED_ADDRESS, v4)]);
        assert_eq!(mapped_address(&m, &[8; 12]), None, "another transaction");
        assert_eq!(mapped_address(&m[..30], &ID), None, "cut short");
        let mut err = m.clone();
        err[..2].copy_from_slice(&0x0111u16.to_be_bytes());
        assert_eq!(mapped_address(&err, &ID), None, "an error response");
        assert_eq!(mapped_address(&[0; 3], &ID), None);
        let mut bad_len = m;
        bad_len[3] = 200;
        assert_eq!(mapped_address(&bad_len, &ID), None);
    }

    fn seen(local: &str, mapped: &str) -> Seen {
        Seen {
            server: "stun.example:3478".into(),
            local: format!("{local}:40000").parse().expect("local"),
            mapped: format!("{mapped}:40000").parse().expect("mapped"),
        }
    }

    #[test]
    fn the_verdict_names_nat_cgnat_and_vpn() {
        let direct = judge(&[seen("198.51.100.7", "198.51.100.7")], &[], (None, false));
        assert_eq!(
            (direct.code.as_str(), direct.data["nat"].clone()),
            ("egress.ok", false.into())
        );
        let nat = judge(&[seen("192.168.1.2", "198.51.100.7")], &[], (None, false));
        assert_eq!(
            (nat.code.as_str(), nat.data["nat"].clone()),
            ("egress.ok", true.into())
        );
        assert_eq!(nat.data["family"], "IPv4");
        let shared = judge(&[seen("100.64.3.2", "198.51.100.7")], &[], (None, false));
        assert_eq!(shared.code, "egress.cgnat");
        assert!(shared.summary.contains("RFC 6598"), "{}", shared.summary);
        let two = [
            seen("10.0.0.2", "198.51.100.7"),
            seen("10.0.0.2", "198.51.100.8"),
        ];
        assert_eq!(judge(&two, &[], (None, false)).code, "egress.cgnat");
        let vpn = judge(
            &[seen("10.8.0.2", "198.51.100.7")],
            &[],
            (Some("tun0".into()), true),
        );
        assert_eq!(vpn.code, "egress.vpn");
        assert!(vpn.summary.contains("tun0"), "{}", vpn.summary);
        let none = judge(
            &[],
            &[("stun.example:3478".into(), "no answer within 1s".into())],
            (None, false),
        );
        assert_eq!(
            (none.status, none.code.as_str()),
            (Status::Skip, "egress.no_answer")
        );
        assert!(is_shared("100.127.255.1".parse().expect("ip")));
        assert!(!is_shared("100.128.0.1".parse().expect("ip")));
        assert!(
            looks_like_tunnel("wg0", None)
                && looks_like_tunnel("x", Some(65534))
                && !looks_like_tunnel("eth0", Some(1))
        );
    }
}
