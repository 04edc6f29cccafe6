//! Control attempts for a handshake that was reset or got no answer: the same step again with one
//! thing changed, as OONI Probe measures, so the finding names what the path does instead of
//! "the handshake failed", and says which control decided.
//!
//! | control | what changes | decides |
//! | --- | --- | --- |
//! | classic hello, the service's name | the hello's size | `tls.large_hello_dropped` |
//! | classic hello, the service's name, small MSS | the size of the server's segments | `tls.mtu_blackhole` |
//! | classic hello, another name of the same length | only the server name (SNI) | `tls.sni_blocked` |
//!
//! A reset is answered at once and in that order: a large hello first, then the name (a
//! path-MTU black hole drops, it never resets). A handshake with no answer after half the step's
//! time gets the classic hello beside it, and when that has not got through after a quarter of
//! the time left, the other two at once: there is no time to wait for one after another. Each
//! control is one attempt on a fresh connection to the same address, inside the step's time;
//! the first in the table that gets through while the attempt with the service's name and a
//! normal segment size does not decides. None runs when the first handshake succeeded, and the
//! name control none for an IP address (its hello carries no name).

use super::handshake::{Attempt, Hello, attempt, cut_off, hello_bytes};
use super::trust::TlsSetup;
use crate::model::{Check, Status};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The segment size the MTU control asks for: IPv4's minimum reassembly size less the headers,
/// which fits every path.
pub const SMALL_MSS: u32 = 536;

/// How the handshake went, once its controls have spoken.
pub(super) enum Outcome {
    /// The modern handshake's own outcome: no control decided anything.
    Own(Attempt),
    /// Only the classic hello got through: its attempt goes on.
    LargeHello(Attempt),
    /// Only the small-MSS connection got through: its attempt goes on, with what was tried.
    Mtu(Attempt, Vec<Tried>),
    /// Only another server name got through on the same address.
    Sni(Vec<Tried>),
}

/// One attempt as the finding records it.
pub(super) struct Tried {
    server_name: String,
    hello_bytes: Option<usize>,
    mss: Option<u32>,
    result: &'static str,
}

impl Tried {
    fn new(setup: &TlsSetup, alpn: &[&[u8]], name: &str, mss: Option<u32>, got: Slot) -> Tried {
        let hello_bytes = setup
            .client_config_with(alpn, Arc::new(Mutex::new(None)), Hello::Classic)
            .ok()
            .zip(ServerName::try_from(name.to_owned()).ok())
            .and_then(|(config, n)| hello_bytes(Arc::new(config), n));
        let result = match &got {
            None => "no answer",
            Some(None) => "no connection",
            Some(Some(a)) => fate(a),
        };
        Tried {
            server_name: name.to_owned(),
            hello_bytes,
            mss,
            result,
        }
    }

    fn json(&self) -> Value {
        json!({
            "server_name": self.server_name,
            "hello": "classic",
            "hello_bytes": self.hello_bytes,
            "mss": self.mss,
            "result": self.result,
        })
    }
}

/// An attempt's result in a word.
fn fate(a: &Attempt) -> &'static str {
    match &a.result {
        Ok(_) => "completed",
        Err(_) if a.seen.is_some() => "certificate received",
        Err(e) if tls_spoken(e) => "answered with a TLS error",
        Err(e) if cut_off(e) => "reset",
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => "no answer",
        Err(_) => "failed",
    }
}

/// The server answered in TLS (an alert, a message rustls refused): the hello reached it.
fn tls_spoken(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_some()
}

/// The server's whole first flight arrived (the certificate was seen, or the handshake done).
fn flight_arrived(a: &Attempt) -> bool {
    a.result.is_ok() || a.seen.is_some()
}

/// The hello reached the server and it answered, with any certificate or an error of its own.
fn answered(a: &Attempt) -> bool {
    flight_arrived(a) || a.result.as_ref().err().is_some_and(tls_spoken)
}

/// A name of the same length as `host` that names nothing a filter would look for: the control
/// changes the server name and nothing else, not even the hello's size.
pub fn control_name(host: &str) -> String {
    const LETTERS: &[u8] = b"netcheckcontrol";
    let mut i = 0;
    host.chars()
        .map(|c| {
            if c == '.' {
                c
            } else {
                i += 1;
                LETTERS[(i - 1) % LETTERS.len()] as char
            }
        })
        .collect()
}

