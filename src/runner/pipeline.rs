//! One endpoint's pipeline, stage by stage: dns → tcp → (tls → http) ‖ latency.
//!
//! The pipeline is walked by the places the registry gives the stages ([`Stage`]): the ones that
//! resolve and connect in turn, then the secure stages over the connection beside the stages that
//! need only its address. [`step`] is the one exhaustive `match` over the probes that says how
//! each endpoint stage runs, so a stage that is registered and never run does not compile (and a
//! test checks every endpoint stage has its step). Each step goes through the runner's
//! [`stage`](super::stage), which keeps the time; what a stage hands on to the next travels in
//! [`Carry`].

use super::{Bound, Env, Shared, skip_after, stage};
use crate::model::{Check, Probe};
use crate::probe::attempt::{Attempt, Outcome};
use crate::probe::definition::Stage;
use crate::probe::{control, dns, http, latency, registry, tcp, tls};
use crate::profile::{Endpoint, Protocol};
use crate::proxypath;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// What the stages of one lane hand on to the ones after them.
#[derive(Default)]
pub(super) struct Carry {
    /// The dns stage's answer (or the IP literal).
    addrs: Vec<IpAddr>,
    /// The tcp stage's connection, until the tls stage takes it.
    stream: Option<TcpStream>,
    /// The connected address and the tcp stage's connect time, the first latency sample.
    address: Option<SocketAddr>,
    first_sample: Option<f64>,
    /// The other family's attempt, still under way when the winner connected.
    pending: Option<tokio::task::JoinHandle<Vec<Attempt>>>,
    /// The tls stage's session, until the http stage takes it.
    session: Option<TlsStream<TcpStream>>,
}

/// Whether the lane goes on after a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Next,
    /// The stage failed or was left out; it has recorded the skips of those that need it.
    Stop,
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Flow> + Send + 'a>>;

/// How an endpoint stage runs: given the endpoint, the run's settings, the slot it records into
/// and what the earlier stages handed on.
pub(super) type Step =
    for<'a> fn(&'a Endpoint, &'a Env, &'a Shared, &'a mut Carry) -> StepFuture<'a>;

/// Every endpoint stage's step: the one exhaustive `match` over the probes in the pipeline. A new
/// endpoint stage does not compile until it has its arm; device probes and readers have none.
pub(super) fn step(probe: Probe) -> Option<Step> {
    match probe {
        Probe::Dns => Some(|ep, env, slot, carry| Box::pin(dns_stage(ep, env, slot, carry))),
        Probe::Tcp => Some(|ep, env, slot, carry| Box::pin(tcp_stage(ep, env, slot, carry))),
        Probe::Tls => Some(|ep, env, slot, carry| Box::pin(tls_stage(ep, env, slot, carry))),
        Probe::Http => Some(|ep, env, slot, carry| Box::pin(http_stage(ep, env, slot, carry))),
        Probe::Latency => {
            Some(|ep, env, slot, carry| Box::pin(latency_stage(ep, env, slot, carry)))
        }
        Probe::Storage
        | Probe::Proxy
        | Probe::Vpn
        | Probe::Clock
        | Probe::Captive
        | Probe::Ipv6
        | Probe::Resolvconf
        | Probe::Egress => None,
    }
}

/// Runs the stages at these places, in pipeline order, until one stops the lane.
async fn lane(places: &[Stage], ep: &Endpoint, env: &Env, slot: &Shared, carry: &mut Carry) {
    let probes =
        registry::endpoint_stages().filter(|p| p.stage().is_some_and(|s| places.contains(&s)));
    for probe in probes {
        let Some(run) = step(probe) else { continue };
        if run(ep, env, slot, carry).await == Flow::Stop {
            return;
        }
    }
}

/// A boxed future, built outside any `async` body.
type Boxed<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// [`pipeline`] on the heap. Made in a plain function, never inlined: an `async` body that
/// wrote `Box::pin(pipeline(..)).await` itself could keep room for the unboxed future in its
/// own state (the optimizer's inlining of `Box::pin` leaves it a local across the await), and
/// every queued endpoint's task would then be as large as a whole pipeline.
#[inline(never)]
pub(super) fn boxed(ep: Endpoint, env: Arc<Env>, slot: Shared) -> Boxed<'static> {
    Box::pin(pipeline(ep, env, slot))
}

/// [`direct`] on the heap, built the same way as [`boxed`].
#[inline(never)]
fn boxed_direct<'a>(ep: &'a Endpoint, env: &'a Env, slot: &'a Shared) -> Boxed<'a> {
    Box::pin(direct(ep, env, slot))
}

