//! Port filter or weak link: how a failed connect ended, and the control that decides.
//!
//! Shared below the probes (the tcp stage uses it; it declares no probe). A connect that fails
//! says how: silence (a drop), a TCP reset (a reject), an ICMP error (read from the socket's
//! error queue where the platform keeps one, [`crate::platform::icmp`]), or a refusal by this
//! device's own rules (`EACCES`/`EPERM`). Some of these name a filter by themselves — ICMP
//! "administratively prohibited" exists for nothing else, and no TCP host answers a SYN with
//! ICMP "port unreachable". The others (silence, a reset, "host unreachable") are what a firewall
//! and a broken path both show, so the same address is tried once on another port, as OONI's
//! control measurements do: when that one answers promptly, the path works and only the port is
//! filtered. Silence on every host, the baseline included, with loss and latency on those that
//! answer, is a weak link instead; the diagnosis weighs that (`link_steady` / `link_weak`).

use crate::platform::icmp::{self, Icmp};
use serde_json::{Value, json};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

/// How a connection attempt was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// No answer at all: the SYN (or its answer) was dropped.
    Drop,
    /// A TCP reset.
    Reject,
    /// ICMP "communication administratively prohibited" (IPv4 codes 9, 10, 13; ICMPv6 code 1).
    IcmpAdminProhibited,
    /// ICMP "host unreachable" (ICMPv6 "address unreachable").
    IcmpHostUnreachable,
    /// ICMP "network unreachable" (ICMPv6 "no route").
    IcmpNetUnreachable,
    /// ICMP "port unreachable" to a TCP SYN: a firewall's default reject.
    IcmpPortUnreachable,
    /// Another ICMP destination-unreachable code (ICMPv6 "source address failed policy", ...).
    IcmpOther,
    /// This device's own rules refused to send it (`EACCES`, `EPERM`): a local firewall or a
    /// "prohibit" route.
    LocalProhibited,
    /// Anything else.
    Other,
}

impl Filter {
    /// The class from the socket's error and the ICMP message the kernel queued (if any);
    /// `None` for the error means the attempt ran out of time.
    pub fn of(e: Option<&io::Error>, icmp: Option<Icmp>) -> Filter {
        if let Some(m) = icmp {
            return Filter::of_icmp(m);
        }
        let Some(e) = e else { return Filter::Drop };
        match e.kind() {
            io::ErrorKind::ConnectionRefused => return Filter::Reject,
            io::ErrorKind::PermissionDenied => return Filter::LocalProhibited,
            _ => {}
        }
        use rustix::io::Errno;
        match e.raw_os_error() {
            Some(n) if n == Errno::HOSTUNREACH.raw_os_error() => Filter::IcmpHostUnreachable,
            Some(n) if n == Errno::NETUNREACH.raw_os_error() => Filter::IcmpNetUnreachable,
            Some(n) if n == Errno::ACCESS.raw_os_error() || n == Errno::PERM.raw_os_error() => {
                Filter::LocalProhibited
            }
            Some(n) if n == Errno::TIMEDOUT.raw_os_error() => Filter::Drop,
            _ => Filter::Other,
        }
    }

    fn of_icmp(m: Icmp) -> Filter {
        match (m.v6, m.kind, m.code) {
            // IPv4 destination unreachable.
            (false, 3, 9 | 10 | 13) => Filter::IcmpAdminProhibited,
            (false, 3, 0 | 6 | 11) => Filter::IcmpNetUnreachable,
            (false, 3, 1 | 7 | 12) => Filter::IcmpHostUnreachable,
            (false, 3, 3) => Filter::IcmpPortUnreachable,
            // ICMPv6 destination unreachable.
            (true, 1, 1) => Filter::IcmpAdminProhibited,
            (true, 1, 0) => Filter::IcmpNetUnreachable,
            (true, 1, 3) => Filter::IcmpHostUnreachable,
            (true, 1, 4) => Filter::IcmpPortUnreachable,
            _ => Filter::IcmpOther,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::Drop => "drop",
            Filter::Reject => "reject",
            Filter::IcmpAdminProhibited => "icmp_admin_prohibited",
            Filter::IcmpHostUnreachable => "icmp_host_unreachable",
            Filter::IcmpNetUnreachable => "icmp_net_unreachable",
            Filter::IcmpPortUnreachable => "icmp_port_unreachable",
            Filter::IcmpOther => "icmp_other",
            Filter::LocalProhibited => "local_prohibited",
            Filter::Other => "other",
        }
    }