/// A control's handshake on the heap: its connection and TLS state are allocated when a
/// control runs. Awaited in place, each control would make room in the tls stage's state for
/// every handshake a control may make (21 KB, against 1.3 KB for the one handshake a healthy
/// endpoint makes), and that state is copied as it moves into the runner, once per endpoint.
#[inline(never)]
fn fresh<'a>(
    setup: &'a TlsSetup,
    alpn: &'a [&'a [u8]],
    name: &'a str,
    peer: SocketAddr,
    mss: Option<u32>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Attempt>> + Send + 'a>> {
    Box::pin(fresh_attempt(setup, alpn, name, peer, mss))
}

/// A classic handshake on a fresh connection to `peer` (with the segment size `mss`).
async fn fresh_attempt(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: &str,
    peer: SocketAddr,
    mss: Option<u32>,
) -> Option<Attempt> {
    let name = ServerName::try_from(name.to_owned()).ok()?;
    let stream = match mss {
        Some(m) => crate::iface::connect_with_mss(peer, m).await,
        None => crate::iface::connect(peer).await,
    }
    .ok()?;
    let _ = stream.set_nodelay(true);
    attempt(setup, alpn, name, stream, Hello::Classic)
        .await
        .ok()
}

/// Whether the modern handshake was cut off on the way: the case [`after_reset`] looks into.
pub(super) fn was_cut_off(modern: &Attempt) -> bool {
    modern.result.as_ref().err().is_some_and(cut_off)
}

/// A control's state: `None` still waiting, `Some(None)` no connection, else its attempt.
type Slot = Option<Option<Attempt>>;

/// The modern handshake to `peer` was cut off ([`was_cut_off`]): a classic hello with the same
/// name, and when that is reset too, the same hello with a control name; each until `until`. A
/// reset of the name and any TLS answer to the control (a certificate, or an alert of the
/// server's) tell a filter.
pub(super) async fn after_reset(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    host: &str,
    (peer, until): (SocketAddr, Instant),
    modern: Attempt,
) -> Outcome {
    let bounded = |f| async move {
        tokio::time::timeout_at(until.into(), f)
            .await
            .ok()
            .flatten()
    };
    let classic = bounded(fresh(setup, alpn, host, peer, None)).await;
    match classic {
        Some(c) if c.result.is_ok() => return Outcome::LargeHello(c),
        Some(ref c) if c.result.as_ref().err().is_some_and(cut_off) => {}
        _ => return Outcome::Own(modern),
    }
    if !names_server(host) {
        return Outcome::Own(modern);
    }
    let other = control_name(host);
    let control = bounded(fresh(setup, alpn, &other, peer, None)).await;
    if !control.as_ref().is_some_and(answered) {
        return Outcome::Own(modern);
    }
    Outcome::Sni(vec![
        Tried::new(setup, alpn, host, None, Some(classic)),
        Tried::new(setup, alpn, &other, None, Some(control)),
    ])
}

/// The modern handshake has had no answer for half the step's time: the classic hello at once,
/// and when it has not got through after a quarter of the time left, the small-MSS and the
/// renamed controls beside it; until they have all finished or `until`. `None`: none decided.
pub(super) async fn after_silence(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    host: &str,
    peer: Option<SocketAddr>,
    until: Instant,
) -> Option<Outcome> {
    let peer = peer?;
    let other = control_name(host);
    let later = Instant::now() + until.saturating_duration_since(Instant::now()) / 4;
    let classic = fresh(setup, alpn, host, peer, None);
    let small = async {
        tokio::time::sleep_until(later.into()).await;
        fresh(setup, alpn, host, peer, Some(SMALL_MSS)).await
    };
    let renamed = async {
        tokio::time::sleep_until(later.into()).await;
        fresh(setup, alpn, &other, peer, None).await
    };
    tokio::pin!(classic, small, renamed);
    let (mut a, mut b, mut c): (Slot, Slot, Slot) = (None, None, None);
    if !names_server(host) {
        // An address sends no server name: there is none to change.
        c = Some(None);
    }
    let stop = tokio::time::sleep_until(until.into());
    tokio::pin!(stop);
    while !(a.as_ref().is_some_and(|x| x.as_ref().is_some_and(answered))
        || (a.is_some() && b.is_some() && c.is_some()))
    {
        tokio::select! {
            got = &mut classic, if a.is_none() => a = Some(got),
            got = &mut small, if b.is_none() => b = Some(got),
            got = &mut renamed, if c.is_none() => c = Some(got),
            _ = &mut stop => break,
        }
    }
    decide(setup, alpn, (host, &other), a, b, c)
}

