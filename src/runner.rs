//! The runner owns concurrency and time.
//!
//! Every endpoint gets one task running its pipeline (dns → tcp → then tls → http alongside the
//! latency samples); device probes get a task each; all start at once. Each step is bounded by the
//! step timeout and the whole run by the deadline. Stages record their checks as they finish, so
//! when the deadline passes the runner still knows what was done: the stage that was running
//! becomes `<probe>.timeout`, the stages after it `skip`, and the report is produced regardless.
//! What each stage does is not decided here: `pipeline` (`src/runner/pipeline.rs`) walks an
//! endpoint's stages by the places their definitions give, and the proxy path is put together
//! in [`crate::proxypath`]; this file only starts them, bounds them and accounts for them.
//!
//! The tool's own resources are bounded too: the soft limit on open files is raised to the hard
//! one where the system allows ([`crate::platform::limits::raise_fd_limit`]), and the pipelines
//! in flight are capped to what that limit can hold ([`pipelines_in_flight`]), so a profile of
//! thousands of endpoints queues instead of failing with "Too many open files" — a failure
//! that is this device's limit, and that would otherwise read as a bad network.

mod pipeline;

use crate::iface::Resolver;
use crate::model::{Check, Probe};
use crate::plan::Selection;
use crate::probe::attempt::Attempt;
use crate::probe::definition::DeviceFuture;
use crate::probe::proxyenv::ProxyEnv;
use crate::probe::{registry, tls};
use crate::profile::{Endpoint, Profile, Protocol, Thresholds};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Descriptors one pipeline holds at most at once: DNS sockets (A and AAAA), one connect per
/// family, a late family's socket, a latency sample.
const FDS_PER_PIPELINE: u64 = 6;

/// The most endpoint pipelines in flight, whatever the descriptors allow. One thread runs the
/// probes: what it cannot start at once only waits in its queue, and a lookup waiting there long
/// enough is sent again by the resolver library (its resend floor is 333 ms) and timed as slow.
/// With 1,024 in flight a run of thousands of names made half again as many sockets as questions,
/// timed loopback answers at 150 ms and more, and overflowed the resolver's socket; 256 keeps the
/// queued work to tens of milliseconds (one socket per question, bench/lean.py's scale case).
/// A pipeline in its dns stage holds some 40 KB, so the cap also bounds the run's memory.
const MAX_IN_FLIGHT: u64 = 256;

/// How many endpoint pipelines may run at once under a soft limit of `nofile` descriptors:
/// a reserve for the runtime, stdio, files and device probes, the rest shared by pipelines.
pub fn pipelines_in_flight(nofile: u64) -> usize {
    let reserve = (nofile / 4).clamp(8, 64);
    (nofile.saturating_sub(reserve) / FDS_PER_PIPELINE).clamp(1, MAX_IN_FLIGHT) as usize
}

/// The dns stage keeps to the step timeout itself (its retry and second look included); the
/// runner's bound sits just past it, so the stage's own findings are not cut off by a hair.
const DNS_GRACE: Duration = Duration::from_millis(50);

/// What every probe of a run shares.
pub struct Env {
    pub timeout: Duration,
    pub deadline: Duration,
    pub samples: u32,
    pub thresholds: Thresholds,
    pub resolver: Result<Resolver, String>,
    pub resolver_label: String,
    /// Where the resolver's queries go, for the dns stage's second look at a failed answer.
    pub resolver_servers: crate::probe::resolverid::Servers,
    /// The control resolver: a second opinion the dns stage asks (see `probe::control`).
    pub control: Arc<crate::probe::control::Control>,
    /// The resolver named with `--resolver` (plain DNS, DoT or DoH), if any.
    pub resolver_url: Option<crate::resolverurl::DnsServer>,
    pub tls: tls::TlsSetup,
    pub selection: Selection,
    pub proxy: ProxyEnv,
    /// Called with an endpoint's name when its pipeline is done (progress display).
    pub on_done: Option<DoneHook>,
}

/// Resolves when the run should stop early and report what it has (Ctrl-C).
pub type Interrupt = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Called with an endpoint's name when its pipeline is done.
pub type DoneHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What one endpoint's pipeline has found so far; shared with the runner so nothing is lost when
/// the deadline cuts the pipeline short.
#[derive(Default)]
pub struct Slot {
    /// The http stage goes through a proxy, apart from the direct pipeline.
    pub http_via_proxy: bool,
    pub checks: Vec<Check>,
    /// Stages under way, with when they started.
    pub running: BTreeMap<Probe, Instant>,
    pub attempts: Vec<Attempt>,
}

#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Slot>>);

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panicking probe must not take the report with it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Results of the endpoint pipelines, per endpoint, in profile order.
pub struct EndpointResults {
    pub endpoint: Endpoint,
    pub checks: Vec<Check>,
    pub attempts: Vec<Attempt>,
}

/// How the run's concurrent part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Finished,
    Deadline,
    /// The user pressed Ctrl-C: what finished is reported, the rest is skipped, not failed.
    Interrupted,
}

