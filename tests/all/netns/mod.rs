//! Network faults, for real: the tool runs in a network namespace of its own, joined to the
//! servers' namespace only by a delay line that holds, drops or forwards every packet — exact
//! delay, seeded loss and blackholes, without `sch_netem`.
//!
//! - [`ns`]: namespaces (created, entered, removed on drop);
//! - [`delayline`]: the TUN-to-TUN delay line;
//! - [`bed`]: the two namespaces and the line, wired;
//!
//! these three depend on nothing else here, for reuse (e.g. by a benchmark: declare the three
//! files as sibling modules with `#[path]`). `harness` and `cases` are the tests. They need
//! root, iproute2 and /dev/net/tun; elsewhere they skip through `support::skip` (a failure
//! under `BMW_NETCHECK_TEST_REQUIRE=1`, as in CI).
//!
//! - `NETNS_CASE=<part of a name>`: run only the matching cases (a filter that matches none is
//!   a failure, never a pass with nothing tried);
//! - `NETNS_TRACE=1`: the line prints every packet (time, direction, ports, TCP flags);
//! - `NETNS_TOOL=<path>`: test another build of the binary (e.g. a release build).

// The plumbing is an API for other users too (a benchmark); not every part is used here.
#[allow(dead_code)]
pub mod bed;
#[allow(dead_code)]
pub mod delayline;
#[allow(dead_code)]
pub mod ns;

mod cases;
mod harness;

use bed::{SERVER_V4, Testbed};
use delayline::Shaping;
use harness::{median, ms, say, skip_reason};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Cases running at once: they mostly wait on the line, but the timing ones should not fight
/// for the two cores.
const WORKERS: usize = 2;

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

/// Attempts per case: a case whose figures were blurred by a busy machine gets another go; a
/// real fault fails every time. Earlier failed attempts are shown with the result.
const ATTEMPTS: usize = 3;

/// Runs one case up to [`ATTEMPTS`] times and prints its line.
fn run_case(case: &cases::Case) -> (bool, String) {
    let t0 = Instant::now();
    let mut failures = Vec::new();
    for attempt in 1..=ATTEMPTS {
        match catch_unwind(AssertUnwindSafe(case.run)) {
            Ok(figures) => {
                let mut line = format!(
                    "netns: ok   {} ({:.1} s): {figures}",
                    case.name,
                    t0.elapsed().as_secs_f64()
                );
                if attempt > 1 {
                    line.push_str(&format!(
                        " [attempt {attempt}; before: {}]",
                        failures.join(" | ")
                    ));
                }
                say(&line);
                return (true, line);
            }
            Err(p) => failures.push(panic_text(p.as_ref())),
        }
    }
    let line = format!(
        "netns: FAIL {} ({:.1} s, {ATTEMPTS} attempts): {}",
        case.name,
        t0.elapsed().as_secs_f64(),
        failures.join(" | ")
    );
    say(&line);
    (false, line)
}

#[test]
fn network_faults() {
    if let Some(why) = skip_reason() {
        crate::support::skip(&format!("netns: the network-fault cases cannot run: {why}"));
        return;
    }
    let _quiet = crate::support::quiet_machine();
    let filter = std::env::var("NETNS_CASE").unwrap_or_default();
    let all = cases::all();
    let known: Vec<&str> = all.iter().map(|c| c.name).collect();
    let chosen: Vec<cases::Case> = all
        .into_iter()
        .filter(|c| c.name.contains(filter.as_str()))
        .collect();
    assert!(
        !chosen.is_empty(),
        "NETNS_CASE={filter:?} matches no network-fault case; the cases are: {}",
        known.join(", ")
    );
    let (timing, rest): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|c| c.timing);
    let tried = timing.len() + rest.len();
    let started = Instant::now();
    // The cases that compare timings run one at a time; the others share a few threads.
    let mut results: Vec<(bool, String)> = timing.iter().map(run_case).collect();
    let queue = Mutex::new(rest);
    let shared = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let next = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        (!q.is_empty()).then(|| q.remove(0))
                    };
                    let Some(case) = next else { break };
                    let r = run_case(&case);
                    shared.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                }
            });
        }
    });
    results.extend(shared.into_inner().unwrap_or_else(|p| p.into_inner()));
    if filter.is_empty() {
        // Measured alone, after the cases, so they do not disturb it.
        delay_line_overhead();
    }
    let passed = results.iter().filter(|r| r.0).count();
    say(&format!(
        "netns: {tried} network faults tried, {passed} passed ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    let failed: Vec<&String> = results.iter().filter(|r| !r.0).map(|r| &r.1).collect();
    assert!(failed.is_empty(), "network faults failed:\n{failed:#?}");
}

/// What the line costs: TCP connect round trips across it at zero delay and at 20 ms.
fn delay_line_overhead() {
    let bed = Testbed::new(Shaping::default()).expect("set up the test bed");
    let addr = SocketAddr::new(SERVER_V4.into(), 7);
    let _server = harness::raw_in(&bed, addr, crate::support::RawMode::Silent);
    let measure = |n: usize| -> Vec<f64> {
        bed.client
            .enter(|| {
                (0..n)
                    .map(|_| {
                        let t = Instant::now();
                        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                            .expect("connect across the line");
                        let d = ms(t.elapsed());
                        drop(s);
                        d
                    })
                    .collect()
            })
            .expect("enter the client namespace")
    };
    let zero = measure(100);
    bed.set(Shaping::rtt(Duration::from_millis(20)));
    let twenty = measure(50);
    let stats = bed.stats();
    let (m0, m20) = (median(&zero), median(&twenty));
    say(&format!(
        "netns: delay line: connect RTT median {m0:.3} ms at 0 ms, {m20:.3} ms at 20 ms \
         (overhead {:.3} ms per round trip); writes late by {:?} on average, {:?} at worst",
        m20 - 20.0,
        stats.late_mean,
        stats.late_max
    ));
    assert!(
        m20 >= 20.0,
        "a round trip cannot beat the delay ({m20:.3} ms)"
    );
    // How small the overhead is (the aim is under 0.3 ms) is a figure, printed above and kept in
    // BENCHMARKS.md, not a pass mark: a loaded machine may add to it, and no test asserts a time.
}