/// Does a hello to `host` carry a server name (SNI)? Not for an IP address.
fn names_server(host: &str) -> bool {
    matches!(
        ServerName::try_from(host.to_owned()),
        Ok(ServerName::DnsName(_))
    )
}

/// The first control in the module's table that got through while the attempt with the
/// service's name and a normal segment size did not.
fn decide(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    (host, other): (&str, &str),
    a: Slot,
    b: Slot,
    c: Slot,
) -> Option<Outcome> {
    let ok =
        |s: &Slot, f: fn(&Attempt) -> bool| s.as_ref().is_some_and(|x| x.as_ref().is_some_and(f));
    if ok(&a, |x| x.result.is_ok()) {
        return a.flatten().map(Outcome::LargeHello);
    }
    if ok(&a, answered) {
        return None;
    }
    if ok(&b, flight_arrived) {
        let normal = Tried::new(setup, alpn, host, None, a);
        let b = b.flatten()?;
        let small = Tried {
            result: fate(&b),
            ..Tried::new(setup, alpn, host, Some(SMALL_MSS), None)
        };
        return Some(Outcome::Mtu(b, vec![normal, small]));
    }
    // Without a reset to go by, a quick refusal of an unknown name is no proof: the server's
    // certificate must arrive.
    if ok(&c, flight_arrived) {
        return Some(Outcome::Sni(vec![
            Tried::new(setup, alpn, host, None, a),
            Tried::new(setup, alpn, other, None, c),
        ]));
    }
    None
}

/// `tls.sni_blocked`: the same address completes a handshake for another name with a hello of
/// the same size; the one naming the service is reset or never answered.
pub(super) fn sni_blocked(target: &str, host: &str, tried: &[Tried]) -> Check {
    let how = match tried.first().map(|t| t.result) {
        Some("reset") => "reset",
        _ => "never answered",
    };
    let size = tried
        .first()
        .and_then(|t| t.hello_bytes)
        .map(|n| format!(" ({n} bytes)"))
        .unwrap_or_default();
    Check::new(
        crate::model::Probe::Tls,
        Some(target),
        Status::Fail,
        "tls.sni_blocked",
        format!(
            "a filter on the path blocks connections that name {host}: the handshake naming it was {how}, while the same address answered one naming another host with a hello of the same size{size}"
        ),
    )
    .with("control", "same address and hello, another server name")
    .with("attempts", tried.iter().map(Tried::json).collect::<Vec<_>>())
}

/// `tls.mtu_blackhole`: the server's first flight arrives over a connection that asked for small
/// segments and never over one that did not.
pub(super) fn mtu_blackhole(mut check: Check, tried: &[Tried]) -> Check {
    check.restate(
        Status::Fail,
        "tls.mtu_blackhole",
        format!(
            "the server's certificate never arrives in full-size packets and does in {SMALL_MSS}-byte segments: a link on the path carries smaller packets and the ICMP messages that would tell the server are filtered (a path-MTU black hole)"
        ),
    );
    check
        .with("control", "same address and hello, small MSS")
        .with("mss", json!({ "normal": null, "small": SMALL_MSS }))
        .with(
            "attempts",
            tried.iter().map(Tried::json).collect::<Vec<_>>(),
        )
}

/// What the step has left before its bound, less a margin to write the finding in.
pub(super) fn until(entered: Instant, timeout: Duration) -> Instant {
    entered + timeout.saturating_sub((timeout / 10).min(Duration::from_millis(300)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_name_is_as_long_as_the_name_and_keeps_its_dots() {
        let host = "cocoapi.bmwgroup.com";
        let other = control_name(host);
        assert_eq!(other.len(), host.len());
        assert_eq!(other, "netchec.kcontrol.net");
        assert!(ServerName::try_from(other).is_ok());
    }

    #[test]
    fn the_control_stops_before_the_step_does() {
        let now = Instant::now();
        let t = Duration::from_secs(5);
        assert_eq!(until(now, t), now + Duration::from_millis(4700));
        assert!(until(now, Duration::from_millis(500)) < now + Duration::from_millis(500));
    }
}