/// Runs every endpoint's pipeline at once and returns when all are done, the deadline passed, or
/// `interrupt` resolved (Ctrl-C). `device` futures (device probes) run alongside, bounded the same way.
///
/// Exemplary and kept so: each stage records itself as running before it starts, so when the run
/// is cut short the runner still knows exactly which stage was under way (`<probe>.timeout`,
/// with how long it ran) and which were not reached (`skip`, naming the one that held them up).
pub async fn run_endpoints(
    profile: &Profile,
    env: Arc<Env>,
    device: Vec<(Probe, DeviceFuture)>,
    started: Instant,
    interrupt: Interrupt,
) -> (Vec<EndpointResults>, Vec<Check>) {
    let deadline = tokio::time::Instant::from_std(started + env.deadline);
    let slots: Vec<Shared> = profile
        .endpoints
        .iter()
        .map(|_| Shared::default())
        .collect();
    let mut set = JoinSet::new();
    spawn_pipelines(&mut set, profile, &env, &slots);
    let device_slots = spawn_device_probes(&mut set, device);
    let end = tokio::select! {
        all = tokio::time::timeout_at(deadline, async { while set.join_next().await.is_some() {} }) => {
            if all.is_ok() { End::Finished } else { End::Deadline }
        }
        _ = interrupt => End::Interrupted,
    };
    set.abort_all();
    let cut = CutShort::new(end, env.deadline);
    let results = profile
        .endpoints
        .iter()
        .zip(&slots)
        .map(|(ep, slot)| endpoint_results(ep, slot, &env.selection, &cut))
        .collect();
    let mut device_checks = Vec::new();
    for (probe, slot) in device_slots {
        let mut s = slot.lock();
        if let Some(since) = s.running.get(&probe) {
            device_checks.push(cut.unfinished(probe, None, since));
        }
        device_checks.append(&mut s.checks);
    }
    (results, device_checks)
}

/// One task per endpoint, queued behind the descriptor budget ([`pipelines_in_flight`]).
fn spawn_pipelines(set: &mut JoinSet<()>, profile: &Profile, env: &Arc<Env>, slots: &[Shared]) {
    let permits = Arc::new(tokio::sync::Semaphore::new(pipelines_in_flight(
        crate::platform::limits::raise_fd_limit(),
    )));
    for (ep, slot) in profile.endpoints.iter().zip(slots) {
        let (ep, env, slot) = (ep.clone(), env.clone(), slot.clone());
        let permits = permits.clone();
        set.spawn(async move {
            let name = ep.name.clone();
            // Queued pipelines have no stage running: at the deadline they are "not reached".
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let run = pipeline::boxed(ep, env.clone(), slot);
            run.await;
            if let Some(done) = &env.on_done {
                done(&name);
            }
        });
    }
}

/// One task per device probe, each marked running until it yields its checks.
fn spawn_device_probes(
    set: &mut JoinSet<()>,
    device: Vec<(Probe, DeviceFuture)>,
) -> Vec<(Probe, Shared)> {
    let device_slots: Vec<(Probe, Shared)> = device
        .iter()
        .map(|(p, _)| (*p, Shared::default()))
        .collect();
    for ((probe, fut), (_, slot)) in device.into_iter().zip(&device_slots) {
        let slot = slot.clone();
        slot.lock().running.insert(probe, Instant::now());
        set.spawn(async move {
            let checks = fut.await;
            let mut s = slot.lock();
            s.checks.extend(checks);
            s.running.remove(&probe);
        });
    }
    device_slots
}

/// How the run ended, in the words its unfinished checks use.
struct CutShort {
    end: End,
    limit: String,
}

impl CutShort {
    fn new(end: End, deadline: Duration) -> CutShort {
        CutShort {
            end,
            limit: humantime::format_duration(deadline).to_string(),
        }
    }

    /// A stage that was running when the run ended.
    fn unfinished(&self, probe: Probe, target: Option<&str>, since: &Instant) -> Check {
        match self.end {
            End::Interrupted => {
                Check::skipped(probe, target, "interrupted (Ctrl-C) before it finished")
            }
            _ => Check::timed_out(
                probe,
                target,
                format!("did not finish before the run's deadline ({})", self.limit),
            )
            .took(since.elapsed()),
        }
    }

    /// Why a stage was not reached.
    fn reason(&self) -> String {
        match self.end {
            End::Interrupted => "the run was interrupted (Ctrl-C or SIGTERM)".to_owned(),
            _ => format!("the run's deadline ({})", self.limit),
        }
    }
}

