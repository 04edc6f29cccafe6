//! The runner owns concurrency and time.
//!
//! Every endpoint gets one task running its pipeline (dns → tcp → then tls → http alongside the
//! latency samples); device probes get a task each; all start at once. Each step is bounded by the
//! step timeout and the whole run by the deadline. Stages record their checks as they finish, so
//! when the deadline passes the runner still knows what was done: the stage that was running
//! becomes `<probe>.timeout`, the stages after it `skip`, and the report is produced regardless.
//!
//! The tool's own resources are bounded too: the soft limit on open files is raised to the hard
//! one where the system allows ([`crate::platform::limits::raise_fd_limit`]), and the pipelines
//! in flight are capped to what that limit can hold ([`pipelines_in_flight`]), so a profile of
//! thousands of endpoints queues instead of failing with "Too many open files" — a failure
//! that is this device's limit, and that would otherwise read as a bad network.

use crate::iface::Resolver;
use crate::model::{Check, Probe, Status};
use crate::probe::proxy::ProxyEnv;
use crate::probe::registry;
use crate::probe::tcp::Attempt;
use crate::probe::{dns, http, latency, tcp, tls, tunnel};
use crate::profile::{Endpoint, Profile, Protocol, Thresholds};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Descriptors one pipeline holds at most at once: DNS sockets (A and AAAA), one connect per
/// family, a late family's socket, a latency sample.
const FDS_PER_PIPELINE: u64 = 6;

/// How many endpoint pipelines may run at once under a soft limit of `nofile` descriptors:
/// a reserve for the runtime, stdio, files and device probes, the rest shared by pipelines.
pub fn pipelines_in_flight(nofile: u64) -> usize {
    let reserve = (nofile / 4).clamp(8, 64);
    (nofile.saturating_sub(reserve) / FDS_PER_PIPELINE).clamp(1, 4096) as usize
}

/// Which probes run and which are reported.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Option<BTreeSet<Probe>>,
    pub skip: BTreeSet<Probe>,
}

impl Selection {
    /// Is this probe's result part of the report?
    pub fn reported(&self, p: Probe) -> bool {
        !self.skip.contains(&p) && self.only.as_ref().is_none_or(|o| o.contains(&p))
    }

