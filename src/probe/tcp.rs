//! tcp: open a connection to the endpoint, over IPv4 and IPv6 at once.
//!
//! Each family tries its addresses in order; the first family to connect wins and its socket is
//! handed to the TLS stage, so the pipeline never waits on a broken family. The other family's
//! attempt is still finished (bounded by the step timeout) and kept as an [`Attempt`]: comparing
//! the two is how the ipv6 probe tells a broken IPv6 path from a working one.
//!
//! A failed connect gets one control ([`portfilter`]): the same address on another port (80, or
//! 443 for a plain-HTTP endpoint), started when the first attempt has failed or has had no answer
//! for half the step, and bounded by the step's end. When the failure names a filter by itself
//! (ICMP "administratively prohibited") or the other port answers promptly, the port is filtered
//! on the path: `tcp.filtered`, with the class (`filter`) and the control's result (`control`).
//! A connection that succeeds never waits for a control.

use crate::model::{Check, Probe, Status, ms};
use crate::probe::attempt::{Attempt, Outcome};
use crate::probe::definition::{Definition, Key, Metric, Perf, Prometheus, Run, Stage};
use crate::probe::portfilter::{self, Control, Filter};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The tcp probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Tcp,
    name: "tcp",
    description: "connect to the resolved addresses (IPv4 and IPv6 at once)",
    codes: &[
        "tcp.ok",
        "tcp.refused",
        "tcp.timeout",
        "tcp.unreachable",
        "tcp.error",
        "tcp.local_limit",
        "tcp.nat64_failed",
        "tcp.filtered",
        "tcp.skipped",
    ],
    keys: &[Key::scalar("connect_ms"), Key::scalar("address")],
    metrics: &[Metric {
        key: "connect_ms",
        prometheus: Prometheus::Phase("connect"),
        nagios: Perf::Millis("connect"),
    }],
    needs: &[Probe::Dns],
    run: Run::Stage(Stage::Connect),
};

/// A connection handed on to later stages.
pub struct Connected {
    pub stream: TcpStream,
    pub address: SocketAddr,
}

pub struct TcpResult {
    pub check: Check,
    pub connected: Option<Connected>,
    /// Attempts that finished within the stage.
    pub attempts: Vec<Attempt>,
    /// The other family's attempt, still running when the winner connected.
    pub pending: Option<JoinHandle<Vec<Attempt>>>,
}

/// One family's end: the attempt that ended it, its socket when it connected, and how a failure
/// was turned away.
type FamilyEnd = (Attempt, Option<TcpStream>, Filter);

/// Tries the addresses of one family in order until one connects or the time is up.
async fn try_family(addrs: Vec<SocketAddr>, timeout: Duration) -> FamilyEnd {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    for address in addrs {
        let started = Instant::now();
        let res = tokio::time::timeout_at(deadline, portfilter::connect(address)).await;
        let connect_ms = ms(started.elapsed());
        let (outcome, stream, detail, filter) = match res {
            Ok((Ok(s), _)) => {
                // The TLS Finished and the HTTP request are small writes back to back: without
                // NODELAY, Nagle holds the request for a round trip and every later figure lies.
                let _ = s.set_nodelay(true);
                (Outcome::Ok, Some(s), String::new(), Filter::Other)
            }
            Ok((Err(e), icmp)) => (
                Outcome::of(&e),
                None,
                e.to_string(),
                Filter::of(Some(&e), icmp),
            ),
            Err(_) => (
                Outcome::Timeout,
                None,
                format!("no answer within {}", humantime::format_duration(timeout)),
                Filter::Drop,
            ),
        };
        let attempt = Attempt {
            address,
            outcome,
            connect_ms,
            detail,
        };
        if stream.is_some() || outcome == Outcome::Timeout {
            return (attempt, stream, filter);
        }
        last = Some((attempt, filter));
    }
    let (attempt, filter) = last.unwrap_or((
        Attempt {
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
            outcome: Outcome::Error,
            connect_ms: 0.0,
            detail: "no address".into(),
        },
        Filter::Other,
    ));
    (attempt, None, filter)
}