/// One endpoint: dns → tcp → (tls → http) ‖ latency; with a proxy, http (or a TLS-only
/// endpoint's handshake) also goes through it, alongside the direct stages (which still tell
/// whether the direct path works; `crosscheck` judges the run by the proxy's path).
pub(super) async fn pipeline(ep: Endpoint, env: Arc<Env>, slot: Shared) {
    let Some(proxied) = proxypath::proxied_stage(&ep, &env.proxy, &env.selection) else {
        let run = boxed_direct(&ep, &env, &slot);
        return run.await;
    };
    let probe = proxied.probe();
    if probe == Probe::Http {
        slot.lock().http_via_proxy = true;
    }
    // Boxed, so a queued or early-failing endpoint holds a pointer, not the state of every
    // stage it may reach.
    let via = Box::pin(async {
        let warn_days = env.thresholds.cert_expiry_warn_days;
        let c = proxied.check(&ep, &env.tls, env.timeout, warn_days).await;
        (c, Some(()))
    });
    let run = boxed_direct(&ep, &env, &slot);
    let _ = tokio::join!(
        run,
        stage(&slot, &env, &ep, (probe, Bound::OwnSteps), via, None)
    );
}

/// The direct path, stage by stage in the pipeline's order; a stage that fails or is left out
/// skips the stages that need it.
async fn direct(ep: &Endpoint, env: &Env, slot: &Shared) {
    let mut carry = Carry::default();
    lane(&[Stage::Resolve, Stage::Connect], ep, env, slot, &mut carry).await;
    let Some(address) = carry.address else {
        return;
    };
    let mut beside = Carry {
        address: Some(address),
        first_sample: carry.first_sample,
        ..Carry::default()
    };
    // tls → http, and latency beside them: the samples need not wait for the handshake.
    tokio::join!(
        lane(&[Stage::Secure, Stage::Request], ep, env, slot, &mut carry),
        lane(&[Stage::Beside], ep, env, slot, &mut beside)
    );
    if let Some(p) = carry.pending.take()
        && let Ok(late) = p.await
    {
        slot.lock().attempts.extend(late);
    }
}

/// The tcp stage's connect time to `address`: the first latency sample.
fn attempts_winner_ms(slot: &Shared, address: SocketAddr) -> Option<f64> {
    slot.lock()
        .attempts
        .iter()
        .rev()
        .find(|a| a.address == address && a.outcome == Outcome::Ok)
        .map(|a| a.connect_ms)
}

/// The addresses to connect to: the IP literal, or the dns stage's answer.
async fn dns_stage(ep: &Endpoint, env: &Env, slot: &Shared, carry: &mut Carry) -> Flow {
    let sel = &env.selection;
    if let Some(ip) = ep.ip_literal() {
        if sel.reported(Probe::Dns) {
            let why = format!("{ip} is an IP address; no lookup needed");
            let c = Check::skipped(Probe::Dns, Some(&ep.name), why);
            slot.lock()
                .checks
                .push(c.with("addresses", vec![ip.to_string()]));
        }
        carry.addrs = vec![ip];
        return Flow::Next;
    }
    if !sel.runs(Probe::Dns) {
        let why = "needs an address, and the dns stage was left out";
        skip_after(slot, ep, sel, Probe::Dns, why);
        return Flow::Stop;
    }
    let step_end = tokio::time::Instant::now() + env.timeout;
    let lookup = Box::pin(async {
        let found = dns::run(
            &env.resolver,
            &env.resolver_label,
            &env.resolver_servers,
            ep,
            env.timeout,
        )
        .await;
        // The second opinion, within what is left of the step (see `probe::control`).
        let url = env.resolver_url.as_ref();
        control::judge(&env.control, url, ep, found, step_end).await
    });
    let bound = (Probe::Dns, Bound::StepWithGrace);
    match stage(slot, env, ep, bound, lookup, None).await {
        Ok(a) => {
            carry.addrs = a;
            Flow::Next
        }
        Err(code) => {
            let why = format!("needs an address; dns failed ({code})");
            skip_after(slot, ep, sel, Probe::Dns, &why);
            Flow::Stop
        }
    }
}

