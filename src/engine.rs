//! One run of the checks, from a prepared profile to a report: profile → runner → cross-check →
//! diagnosis → report. It delivers nothing; the commands (`run`, `serve`, `watch`'s child runs)
//! decide where a report goes.
//!
//! This is the only place that ties the parts of a run together; each of them stays ignorant of
//! the others, and no command needs another command to run the checks.

use crate::cli::RunArgs;
use crate::diagnose::diagnose;
use crate::error::AppError;
use crate::knowledge::Knowledge;
use crate::model::Device;
use crate::model::{Check, EndpointInfo, Probe, Report, SCHEMA_VERSION, Tool};
use crate::plan::Selection;
use crate::plan::{Probing, Start, load_profile, selection_for};
use crate::probe::attempt::Attempt;
use crate::probe::definition::{DeviceFuture, DeviceInput, ReaderInput, Run};
use crate::probe::proxyenv::ProxyEnv;
use crate::probe::{control, dns, dohdot, nat64, storage, tls, vpn};
use crate::profile::Profile;
use crate::resolverurl::DnsServer;
use crate::runner::{self, Env};
use crate::term::decide_color;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What a run needs, read and validated before any probe: `run` uses it once, `serve` for every
/// scrape (so a bad profile stops the exporter at start, never a scrape).
pub struct Prepared {
    pub profile: Profile,
    pub tls: tls::TlsSetup,
    sel: Selection,
    proxy: crate::proxysettings::Settings,
    kb: Knowledge,
    storage_paths: Vec<std::path::PathBuf>,
    probing: Probing,
}

/// Reads and checks every input of a run; a mistake is exit 3 before any probe.
pub fn prepare(args: &RunArgs) -> Result<Prepared, AppError> {
    let profile = load_profile(args)?;
    let sel = selection_for(args, &profile);
    let tls = tls::TlsSetup::load(args.ca_file.as_deref())?;
    let proxy = crate::proxysettings::read(&args.proxy, args.pac.as_deref(), ProxyEnv::from_env()?);
    let kb = Knowledge::builtin().map_err(AppError::Internal)?;
    let storage_paths = storage_paths(args)?;
    Ok(Prepared {
        profile,
        sel,
        tls,
        proxy,
        kb,
        storage_paths,
        probing: Probing::of(args),
    })
}

/// Runs the checks and returns the report, delivering nothing (`run` and `watch` do that).
/// `progress`: whether a person may see a progress line on stderr.
pub fn execute(
    args: &RunArgs,
    progress: bool,
    deadline: std::time::Duration,
) -> Result<Report, AppError> {
    // Every input is validated first: a mistake is reported at once, not after the jitter.
    let prepared = prepare(args)?;
    if let Some(out) = &args.output {
        crate::files::check_writable(out)?;
    }
    decide_color(args.color, args.output.is_some());
    // Before the clock starts: neither waiting for the lock nor the jitter counts against --deadline.
    let _lock = crate::lock::start(&Start::of(args))?;

    // One thread, the caller's: the probes wait on sockets, and handing wake-ups and memory
    // between threads cost more CPU than the work itself (BENCHMARKS.md, "One thread for the
    // probes"). Blocking work (files, PAC scripts, getaddrinfo) runs on the blocking pool.
    let runtime = crate::runtime::build(crate::runtime::Threads::Current, "probes")?;

    let progress = crate::progress::Progress::new(
        progress && crate::progress::wanted(args.format == crate::report::Format::Human),
        prepared
            .profile
            .endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect(),
    );
    let report = runtime.block_on(check(&prepared, deadline, Some(&progress), interrupted()));
    progress.finish();
    // Background work (a resolver retry, a late socket) must not hold the exit past the deadline.
    runtime.shutdown_background();
    Ok(report)
}