/// Runs the tcp stage against the resolved addresses. `slow_ms` is the profile's latency warning
/// threshold: a control slower than that measured a slow path, which a silence may be part of.
pub async fn run(
    target: &str,
    addrs: &[IpAddr],
    (port, slow_ms): (u16, f64),
    timeout: Duration,
) -> TcpResult {
    let started = Instant::now();
    let step_end = tokio::time::Instant::now() + timeout;
    let race = race(addrs, port, timeout);
    tokio::pin!(race);
    let mut control = None;
    let (attempts, winner, pending) = match tokio::time::timeout(timeout / 2, &mut race).await {
        Ok(done) => done,
        Err(_) => {
            // No answer for half the step: the control starts now, inside the step's time.
            let preferred = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first());
            control = preferred
                .filter(|ip| on_a_path(ip))
                .map(|ip| spawn_control(SocketAddr::new(*ip, port), step_end));
            race.await
        }
    };
    match winner {
        Some((attempt, stream)) => {
            if let Some(c) = control {
                c.abort();
            }
            let elapsed = started.elapsed();
            connected(target, attempts, attempt, stream, pending, elapsed)
        }
        None => {
            let failure = Failure::of(attempts, port);
            let control = match control {
                Some(c) => c.await.ok(),
                // This device's own limit says nothing about the path: no control.
                None if failure.primary.outcome == Outcome::LocalLimit => None,
                None if on_a_path(&failure.primary.address.ip()) => {
                    spawn_control(failure.primary.address, step_end).await.ok()
                }
                None => None,
            };
            let timing = (timeout, slow_ms, started.elapsed());
            failed(target, failure, control, timing)
        }
    }
}

/// Whether a control can tell anything: not for the placeholder of "no address", and not on
/// loopback, where no path lies between and a reset is a closed port.
fn on_a_path(ip: &IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_loopback()
}

/// The control connect to `address`'s host on the other port, bounded by the step's end.
fn spawn_control(address: SocketAddr, step_end: tokio::time::Instant) -> JoinHandle<Control> {
    let other = SocketAddr::new(address.ip(), portfilter::control_port(address.port()));
    let budget = step_end.saturating_duration_since(tokio::time::Instant::now());
    tokio::spawn(portfilter::control(other, budget))
}

/// A family's failed attempts (with how each was turned away), the winner if one connected,
/// and the other family's attempt still under way (it finishes on its own; a late socket is
/// simply closed).
type Race = (
    Vec<(Attempt, Filter)>,
    Option<(Attempt, TcpStream)>,
    Option<JoinHandle<Vec<Attempt>>>,
);

/// IPv6 and IPv4 at once; the first connection wins.
async fn race(addrs: &[IpAddr], port: u16, timeout: Duration) -> Race {
    let v6: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| a.is_ipv6())
        .map(|a| SocketAddr::new(*a, port))
        .collect();
    let v4: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| a.is_ipv4())
        .map(|a| SocketAddr::new(*a, port))
        .collect();

    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    for fam in [v6, v4] {
        if !fam.is_empty() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(try_family(fam, timeout).await).await;
            });
        }
    }
    drop(tx);
    let mut attempts = Vec::new();
    let mut winner: Option<(Attempt, TcpStream)> = None;
    while let Some((attempt, stream, filter)) = rx.recv().await {
        match stream {
            Some(stream) => {
                winner = Some((attempt, stream));
                break;
            }
            None => attempts.push((attempt, filter)),
        }
    }
    // Whatever is still running finishes on its own; a late socket is simply closed.
    let pending = winner.is_some().then(|| {
        tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Some((a, _late, _)) = rx.recv().await {
                rest.push(a);
            }
            rest
        })
    });
    (attempts, winner, pending)
}

fn connected(
    target: &str,
    failed: Vec<(Attempt, Filter)>,
    attempt: Attempt,
    stream: TcpStream,
    pending: Option<JoinHandle<Vec<Attempt>>>,
    elapsed: Duration,
) -> TcpResult {
    let t = Some(target);
    let mut attempts: Vec<Attempt> = failed.into_iter().map(|(a, _)| a).collect();
    let family = if attempt.address.is_ipv6() {
        "IPv6"
    } else {
        "IPv4"
    };
    let check = Check::new(
        Probe::Tcp,
        t,
        Status::Pass,
        "tcp.ok",
        format!(
            "connected to {} over {family} in {:.1} ms",
            attempt.address, attempt.connect_ms
        ),
    )
    .took(elapsed)
    .with("connect_ms", attempt.connect_ms)
    .with("address", attempt.address.to_string())
    .with("family", family.to_lowercase())
    .with(
        "attempts",
        attempts
            .iter()
            .chain([&attempt])
            .map(Attempt::to_json)
            .collect::<Vec<_>>(),
    );
    let address = attempt.address;
    attempts.push(attempt);
    TcpResult {
        check,
        connected: Some(Connected { stream, address }),
        attempts,
        pending,
    }
}

