//! `bmw-netcheck serve`: an exporter for Prometheus to scrape, in the manner of blackbox_exporter.
//!
//! Devices that Prometheus can reach need no cron job and no node_exporter: Prometheus scrapes
//! `GET /probe`, which runs one check and answers its metrics — the names of `--format
//! prometheus`, from the same renderer. As in blackbox_exporter, the handler owns the timeout:
//! the run is bounded by the scrape's `X-Prometheus-Scrape-Timeout-Seconds` less half a second (so
//! the answer arrives before Prometheus gives up) and by `--deadline`. Failure is data: a run
//! whose checks fail is still a 200 with `bmw_netcheck_run_status 2`.
//!
//! What is checked is fixed when the exporter starts (profile, resolver, CA file): `/probe`
//! accepts no query parameters at all, so no scrape, and nobody who can reach the port, can make
//! the exporter read a file or connect to a host of their choosing. Scrapes that arrive while a
//! run is under way share that run instead of starting another, so several Prometheus servers
//! (or an impatient person with curl) cannot multiply the load on BMW's servers.
//!
//! `/metrics` are the exporter's own metrics, `/-/healthy` is for a service manager, and `/` is a
//! plain page for a person: the latest runs with their human reports, HTML-escaped. Every sample
//! of `/probe` carries `instance="<id>"` (`--instance`, or the device's derived id), so with
//! `honor_labels: true` the series of a scraped device are named as those of a pushing one.
//!
//! An exporter runs for months: on glibc it restarts itself once at start with allocator
//! settings under which its resident memory stays what is live (see [`settle_allocator`]).

use crate::cli::{RunArgs, ServeArgs};
use crate::engine::{self as run, Prepared};
use crate::error::{AppError, exit};
use crate::model::{Report, Status};
use crate::redact;
use crate::report::{self, Format};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

mod conn;

/// What Prometheus sends: how long it waits for the answer, in seconds.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";
/// Taken off the scrape timeout, so the answer (rendered, sent) arrives before it passes.
const SCRAPE_OFFSET: f64 = 0.5;
/// A scrape waits this much longer than its run's bound for the report to be rendered.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);
/// Runs kept for the page at `/`.
const RECENT: usize = 10;
/// After SIGTERM, how long runs under way may take before the exporter stops anyway.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// Upper bounds of the run-duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Runs the exporter until SIGTERM or Ctrl-C; exit 0 after a clean stop.
pub fn command(args: &ServeArgs) -> Result<i32, AppError> {
    refuse_inapplicable(&args.run)?;
    settle_allocator();
    let prepared = run::prepare(&args.run)?;
    let instance = crate::instance::of(args.run.instance.as_deref())?;
    // The page shows the human reports as plain text: never terminal colour codes.
    colored::control::set_override(false);
    let runtime = crate::runtime::build(crate::runtime::Threads::Workers(2), "serve")?;
    let code = runtime.block_on(serve(args, prepared, instance));
    runtime.shutdown_background();
    code
}

/// What glibc's allocator is told for a long-running exporter: no per-thread cache of freed
/// blocks, one arena for every thread.
const ALLOCATOR_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1";

/// Restarts the exporter (the same process, by `exec`) with [`ALLOCATOR_TUNABLES`], which glibc
/// reads only when a program starts, so that its resident memory stays what is live.
///
/// Measured with `bench/serve.sh`: the live heap is flat from scrape to scrape (heaptrack), yet
/// with glibc's defaults the resident size crept up by about 400 KiB between scrape 100 and 10,000.
/// Two per-thread features of the allocator did it: each thread's cache of freed blocks (up to 7
/// per size class, counted by the allocator as in use) fills slowly as rare sizes come by, and
/// each worker thread's arena grows to its own high-water mark as the runs' tasks move between
/// the threads. Without both, the resident size is the same after 100 scrapes as after 10,000.
/// A user's own setting of either tunable is left alone; if the restart fails, the exporter
/// serves on with the defaults.
fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let current = match std::env::var_os("GLIBC_TUNABLES") {
            None => None,
            Some(v) => match v.into_string() {
                Ok(v) => Some(v),
                Err(_) => return,
            },
        };
        let Some(tunables) = allocator_tunables(current.as_deref()) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut argv = std::env::args_os();
        let mut again = std::process::Command::new(exe);
        if let Some(arg0) = argv.next() {
            again.arg0(arg0);
        }
        // Returns only if the exec failed.
        let _ = again.args(argv).env("GLIBC_TUNABLES", tunables).exec();
    }
}

