//! One `run`: profile → runner → diagnosis → report → output → exit code.
//!
//! This is the only place that ties the parts together; each of them stays ignorant of the others.

use crate::cli::{ColorWhen, RunArgs};
use crate::diagnose::diagnose;
use crate::error::{AppError, exit};
use crate::knowledge::Knowledge;
use crate::model::Device;
use crate::model::{Check, EndpointInfo, Probe, Report, SCHEMA_VERSION, Status, Tool};
use crate::output;
use crate::probe::proxy::ProxyEnv;
use crate::probe::{captive, clock, dns, ipv6, storage, tcp, tls, vpn};
use crate::profile::{self, Profile};
use crate::runner::{self, Env, Selection};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The profile of this run: the file of `--profile`, or the built-in set of `--region` and
/// `--service`. `--service` names a built-in set, so it cannot be combined with `--profile`
/// (which replaces the built-in sets): the run would not check what the user asked for.
pub fn load_profile(args: &RunArgs) -> Result<Profile, AppError> {
    match (&args.profile, args.service) {
        (Some(_), Some(_)) => Err(AppError::usage(
            "--service chooses a built-in endpoint set and --profile replaces the built-in sets: use one or the other",
        )),
        (Some(path), None) => profile::load(path),
        (None, service) => {
            profile::builtin_set(&args.region, service == Some(crate::cli::Service::Cardata))
        }
    }
}

pub fn selection(args: &RunArgs) -> Selection {
    Selection {
        only: args.only_set(),
        skip: args.skip.iter().copied().collect(),
    }
}

/// Decides colour once, from the flag, `NO_COLOR` and whether stdout is a terminal.
pub fn decide_color(when: ColorWhen, to_file: bool) -> bool {
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            !to_file
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    colored::control::set_override(on);
    on
}

pub fn report_id() -> String {
    format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
}

/// What a run needs, read and validated before any probe: `run` uses it once, `serve` for every
/// scrape (so a bad profile stops the exporter at start, never a scrape).
pub struct Prepared {
    pub profile: Profile,
    pub tls: tls::TlsSetup,
    sel: Selection,
    proxy: ProxyEnv,
    kb: Knowledge,
    storage_paths: Vec<std::path::PathBuf>,
}

/// Reads and checks every input of a run; a mistake is exit 3 before any probe.
pub fn prepare(args: &RunArgs) -> Result<Prepared, AppError> {
    let profile = load_profile(args)?;
    let sel = selection(args);
    let tls = tls::TlsSetup::load(args.ca_file.as_deref())?;
    tls.warm_up();
    let proxy = ProxyEnv::from_env()?;
    let kb = Knowledge::builtin().map_err(AppError::Internal)?;
    let storage_paths = storage_paths(args)?;
    Ok(Prepared {
        profile,
        sel,
        tls,
        proxy,
        kb,
        storage_paths,
    })
}

/// Runs the checks, writes the report and pushes its metrics. Returns the exit code of the verdict.
pub fn run(args: &RunArgs) -> Result<i32, AppError> {
    // Checked first, like every other input: a bad --push URL is exit 3 before any probe.
    let push = match &args.push {
        Some(_) => {
            let tls = tls::TlsSetup::load(args.ca_file.as_deref())?;
            crate::push::Push::from_args(args, &tls)?
        }
        None => None,
    };
    // A push keeps its share of the deadline, so the whole run, push included, ends within it.
    let probe_deadline = push
        .as_ref()
        .map_or(args.deadline, |p| args.deadline.saturating_sub(p.budget()));
    let report = report(args, true, probe_deadline)?;
    let delivered = output::deliver(&report, args);
    if let Some(push) = push {
        let took = std::time::Duration::from_secs_f64(report.duration_ms.max(0.0) / 1000.0);
        let left = args.deadline.saturating_sub(took);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::Internal(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(push.send(&report, left));
        runtime.shutdown_background();
    }
    delivered?;
    Ok(exit::of(report.status))
}

/// The report of one run: on the system's routing, bound to one `--interface`, or merged from a
/// run per uplink (`--via all`, a repeated `--interface`). `deadline` bounds the probes.
pub fn report(
    args: &RunArgs,
    progress: bool,
    deadline: std::time::Duration,
) -> Result<Report, AppError> {
    if crate::uplinks::wanted(args) {
        let kb = Knowledge::builtin().map_err(AppError::Internal)?;
        if let Some(out) = &args.output {
            output::check_writable(out)?;
        }
        decide_color(args.color, args.output.is_some());
        let _lock = crate::lock::acquire_if(args)?;
        crate::lock::jitter(args.jitter);
        return crate::uplinks::execute(args, &kb);
    }
    if !args.interface.is_empty() {
        let i = crate::uplinks::chosen(args)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::usage("--interface needs an interface name"))?;
        crate::iface::bind_process(&i.name);
        let mut r = execute(args, progress, deadline)?;
        crate::uplinks::label(&mut r, &i);
        return Ok(r);
    }
    execute(args, progress, deadline)
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
        output::check_writable(out)?;
    }
    decide_color(args.color, args.output.is_some());
    // Before the clock starts: neither waiting for the lock nor the jitter counts against --deadline.
    let _lock = crate::lock::acquire_if(args)?;
    crate::lock::jitter(args.jitter);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::Internal(format!("cannot start the async runtime: {e}")))?;

    let progress = crate::progress::Progress::new(
        progress && crate::progress::wanted(args.format == crate::cli::OutputFormat::Human),
        prepared
            .profile
            .endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect(),
    );
    let report = runtime.block_on(check(
        &prepared,
        args,
        deadline,
        Some(&progress),
        interrupted(),
    ));
    progress.finish();
    // Background work (a resolver retry, a late socket) must not hold the exit past the deadline.
    runtime.shutdown_background();
    Ok(report)
}

