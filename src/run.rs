//! The `run` command: one run (or one per uplink), delivered, pushed, and its verdict as the exit
//! code. The checks themselves are [`crate::engine`]'s.

use crate::cli::RunArgs;
use crate::engine::execute;
use crate::error::{AppError, exit};
use crate::knowledge::Knowledge;
use crate::model::Report;
use crate::output;
use crate::plan::{Delivery, Plan, Start};
use crate::probe::tls;
use crate::term::decide_color;

/// Runs the checks, writes the report and pushes its metrics. Returns the exit code of the verdict.
pub fn run(args: &RunArgs) -> Result<i32, AppError> {
    // Checked first, like every other input: a bad --push URL is exit 3 before any probe.
    let push = match &args.push {
        Some(_) => {
            let tls = tls::TlsSetup::load(args.ca_file.as_deref())?;
            crate::push::Push::new(&crate::plan::PushTo::of(args), &tls)?
        }
        None => None,
    };
    // A push keeps its share of the deadline, so the whole run, push included, ends within it.
    let probe_deadline = push
        .as_ref()
        .map_or(args.deadline, |p| args.deadline.saturating_sub(p.budget()));
    let mut report = report(args, true, probe_deadline)?;
    let delivered = output::deliver(&mut report, &Delivery::of(args));
    if let Some(push) = push {
        let took = std::time::Duration::from_secs_f64(report.duration_ms.max(0.0) / 1000.0);
        let left = args.deadline.saturating_sub(took);
        let runtime = crate::runtime::build(crate::runtime::Threads::Current, "push")?;
        runtime.block_on(push.send(&report, left));
        runtime.shutdown_background();
    }
    delivered?;
    let code = exit::of(report.status);
    // The process ends here: freeing the report check by check is work the kernel does at
    // once (a twentieth of the CPU of a run with thousands of endpoints).
    std::mem::forget(report);
    Ok(code)
}

/// The report of one run: on the system's routing, bound to one `--interface`, or merged from a
/// run per uplink (`--via all`, a repeated `--interface`). `deadline` bounds the probes.
pub fn report(
    args: &RunArgs,
    progress: bool,
    deadline: std::time::Duration,
) -> Result<Report, AppError> {
    let plan = Plan::of(args);
    if crate::uplinks::wanted(&plan.links) {
        let kb = Knowledge::builtin().map_err(AppError::Internal)?;
        // Every input is checked here, once, before any child starts.
        crate::plan::load_profile(args)?;
        if let Some(out) = &args.output {
            crate::files::check_writable(out)?;
        }
        decide_color(args.color, args.output.is_some());
        let _lock = crate::lock::start(&Start::of(args))?;
        return crate::uplinks::execute(&plan, &kb);
    }
    if !plan.links.interfaces.is_empty() {
        let i = crate::uplinks::chosen(&plan.links)?
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