/// `GLIBC_TUNABLES` for the exporter, given the one it was started with; `None` when it already
/// says how the allocator's caches or arenas are to be (the user's choice, or after the restart).
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn allocator_tunables(current: Option<&str>) -> Option<String> {
    match current.map(str::trim).filter(|c| !c.is_empty()) {
        None => Some(ALLOCATOR_TUNABLES.to_owned()),
        Some(c)
            if c.contains("glibc.malloc.tcache_count") || c.contains("glibc.malloc.arena_max") =>
        {
            None
        }
        Some(c) => Some(format!("{c}:{ALLOCATOR_TUNABLES}")),
    }
}

/// Options of `run` that have no meaning for an exporter: a mistake to pass, not to ignore.
fn refuse_inapplicable(args: &RunArgs) -> Result<(), AppError> {
    let bad = if args.output.is_some() {
        Some("--output")
    } else if args.push.is_some() {
        Some("--push")
    } else if args.jitter.is_some() {
        Some("--jitter")
    } else if args.lock {
        Some("--lock")
    } else if args.format != Format::Human {
        Some("--format")
    } else {
        None
    };
    match bad {
        Some(flag) => Err(AppError::usage(format!(
            "serve does not take {flag}: it answers every scrape of /probe in the Prometheus format"
        ))),
        None => Ok(()),
    }
}

async fn serve(args: &ServeArgs, prepared: Prepared, instance: String) -> Result<i32, AppError> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| AppError::Input(format!("--listen {}: cannot listen ({e})", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::Internal(format!("cannot read the listening address: {e}")))?;
    let exporter = Arc::new(Exporter {
        prepared,
        args: args.run.clone(),
        instance,
        inflight: Mutex::new(None),
        stats: Mutex::new(Stats::default()),
        recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        started: SystemTime::now(),
    });
    eprintln!(
        "bmw-netcheck: serving on http://{addr}/ (GET /probe, /metrics, /-/healthy) as instance {}",
        exporter.instance
    );
    let app = Router::new()
        .route("/", get(index))
        .route("/probe", get(probe))
        .route("/metrics", get(own_metrics))
        .route("/-/healthy", get(healthy))
        .with_state(exporter);

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        run::interrupted().await;
        let _ = stop_tx.send(true);
    });
    let mut forced = stop.clone();
    // Connections under way finish their request; a client that keeps one open must not keep
    // the exporter from stopping.
    let give_up = async move {
        let _ = forced.wait_for(|s| *s).await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    tokio::select! {
        () = conn::serve(listener, app, stop) => {}
        () = give_up => {}
    }
    eprintln!("bmw-netcheck: stopped serving on http://{addr}/");
    Ok(exit::OK)
}

/// One finished run, as the exporter answers it and shows it.
struct Finished {
    report: Report,
    /// `/probe`'s answer: the Prometheus text, every sample labelled with the instance.
    metrics: String,
    /// The human report, uncoloured, for the page.
    human: String,
}

type InFlight = watch::Receiver<Option<Arc<Finished>>>;

struct Exporter {
    prepared: Prepared,
    args: RunArgs,
    instance: String,
    /// The run under way, which scrapes arriving meanwhile share.
    inflight: Mutex<Option<InFlight>>,
    stats: Mutex<Stats>,
    recent: Mutex<VecDeque<Arc<Finished>>>,
    started: SystemTime,
}

#[derive(Default)]
struct Stats {
    scrapes: u64,
    joined: u64,
    late: u64,
    refused: u64,
    /// Runs by outcome: pass, warn, fail.
    runs: [u64; 3],
    running: u64,
    buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    last_run: Option<f64>,
}

