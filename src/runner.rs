//! The runner owns concurrency and time.
//!
//! Every endpoint gets one task running its pipeline (dns → tcp → then tls → http alongside the
//! latency samples); device probes get a task each; all start at once. Each step is bounded by the
//! step timeout and the whole run by the deadline. Stages record their checks as they finish, so
//! when the deadline passes the runner still knows what was done: the stage that was running
//! becomes `<probe>.timeout`, the stages after it `skip`, and the report is produced regardless.
//!
//! The tool's own resources are bounded too: the soft limit on open files is raised to the hard
//! one where the system allows ([`raise_fd_limit`]), and the pipelines in flight are capped to
//! what that limit can hold ([`pipelines_in_flight`]), so a profile of thousands of endpoints
//! queues instead of failing with "Too many open files" — a failure that is this device's
//! limit, and that would otherwise read as a bad network.

use crate::iface::Resolver;
use crate::model::{Check, Probe, Status};
use crate::probe::proxy::ProxyEnv;
use crate::probe::registry::Kind;
use crate::probe::tcp::Attempt;
use crate::probe::{dns, http, latency, tcp, tls, tunnel};
use crate::profile::{Endpoint, Profile, Protocol, Role, Thresholds};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Descriptors one pipeline holds at most at once: DNS sockets (A and AAAA), one connect per
/// family, a late family's socket, a latency sample.
const FDS_PER_PIPELINE: u64 = 6;

/// Raises this process's soft limit on open files to its hard limit (capped at 2^20), where the
/// system allows it. Returns the soft limit in effect afterwards.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let cap = 1 << 20;
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(cap);
    let hard = now.maximum.unwrap_or(cap).min(cap);
    if soft < hard {
        let mut raised = now;
        raised.current = Some(hard);
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return hard;
        }
    }
    soft
}

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
    pub resolver_servers: Vec<std::net::SocketAddr>,
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
    let permits = Arc::new(tokio::sync::Semaphore::new(pipelines_in_flight(
        raise_fd_limit(),
    )));
    for (ep, slot) in profile.endpoints.iter().zip(&slots) {
        let (ep, env, slot) = (ep.clone(), env.clone(), slot.clone());
        let permits = permits.clone();
        set.spawn(async move {
            let name = ep.name.clone();
            // Queued pipelines have no stage running: at the deadline they are "not reached".
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            pipeline(ep, env.clone(), slot).await;
            if let Some(done) = &env.on_done {
                done(&name);
            }
        });
    }
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
    let end = tokio::select! {
        all = tokio::time::timeout_at(deadline, async { while set.join_next().await.is_some() {} }) => {
            if all.is_ok() { End::Finished } else { End::Deadline }
        }
        _ = interrupt => End::Interrupted,
    };
    set.abort_all();

    let limit = humantime::format_duration(env.deadline);
    let unfinished = |probe: Probe, target: Option<&str>, since: &Instant| match end {
        End::Interrupted => {
            Check::skipped(probe, target, "interrupted (Ctrl-C) before it finished")
        }
        _ => Check::timed_out(
            probe,
            target,
            format!("did not finish before the run's deadline ({limit})"),
        )
        .took(since.elapsed()),
    };
    let cut_short = match end {
        End::Interrupted => "the run was interrupted (Ctrl-C or SIGTERM)".to_owned(),
        _ => format!("the run's deadline ({limit})"),
    };
    let mut results = Vec::new();
    for (ep, slot) in profile.endpoints.iter().zip(&slots) {
        let mut s = slot.lock();
        let mut checks = std::mem::take(&mut s.checks);
        if end != End::Finished {
            let planned = planned_stages(ep, &env.selection);
            let first_running = s.running.keys().next().copied();
            for p in planned {
                if checks.iter().any(|c| c.probe == p) {
                    continue;
                }
                let c = if let Some(since) = s.running.get(&p) {
                    unfinished(p, Some(&ep.name), since)
                } else {
                    let why = match first_running {
                        Some(r) => format!("not reached: {r} had not finished when {cut_short}"),
                        None => format!("not reached before {cut_short}"),
                    };
                    Check::skipped(p, Some(&ep.name), why)
                };
                checks.push(c);
            }
        }
        checks.sort_by_key(|c| c.probe);
        if ep.role == Role::Info {
            // Hosts the app merely also contacts (analytics) never make the run fail.
            for c in checks.iter_mut().filter(|c| c.status == Status::Fail) {
                c.status = Status::Warn;
                c.data
                    .insert("informational".into(), serde_json::Value::Bool(true));
            }
        }
        results.push(EndpointResults {
            endpoint: ep.clone(),
            checks,
            attempts: std::mem::take(&mut s.attempts),
        });
    }
    let mut device_checks = Vec::new();
    for (probe, slot) in device_slots {
        let mut s = slot.lock();
        if let Some(since) = s.running.get(&probe) {
            device_checks.push(unfinished(probe, None, since));
        }
        device_checks.append(&mut s.checks);
    }
    (results, device_checks)
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
    Probe::all()
        .iter()
        .copied()
        .filter(|p| p.kind() == Kind::Endpoint)
        .filter(|p| sel.reported(*p))
        .filter(|p| !(*p == Probe::Http && ep.protocol == Protocol::Tls))
        .collect()
}