/// The connection, and the other family's attempt still under way.
async fn tcp_stage(ep: &Endpoint, env: &Env, slot: &Shared, carry: &mut Carry) -> Flow {
    let sel = &env.selection;
    if !sel.runs(Probe::Tcp) {
        let why = "needs a connection, and the tcp stage was left out";
        skip_after(slot, ep, sel, Probe::Tcp, why);
        return Flow::Stop;
    }
    // The roots and the random seed are set up once, overlapping the first connect: a run whose
    // names all fail never pays for them.
    if sel.runs(Probe::Tls) {
        env.tls.warm_up();
    }
    let addrs = std::mem::take(&mut carry.addrs);
    let connect = Box::pin(async {
        let slow_ms = env.thresholds.latency_warn_ms;
        let r = tcp::run(&ep.name, &addrs, (ep.port, slow_ms), env.timeout).await;
        slot.lock().attempts.extend(r.attempts);
        let done = r.connected.map(|connected| (connected, r.pending));
        (r.check, done)
    });
    match stage(slot, env, ep, (Probe::Tcp, Bound::OwnSteps), connect, None).await {
        Ok((connected, pending)) => {
            carry.first_sample = attempts_winner_ms(slot, connected.address);
            carry.address = Some(connected.address);
            carry.stream = Some(connected.stream);
            carry.pending = pending;
            Flow::Next
        }
        Err(code) => {
            let why = format!("needs a connection; tcp failed ({code})");
            skip_after(slot, ep, sel, Probe::Tcp, &why);
            Flow::Stop
        }
    }
}

/// The handshake over the connection; an HTTPS endpoint's session goes on to http.
async fn tls_stage(ep: &Endpoint, env: &Env, slot: &Shared, carry: &mut Carry) -> Flow {
    let sel = &env.selection;
    if !sel.runs(Probe::Tls) {
        let why = "needs a connection, and the tls stage was left out";
        skip_after(slot, ep, sel, Probe::Tls, why);
        return Flow::Stop;
    }
    let (Some(stream), Some(address)) = (carry.stream.take(), carry.address) else {
        return Flow::Stop;
    };
    let handshake = Box::pin(tls::run(
        &env.tls,
        &ep.name,
        &ep.host,
        tls::alpn(ep.protocol),
        stream,
        env.thresholds.cert_expiry_warn_days,
        tls::Policy::for_endpoint(ep, env.timeout),
    ));
    let bound = (Probe::Tls, Bound::Step);
    let session = stage(slot, env, ep, bound, handshake, Some(address)).await;
    if ep.protocol == Protocol::Tls {
        return Flow::Stop;
    }
    match session {
        Ok(s) => {
            carry.session = Some(s);
            Flow::Next
        }
        Err(code) => {
            let why = format!("needs a TLS session; tls failed ({code})");
            skip_after(slot, ep, sel, Probe::Tls, &why);
            Flow::Stop
        }
    }
}

/// The request over the session (an HTTPS endpoint whose http does not go through a proxy).
async fn http_stage(ep: &Endpoint, env: &Env, slot: &Shared, carry: &mut Carry) -> Flow {
    let Some(session) = carry.session.take() else {
        return Flow::Stop;
    };
    if !env.selection.runs(Probe::Http) || slot.lock().http_via_proxy {
        return Flow::Stop;
    }
    let request = Box::pin(async {
        let c = http::run(
            &ep.name,
            &http::host_header(ep),
            http::Ask::of(ep),
            ep.expect_status.as_deref(),
            ep.reading,
            session,
            env.timeout,
        )
        .await;
        (c, Some(()))
    });
    let _ = stage(slot, env, ep, (Probe::Http, Bound::OwnSteps), request, None).await;
    tls::client_cert_refusal(&mut slot.lock().checks, &ep.name);
    Flow::Next
}

/// The latency samples, beside tls and http.
async fn latency_stage(ep: &Endpoint, env: &Env, slot: &Shared, carry: &mut Carry) -> Flow {
    let Some(address) = carry.address else {
        return Flow::Stop;
    };
    if !env.selection.runs(Probe::Latency) {
        return Flow::Stop;
    }
    let first_sample = carry.first_sample;
    let samples = Box::pin(async {
        let c = latency::run(
            &ep.name,
            address,
            first_sample,
            env.samples,
            env.timeout,
            &env.thresholds,
        )
        .await;
        (c, Some(()))
    });
    let _ = stage(
        slot,
        env,
        ep,
        (Probe::Latency, Bound::OwnSteps),
        samples,
        None,
    )
    .await;
    Flow::Next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::definition::Kind;

    #[test]
    fn every_endpoint_stage_has_its_step_and_nothing_else_has_one() {
        for p in Probe::all().iter().copied() {
            assert_eq!(step(p).is_some(), p.kind() == Kind::Endpoint, "{p}");
        }
    }
}