    /// How the filter turns the connection away, for a summary: "drops" or "rejects ... with".
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Filter::Drop => ("drops", " silently"),
            Filter::Reject => ("rejects", " with a TCP reset"),
            Filter::IcmpAdminProhibited => (
                "rejects",
                " with ICMP \"communication administratively prohibited\"",
            ),
            Filter::IcmpHostUnreachable => ("rejects", " with ICMP \"host unreachable\""),
            Filter::IcmpNetUnreachable => ("rejects", " with ICMP \"network unreachable\""),
            Filter::IcmpPortUnreachable => ("rejects", " with ICMP \"port unreachable\""),
            Filter::IcmpOther => ("rejects", " with an ICMP error"),
            Filter::LocalProhibited => ("refuses", ""),
            Filter::Other => ("stops", ""),
        }
    }

    /// What decided a verdict of this class: the ICMP message, this device's rules, or the
    /// control connect.
    pub fn decided_by(self) -> &'static str {
        match self {
            Filter::IcmpAdminProhibited | Filter::IcmpPortUnreachable => "icmp",
            Filter::LocalProhibited => "local_rules",
            _ => "control",
        }
    }

    /// Whether the class names a filter by itself, with no control needed.
    pub fn is_direct(self) -> bool {
        matches!(
            self,
            Filter::IcmpAdminProhibited | Filter::IcmpPortUnreachable | Filter::LocalProhibited
        )
    }
}

/// A connect whose ICMP error, if one ends it, is read from the socket's error queue.
pub async fn connect(addr: SocketAddr) -> (io::Result<TcpStream>, Option<Icmp>) {
    let socket = match crate::iface::new_socket(&addr, socket2::Type::STREAM) {
        Ok(s) => s,
        Err(e) => return (Err(e), None),
    };
    let v6 = addr.is_ipv6();
    let watched = icmp::watch(&socket, v6);
    // The same socket under a second descriptor: the connect consumes the first, and the error
    // queue is read through this one after a failure.
    let twin = if watched {
        socket.try_clone().ok()
    } else {
        None
    };
    let std_stream: std::net::TcpStream = socket.into();
    match TcpSocket::from_std_stream(std_stream).connect(addr).await {
        Ok(stream) => {
            if let Some(t) = &twin {
                icmp::unwatch(t, v6);
            }
            (Ok(stream), None)
        }
        Err(e) => (Err(e), twin.as_ref().and_then(icmp::read)),
    }
}

/// What the control connect (the same address, another port) found.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub address: SocketAddr,
    /// "connected", "refused", "timeout", or the class of another failure.
    pub result: &'static str,
    pub connect_ms: f64,
}

impl Control {
    /// The host answered on the other port (a connection, or its own reset): the path to it works.
    pub fn answered(&self) -> bool {
        matches!(self.result, "connected" | "refused")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "address": self.address.to_string(),
            "port": self.address.port(),
            "result": self.result,
            "connect_ms": self.connect_ms,
        })
    }
}

/// The port a control tries: plain HTTP, or HTTPS when the service port is 80.
pub fn control_port(port: u16) -> u16 {
    if port == 80 { 443 } else { 80 }
}

/// One control connect to `address`, bounded by `budget`; the socket is closed at once.
pub async fn control(address: SocketAddr, budget: Duration) -> Control {
    let started = Instant::now();
    let res = tokio::time::timeout(budget, connect(address)).await;
    let connect_ms = crate::model::ms(started.elapsed());
    let result = match res {
        Ok((Ok(_), _)) => "connected",
        Ok((Err(e), icmp)) => match Filter::of(Some(&e), icmp) {
            Filter::Reject => "refused",
            other => other.label(),
        },
        Err(_) => "timeout",
    };
    Control {
        address,
        result,
        connect_ms,
    }
}