/// The run's resolver (the system's, a plain `--resolver`, or a DoT/DoH one located once), the
/// servers its second looks ask (none for DoT/DoH: they speak plain DNS), and the control.
async fn resolvers(
    profile: &Profile,
    probing: &Probing,
    tls: &tls::TlsSetup,
) -> (
    Result<crate::iface::Resolver, String>,
    crate::probe::resolverid::Servers,
    Arc<control::Control>,
) {
    let trust = tls.clone();
    let maker: dohdot::TlsMaker = Arc::new(move |alpn: &[&[u8]]| {
        trust.client_config(alpn, Arc::new(std::sync::Mutex::new(None)))
    });
    let setting = probing.control.as_ref().or(profile.control.as_ref());
    let control = control::Control::new(
        &setting.cloned().unwrap_or_default(),
        maker.clone(),
        probing.timeout,
    );
    let (resolver, servers) = match &probing.resolver {
        Some(s) if s.transport.encrypted() => (
            dohdot::encrypted_resolver(s, &maker, probing.timeout).await,
            crate::probe::resolverid::Servers::new(Vec::new()),
        ),
        other => {
            let plain = other.as_ref().and_then(DnsServer::plain_addr);
            (dns::resolver(plain, probing.timeout), dns::servers(plain))
        }
    };
    (resolver, servers, Arc::new(control))
}

/// The endpoints as the report lists them.
fn endpoint_infos(profile: &Profile) -> Vec<EndpointInfo> {
    profile
        .endpoints
        .iter()
        .map(|e| EndpointInfo {
            name: e.name.clone(),
            host: e.host.clone(),
            port: e.port,
            role: e.role,
        })
        .collect()
}

/// One check of the prepared profile, bounded by `deadline`: the report, not yet delivered.
/// `serve` calls it on its own runtime for every scrape.
pub async fn check(
    prepared: &Prepared,
    deadline: std::time::Duration,
    progress: Option<&crate::progress::Progress>,
    interrupt: runner::Interrupt,
) -> Report {
    let Prepared {
        profile,
        sel,
        tls,
        proxy,
        kb,
        storage_paths,
        probing,
    } = prepared;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let checks = {
        let (resolver, resolver_servers, control) = resolvers(profile, probing, tls).await;
        let proxy = &follow_proxy(proxy, profile, &resolver, tls, probing.timeout, deadline).await;
        let env = Arc::new(Env {
            timeout: probing.timeout,
            deadline,
            samples: probing.samples,
            thresholds: profile.thresholds.clone(),
            resolver,
            resolver_label: probing.resolver_label(),
            resolver_servers,
            control,
            resolver_url: probing.resolver.clone(),
            tls: tls.clone(),
            selection: sel.clone(),
            proxy: proxy.clone(),
            on_done: progress.map(|progress| {
                let progress = progress.clone();
                Arc::new(move |name: &str| progress.done(name)) as runner::DoneHook
            }),
        });
        let device = device_probes(profile, &env, proxy, storage_paths.clone());
        let nat64 = nat64::discover(&env.resolver, env.timeout, sel.runs(Probe::Tcp));
        let ((results, device_checks), nat64) = tokio::join!(
            runner::run_endpoints(profile, env.clone(), device, started, interrupt),
            nat64
        );
        let mut attempts: Vec<(String, Vec<Attempt>)> = Vec::with_capacity(results.len());
        let mut checks: Vec<Check> = Vec::new();
        for r in results {
            attempts.push((r.endpoint.name, r.attempts));
            checks.extend(r.checks);
        }
        crate::diagnose::downgrade_informational(&mut checks, &profile.endpoints);
        crate::crosscheck::apply(&mut checks, &profile.endpoints);
        let wanted = crate::crosscheck::wants_resolver(&checks);
        let resolver = env.resolver_servers.run_identity(wanted).await;
        crate::crosscheck::block_pages(&mut checks, &profile.endpoints, resolver.as_ref());
        nat64::read_run(&mut checks, &attempts, nat64);
        checks.extend(device_checks);
        // Which endpoints a tunnel carries (the kernel's routes), and whether one is dead.
        vpn::read_run(&mut checks, &profile.endpoints);
        // Probes that read what the others measured.
        let read = readings(&checks, &attempts, profile, sel);
        checks.extend(read);
        checks.sort_by_key(|c| (c.target.is_none(), c.probe));
        label_proxy_source(&mut checks, proxy);
        checks
    };

    let endpoints = endpoint_infos(profile);
    let suspects = diagnose(&checks, &endpoints, kb);
    Report {
        schema_version: SCHEMA_VERSION,
        report_id: crate::model::report_id(),
        tool: Tool::this(),
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        duration_ms: crate::model::ms(started.elapsed()),
        region: profile.name.clone(),
        status: Report::overall(&checks),
        suspects,
        checks,
        endpoints,
        device: Some(device_info()),
        redacted: Vec::new(),
        uplinks: Vec::new(),
    }
}