/// One check of the prepared profile, bounded by `deadline`: the report, not yet delivered.
/// `serve` calls it on its own runtime for every scrape.
pub async fn check(
    prepared: &Prepared,
    args: &RunArgs,
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
    } = prepared;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let checks = {
        let resolver_label = args
            .resolver
            .map_or_else(|| "system".to_owned(), |a| a.to_string());
        let env = Arc::new(Env {
            timeout: args.timeout,
            deadline,
            samples: args.samples,
            thresholds: profile.thresholds.clone(),
            resolver: dns::resolver(args.resolver, args.timeout),
            resolver_label,
            resolver_servers: dns::servers(args.resolver),
            tls: tls.clone(),
            selection: sel.clone(),
            proxy: proxy.clone(),
            on_done: progress.map(|progress| {
                let progress = progress.clone();
                Arc::new(move |name: &str| progress.done(name)) as runner::DoneHook
            }),
        });
        let device = device_probes(profile, &env, proxy, storage_paths.clone());
        let (results, device_checks) =
            runner::run_endpoints(profile, env.clone(), device, started, interrupt).await;
        let attempts: Vec<(String, Vec<tcp::Attempt>)> = results
            .iter()
            .map(|r| (r.endpoint.name.clone(), r.attempts.clone()))
            .collect();
        let mut checks: Vec<Check> = results.into_iter().flat_map(|r| r.checks).collect();
        crate::crosscheck::apply(&mut checks, &profile.endpoints);
        checks.extend(device_checks);
        // Probes that read what the others measured.
        if sel.reported(Probe::Clock) {
            let c = clock::run(&checks, &profile.thresholds);
            checks.push(c);
        }
        if sel.reported(Probe::Ipv6) {
            checks.push(ipv6::run(&attempts));
        }
        checks.sort_by_key(|c| (c.target.is_none(), c.probe));
        checks
    };

    let endpoints: Vec<EndpointInfo> = profile
        .endpoints
        .iter()
        .map(|e| EndpointInfo {
            name: e.name.clone(),
            host: e.host.clone(),
            port: e.port,
            role: e.role.as_str().to_owned(),
        })
        .collect();
    let suspects = diagnose(&checks, &endpoints, kb);
    Report {
        schema_version: SCHEMA_VERSION,
        report_id: report_id(),
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

/// The device probes of this run, each a future the runner bounds by the deadline.
fn device_probes(
    profile: &Profile,
    env: &Arc<Env>,
    proxy: &ProxyEnv,
    storage_paths: Vec<std::path::PathBuf>,
) -> Vec<(Probe, runner::DeviceFuture)> {
    let sel = &env.selection;
    let mut probes: Vec<(Probe, runner::DeviceFuture)> = Vec::new();
    if sel.reported(Probe::Storage) {
        let t = profile.thresholds.clone();
        probes.push((
            Probe::Storage,
            Box::pin(async move {
                // statvfs on a hung network mount blocks: keep it off the async workers.
                tokio::task::spawn_blocking(move || storage::run(&storage_paths, &t))
                    .await
                    .unwrap_or_default()
            }),
        ));
    }
    if sel.reported(Probe::Proxy) {
        let c = proxy.check();
        probes.push((Probe::Proxy, Box::pin(async move { vec![c] })));
    }
    if sel.reported(Probe::Vpn) {
        probes.push((
            Probe::Vpn,
            Box::pin(async move {
                tokio::task::spawn_blocking(vpn::run)
                    .await
                    .map(|c| vec![c])
                    .unwrap_or_default()
            }),
        ));
    }
    if sel.reported(Probe::Captive) {
        let env = env.clone();
        let cfg = profile.captive.clone();
        probes.push((
            Probe::Captive,
            Box::pin(async move {
                vec![match cfg {
                    Some(cfg) => captive::run(&cfg, &env.resolver, env.timeout).await,
                    None => Check::new(
                        Probe::Captive,
                        None,
                        Status::Skip,
                        "captive.off",
                        "switched off in the profile ([captive] url = \"\")",
                    ),
                }]
            }),
        ));
    }
    probes
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
