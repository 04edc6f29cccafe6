//! One `run`: profile → runner → diagnosis → report → output → exit code.
//!
//! This is the only place that ties the parts together; each of them stays ignorant of the others.

use crate::cli::{ColorWhen, RunArgs};
use crate::error::{AppError, exit};
use crate::model::{Check, EndpointInfo, Probe, Report, SCHEMA_VERSION, Status, Tool};
use crate::output;
use crate::probe::{dns, tls};
use crate::profile::{self, Profile};
use crate::runner::{self, Env, Selection};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub fn load_profile(args: &RunArgs) -> Result<Profile, AppError> {
    match &args.profile {
        Some(path) => profile::load(path),
        None => profile::builtin(&args.region),
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

fn report_id() -> String {
    format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
}

/// Runs the checks and writes the report. Returns the exit code of the verdict.
pub fn run(args: &RunArgs) -> Result<i32, AppError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let profile = load_profile(args)?;
    let sel = selection(args);
    let tls = tls::TlsSetup::load(args.ca_file.as_deref())?;
    if let Some(out) = &args.output {
        output::check_writable(out)?;
    }
    decide_color(args.color, args.output.is_some());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::Internal(format!("cannot start the async runtime: {e}")))?;

    let checks = runtime.block_on(async {
        let resolver_label = args
            .resolver
            .map_or_else(|| "system".to_owned(), |a| a.to_string());
        let env = Arc::new(Env {
            timeout: args.timeout,
            deadline: args.deadline,
            samples: args.samples,
            thresholds: profile.thresholds.clone(),
            resolver: dns::resolver(args.resolver, args.timeout),
            resolver_label,
            tls,
            selection: sel.clone(),
        });
        let device = Vec::new();
        let (results, device_checks) = runner::run_endpoints(&profile, env, device, started).await;
        let mut checks: Vec<Check> = results.into_iter().flat_map(|r| r.checks).collect();
        checks.extend(device_checks);
        checks
    });
    // Background work (a resolver retry, a late socket) must not hold the exit past the deadline.
    runtime.shutdown_background();

    let report = Report {
        schema_version: SCHEMA_VERSION,
        report_id: report_id(),
        tool: Tool::this(),
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        duration_ms: crate::model::ms(started.elapsed()),
        region: profile.name.clone(),
        status: Report::overall(&checks),
        suspects: Vec::new(),
        checks,
        endpoints: profile
            .endpoints
            .iter()
            .map(|e| EndpointInfo {
                name: e.name.clone(),
                host: e.host.clone(),
                port: e.port,
                role: e.role.as_str().to_owned(),
            })
            .collect(),
        device: None,
        redacted: Vec::new(),
    };

    output::deliver(&report, args)?;
    Ok(match report.status {
        Status::Fail => exit::FAIL,
        Status::Warn => exit::WARN,
        _ => exit::OK,
    })
}

/// `list`: what a run would do, without touching the network.
pub fn list(args: &RunArgs) -> Result<i32, AppError> {
    let profile = load_profile(args)?;
    let sel = selection(args);
    decide_color(args.color, false);
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(out, "profile: {} ({})", profile.name, profile.source);
    let _ = writeln!(out, "\nprobes:");
    for p in Probe::ALL {
        let state = if sel.reported(p) {
            "on "
        } else if sel.runs(p) {
            "pre"
        } else {
            "off"
        };
        let _ = writeln!(out, "  {state} {:<8} {}", p.name(), p.describe());
    }
    let _ = writeln!(out, "\nendpoints:");
    for e in &profile.endpoints {
        let stages: Vec<&str> = runner::planned_stages(e, &sel)
            .iter()
            .map(|p| p.name())
            .collect();
        let path = match e.protocol {
            profile::Protocol::Https => format!("https://{}{}", e.authority(), e.path),
            profile::Protocol::Tls => format!("tls://{}", e.authority()),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<8} {path}   [{}]",
            e.name,
            e.role.as_str(),
            stages.join(" → ")
        );
    }
    let _ = writeln!(out, "\nthresholds:");
    for (name, value, what) in profile.thresholds.describe() {
        let _ = writeln!(out, "  {name:<22} {value:<12} {what}");
    }
    let _ = writeln!(
        out,
        "\nlimits: step timeout {}, deadline {}, {} latency sample(s) per endpoint",
        humantime::format_duration(args.timeout),
        humantime::format_duration(args.deadline),
        args.samples
    );
    output::write_stdout(out.as_bytes());
    Ok(exit::OK)
}