/// An endpoint's checks once the run is over: what its stages recorded, plus, when the run was
/// cut short, the stage under way as unfinished and the ones after it as not reached.
fn endpoint_results(
    ep: &Endpoint,
    slot: &Shared,
    sel: &Selection,
    cut: &CutShort,
) -> EndpointResults {
    let mut s = slot.lock();
    let mut checks = std::mem::take(&mut s.checks);
    if cut.end != End::Finished {
        let first_running = s.running.keys().next().copied();
        for p in planned_stages(ep, sel) {
            if checks.iter().any(|c| c.probe == p) {
                continue;
            }
            let c = if let Some(since) = s.running.get(&p) {
                cut.unfinished(p, Some(&ep.name), since)
            } else {
                let why = match first_running {
                    Some(r) => format!("not reached: {r} had not finished when {}", cut.reason()),
                    None => format!("not reached before {}", cut.reason()),
                };
                Check::skipped(p, Some(&ep.name), why)
            };
            checks.push(c);
        }
    }
    checks.sort_by_key(|c| c.probe);
    EndpointResults {
        endpoint: ep.clone(),
        checks,
        attempts: std::mem::take(&mut s.attempts),
    }
}

/// The endpoint stages this run reports for an endpoint, in pipeline order.
pub fn planned_stages(ep: &Endpoint, sel: &Selection) -> Vec<Probe> {
    registry::endpoint_stages()
        .filter(|p| sel.reported(*p))
        .filter(|p| !(*p == Probe::Http && ep.protocol == Protocol::Tls))
        .collect()
}

/// The endpoint stages that need `probe` before them (the registry's `needs`), in pipeline order.
fn dependents(probe: Probe) -> impl Iterator<Item = Probe> {
    registry::endpoint_stages().filter(move |p| p.needs().contains(&probe))
}

/// How long a stage may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// The step timeout: the direct handshake.
    Step,
    /// The step timeout and a hair: the dns stage keeps to the timeout itself (its retry and
    /// second look included), so its own findings are not cut off.
    StepWithGrace,
    /// The run's deadline: stages that time each of their own steps (tcp per family, http per
    /// exchange, latency per sample, the proxy's path), their step timeouts the finer bound.
    OwnSteps,
}

fn limit(bound: Bound, env: &Env) -> Duration {
    match bound {
        Bound::Step => env.timeout,
        Bound::StepWithGrace => env.timeout + DNS_GRACE,
        Bound::OwnSteps => env.deadline,
    }
}

/// The check of a stage that ran out of its [`limit`].
fn out_of_time(
    probe: Probe,
    bound: Bound,
    ep: &Endpoint,
    env: &Env,
    address: Option<SocketAddr>,
) -> Check {
    let t = humantime::format_duration(env.timeout);
    let summary = match (probe, address) {
        (Probe::Dns, _) => format!("no answer from the resolver within {t}"),
        (Probe::Tls, Some(a)) => {
            format!("{a} accepted the connection but did not complete a TLS handshake within {t}")
        }
        _ => format!(
            "did not finish within {}",
            humantime::format_duration(limit(bound, env))
        ),
    };
    Check::timed_out(probe, Some(&ep.name), summary)
}

/// The one way every stage runs: marks it running (for the deadline's account), bounds it by
/// its [`Bound`], and records its check if the stage is reported. The stage yields its check and,
/// on success, what the next stage needs; the result carries that value or the code of the
/// failure, for the skip reasons of the stages after it.
///
/// The probe's future comes boxed from where it is made: it then moves into the timeout as a
/// pointer. Passed by value it was copied at each move (into this call, into the timeout, into
/// the caller's state), and a stage's future is kilobytes.
async fn stage<T>(
    slot: &Shared,
    env: &Env,
    ep: &Endpoint,
    (probe, bound): (Probe, Bound),
    fut: std::pin::Pin<Box<impl Future<Output = (Check, Option<T>)>>>,
    address: Option<SocketAddr>,
) -> Result<T, String> {
    slot.lock().running.insert(probe, Instant::now());
    let most = limit(bound, env);
    let (check, value) = match tokio::time::timeout(most, fut).await {
        Ok(done) => done,
        Err(_) => (out_of_time(probe, bound, ep, env, address).took(most), None),
    };
    let code = check.code.clone();
    let mut s = slot.lock();
    s.running.remove(&probe);
    if env.selection.reported(probe) {
        s.checks.push(check);
    }
    value.ok_or(code)
}

/// Records `skip` for every reported stage that needs `probe` (and `probe` itself, when it is
/// reported but could not run), with the reason.
fn skip_after(slot: &Shared, ep: &Endpoint, sel: &Selection, probe: Probe, why: &str) {
    let mut s = slot.lock();
    let mut stages: Vec<Probe> = dependents(probe).collect();
    if !sel.runs(probe) {
        stages.insert(0, probe);
    }
    for p in stages {
        let http_elsewhere = p == Probe::Http && (ep.protocol == Protocol::Tls || s.http_via_proxy);
        if sel.reported(p) && !http_elsewhere {
            s.checks.push(Check::skipped(p, Some(&ep.name), why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptors decide under the cap; the cap decides above it; never none.
    #[test]
    fn pipelines_in_flight_follow_the_descriptors_up_to_the_cap() {
        assert_eq!(pipelines_in_flight(1024), (1024 - 64) / 6);
        assert_eq!(pipelines_in_flight(1 << 20), MAX_IN_FLIGHT as usize);
        assert_eq!(pipelines_in_flight(10), 1);
        assert_eq!(pipelines_in_flight(0), 1);
    }
}