/// A failed stage: every attempt, and the one the report names (IPv4's, when there is one: a
/// missing IPv6 route is common and says little, while IPv4 is the path the app falls back to)
/// with how it was turned away.
struct Failure {
    attempts: Vec<Attempt>,
    primary: Attempt,
    filter: Filter,
}

impl Failure {
    fn of(ended: Vec<(Attempt, Filter)>, port: u16) -> Failure {
        let (primary, filter) = ended
            .iter()
            .find(|(a, _)| a.address.is_ipv4())
            .or_else(|| ended.first())
            .cloned()
            .unwrap_or((
                Attempt {
                    address: SocketAddr::from(([0, 0, 0, 0], port)),
                    outcome: Outcome::Error,
                    connect_ms: 0.0,
                    detail: "no address to connect to".into(),
                },
                Filter::Other,
            ));
        Failure {
            attempts: ended.into_iter().map(|(a, _)| a).collect(),
            primary,
            filter,
        }
    }
}

/// The check of a failed stage; `timing` is the step timeout, the latency warning threshold
/// (ms) and the time the stage took.
fn failed(
    target: &str,
    failure: Failure,
    control: Option<Control>,
    (timeout, slow_ms, elapsed): (Duration, f64, Duration),
) -> TcpResult {
    let Failure {
        attempts,
        primary,
        filter,
    } = failure;
    let port = primary.address.port();
    // The tool's own resource failure is no evidence about the network: a skip.
    let local = primary.outcome == Outcome::LocalLimit;
    let filtered = if local {
        None
    } else {
        portfilter::verdict(filter, control.as_ref())
    };
    let (status, code, summary) = match filtered {
        Some(class) => (
            Status::Fail,
            "tcp.filtered",
            filtered_summary(&primary, class, control.as_ref(), timeout),
        ),
        None if local => (
            Status::Skip,
            primary.outcome.code(),
            plain_summary(&primary, timeout),
        ),
        None => (
            Status::Fail,
            primary.outcome.code(),
            plain_summary(&primary, timeout),
        ),
    };
    let mut check = Check::new(Probe::Tcp, Some(target), status, code, summary)
        .took(elapsed)
        .with("connect_ms", serde_json::Value::Null)
        .with("address", primary.address.to_string())
        .with(
            "attempts",
            attempts.iter().map(Attempt::to_json).collect::<Vec<_>>(),
        );
    if let Some(class) = filtered {
        check = check
            .with("filter", class.label())
            .with("port", port)
            .with("decided_by", class.decided_by());
        // A silent drop is the one class a weak link can imitate: the diagnosis weighs it
        // against the loss and latency the run measured.
        if class == Filter::Drop {
            check = check.with("reason", "silent_drop");
            // The control's own round trip is a latency sample: above the threshold, the path
            // itself is slow, and the diagnosis counts the silence as the link's.
            if control.as_ref().is_some_and(|c| c.connect_ms > slow_ms) {
                check = check.with("slow_path", true);
            }
        }
    }
    if let Some(c) = &control {
        check = check.with("control", c.to_json());
    }
    TcpResult {
        check,
        connected: None,
        attempts,
        pending: None,
    }
}

/// The sentence of a failure no filter explains.
fn plain_summary(primary: &Attempt, timeout: Duration) -> String {
    let port = primary.address.port();
    match primary.outcome {
        Outcome::Refused => format!(
            "{} refused the connection (nothing listens on port {port}, or a firewall rejects it)",
            primary.address
        ),
        Outcome::Timeout => format!(
            "no answer from {} within {} (packets dropped on the way, or the host is down)",
            primary.address,
            humantime::format_duration(timeout)
        ),
        Outcome::Unreachable => {
            format!("no route to {} ({})", primary.address, primary.detail)
        }
        Outcome::LocalLimit => format!(
            "not measured: this device could not open a connection to {} ({}) — a limit of this machine and of bmw-netcheck, not a network finding",
            primary.address, primary.detail
        ),
        _ => format!("cannot connect to {}: {}", primary.address, primary.detail),
    }
}

