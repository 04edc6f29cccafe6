//! tcp: open a connection to the endpoint, over IPv4 and IPv6 at once.
//!
//! Each family tries its addresses in order; the first family to connect wins and its socket is
//! handed to the TLS stage, so the pipeline never waits on a broken family. The other family's
//! attempt is still finished (bounded by the step timeout) and kept as an [`Attempt`]: comparing
//! the two is how the ipv6 probe tells a broken IPv6 path from a working one.

use crate::model::{Check, Probe, Status, ms};
use crate::probe::attempt::{Attempt, Outcome};
use crate::probe::definition::{Definition, Key, Metric, Perf, Prometheus, Run, Stage};
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

/// Tries the addresses of one family in order until one connects or the time is up.
async fn try_family(addrs: Vec<SocketAddr>, timeout: Duration) -> (Attempt, Option<TcpStream>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    for address in addrs {
        let started = Instant::now();
        let res = tokio::time::timeout_at(deadline, crate::iface::connect(address)).await;
        let connect_ms = ms(started.elapsed());
        let (outcome, stream, detail) = match res {
            Ok(Ok(s)) => {
                // The TLS Finished and the HTTP request are small writes back to back: without
                // NODELAY, Nagle holds the request for a round trip and every later figure lies.
                let _ = s.set_nodelay(true);
                (Outcome::Ok, Some(s), String::new())
            }
            Ok(Err(e)) => (Outcome::of(&e), None, e.to_string()),
            Err(_) => (
                Outcome::Timeout,
                None,
                format!("no answer within {}", humantime::format_duration(timeout)),
            ),
        };
        let attempt = Attempt {
            address,
            outcome,
            connect_ms,
            detail,
        };
        if stream.is_some() || outcome == Outcome::Timeout {
            return (attempt, stream);
        }
        last = Some(attempt);
    }
    let attempt = last.unwrap_or(Attempt {
        address: SocketAddr::from(([0, 0, 0, 0], 0)),
        outcome: Outcome::Error,
        connect_ms: 0.0,
        detail: "no address".into(),
    });
    (attempt, None)
}

/// Runs the tcp stage against the resolved addresses.
pub async fn run(target: &str, addrs: &[IpAddr], port: u16, timeout: Duration) -> TcpResult {
    let started = Instant::now();
    let (attempts, winner, pending) = race(addrs, port, timeout).await;
    let elapsed = started.elapsed();
    match winner {
        Some((attempt, stream)) => connected(target, attempts, attempt, stream, pending, elapsed),
        None => failed(target, attempts, port, timeout, elapsed),
    }
}

/// A family's failed attempts, the winner if one connected, and the other family's attempt
/// still under way (it finishes on its own; a late socket is simply closed).
type Race = (
    Vec<Attempt>,
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
    while let Some((attempt, stream)) = rx.recv().await {
        match stream {
            Some(stream) => {
                winner = Some((attempt, stream));
                break;
            }
            None => attempts.push(attempt),
        }
    }
    // Whatever is still running finishes on its own; a late socket is simply closed.
    let pending = winner.is_some().then(|| {
        tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Some((a, _late)) = rx.recv().await {
                rest.push(a);
            }
            rest
        })
    });
    (attempts, winner, pending)
}

fn connected(
    target: &str,
    mut attempts: Vec<Attempt>,
    attempt: Attempt,
    stream: TcpStream,
    pending: Option<JoinHandle<Vec<Attempt>>>,
    elapsed: Duration,
) -> TcpResult {
    let t = Some(target);
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

fn failed(
    target: &str,
    attempts: Vec<Attempt>,
    port: u16,
    timeout: Duration,
    elapsed: Duration,
) -> TcpResult {
    let t = Some(target);
    // Report IPv4's failure when there is one: a missing IPv6 route is common and says
    // little, while IPv4 is the path the app falls back to.
    let primary = attempts
        .iter()
        .find(|a| a.address.is_ipv4())
        .or_else(|| attempts.first())
        .cloned()
        .unwrap_or(Attempt {
            address: SocketAddr::from(([0, 0, 0, 0], port)),
            outcome: Outcome::Error,
            connect_ms: 0.0,
            detail: "no address to connect to".into(),
        });
    let summary = match primary.outcome {
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
    };
    // The tool's own resource failure is no evidence about the network: a skip.
    let status = if primary.outcome == Outcome::LocalLimit {
        Status::Skip
    } else {
        Status::Fail
    };
    let check = Check::new(Probe::Tcp, t, status, primary.outcome.code(), summary)
        .took(elapsed)
        .with("connect_ms", serde_json::Value::Null)
        .with("address", primary.address.to_string())
        .with(
            "attempts",
            attempts.iter().map(Attempt::to_json).collect::<Vec<_>>(),
        );
    TcpResult {
        check,
        connected: None,
        attempts,
        pending: None,
    }
}