/// The proxy settings followed for this run (a PAC file fetched and run), within a third of
/// the deadline so the checks keep the rest.
async fn follow_proxy(
    settings: &crate::proxysettings::Settings,
    profile: &Profile,
    resolver: &Result<crate::iface::Resolver, String>,
    tls: &tls::TlsSetup,
    timeout: std::time::Duration,
    deadline: std::time::Duration,
) -> ProxyEnv {
    let follow = crate::proxysettings::Follow {
        endpoints: &profile.endpoints,
        resolver,
        tls,
        timeout,
    };
    crate::proxysettings::decide(settings, &follow, deadline / 3).await
}

/// Every endpoint check says where its path was decided (`data.proxy_source`: `cli`, `env`,
/// `gnome`, `pac:<url>`, ...; `none` when nothing configures a proxy).
fn label_proxy_source(checks: &mut [Check], proxy: &ProxyEnv) {
    let source = if proxy.source.is_empty() {
        "none"
    } else {
        proxy.source.as_str()
    };
    for c in checks.iter_mut().filter(|c| c.target.is_some()) {
        c.data
            .entry("proxy_source")
            .or_insert_with(|| serde_json::json!(source));
    }
}

/// Resolves on Ctrl-C, or on SIGTERM (a service manager stopping a run that takes too long);
/// never, where neither can be watched. The run then reports what it has.
pub fn interrupted() -> runner::Interrupt {
    Box::pin(async {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    })
}

/// The device probes of this run, each a future the runner bounds by the deadline: each one's
/// definition says how it starts.
fn device_probes(
    profile: &Profile,
    env: &Arc<Env>,
    proxy: &ProxyEnv,
    storage_paths: Vec<std::path::PathBuf>,
) -> Vec<(Probe, DeviceFuture)> {
    let input = Arc::new(DeviceInput {
        profile: profile.clone(),
        resolver: env.resolver.clone(),
        timeout: env.timeout,
        proxy: proxy.clone(),
        storage_paths,
    });
    Probe::all()
        .iter()
        .copied()
        .filter(|p| env.selection.reported(*p))
        .filter_map(|p| match p.definition().run {
            Run::Device(start) => Some((p, start(input.clone()))),
            Run::Stage(_) | Run::Reader(_) => None,
        })
        .collect()
}

/// The readings of the probes that read what the others measured, after the pipelines and the
/// device probes, each as its definition says.
fn readings(
    checks: &[Check],
    attempts: &[(String, Vec<Attempt>)],
    profile: &Profile,
    sel: &Selection,
) -> Vec<Check> {
    let input = ReaderInput {
        checks,
        attempts,
        profile,
    };
    Probe::all()
        .iter()
        .copied()
        .filter(|p| sel.reported(*p))
        .filter_map(|p| match p.definition().run {
            Run::Reader(read) => Some(read(&input)),
            Run::Stage(_) | Run::Device(_) => None,
        })
        .collect()
}

/// The storage paths to check; a path that does not exist is the user's mistake (exit 3).
fn storage_paths(args: &RunArgs) -> Result<Vec<std::path::PathBuf>, AppError> {
    if args.storage_path.is_empty() {
        return Ok(storage::default_paths());
    }
    for p in &args.storage_path {
        if !p.exists() {
            return Err(AppError::Input(format!(
                "--storage-path {}: does not exist",
                p.display()
            )));
        }
    }
    Ok(args.storage_path.clone())
}

/// What the report says about the device: OS and host name (redacted in Markdown by default).
fn device_info() -> Device {
    Device {
        os: sysinfo::System::long_os_version()
            .or_else(|_| sysinfo::System::name())
            .unwrap_or_else(|_| std::env::consts::OS.to_owned()),
        hostname: sysinfo::System::host_name().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::definition::Kind;

    #[test]
    fn every_reader_probe_has_its_reading() {
        let profile = crate::profile::builtin_set("rest_of_world", false).expect("built-in set");
        let read = readings(&[], &[], &profile, &Selection::default());
        let readers: Vec<Probe> = Probe::all()
            .iter()
            .copied()
            .filter(|p| p.kind() == Kind::Reader)
            .collect();
        let probes: Vec<Probe> = read.iter().map(|c| c.probe).collect();
        assert_eq!(probes, readers);
    }
}