/// The sentence of a port filter: the port, how it is turned away, and what the control saw.
fn filtered_summary(
    primary: &Attempt,
    class: Filter,
    control: Option<&Control>,
    timeout: Duration,
) -> String {
    let port = primary.address.port();
    let ip = primary.address.ip();
    let (verb, how) = class.words();
    let head = if class == Filter::LocalProhibited {
        format!("this device's own firewall rules refuse connections to port {port} of {ip}")
    } else {
        format!("a firewall {verb} connections to port {port} of {ip}{how}")
    };
    let waited = if class == Filter::Drop {
        format!(
            " (no answer within {})",
            humantime::format_duration(timeout)
        )
    } else {
        String::new()
    };
    let tail = match control {
        Some(c) if c.result == "connected" => format!(
            ", while port {} of the same host accepted a connection in {:.1} ms",
            c.address.port(),
            c.connect_ms
        ),
        Some(c) if c.answered() => format!(
            ", while port {} of the same host answered at once (in {:.1} ms)",
            c.address.port(),
            c.connect_ms
        ),
        Some(c) => format!(
            "; port {} of the same host did not answer either ({})",
            c.address.port(),
            c.result.replace('_', " ")
        ),
        None => String::new(),
    };
    format!("{head}{waited}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attempt(outcome: Outcome) -> Attempt {
        Attempt {
            address: SocketAddr::from(([192, 0, 2, 7], 443)),
            outcome,
            connect_ms: 5.0,
            detail: String::new(),
        }
    }

    fn control(result: &'static str) -> Control {
        Control {
            address: SocketAddr::from(([192, 0, 2, 7], 80)),
            result,
            connect_ms: 1.5,
        }
    }

    #[test]
    fn a_port_filter_is_named_with_its_port_class_and_control() {
        let failure = Failure::of(vec![(attempt(Outcome::Timeout), Filter::Drop)], 443);
        let t = Duration::from_secs(2);
        let r = failed("api", failure, Some(control("connected")), (t, 250.0, t));
        assert_eq!(r.check.code, "tcp.filtered");
        assert!(r.check.summary.contains("port 443"), "{}", r.check.summary);
        assert!(!r.check.data.contains_key("slow_path"));
        assert_eq!(r.check.data_str("filter"), Some("drop"));
        assert_eq!(r.check.data_str("reason"), Some("silent_drop"));
        assert_eq!(r.check.data["control"]["result"], json!("connected"));
        assert_eq!(r.check.data["control"]["port"], json!(80));
        assert_eq!(r.check.data_str("decided_by"), Some("control"));
    }

    #[test]
    fn a_slow_control_marks_the_path_slow() {
        let failure = Failure::of(vec![(attempt(Outcome::Timeout), Filter::Drop)], 443);
        let t = Duration::from_secs(2);
        let slow = Control {
            connect_ms: 310.0,
            ..control("connected")
        };
        let r = failed("api", failure, Some(slow), (t, 250.0, t));
        assert_eq!(r.check.code, "tcp.filtered");
        assert_eq!(r.check.data["slow_path"], json!(true));
    }

    #[test]
    fn silence_on_both_ports_stays_a_timeout() {
        let failure = Failure::of(vec![(attempt(Outcome::Timeout), Filter::Drop)], 443);
        let t = Duration::from_secs(2);
        let r = failed("api", failure, Some(control("timeout")), (t, 250.0, t));
        assert_eq!(r.check.code, "tcp.timeout");
        assert_eq!(r.check.data["control"]["result"], json!("timeout"));
        assert!(!r.check.data.contains_key("filter"));
    }

    #[test]
    fn icmp_admin_prohibited_needs_no_control() {
        let a = attempt(Outcome::Unreachable);
        let failure = Failure::of(vec![(a, Filter::IcmpAdminProhibited)], 443);
        let t = Duration::from_secs(2);
        let r = failed("api", failure, Some(control("timeout")), (t, 250.0, t));
        assert_eq!(r.check.code, "tcp.filtered");
        assert_eq!(r.check.data_str("filter"), Some("icmp_admin_prohibited"));
        assert!(r.check.summary.contains("administratively prohibited"));
        assert_eq!(r.check.data_str("decided_by"), Some("icmp"));
        assert!(!r.check.data.contains_key("reason"));
    }
}