    /// Does this stage run? A stage left out with `--skip` does not, and neither do those that
    /// need it; with `--only`, the stages a chosen one needs run without being reported.
    pub fn runs(&self, p: Probe) -> bool {
        if self.skip.contains(&p) {
            return false;
        }
        match &self.only {
            None => true,
            Some(only) => {
                only.contains(&p)
                    || Probe::all()
                        .iter()
                        .any(|later| only.contains(later) && later.needs().contains(&p))
            }
        }
    }
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

/// A device probe: a future yielding its checks, run alongside the pipelines.
pub type DeviceFuture = std::pin::Pin<Box<dyn Future<Output = Vec<Check>> + Send>>;

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
            Box::pin(pipeline(ep, env.clone(), slot)).await;
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

/// The tcp stage's connect time to `address`: the first latency sample.
fn attempts_winner_ms(slot: &Shared, address: std::net::SocketAddr) -> Option<f64> {
    slot.lock()
        .attempts
        .iter()
        .rev()
        .find(|a| a.address == address && a.outcome == tcp::Outcome::Ok)
        .map(|a| a.connect_ms)
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
async fn stage<T>(
    slot: &Shared,
    env: &Env,
    ep: &Endpoint,
    (probe, bound): (Probe, Bound),
    fut: impl Future<Output = (Check, Option<T>)>,
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

/// One endpoint: dns → tcp → (tls → http) ‖ latency; with a proxy, http (or a TLS-only
/// endpoint's handshake) also goes through it, alongside the direct stages (which still tell
/// whether the direct path works; `crosscheck` judges the run by the proxy's path).
async fn pipeline(ep: Endpoint, env: Arc<Env>, slot: Shared) {
    match proxied_stage(&ep, &env) {
        Some(Proxied::Tunnel(probe, tunnel)) => {
            if probe == Probe::Http {
                slot.lock().http_via_proxy = true;
            }
            let warn_days = env.thresholds.cert_expiry_warn_days;
            let via = Box::pin(async {
                let c = tunnel::check(&env.tls, &ep, &tunnel, env.timeout, warn_days).await;
                (c, Some(()))
            });
            let _ = tokio::join!(
                Box::pin(direct(&ep, &env, &slot)),
                stage(&slot, &env, &ep, (probe, Bound::OwnSteps), via, None)
            );
        }
        Some(Proxied::Http(proxy_url)) => {
            slot.lock().http_via_proxy = true;
            let via = Box::pin(http_via_proxy(&ep, &env, &proxy_url));
            let _ = tokio::join!(
                Box::pin(direct(&ep, &env, &slot)),
                stage(&slot, &env, &ep, (Probe::Http, Bound::OwnSteps), via, None)
            );
        }
        None => direct(&ep, &env, &slot).await,
    }
}

/// The stage of an endpoint that goes through the configured proxy, if any.
enum Proxied {
    /// An http:// proxy: the tunnel the app would open, written out so a refusal keeps its
    /// meaning (tunnel.rs); TLS-only endpoints get their handshake inside it too.
    Tunnel(Probe, tunnel::ProxyAddr),
    /// Another proxy URL: the http stage through reqwest's proxy support.
    Http(String),
}

fn proxied_stage(ep: &Endpoint, env: &Env) -> Option<Proxied> {
    let proxy = env.proxy.for_host(&ep.host)?;
    if let Some(tunnel) = tunnel::ProxyAddr::parse(proxy) {
        let probe = match ep.protocol {
            Protocol::Https => Probe::Http,
            Protocol::Tls => Probe::Tls,
        };
        if env.selection.runs(probe) {
            return Some(Proxied::Tunnel(probe, tunnel));
        }
    }
    (ep.protocol == Protocol::Https && env.selection.runs(Probe::Http))
        .then(|| Proxied::Http(proxy.to_owned()))
}

/// The http stage through a proxy that is not an http:// one; the certificate the proxy
/// presented is judged like the direct path's.
async fn http_via_proxy(ep: &Endpoint, env: &Env, proxy_url: &str) -> (Check, Option<()>) {
    let url = format!("https://{}{}", ep.authority(), ep.path);
    let seen = Arc::new(Mutex::new(None));
    env.tls.ready().await;
    let config = match env.tls.client_config(&[b"http/1.1"], seen.clone()) {
        Ok(c) => c,
        Err(why) => {
            let c = Check::new(Probe::Http, Some(&ep.name), Status::Fail, "http.error", why);
            return (c, Some(()));
        }
    };
    let c = http::run_via_proxy(
        &ep.name,
        &url,
        proxy_url,
        config,
        ep.expect_status.as_deref(),
        ep.reading,
        env.timeout,
    )
    .await;
    let presented = seen.lock().ok().and_then(|s| s.clone());
    let c = match tls::judge_seen(presented.as_ref(), ep.private_ca) {
        Some(i) if c.code != "http.proxy_error" || !i.trusted => i.apply(c),
        _ => c,
    };
    (c, Some(()))
}

/// The direct path, stage by stage in the pipeline's order; a stage that fails or is left out
/// skips the stages that need it.
async fn direct(ep: &Endpoint, env: &Env, slot: &Shared) {
    let Some(addrs) = dns_stage(ep, env, slot).await else {
        return;
    };
    if env.selection.runs(Probe::Tls) {
        env.tls.warm_up();
    }
    let Some(connected) = tcp_stage(ep, env, slot, &addrs).await else {
        return;
    };
    let address = connected.connected.address;
    let first_sample = attempts_winner_ms(slot, address);
    // tls → http, and latency beside them: the samples need not wait for the handshake.
    tokio::join!(
        Box::pin(secure_stages(ep, env, slot, connected.connected)),
        latency_stage(ep, env, slot, address, first_sample)
    );
    if let Some(p) = connected.pending
        && let Ok(late) = p.await
    {
        slot.lock().attempts.extend(late);
    }
}

/// The addresses to connect to: the IP literal, or the dns stage's answer.
async fn dns_stage(ep: &Endpoint, env: &Env, slot: &Shared) -> Option<Vec<std::net::IpAddr>> {
    let sel = &env.selection;
    if let Some(ip) = ep.ip_literal() {
        if sel.reported(Probe::Dns) {
            slot.lock().checks.push(
                Check::skipped(
                    Probe::Dns,
                    Some(&ep.name),
                    format!("{ip} is an IP address; no lookup needed"),
                )
                .with("addresses", vec![ip.to_string()]),
            );
        }
        return Some(vec![ip]);
    }
    if !sel.runs(Probe::Dns) {
        let why = "needs an address, and the dns stage was left out";
        skip_after(slot, ep, sel, Probe::Dns, why);
        return None;
    }
    let lookup = dns::run(
        &env.resolver,
        &env.resolver_label,
        &env.resolver_servers,
        ep,
        env.timeout,
    );
    match stage(
        slot,
        env,
        ep,
        (Probe::Dns, Bound::StepWithGrace),
        lookup,
        None,
    )
    .await
    {
        Ok(a) => Some(a),
        Err(code) => {
            let why = format!("needs an address; dns failed ({code})");
            skip_after(slot, ep, sel, Probe::Dns, &why);
            None
        }
    }
}

/// What the tcp stage hands on: the connection, and the other family's attempt still under way.
struct TcpDone {
    connected: tcp::Connected,
    pending: Option<tokio::task::JoinHandle<Vec<Attempt>>>,
}

async fn tcp_stage(
    ep: &Endpoint,
    env: &Env,
    slot: &Shared,
    addrs: &[std::net::IpAddr],
) -> Option<TcpDone> {
    let sel = &env.selection;
    if !sel.runs(Probe::Tcp) {
        let why = "needs a connection, and the tcp stage was left out";
        skip_after(slot, ep, sel, Probe::Tcp, why);
        return None;
    }
    let connect = async {
        let r = tcp::run(&ep.name, addrs, ep.port, env.timeout).await;
        slot.lock().attempts.extend(r.attempts);
        let done = r.connected.map(|connected| TcpDone {
            connected,
            pending: r.pending,
        });
        (r.check, done)
    };
    match stage(slot, env, ep, (Probe::Tcp, Bound::OwnSteps), connect, None).await {
        Ok(done) => Some(done),
        Err(code) => {
            let why = format!("needs a connection; tcp failed ({code})");
            skip_after(slot, ep, sel, Probe::Tcp, &why);
            None
        }
    }
}

/// tls, then http over the session (an HTTPS endpoint whose http does not go through a proxy).
async fn secure_stages(ep: &Endpoint, env: &Env, slot: &Shared, connected: tcp::Connected) {
    let sel = &env.selection;
    if !sel.runs(Probe::Tls) {
        let why = "needs a connection, and the tls stage was left out";
        skip_after(slot, ep, sel, Probe::Tls, why);
        return;
    }
    let alpn: &[&[u8]] = match ep.protocol {
        Protocol::Https => &[b"http/1.1"],
        Protocol::Tls => &[],
    };
    let address = connected.address;
    let handshake = tls::run(
        &env.tls,
        &ep.name,
        &ep.host,
        alpn,
        connected.stream,
        env.thresholds.cert_expiry_warn_days,
        tls::Policy::for_endpoint(ep, env.timeout),
    );
    let session = stage(
        slot,
        env,
        ep,
        (Probe::Tls, Bound::Step),
        handshake,
        Some(address),
    )
    .await;
    if ep.protocol == Protocol::Tls {
        return;
    }
    let stream = match session {
        Ok(s) => s,
        Err(code) => {
            let why = format!("needs a TLS session; tls failed ({code})");
            skip_after(slot, ep, sel, Probe::Tls, &why);
            return;
        }
    };
    if !sel.runs(Probe::Http) || slot.lock().http_via_proxy {
        return;
    }
    let authority = if ep.port == 443 {
        ep.host.clone()
    } else {
        ep.authority()
    };
    let request = async {
        let c = http::run(
            &ep.name,
            &authority,
            &ep.path,
            ep.expect_status.as_deref(),
            ep.reading,
            stream,
            env.timeout,
        )
        .await;
        (c, Some(()))
    };
    let _ = stage(slot, env, ep, (Probe::Http, Bound::OwnSteps), request, None).await;
    tls::client_cert_refusal(&mut slot.lock().checks, &ep.name);
}

/// The latency samples, beside tls and http.
async fn latency_stage(
    ep: &Endpoint,
    env: &Env,
    slot: &Shared,
    address: SocketAddr,
    first_sample: Option<f64>,
) {
    if !env.selection.runs(Probe::Latency) {
        return;
    }
    let samples = async {
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
    };
    let _ = stage(
        slot,
        env,
        ep,
        (Probe::Latency, Bound::OwnSteps),
        samples,
        None,
    )
    .await;
}