/// The verdict: the class of a filter on this port, or `None` when the evidence does not show
/// one (the control failed too, or there was none).
pub fn verdict(filter: Filter, control: Option<&Control>) -> Option<Filter> {
    if filter.is_direct() {
        return Some(filter);
    }
    let control = control?;
    let port_only = match filter {
        // A reset here and a reset there: nothing listens, no filter shown.
        Filter::Reject => control.result == "connected",
        Filter::Drop | Filter::IcmpHostUnreachable | Filter::IcmpNetUnreachable => {
            control.answered()
        }
        Filter::IcmpOther => control.answered(),
        _ => false,
    };
    port_only.then_some(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icmp(v6: bool, kind: u8, code: u8) -> Option<Icmp> {
        Some(Icmp {
            v6,
            kind,
            code,
            from: None,
        })
    }

    fn ctl(result: &'static str) -> Control {
        Control {
            address: SocketAddr::from(([192, 0, 2, 1], 80)),
            result,
            connect_ms: 1.0,
        }
    }

    #[test]
    fn icmp_messages_name_their_class() {
        let e = io::Error::from_raw_os_error(rustix::io::Errno::HOSTUNREACH.raw_os_error());
        let of = |m| Filter::of(Some(&e), m);
        assert_eq!(of(icmp(false, 3, 13)), Filter::IcmpAdminProhibited);
        assert_eq!(of(icmp(false, 3, 10)), Filter::IcmpAdminProhibited);
        assert_eq!(of(icmp(true, 1, 1)), Filter::IcmpAdminProhibited);
        assert_eq!(of(icmp(false, 3, 1)), Filter::IcmpHostUnreachable);
        assert_eq!(of(icmp(true, 1, 3)), Filter::IcmpHostUnreachable);
        assert_eq!(of(icmp(false, 3, 3)), Filter::IcmpPortUnreachable);
        assert_eq!(of(icmp(true, 1, 5)), Filter::IcmpOther);
        // Without the queued message, the errno alone.
        assert_eq!(of(None), Filter::IcmpHostUnreachable);
    }

    #[test]
    fn errno_fallback() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Filter::of(Some(&refused), None), Filter::Reject);
        let eperm = io::Error::from_raw_os_error(rustix::io::Errno::PERM.raw_os_error());
        assert_eq!(Filter::of(Some(&eperm), None), Filter::LocalProhibited);
        let eacces = io::Error::from_raw_os_error(rustix::io::Errno::ACCESS.raw_os_error());
        assert_eq!(Filter::of(Some(&eacces), None), Filter::LocalProhibited);
        assert_eq!(Filter::of(None, None), Filter::Drop);
    }

    #[test]
    fn the_control_decides_what_the_failure_alone_cannot() {
        // Named by the failure itself.
        assert_eq!(
            verdict(Filter::IcmpAdminProhibited, None),
            Some(Filter::IcmpAdminProhibited)
        );
        // Silence here, an answer there: the port is filtered.
        assert_eq!(
            verdict(Filter::Drop, Some(&ctl("connected"))),
            Some(Filter::Drop)
        );
        assert_eq!(
            verdict(Filter::Drop, Some(&ctl("refused"))),
            Some(Filter::Drop)
        );
        // Silence everywhere: no filter shown (a dead path or a weak link).
        assert_eq!(verdict(Filter::Drop, Some(&ctl("timeout"))), None);
        assert_eq!(verdict(Filter::Drop, None), None);
        // A reset on both ports: nothing listens; a reset here, a connection there: a filter.
        assert_eq!(verdict(Filter::Reject, Some(&ctl("refused"))), None);
        assert_eq!(
            verdict(Filter::Reject, Some(&ctl("connected"))),
            Some(Filter::Reject)
        );
        assert_eq!(control_port(443), 80);
        assert_eq!(control_port(80), 443);
    }
}