/// Bounds a stage by the step timeout. The stage yields its check and, on success, what the next
/// stage needs; the result carries that value or the code of the failure, for the skip reasons.
async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = (Check, Option<T>)>,
    on_timeout: impl FnOnce() -> Check,
) -> (Check, Result<T, String>) {
    let (check, value) = match tokio::time::timeout(limit, fut).await {
        Ok(done) => done,
        Err(_) => (on_timeout().took(limit), None),
    };
    let code = check.code.clone();
    (check, value.ok_or(code))
}

/// Runs one stage: marks it running, bounds it by `limit` (if any), records its check.
async fn stage<T, F>(slot: &Shared, sel: &Selection, probe: Probe, fut: F) -> T
where
    F: Future<Output = (Check, T)>,
{
    slot.lock().running.insert(probe, Instant::now());
    let (check, value) = fut.await;
    let mut s = slot.lock();
    s.running.remove(&probe);
    if sel.reported(probe) {
        s.checks.push(check);
    }
    value
}

fn skip_rest(slot: &Shared, ep: &Endpoint, sel: &Selection, stages: &[Probe], why: &str) {
    let mut s = slot.lock();
    for p in stages {
        let http_elsewhere =
            *p == Probe::Http && (ep.protocol == Protocol::Tls || s.http_via_proxy);
        if sel.reported(*p) && !http_elsewhere {
            s.checks.push(Check::skipped(*p, Some(&ep.name), why));
        }
    }
}

/// One endpoint: dns → tcp → (tls → http) ‖ latency; with a proxy, http (or a TLS-only
/// endpoint's handshake) also goes through it, alongside the direct stages (which still tell
/// whether the direct path works; `crosscheck` judges the run by the proxy's path).
async fn pipeline(ep: Endpoint, env: Arc<Env>, slot: Shared) {
    // An http:// proxy: the tunnel the app would open, written out so a refusal keeps its
    // meaning (tunnel.rs); TLS-only endpoints get their handshake inside it too.
    if let Some(tunnel) = env
        .proxy
        .for_host(&ep.host)
        .and_then(tunnel::ProxyAddr::parse)
    {
        let probe = match ep.protocol {
            Protocol::Https => Probe::Http,
            Protocol::Tls => Probe::Tls,
        };
        if env.selection.runs(probe) {
            if probe == Probe::Http {
                slot.lock().http_via_proxy = true;
            }
            let warn_days = env.thresholds.cert_expiry_warn_days;
            let via = async {
                let c = tunnel::check(&env.tls, &ep, &tunnel, env.timeout, warn_days).await;
                (c, ())
            };
            tokio::join!(
                direct(&ep, &env, &slot),
                stage(&slot, &env.selection, probe, via)
            );
            return;
        }
    }
    let proxy = env
        .proxy
        .for_host(&ep.host)
        .filter(|_| ep.protocol == Protocol::Https && env.selection.runs(Probe::Http))
        .map(str::to_owned);
    let Some(proxy_url) = proxy else {
        return direct(&ep, &env, &slot).await;
    };
    slot.lock().http_via_proxy = true;
    let via_proxy = async {
        let url = format!("https://{}{}", ep.authority(), ep.path);
        let seen = Arc::new(Mutex::new(None));
        env.tls.ready().await;
        let config = match env.tls.client_config(&[b"http/1.1"], seen.clone()) {
            Ok(c) => c,
            Err(why) => {
                let c = Check::new(Probe::Http, Some(&ep.name), Status::Fail, "http.error", why);
                return (c, ());
            }
        };
        let c = http::run_via_proxy(
            &ep.name,
            &url,
            &proxy_url,
            config,
            ep.expect_status.as_deref(),
            ep.reading,
            env.timeout,
        )
        .await;
        // The certificate the proxy presented, judged like the direct path's.
        let presented = seen.lock().ok().and_then(|s| s.clone());
        let c = match tls::judge_seen(presented.as_ref(), ep.private_ca) {
            Some(i) if c.code != "http.proxy_error" || !i.trusted => i.apply(c),
            _ => c,
        };
        (c, ())
    };
    let sel = &env.selection;
    tokio::join!(
        direct(&ep, &env, &slot),
        stage(&slot, sel, Probe::Http, via_proxy)
    );
}