/// A poisoned lock only means another request panicked; the data is counters and a list.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Exporter {
    /// The run to wait for: the one under way, or a new one bounded by `bound`.
    fn start_or_join(self: &Arc<Self>, bound: Duration) -> InFlight {
        let mut slot = lock(&self.inflight);
        if let Some(rx) = slot.as_ref() {
            // A run whose task is gone (it cannot finish) is not joined.
            if rx.has_changed().is_ok() {
                lock(&self.stats).joined += 1;
                return rx.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        *slot = Some(rx.clone());
        drop(slot);
        lock(&self.stats).running += 1;
        let me = self.clone();
        // Its own task: a scrape that gives up (or disconnects) does not cancel the run the
        // others wait for.
        tokio::spawn(async move {
            let started = Instant::now();
            let never = Box::pin(std::future::pending::<()>());
            let report = run::check(&me.prepared, bound, None, never).await;
            let done = Arc::new(me.finished(report, started.elapsed()));
            // Cleared before the answer is published: a scrape after this one starts afresh.
            *lock(&me.inflight) = None;
            let _ = tx.send(Some(done.clone()));
            if !me.args.no_history {
                let record = crate::plan::Record::of(&me.args);
                let _ = tokio::task::spawn_blocking(move || {
                    crate::output::record(&done.report, &record);
                })
                .await;
            }
        });
        rx
    }

    /// Renders a run once for every scrape that shares it, and counts it.
    fn finished(&self, mut report: Report, took: Duration) -> Finished {
        redact::credentials(&mut report);
        let metrics = with_instance(&report::prometheus::render(&report), &self.instance);
        let human = String::from_utf8_lossy(&report::render(
            &report,
            Format::Human,
            report::RenderOptions::default(),
        ))
        .into_owned();
        {
            let mut s = lock(&self.stats);
            s.running = s.running.saturating_sub(1);
            let i = match report.status {
                Status::Pass | Status::Skip => 0,
                Status::Warn => 1,
                Status::Fail => 2,
            };
            s.runs[i] += 1;
            let secs = took.as_secs_f64();
            for (n, le) in s.buckets.iter_mut().zip(BUCKETS) {
                if secs <= le {
                    *n += 1;
                }
            }
            s.duration_sum += secs;
            s.last_run = Some(unix(SystemTime::now()));
        }
        Finished {
            report,
            metrics,
            human,
        }
    }

    fn remember(&self, done: &Arc<Finished>) {
        let mut recent = lock(&self.recent);
        if recent.iter().any(|r| Arc::ptr_eq(r, done)) {
            return;
        }
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(done.clone());
    }
}

/// How long a scrape's run may take: the scrape timeout less [`SCRAPE_OFFSET`] (half the timeout
/// when it is shorter than that), never more than `--deadline`.
pub fn scrape_bound(scrape_timeout: Option<&str>, deadline: Duration) -> Duration {
    let from_scrape = scrape_timeout
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| {
            let t = t.min(86_400.0);
            let less = t - SCRAPE_OFFSET;
            Duration::from_secs_f64(if less >= 0.1 { less } else { t / 2.0 })
        });
    from_scrape.map_or(deadline, |b| b.min(deadline))
}

async fn probe(State(x): State<Arc<Exporter>>, headers: HeaderMap, uri: Uri) -> Response {
    lock(&x.stats).scrapes += 1;
    if uri.query().is_some() {
        lock(&x.stats).refused += 1;
        return (
            StatusCode::BAD_REQUEST,
            "/probe takes no query parameters: what it checks is fixed when the exporter starts (its --profile, --region and other run options)\n",
        )
            .into_response();
    }
    let timeout = headers
        .get(SCRAPE_TIMEOUT_HEADER)
        .and_then(|v| v.to_str().ok());
    let bound = scrape_bound(timeout, x.args.deadline);
    let mut rx = x.start_or_join(bound);
    let waited = tokio::time::timeout(bound + ANSWER_MARGIN, rx.wait_for(Option::is_some)).await;
    let done = match waited {
        Ok(Ok(r)) => r.as_ref().cloned(),
        _ => None,
    };
    match done {
        Some(done) => {
            x.remember(&done);
            ([(header::CONTENT_TYPE, TEXT_FORMAT)], done.metrics.clone()).into_response()
        }
        None => {
            lock(&x.stats).late += 1;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the run this scrape joined (started by an earlier scrape with a longer timeout) did not finish within this scrape's timeout\n",
            )
                .into_response()
        }
    }
}

async fn healthy() -> &'static str {
    "bmw-netcheck exporter is healthy\n"
}

async fn own_metrics(State(x): State<Arc<Exporter>>) -> Response {
    let s = lock(&x.stats);
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "bmw_netcheck_exporter_build_info",
        "gauge",
        "The exporter's version (always 1).",
    );
    let _ = writeln!(
        out,
        "bmw_netcheck_exporter_build_info{{version=\"{}\"}} 1",
        report::prometheus::escape_label(env!("CARGO_PKG_VERSION"))
    );
    family(
        &mut out,
        "bmw_netcheck_exporter_start_time_seconds",
        "gauge",
        "When the exporter started, in seconds since the Unix epoch.",
    );
    let _ = writeln!(
        out,
        "bmw_netcheck_exporter_start_time_seconds {}",
        unix(x.started)
    );
    counters(&mut out, &s, family);
    if let Some(t) = s.last_run {
        family(
            &mut out,
            "bmw_netcheck_exporter_last_run_timestamp_seconds",
            "gauge",
            "When the last run finished, in seconds since the Unix epoch.",
        );
        let _ = writeln!(out, "bmw_netcheck_exporter_last_run_timestamp_seconds {t}");
    }
    drop(s);
    if let Some(rss) = crate::platform::memory::resident_bytes() {
        family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    }
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], out).into_response()
}

/// The exporter's counters: scrapes, runs by outcome, runs in flight, and the histogram of
/// run durations.
fn counters(out: &mut String, s: &Stats, family: impl Fn(&mut String, &str, &str, &str)) {
    family(
        out,
        "bmw_netcheck_exporter_scrapes_total",
        "counter",
        "Requests of /probe.",
    );
    let _ = writeln!(out, "bmw_netcheck_exporter_scrapes_total {}", s.scrapes);
    family(
        out,
        "bmw_netcheck_exporter_scrapes_joined_total",
        "counter",
        "Requests of /probe answered by a run already under way for another scrape.",
    );
    let _ = writeln!(
        out,
        "bmw_netcheck_exporter_scrapes_joined_total {}",
        s.joined
    );
    family(
        out,
        "bmw_netcheck_exporter_scrapes_late_total",
        "counter",
        "Requests of /probe whose shared run did not finish within their timeout (answered 503).",
    );
    let _ = writeln!(out, "bmw_netcheck_exporter_scrapes_late_total {}", s.late);
    family(
        out,
        "bmw_netcheck_exporter_scrapes_refused_total",
        "counter",
        "Requests of /probe refused because they carried query parameters (answered 400).",
    );
    let _ = writeln!(
        out,
        "bmw_netcheck_exporter_scrapes_refused_total {}",
        s.refused
    );
    family(
        out,
        "bmw_netcheck_exporter_runs_total",
        "counter",
        "Runs finished, by outcome: pass, warn or fail.",
    );
    for (status, n) in ["pass", "warn", "fail"].iter().zip(s.runs) {
        let _ = writeln!(
            out,
            "bmw_netcheck_exporter_runs_total{{status=\"{status}\"}} {n}"
        );
    }
    family(
        out,
        "bmw_netcheck_exporter_runs_in_flight",
        "gauge",
        "Runs under way (0 or 1: concurrent scrapes share one).",
    );
    let _ = writeln!(out, "bmw_netcheck_exporter_runs_in_flight {}", s.running);
    family(
        out,
        "bmw_netcheck_exporter_run_duration_seconds",
        "histogram",
        "How long the runs took, in seconds.",
    );
    let count: u64 = s.runs.iter().sum();
    for (le, n) in BUCKETS.iter().zip(s.buckets) {
        let _ = writeln!(
            out,
            "bmw_netcheck_exporter_run_duration_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "bmw_netcheck_exporter_run_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nbmw_netcheck_exporter_run_duration_seconds_sum {}\nbmw_netcheck_exporter_run_duration_seconds_count {count}",
        s.duration_sum
    );
}

/// The page for a person: what is checked, and the latest runs with their reports.
async fn index(State(x): State<Arc<Exporter>>) -> Response {
    let recent: Vec<Arc<Finished>> = lock(&x.recent).iter().rev().cloned().collect();
    let p = &x.prepared.profile;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>bmw-netcheck exporter</title></head>\n<body>\n<h1>bmw-netcheck exporter</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>Instance <code>{}</code>, version {}, checking the profile <code>{}</code> ({} endpoints). \
         <a href=\"/probe\">/probe</a> runs a check; <a href=\"/metrics\">/metrics</a> are the exporter's own metrics.</p>",
        html(&x.instance),
        html(env!("CARGO_PKG_VERSION")),
        html(&p.name),
        p.endpoints.len()
    );
    if recent.is_empty() {
        out.push_str("<p>No run yet: the first scrape of /probe starts one.</p>\n");
    } else {
        out.push_str("<h2>Latest runs</h2>\n<table border=\"1\" cellpadding=\"4\">\n<tr><th>started</th><th>status</th><th>duration</th><th>report</th></tr>\n");
        for r in &recent {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.0} ms</td><td><a href=\"#{id}\">{id}</a></td></tr>",
                html(&r.report.started_at),
                r.report.status.verdict(),
                r.report.duration_ms,
                id = html(&r.report.report_id),
            );
        }
        out.push_str("</table>\n");
        for r in &recent {
            let _ = writeln!(
                out,
                "<h3 id=\"{id}\">Report {id}</h3>\n<pre>{}</pre>",
                html(&r.human),
                id = html(&r.report.report_id)
            );
        }
    }
    out.push_str("</body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], out).into_response()
}