async fn direct(ep: &Endpoint, env: &Env, slot: &Shared) {
    let (ep, slot) = (ep.clone(), slot.clone());
    let sel = &env.selection;
    let name = ep.name.as_str();
    let t = env.timeout;

    // dns
    let addrs = match ep.ip_literal() {
        Some(ip) => {
            if sel.reported(Probe::Dns) {
                slot.lock().checks.push(
                    Check::skipped(
                        Probe::Dns,
                        Some(name),
                        format!("{ip} is an IP address; no lookup needed"),
                    )
                    .with("addresses", vec![ip.to_string()]),
                );
            }
            vec![ip]
        }
        None if !sel.runs(Probe::Dns) => {
            let after = [Probe::Tcp, Probe::Tls, Probe::Http, Probe::Latency];
            skip_rest(
                &slot,
                &ep,
                sel,
                &after,
                "needs an address, and the dns stage was left out",
            );
            return;
        }
        None => {
            let found = stage(
                &slot,
                sel,
                Probe::Dns,
                bounded(
                    t + DNS_GRACE,
                    dns::run(
                        &env.resolver,
                        &env.resolver_label,
                        &env.resolver_servers,
                        &ep,
                        t,
                    ),
                    || {
                        Check::timed_out(
                            Probe::Dns,
                            Some(name),
                            format!(
                                "no answer from the resolver within {}",
                                humantime::format_duration(t)
                            ),
                        )
                    },
                ),
            )
            .await;
            match found {
                Ok(a) => a,
                Err(code) => {
                    let after = [Probe::Tcp, Probe::Tls, Probe::Http, Probe::Latency];
                    skip_rest(
                        &slot,
                        &ep,
                        sel,
                        &after,
                        &format!("needs an address; dns failed ({code})"),
                    );
                    return;
                }
            }
        }
    };

    // tcp
    if !sel.runs(Probe::Tcp) {
        let after = [Probe::Tls, Probe::Http, Probe::Latency];
        skip_rest(
            &slot,
            &ep,
            sel,
            &after,
            "needs a connection, and the tcp stage was left out",
        );
        return;
    }
    let result = stage(&slot, sel, Probe::Tcp, async {
        let r = tcp::run(name, &addrs, ep.port, t).await;
        let rest = (r.connected, r.attempts, r.pending, r.check.code.clone());
        (r.check, rest)
    })
    .await;
    let (connected, attempts, pending, tcp_code) = result;
    slot.lock().attempts.extend(attempts);
    let Some(connected) = connected else {
        let after = [Probe::Tls, Probe::Http, Probe::Latency];
        skip_rest(
            &slot,
            &ep,
            sel,
            &after,
            &format!("needs a connection; tcp failed ({tcp_code})"),
        );
        return;
    };
    let address = connected.address;
    let first_sample = attempts_winner_ms(&slot, address);

    // tls → http, and latency beside them: the samples need not wait for the handshake.
    let secure = async {
        if !sel.runs(Probe::Tls) {
            skip_rest(
                &slot,
                &ep,
                sel,
                &[Probe::Tls, Probe::Http],
                "needs a connection, and the tls stage was left out",
            );
            return;
        }
        let alpn: &[&[u8]] = match ep.protocol {
            Protocol::Https => &[b"http/1.1"],
            Protocol::Tls => &[],
        };
        let handshake = tls::run(
            &env.tls,
            name,
            &ep.host,
            alpn,
            connected.stream,
            env.thresholds.cert_expiry_warn_days,
            tls::Policy::for_endpoint(&ep, t),
        );
        let stream = stage(
            &slot,
            sel,
            Probe::Tls,
            bounded(t, handshake, || {
                Check::timed_out(
                    Probe::Tls,
                    Some(name),
                    format!(
                        "{address} accepted the connection but did not complete a TLS handshake within {}",
                        humantime::format_duration(t)
                    ),
                )
            }),
        )
        .await;
        if ep.protocol == Protocol::Tls {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(code) => {
                skip_rest(
                    &slot,
                    &ep,
                    sel,
                    &[Probe::Http],
                    &format!("needs a TLS session; tls failed ({code})"),
                );
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
        stage(&slot, sel, Probe::Http, async {
            let c = http::run(
                name,
                &authority,
                &ep.path,
                ep.expect_status.as_deref(),
                ep.reading,
                stream,
                t,
            )
            .await;
            (c, ())
        })
        .await;
        tls::client_cert_refusal(&mut slot.lock().checks, name);
    };
    let samples = async {
        if !sel.runs(Probe::Latency) {
            return;
        }
        stage(&slot, sel, Probe::Latency, async {
            (
                latency::run(name, address, first_sample, env.samples, t, &env.thresholds).await,
                (),
            )
        })
        .await;
    };
    tokio::join!(secure, samples);

    if let Some(p) = pending
        && let Ok(late) = p.await
    {
        slot.lock().attempts.extend(late);
    }
}