/// Text for HTML: the five characters that could open markup or end an attribute, escaped.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Puts `instance="<id>"` first on every sample of a Prometheus text exposition.
pub fn with_instance(text: &str, instance: &str) -> String {
    let label = format!(
        "instance=\"{}\"",
        report::prometheus::escape_label(instance)
    );
    let mut out = String::with_capacity(text.len() + text.lines().count() * (label.len() + 3));
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            out.push_str(line);
        } else {
            match line.find(['{', ' ']) {
                Some(i) if line[i..].starts_with("{}") => {
                    let _ = write!(out, "{}{{{label}}}{}", &line[..i], &line[i + 2..]);
                }
                Some(i) if line[i..].starts_with('{') => {
                    let _ = write!(out, "{}{{{label},{}", &line[..i], &line[i + 1..]);
                }
                Some(i) => {
                    let _ = write!(out, "{}{{{label}}}{}", &line[..i], &line[i..]);
                }
                None => out.push_str(line),
            }
        }
        out.push('\n');
    }
    out
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_timeout_bounds_the_run_less_half_a_second() {
        let d = Duration::from_secs(20);
        assert_eq!(scrape_bound(Some("10"), d), Duration::from_millis(9500));
        assert_eq!(scrape_bound(Some("1.5"), d), Duration::from_secs(1));
        assert_eq!(scrape_bound(Some("60"), d), d);
        // Shorter than the offset: half of it rather than nothing.
        assert_eq!(scrape_bound(Some("0.4"), d), Duration::from_millis(200));
        for junk in [
            None,
            Some(""),
            Some("soon"),
            Some("-3"),
            Some("NaN"),
            Some("inf"),
        ] {
            assert_eq!(scrape_bound(junk, d), d, "{junk:?}");
        }
        assert_eq!(scrape_bound(Some("1e300"), d), d);
    }

    #[test]
    fn every_sample_gets_the_instance_label_and_comments_stay() {
        let text =
            "# HELP a_b x\n# TYPE a_b gauge\na_b 1\nc{probe=\"dns\",target=\"a b\"} 2\nd{} 3\n";
        assert_eq!(
            with_instance(text, "bmw-1"),
            "# HELP a_b x\n# TYPE a_b gauge\na_b{instance=\"bmw-1\"} 1\nc{instance=\"bmw-1\",probe=\"dns\",target=\"a b\"} 2\nd{instance=\"bmw-1\"} 3\n"
        );
    }

    #[test]
    fn the_allocator_tunables_are_added_once_and_a_users_choice_is_kept() {
        assert_eq!(
            allocator_tunables(None).as_deref(),
            Some(ALLOCATOR_TUNABLES)
        );
        assert_eq!(
            allocator_tunables(Some("")).as_deref(),
            Some(ALLOCATOR_TUNABLES)
        );
        assert_eq!(
            allocator_tunables(Some("glibc.malloc.check=3")),
            Some(format!("glibc.malloc.check=3:{ALLOCATOR_TUNABLES}"))
        );
        // After the restart, and when the user chose.
        assert_eq!(
            allocator_tunables(Some("glibc.malloc.tcache_count=0")),
            None
        );
        assert_eq!(allocator_tunables(Some("glibc.malloc.arena_max=4")), None);
        assert_eq!(allocator_tunables(Some(ALLOCATOR_TUNABLES)), None);
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn run_options_without_meaning_for_an_exporter_are_refused() {
        let base = RunArgs::default();
        assert!(refuse_inapplicable(&base).is_ok());
        let with = |f: &dyn Fn(&mut RunArgs)| {
            let mut a = base.clone();
            f(&mut a);
            refuse_inapplicable(&a).unwrap_err().to_string()
        };
        assert!(with(&|a| a.output = Some("x".into())).contains("--output"));
        assert!(with(&|a| a.push = Some("http://gw".into())).contains("--push"));
        assert!(with(&|a| a.lock = true).contains("--lock"));
        assert!(with(&|a| a.format = Format::Json).contains("--format"));
    }
}
