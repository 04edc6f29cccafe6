//! netbench: is bmw-netcheck fast, light and exact? Measured side by
//! side with dig and curl, in one run, over network paths with exactly known round-trip times.
//!
//! ```text
//!   client namespace                                   server namespace
//!   tun1  10.214.1.1/24  ─── delay line  20 ms RTT ───  tun1  10.214.1.2  HTTPS rtt20.netcheck.lan
//!   tun2  10.214.2.1/24  ─── delay line  40 ms RTT ───  tun2  10.214.2.2  HTTPS rtt40.netcheck.lan
//!   …                                                  …
//!   tun8  10.214.8.1/24  ─── delay line 160 ms RTT ───  tun8  10.214.8.2  HTTPS rtt160.netcheck.lan
//!   tun53 10.214.53.1/24 ─── delay line  20 ms RTT ───  tun53 10.214.53.2 DNS (answer for rttN held N−20 ms)
//! ```
//!
//! One client namespace, one server namespace, and nine delay lines (`tests/all/netns/
//! delayline.rs`), one per endpoint plus one for the resolver: a line has one shaping for all its
//! packets, so each RTT gets its own line, TUN pair and /24. The resolver's line has the smallest
//! RTT and the DNS fixture holds the answer for `rttN…` another N−20 ms, so resolving an
//! endpoint's name costs that endpoint's RTT — every step to an endpoint costs its RTT, which is
//! what the ideal below assumes. Every address exists only inside these two namespaces; they
//! (and the TUN devices) are removed at the end, on a panic (panic = abort: by the panic hook) and
//! on SIGINT/SIGTERM/SIGHUP.
//!
//! Run as root, after building the tool: `bench/run.sh` (or `cargo build --release --bin
//! bmw-netcheck --example netbench && target/release/examples/netbench`). The Markdown report
//! goes to stdout, progress to stderr. `NETBENCH_REPS` (default 7; at least 5 for figures worth a median)
//! and `NETBENCH_TOOL` (default: `bmw-netcheck` next to this binary's directory) change the run.

// Scenario scripts, long on purpose; the 80-line rule is for src/.
#![allow(clippy::too_many_lines)]

#[path = "../tests/all/netns/delayline.rs"]
#[allow(dead_code)]
mod delayline;
#[path = "../tests/all/netns/ns.rs"]
#[allow(dead_code)]
mod ns;
#[path = "../tests/all/support/mod.rs"]
mod support;

use delayline::{DelayLine, Filter, Shaping, Tun};
use ns::Netns;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{
    DnsAnswer, DnsServer, EndpointSpec, HttpBehaviour, HttpsServer, Leaf, Pki, ProfileFile,
};

/// The endpoints' round-trip times, in milliseconds.
const RTTS: [u64; 8] = [20, 40, 60, 80, 100, 120, 140, 160];
/// The resolver's line; the DNS fixture adds the rest of each endpoint's RTT.
const DNS_LINE_RTT: u64 = 20;
/// The /24 of the resolver's line (the endpoints use 1..=8).
const DNS_NET: u8 = 53;
/// Latency samples per endpoint in the full check (the tool's default).
const SAMPLES: u32 = 5;
/// The deadline run: `--deadline` and `--timeout`.
const DEADLINE_MS: u64 = 2000;
const DEADLINE_TIMEOUT: &str = "10s";
/// Any benchmarked process running longer than this is killed (a hang).
const HANG: Duration = Duration::from_secs(120);
/// Where OpenSSL-style tools (and rustls-native-certs) look for roots when told to. Removed, so
/// the tool loads the system's roots the way it does on a stock install, whoever runs this.
const CERT_VARS: [&str; 3] = ["SSL_CERT_FILE", "SSL_CERT_DIR", "NIX_SSL_CERT_FILE"];
use bmw_netcheck::probe::proxy::VARS as PROXY_VARS;

/// The endpoint stages, from the tool's registry: device probes depend on the machine.
fn engine_probes() -> String {
    let stages: Vec<&str> = bmw_netcheck::probe::registry::endpoint_stages()
        .map(|p| p.name())
        .collect();
    stages.join(",")
}

fn addr(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 214, net, host)
}

fn host_of(rtt: u64) -> String {
    format!("rtt{rtt}.netcheck.lan")
}

fn name_of(rtt: u64) -> String {
    format!("rtt-{rtt}ms")
}

fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "netbench: {line}");
}

// ---------------------------------------------------------------------------------------------
// Cleanup that also works when unwinding does not happen.

/// Namespaces this process created, for the panic hook and the signal thread.
static NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn register(ns: &Netns) {
    if let Ok(mut v) = NAMESPACES.lock() {
        v.push(ns.name().to_owned());
    }
}

/// Removes every namespace this process created that still exists (killing what runs inside).
/// The TUN devices go with the process's file descriptors.
fn emergency_cleanup() {
    let names = match NAMESPACES.try_lock() {
        Ok(v) => v.clone(),
        Err(_) => return,
    };
    for name in names {
        if !Path::new("/run/netns").join(&name).exists() {
            continue;
        }
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: plain kill(2).
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        say(&format!("removed namespace {name}"));
    }
}

/// SIGINT, SIGTERM and SIGHUP are blocked in every thread (set before any is spawned) and taken
/// by one thread, which cleans up and exits. Children start with an empty mask (std resets it).
fn install_cleanup_handlers() {
    // SAFETY: sigset manipulation on a local set; pthread_sigmask on the calling thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: set is a valid, initialised sigset; sig a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            say(&format!("signal {sig}: cleaning up"));
            emergency_cleanup();
            std::process::exit(128 + sig);
        }
    });
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        // With panic = "abort" (the release profile) no destructor will run.
        if cfg!(panic = "abort") {
            emergency_cleanup();
        }
    }));
}

// ---------------------------------------------------------------------------------------------
// The test bed: two namespaces, nine lines.

struct Bed {
    // Field order is drop order: the lines (and their TUN devices) first, then the namespaces.
    lines: Vec<DelayLine>,
    rtts: Vec<Duration>,
    client: Netns,
    server: Netns,
}

impl Bed {
    /// One line per `(subnet, rtt)`: `tun<subnet>` in each namespace, `10.214.<subnet>.1` on the
    /// client's side and `.2` on the server's.
    fn new(specs: &[(u8, Duration)]) -> io::Result<Bed> {
        let client = Netns::create("bc")?;
        register(&client);
        let server = Netns::create("bs")?;
        register(&server);
        let mut lines = Vec::new();
        let mut rtts = Vec::new();
        for &(net, rtt) in specs {
            let dev = format!("tun{net}");
            let ctun = client.enter(|| Tun::create(&dev))??;
            let stun = server.enter(|| Tun::create(&dev))??;
            configure(&client, ctun.name(), addr(net, 1))?;
            configure(&server, stun.name(), addr(net, 2))?;
            lines.push(DelayLine::start(ctun, stun, Shaping::rtt(rtt))?);
            rtts.push(rtt);
        }
        let bed = Bed {
            lines,
            rtts,
            client,
            server,
        };
        bed.check_isolated()?;
        Ok(bed)
    }

    /// The client namespace has loopback and its TUN devices, nothing else.
    fn check_isolated(&self) -> io::Result<()> {
        let links = self.client.ip(&["-o", "link", "show"])?;
        for line in links.lines() {
            let dev = line.split(':').nth(1).map(str::trim).unwrap_or("");
            if dev != "lo" && !dev.starts_with("tun") {
                return Err(io::Error::other(format!(
                    "client namespace has an interface {dev:?}"
                )));
            }
        }
        Ok(())
    }
}

fn configure(ns: &Netns, dev: &str, v4: Ipv4Addr) -> io::Result<()> {
    // No IPv6 link-local address: no router solicitations or MLD reports on the lines.
    ns.ip(&["link", "set", dev, "addrgenmode", "none"])?;
    ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev])?;
    ns.ip(&["link", "set", dev, "up"])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running programs inside the client namespace.

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    wall_ms: f64,
}

/// Runs `program args` inside `ns` and times it from spawn to exit. The process is started from
/// a thread that has entered the namespace (`setns`), which is what `ip netns exec` does, minus
/// the mount namespace and /sys remount `ip` sets up — a few milliseconds that would otherwise be
/// billed to every contender alike.
fn run_in(ns: &Netns, program: &OsStr, args: &[OsString], env: &[(&str, &str)]) -> Ran {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in PROXY_VARS.iter().chain(&CERT_VARS) {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let what = format!("{} {:?}", program.to_string_lossy(), args);
    ns.enter(move || {
        let started = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let pid = child.id() as libc::pid_t;
        let (done, watch) = mpsc::channel::<()>();
        let dog = std::thread::spawn(move || {
            if watch.recv_timeout(HANG) == Err(mpsc::RecvTimeoutError::Timeout) {
                // SAFETY: plain kill(2) of our own child, which has not been reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        });
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {what}: {e}"));
        let wall = started.elapsed();
        drop(done);
        let _ = dog.join();
        assert!(wall < HANG, "{what} hung: killed after {wall:?}");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            wall_ms: ms(wall),
        }
    })
    .expect("enter the client namespace")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Figures.

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// `median (min–max)` of a series, in ms.
fn spread(values: &[f64]) -> String {
    format!(
        "{:.0} ms ({:.0}–{:.0})",
        median(values),
        min(values),
        max(values)
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**pass**" } else { "**FAIL**" }
}

/// The agreement demanded between two timings: max(2 ms, 5 %).
fn tolerance(reference_ms: f64) -> f64 {
    (reference_ms * 0.05).max(2.0)
}

/// What one run of the tool reported, per endpoint.
#[derive(Default, Debug)]
struct ToolRun {
    wall_ms: f64,
    duration_ms: f64,
    resolve: BTreeMap<String, f64>,
    connect: BTreeMap<String, f64>,
    handshake: BTreeMap<String, f64>,
    ttfb: BTreeMap<String, f64>,
    latency: BTreeMap<String, f64>,
    /// `target probe code` of every check that did not pass.
    problems: Vec<String>,
    codes: Vec<String>,
}

fn parse_tool(ran: &Ran) -> ToolRun {
    let report: Value = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
        panic!(
            "bmw-netcheck printed no JSON report ({e}); exit {}; stderr: {}",
            ran.code, ran.stderr
        )
    });
    let mut run = ToolRun {
        wall_ms: ran.wall_ms,
        duration_ms: report["duration_ms"].as_f64().unwrap_or(f64::NAN),
        ..ToolRun::default()
    };
    for check in report["checks"].as_array().into_iter().flatten() {
        let target = check["target"].as_str().unwrap_or("-").to_owned();
        let probe = check["probe"].as_str().unwrap_or("?");
        let code = check["code"].as_str().unwrap_or("?");
        run.codes.push(code.to_owned());
        if check["status"] != "pass" {
            run.problems.push(format!(
                "{target} {probe} {code}: {}",
                check["summary"].as_str().unwrap_or("")
            ));
        }
        let data = &check["data"];
        let put = |map: &mut BTreeMap<String, f64>, key: &str| {
            if let Some(v) = data[key].as_f64() {
                map.insert(target.clone(), v);
            }
        };
        match probe {
            "dns" => put(&mut run.resolve, "resolve_ms"),
            "tcp" => put(&mut run.connect, "connect_ms"),
            "tls" => put(&mut run.handshake, "handshake_ms"),
            "http" => put(&mut run.ttfb, "ttfb_ms"),
            "latency" => put(&mut run.latency, "median_ms"),
            _ => {}
        }
    }
    run
}

/// One curl transfer as the scripts print it.
#[derive(Debug, Clone)]
struct Transfer {
    host: String,
    code: u16,
    connect: f64,
    appconnect: f64,
    starttransfer: f64,
}

/// What a script printed: dig query times per host and the transfers in order.
#[derive(Debug, Default)]
struct ScriptRun {
    wall_ms: f64,
    dig_ms: BTreeMap<String, f64>,
    transfers: Vec<Transfer>,
}

fn parse_script(ran: &Ran, expect_transfers: usize) -> ScriptRun {
    let mut run = ScriptRun {
        wall_ms: ran.wall_ms,
        ..ScriptRun::default()
    };
    for line in ran.stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            Some("dig") if f.len() >= 3 => {
                if let Ok(q) = f[2].parse() {
                    run.dig_ms.insert(f[1].to_owned(), q);
                }
            }
            Some("curl") if f.len() >= 7 => {
                let secs = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN) * 1000.0;
                let host = f[1]
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned();
                run.transfers.push(Transfer {
                    host,
                    code: f[2].parse().unwrap_or(0),
                    connect: secs(4),
                    appconnect: secs(5),
                    starttransfer: secs(6),
                });
            }
            _ => {}
        }
    }
    let good = run.transfers.iter().filter(|t| t.code == 200).count();
    assert!(
        ran.code == 0 && good == expect_transfers && run.transfers.len() == expect_transfers,
        "script run failed: exit {}, {good} of {expect_transfers} transfers answered 200\n{}\n{}",
        ran.code,
        ran.stdout,
        ran.stderr
    );
    run
}

// ---------------------------------------------------------------------------------------------

struct Setup {
    tool: PathBuf,
    check_sh: PathBuf,
    curl_parallel_sh: PathBuf,
    profile: ProfileFile,
    pki: Pki,
    hosts: Vec<String>,
    names: Vec<String>,
}

impl Setup {
    fn tool_args(&self, samples: u32) -> Vec<OsString> {
        vec![
            os("--profile"),
            os(self.profile.path()),
            os("--resolver"),
            os(format!("{}:53", addr(DNS_NET, 2))),
            os("--ca-file"),
            os(self.pki.ca_file()),
            os("--only"),
            os(engine_probes()),
            os("--format"),
            os("json"),
            os("--no-history"),
            os("--samples"),
            os(samples.to_string()),
        ]
    }

    fn script_args(&self, samples: Option<u32>) -> Vec<OsString> {
        let mut a = vec![os(format!("{}", addr(DNS_NET, 2))), os(self.pki.ca_file())];
        if let Some(n) = samples {
            a.push(os(n.to_string()));
        }
        a.extend(self.hosts.iter().map(os));
        a
    }
}

fn run_tool(bed: &Bed, s: &Setup, samples: u32) -> ToolRun {
    let ran = run_in(&bed.client, s.tool.as_os_str(), &s.tool_args(samples), &[]);
    let run = parse_tool(&ran);
    assert!(
        ran.code == 0 && run.problems.is_empty(),
        "the full check did not pass (exit {}): {:#?}\n{}",
        ran.code,
        run.problems,
        ran.stderr
    );
    run
}

fn run_check_sh(bed: &Bed, s: &Setup, samples: u32, parallel: bool) -> ScriptRun {
    let mut args = vec![os(&s.check_sh)];
    args.extend(s.script_args(Some(samples)));
    let mode = if parallel { "par" } else { "seq" };
    let ran = run_in(&bed.client, OsStr::new("bash"), &args, &[("MODE", mode)]);
    parse_script(&ran, s.hosts.len() * samples as usize)
}

fn run_curl_parallel(bed: &Bed, s: &Setup) -> ScriptRun {
    let mut args = vec![os(&s.curl_parallel_sh)];
    args.extend(s.script_args(None));
    let ran = run_in(&bed.client, OsStr::new("bash"), &args, &[]);
    parse_script(&ran, s.hosts.len())
}

/// `/usr/bin/time -v <program args>` in the client namespace: maximum resident set size in KiB.
fn max_rss_kib(bed: &Bed, program: &OsStr, args: &[OsString]) -> f64 {
    let mut all = vec![os("-v"), os(program)];
    all.extend_from_slice(args);
    let ran = run_in(&bed.client, OsStr::new("/usr/bin/time"), &all, &[]);
    ran.stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no maximum RSS in /usr/bin/time's output:\n{}", ran.stderr))
}

/// Start-up times (median ms) of commands that need no network, with hyperfine when installed
/// (`-N`: no shell in between), else with repetitions of our own.
fn startup(commands: &[(&str, Vec<OsString>)]) -> (Vec<f64>, String) {
    let hyperfine_ok = Command::new("hyperfine")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if hyperfine_ok {
        let json = std::env::temp_dir().join(format!("netbench-{}.json", std::process::id()));
        let mut cmd = Command::new("hyperfine");
        for var in CERT_VARS {
            cmd.env_remove(var);
        }
        cmd.args(["-N", "--warmup", "20", "--runs", "300", "--style", "none"])
            .arg("--export-json")
            .arg(&json);
        for (_, argv) in commands {
            let line: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            cmd.arg(line.join(" "));
        }
        let out = cmd.output().expect("run hyperfine");
        if out.status.success() {
            let text = std::fs::read_to_string(&json).unwrap_or_default();
            let _ = std::fs::remove_file(&json);
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let medians: Vec<f64> = v["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["median"].as_f64().unwrap_or(f64::NAN) * 1000.0)
                    .collect();
                if medians.len() == commands.len() {
                    return (medians, "hyperfine -N, 300 runs, 20 warm-up".into());
                }
            }
        }
        say("hyperfine failed; timing start-up with own repetitions");
    }
    let medians = commands
        .iter()
        .map(|(_, argv)| {
            let mut times = Vec::new();
            for i in 0..320 {
                let t = Instant::now();
                let st = Command::new(&argv[0])
                    .args(&argv[1..])
                    .env_remove("SSL_CERT_FILE")
                    .env_remove("SSL_CERT_DIR")
                    .env_remove("NIX_SSL_CERT_FILE")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run a start-up command");
                assert!(st.success(), "{argv:?} failed");
                if i >= 20 {
                    times.push(ms(t.elapsed()));
                }
            }
            median(&times)
        })
        .collect();
    (medians, "own repetitions: 300 runs, 20 warm-up".into())
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "not found".into())
}

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown")
        .to_owned();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    vec![
        ("CPU".into(), format!("{model}, nproc {nproc}")),
        ("kernel".into(), kernel),
        ("rustc".into(), first_line("rustc", &["-V"])),
        ("curl".into(), first_line("curl", &["--version"])),
        ("dig".into(), first_line("dig", &["-v"])),
        ("hyperfine".into(), first_line("hyperfine", &["--version"])),
    ]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn tool_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NETBENCH_TOOL") {
        return PathBuf::from(p);
    }
    // target/<profile>/examples/netbench → target/<profile>/bmw-netcheck
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("bmw-netcheck")))
        .unwrap_or_else(|| PathBuf::from("target/release/bmw-netcheck"))
}

fn main() {
    install_cleanup_handlers();
    if let Some(why) = ns::unavailable() {
        eprintln!("netbench: cannot run: {why}");
        std::process::exit(2);
    }
    // Everything this process starts (the tool, dig, curl, the fixtures' threads) runs at the
    // same raised priority, so other work on the machine blurs the timings less.
    // SAFETY: setpriority on this process; failure is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, -10);
    }
    let code = bench();
    std::process::exit(code);
}

fn bench() -> i32 {
    let reps: usize = std::env::var("NETBENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let tool = tool_path();
    if !tool.is_file() {
        eprintln!(
            "netbench: no tool binary at {} (build it: cargo build --release --bin bmw-netcheck, \
             or set NETBENCH_TOOL)",
            tool.display()
        );
        return 2;
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let load_before = loadavg();
    say(&format!(
        "tool {}; {reps} repetitions; load {load_before}",
        tool.display()
    ));

    // The bed: eight endpoint lines and the resolver's.
    let mut specs: Vec<(u8, Duration)> = RTTS
        .iter()
        .enumerate()
        .map(|(i, r)| (i as u8 + 1, Duration::from_millis(*r)))
        .collect();
    specs.push((DNS_NET, Duration::from_millis(DNS_LINE_RTT)));
    let bed = Bed::new(&specs).expect("set up the namespaces and delay lines");
    say(&format!(
        "namespaces {} (client) and {} (server), {} delay lines",
        bed.client.name(),
        bed.server.name(),
        bed.lines.len()
    ));

    // The fixtures, bound inside the server namespace.
    let pki = Pki::new();
    let hosts: Vec<String> = RTTS.iter().map(|r| host_of(*r)).collect();
    let names: Vec<String> = RTTS.iter().map(|r| name_of(*r)).collect();
    let table: Vec<(String, DnsAnswer)> = RTTS
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let answer = DnsAnswer::Addrs(vec![IpAddr::V4(addr(i as u8 + 1, 2))]);
            let hold = Duration::from_millis(r - DNS_LINE_RTT);
            let answer = if hold.is_zero() {
                answer
            } else {
                DnsAnswer::Delayed(hold, Box::new(answer))
            };
            (host_of(*r), answer)
        })
        .collect();
    let dns_socket = bed
        .server
        .bind_udp(SocketAddr::new(IpAddr::V4(addr(DNS_NET, 2)), 53))
        .expect("bind UDP 53 in the server namespace");
    let _dns = DnsServer::from_socket(
        dns_socket,
        table.iter().map(|(h, a)| (h.as_str(), a.clone())),
    );
    let _https: Vec<HttpsServer> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let listener = bed
                .server
                .bind_tcp(SocketAddr::new(IpAddr::V4(addr(i as u8 + 1, 2)), 443))
                .expect("bind TCP 443 in the server namespace");
            let identity = pki.issue(&Leaf::only(&[host.as_str()]));
            HttpsServer::from_listener(listener, &identity, HttpBehaviour::status(200))
        })
        .collect();
    let endpoints: Vec<EndpointSpec> = names
        .iter()
        .zip(&hosts)
        .map(|(n, h)| EndpointSpec::new(n, h, 443))
        .collect();
    let profile = ProfileFile::with_thresholds(&endpoints, "");
    let setup = Setup {
        tool: tool.clone(),
        check_sh: here.join("check.sh"),
        curl_parallel_sh: here.join("curl-parallel.sh"),
        profile,
        pki,
        hosts,
        names,
    };

    if std::env::var_os("NETBENCH_HOLD").is_some_and(|v| v == "1") {
        // For investigation: keep the bed up and print how to use it; SIGTERM/SIGINT tear down.
        let quote = |args: &[OsString]| {
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "ip netns exec {} {} {}",
            bed.client.name(),
            setup.tool.display(),
            quote(&setup.tool_args(SAMPLES))
        );
        let mut a = vec![os(&setup.check_sh)];
        a.extend(setup.script_args(Some(SAMPLES)));
        println!("ip netns exec {} bash {}", bed.client.name(), quote(&a));
        let _ = io::stdout().flush();
        say("holding the bed up (NETBENCH_HOLD=1); kill -TERM this process to tear it down");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    // Warm-up: page cache, and a first check that everything answers.
    say("warm-up");
    run_tool(&bed, &setup, SAMPLES);
    run_check_sh(&bed, &setup, 1, false);
    run_curl_parallel(&bed, &setup);

    let mut tool5: Vec<ToolRun> = Vec::new();
    let mut tool1: Vec<ToolRun> = Vec::new();
    let mut seq5: Vec<ScriptRun> = Vec::new();
    let mut par5: Vec<ScriptRun> = Vec::new();
    let mut seq1: Vec<ScriptRun> = Vec::new();
    let mut cpar: Vec<ScriptRun> = Vec::new();
    for rep in 0..reps {
        tool5.push(run_tool(&bed, &setup, SAMPLES));
        seq5.push(run_check_sh(&bed, &setup, SAMPLES, false));
        tool1.push(run_tool(&bed, &setup, 1));
        par5.push(run_check_sh(&bed, &setup, SAMPLES, true));
        seq1.push(run_check_sh(&bed, &setup, 1, false));
        cpar.push(run_curl_parallel(&bed, &setup));
        say(&format!(
            "rep {}/{reps}: tool {:.0} ms, seq script {:.0} ms, parallel script {:.0} ms, \
             tool --samples 1 {:.0} ms, seq dig+curl {:.0} ms, curl --parallel {:.0} ms",
            rep + 1,
            tool5[rep].wall_ms,
            seq5[rep].wall_ms,
            par5[rep].wall_ms,
            tool1[rep].wall_ms,
            seq1[rep].wall_ms,
            cpar[rep].wall_ms,
        ));
    }

    // Peak memory of the full check, and of one curl transfer for scale.
    say("peak memory");
    let mem_runs = reps.max(5);
    let rss_tool: Vec<f64> = (0..mem_runs)
        .map(|_| max_rss_kib(&bed, setup.tool.as_os_str(), &setup.tool_args(SAMPLES)))
        .collect();
    let slowest = setup.hosts.last().cloned().unwrap_or_default();
    let curl_args = vec![
        os("-s"),
        os("-o"),
        os("/dev/null"),
        os("--cacert"),
        os(setup.pki.ca_file()),
        os("--resolve"),
        os(format!("{slowest}:443:{}", addr(RTTS.len() as u8, 2))),
        os(format!("https://{slowest}/")),
    ];
    let rss_curl: Vec<f64> = (0..3)
        .map(|_| max_rss_kib(&bed, OsStr::new("curl"), &curl_args))
        .collect();

    // Start-up, outside the namespaces (no network involved).
    say("start-up");
    let t = |a: &str| os(a);
    let (starts, start_how) = startup(&[
        ("--version", vec![os(&setup.tool), t("--version")]),
        ("list", vec![os(&setup.tool), t("list")]),
        ("curl --version", vec![t("curl"), t("--version")]),
        (
            "ip netns exec",
            vec![
                t("ip"),
                t("netns"),
                t("exec"),
                t(bed.client.name()),
                t("true"),
            ],
        ),
    ]);

    // Line statistics before the blackhole changes them.
    let line_stats: Vec<_> = bed.lines.iter().map(DelayLine::stats).collect();

    // Deadline overshoot: every endpoint's line drops everything; the resolver still answers.
    say("deadline overshoot");
    for (line, rtt) in bed.lines.iter().zip(&bed.rtts).take(RTTS.len()) {
        line.set(Shaping::rtt(*rtt).with_blackhole(Filter::all()));
    }
    let mut deadline_args = setup.tool_args(SAMPLES);
    deadline_args.extend([
        os("--deadline"),
        os(format!("{DEADLINE_MS}ms")),
        os("--timeout"),
        os(DEADLINE_TIMEOUT),
    ]);
    let deadline_runs: Vec<(f64, f64, Vec<String>, i32)> = (0..reps.max(5))
        .map(|_| {
            let ran = run_in(&bed.client, setup.tool.as_os_str(), &deadline_args, &[]);
            let run = parse_tool(&ran);
            (ran.wall_ms, run.duration_ms, run.codes, ran.code)
        })
        .collect();
    for (line, rtt) in bed.lines.iter().zip(&bed.rtts) {
        line.set(Shaping::rtt(*rtt));
    }

    let size = std::fs::metadata(&setup.tool).map_or(0, |m| m.len());
    let file_says = first_line("file", &["-b", &setup.tool.to_string_lossy()]);
    let stripped = file_says.contains(", stripped");
    let load_after = loadavg();

    // ------------------------------------------------------------------ the report
    let walls = |runs: &[ToolRun]| runs.iter().map(|r| r.wall_ms).collect::<Vec<_>>();
    let swalls = |runs: &[ScriptRun]| runs.iter().map(|r| r.wall_ms).collect::<Vec<_>>();
    // Every step to an endpoint costs its RTT (its DNS answer too, see the top of this file):
    // dns 1 + tcp 1 + max(tls 1 + http 1, N − 1 further latency connects).
    let ideal = |n: u32| -> f64 {
        RTTS.iter()
            .map(|r| *r as f64 * (1.0 + 1.0 + 2f64.max(f64::from(n) - 1.0)))
            .fold(0.0, f64::max)
    };
    let (ideal5, ideal1) = (ideal(SAMPLES), ideal(1));
    let t5 = median(&walls(&tool5));
    let t1 = median(&walls(&tool1));
    let s5 = median(&swalls(&seq5));
    let p5 = median(&swalls(&par5));
    let s1 = median(&swalls(&seq1));
    let c1 = median(&swalls(&cpar));
    let d5 = median(&tool5.iter().map(|r| r.duration_ms).collect::<Vec<_>>());
    let sum_rtt: f64 = RTTS.iter().map(|r| *r as f64).sum();

    // Accuracy, per endpoint: the tool's figures from the full checks, curl's from the
    // sequential scripts (nothing else runs beside them).
    let per = |runs: &[ToolRun], pick: fn(&ToolRun) -> &BTreeMap<String, f64>, name: &str| {
        median(
            &runs
                .iter()
                .filter_map(|r| pick(r).get(name).copied())
                .collect::<Vec<_>>(),
        )
    };
    struct Acc {
        name: String,
        rtt: f64,
        connect: f64,
        latency: f64,
        handshake: f64,
        ttfb: f64,
        resolve: f64,
        curl_connect: f64,
        curl_tls: f64,
        curl_ttfb: f64,
        dig: f64,
    }
    let acc: Vec<Acc> = RTTS
        .iter()
        .zip(setup.names.iter().zip(&setup.hosts))
        .map(|(rtt, (name, host))| {
            let transfers = |runs: &[ScriptRun], first_only: bool| -> Vec<Transfer> {
                runs.iter()
                    .flat_map(|r| {
                        let mine: Vec<Transfer> = r
                            .transfers
                            .iter()
                            .filter(|t| &t.host == host)
                            .cloned()
                            .collect();
                        if first_only {
                            mine.into_iter().take(1).collect()
                        } else {
                            mine
                        }
                    })
                    .collect()
            };
            let all: Vec<Transfer> = transfers(&seq5, false);
            let mut firsts = transfers(&seq5, true);
            firsts.extend(transfers(&seq1, true));
            Acc {
                name: name.clone(),
                rtt: *rtt as f64,
                connect: per(&tool5, |r| &r.connect, name),
                latency: per(&tool5, |r| &r.latency, name),
                handshake: per(&tool5, |r| &r.handshake, name),
                ttfb: per(&tool5, |r| &r.ttfb, name),
                resolve: per(&tool5, |r| &r.resolve, name),
                curl_connect: median(&all.iter().map(|t| t.connect).collect::<Vec<_>>()),
                curl_tls: median(
                    &firsts
                        .iter()
                        .map(|t| t.appconnect - t.connect)
                        .collect::<Vec<_>>(),
                ),
                curl_ttfb: median(
                    &firsts
                        .iter()
                        .map(|t| t.starttransfer - t.appconnect)
                        .collect::<Vec<_>>(),
                ),
                dig: median(
                    &seq5
                        .iter()
                        .chain(&seq1)
                        .filter_map(|r| r.dig_ms.get(host).copied())
                        .collect::<Vec<_>>(),
                ),
            }
        })
        .collect();
    let worst = |f: &dyn Fn(&Acc) -> (f64, f64)| -> (f64, f64, String) {
        // (|difference| − tolerance, difference, endpoint) of the endpoint closest to failing
        acc.iter()
            .map(|a| {
                let (mine, theirs) = f(a);
                let d = mine - theirs;
                (d.abs() - tolerance(theirs), d, a.name.clone())
            })
            .fold((f64::NEG_INFINITY, 0.0, String::new()), |w, x| {
                if x.0 > w.0 { x } else { w }
            })
    };
    let lat_w = worst(&|a| (a.latency, a.curl_connect));
    let con_w = worst(&|a| (a.connect, a.curl_connect));
    let tls_w = worst(&|a| (a.handshake, a.curl_tls));
    let overshoots: Vec<f64> = deadline_runs
        .iter()
        .map(|(w, _, _, _)| w - DEADLINE_MS as f64)
        .collect();
    let overshoot = median(&overshoots);
    let deadline_codes: Vec<String> = {
        let mut c: Vec<String> = deadline_runs
            .iter()
            .flat_map(|(_, _, codes, _)| codes.iter().cloned())
            .collect();
        c.sort();
        c.dedup();
        c
    };
    let deadline_exit = deadline_runs.first().map_or(-1, |r| r.3);
    let rss = median(&rss_tool) / 1024.0;
    let mib = size as f64 / (1024.0 * 1024.0);

    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "Run: {} repetitions per figure (medians; min–max in brackets), 8 endpoints at {} ms RTT, \
         resolver answer for each endpoint after that endpoint's RTT, `--samples {SAMPLES}`; \
         every contender started in the client namespace without `SSL_CERT_*` in its \
         environment. Load average {load_before} before, {load_after} after.\n",
        reps,
        RTTS.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("/"),
    );
    let _ = writeln!(
        w,
        "| measure | bmw-netcheck | reference | target | result |\n| --- | --- | --- | --- | --- |"
    );
    let _ = writeln!(
        w,
        "| full check, wall time (dns,tcp,tls,http,latency; 8 endpoints) | {} | ideal {:.0} ms (× {:.3}) | ≤ 1.15 × ideal = {:.0} ms | {} |",
        spread(&walls(&tool5)),
        ideal5,
        t5 / ideal5,
        1.15 * ideal5,
        verdict(t5 <= 1.15 * ideal5)
    );
    let _ = writeln!(
        w,
        "| … same checks as a sequential script: per endpoint `dig`, then `curl` × {SAMPLES} (`bench/check.sh`) | {t5:.0} ms | {} (tool × {:.1} faster) | ≥ 5 × faster | {} |",
        spread(&swalls(&seq5)),
        s5 / t5,
        verdict(s5 >= 5.0 * t5)
    );
    let _ = writeln!(
        w,
        "| … same checks, the 8 endpoints' `dig` + `curl` × {SAMPLES} as parallel jobs (`MODE=par bench/check.sh`) | {t5:.0} ms | {} (tool × {:.2} faster) | no slower | {} |",
        spread(&swalls(&par5)),
        p5 / t5,
        verdict(t5 <= p5)
    );
    let _ = writeln!(
        w,
        "| one connection per endpoint (`--samples 1`), wall time | {} | ideal {:.0} ms (× {:.3}) | — | info |",
        spread(&walls(&tool1)),
        ideal1,
        t1 / ideal1
    );
    let _ = writeln!(
        w,
        "| … vs all `dig` at once, then one `curl --parallel` of 8 URLs (`bench/curl-parallel.sh`) | {t1:.0} ms | {} (tool × {:.2} faster) | no slower | {} |",
        spread(&swalls(&cpar)),
        c1 / t1,
        verdict(t1 <= c1)
    );
    let _ = writeln!(
        w,
        "| … vs a sequential loop of `dig` + one `curl -w` per endpoint (`bench/check.sh`, 1 sample) | {t1:.0} ms | {} (tool × {:.1} faster) | info: the round trips alone allow at most × {:.1} | info |",
        spread(&swalls(&seq1)),
        s1 / t1,
        4.0 * sum_rtt / ideal1
    );
    let _ = writeln!(
        w,
        "| latency median vs curl `time_connect`, same path (worst endpoint: {}) | off by {:+.2} ms | curl median over {} connects per endpoint | within max(2 ms, 5 %) | {} |",
        lat_w.2,
        lat_w.1,
        reps * SAMPLES as usize,
        verdict(lat_w.0 <= 0.0)
    );
    let _ = writeln!(
        w,
        "| tcp `connect_ms` vs curl `time_connect` (worst endpoint: {}) | off by {:+.2} ms | same | within max(2 ms, 5 %) | {} |",
        con_w.2,
        con_w.1,
        verdict(con_w.0 <= 0.0)
    );
    let _ = writeln!(
        w,
        "| tls `handshake_ms` vs curl `time_appconnect − time_connect` (worst endpoint: {}) | off by {:+.2} ms; tool − RTT {:.2} ms median | curl's first (full) handshake of each run; curl − RTT {:.2} ms median | within max(2 ms, 5 %) | {} |",
        tls_w.2,
        tls_w.1,
        median(&acc.iter().map(|a| a.handshake - a.rtt).collect::<Vec<_>>()),
        median(&acc.iter().map(|a| a.curl_tls - a.rtt).collect::<Vec<_>>()),
        if tls_w.0 <= 0.0 {
            "pass (info)"
        } else {
            "off (info)"
        }
    );
    let _ = writeln!(
        w,
        "| deadline overshoot, every endpoint blackholed (`--deadline 2s --timeout {DEADLINE_TIMEOUT}`) | {:+.0} ms (wall {}) | exit {deadline_exit}; codes {} | ≤ 100 ms | {} |",
        overshoot,
        spread(&deadline_runs.iter().map(|r| r.0).collect::<Vec<_>>()),
        deadline_codes.join(", "),
        verdict(overshoot <= 100.0)
    );
    let _ = writeln!(
        w,
        "| start-up: `bmw-netcheck --version` | {:.2} ms | `curl --version` {:.2} ms | ≤ 5 ms | {} |",
        starts[0],
        starts[2],
        verdict(starts[0] <= 5.0)
    );
    let _ = writeln!(
        w,
        "| start-up: `bmw-netcheck list` (built-in profile) | {:.2} ms | | — | info |",
        starts[1]
    );
    let _ = writeln!(
        w,
        "| peak memory of the full check (max RSS, `/usr/bin/time -v`) | {rss:.1} MiB ({:.1}–{:.1}) | one `curl` transfer {:.1} MiB | ≤ 25 MiB | {} |",
        min(&rss_tool) / 1024.0,
        max(&rss_tool) / 1024.0,
        median(&rss_curl) / 1024.0,
        verdict(rss <= 25.0)
    );
    let _ = writeln!(
        w,
        "| release binary size (`target/release/bmw-netcheck`) | {mib:.2} MiB | {} | ≤ 12 MiB, stripped | {} |",
        if stripped {
            "stripped (`file`)"
        } else {
            "NOT stripped (`file`)"
        },
        verdict(mib <= 12.0 && stripped)
    );

    let _ = writeln!(
        w,
        "\nPer endpoint (medians; the tool's figures from the full checks, curl's and dig's from \
         the sequential scripts):\n"
    );
    let _ = writeln!(
        w,
        "| endpoint | injected RTT | tool `resolve_ms` | `dig` query time | tool `connect_ms` | tool latency `median_ms` | curl `time_connect` | tool `handshake_ms` | curl appconnect − connect | tool `ttfb_ms` | curl starttransfer − appconnect |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for a in &acc {
        let _ = writeln!(
            w,
            "| {} | {:.0} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            a.name,
            a.rtt,
            a.resolve,
            a.dig,
            a.connect,
            a.latency,
            a.curl_connect,
            a.handshake,
            a.curl_tls,
            a.ttfb,
            a.curl_ttfb
        );
    }

    let late_mean = line_stats
        .iter()
        .map(|s| s.late_mean.as_secs_f64() * 1e6)
        .fold(0.0, f64::max);
    let late_max = line_stats
        .iter()
        .map(|s| s.late_max.as_secs_f64() * 1e6)
        .fold(0.0, f64::max);
    let forwarded: u64 = line_stats
        .iter()
        .map(|s| s.forwarded[0] + s.forwarded[1])
        .sum();
    let _ = writeln!(w, "\nDetails:\n");
    let _ = writeln!(
        w,
        "- the tool's own `duration_ms` of the full check: {d5:.0} ms median, so process start, \
         set-up before the clock starts (profile, root certificates, runtime) and output took \
         {:.0} ms of the wall time;",
        t5 - d5
    );
    let _ = writeln!(
        w,
        "- ideal = max over endpoints of RTT × (1 dns + 1 tcp + max(2 for tls + http, N − 1 \
         further latency connects)): {:.0} ms with N = {SAMPLES}, {:.0} ms with N = 1; the \
         sequential script's round trips alone are Σ RTT × (1 + 3 N) = {:.0} ms (N = {SAMPLES});",
        ideal5,
        ideal1,
        sum_rtt * (1.0 + 3.0 * f64::from(SAMPLES))
    );
    let _ = writeln!(
        w,
        "- delay lines: {forwarded} packets forwarded before the blackhole runs, written late by \
         {late_mean:.0} µs on average and {late_max:.0} µs at worst (worst line);"
    );
    let _ = writeln!(
        w,
        "- start-up timed with {start_how}; `ip netns exec <ns> true` takes {:.1} ms, which is \
         why every contender is started from a thread that entered the namespace instead; peak \
         memory over {mem_runs} runs; binary: `{file_says}`;",
        starts[3]
    );
    let _ = writeln!(
        w,
        "- deadline runs: walls {} ms; the report's own `duration_ms` {} ms.",
        deadline_runs
            .iter()
            .map(|r| format!("{:.0}", r.0))
            .collect::<Vec<_>>()
            .join(", "),
        deadline_runs
            .iter()
            .map(|r| format!("{:.0}", r.1))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let _ = writeln!(w, "\nRepetitions (wall ms):\n");
    let _ = writeln!(
        w,
        "| rep | tool | seq script | parallel script | tool `--samples 1` | seq dig + curl | curl `--parallel` |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for i in 0..reps {
        let _ = writeln!(
            w,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            i + 1,
            tool5[i].wall_ms,
            seq5[i].wall_ms,
            par5[i].wall_ms,
            tool1[i].wall_ms,
            seq1[i].wall_ms,
            cpar[i].wall_ms
        );
    }
    let _ = writeln!(w, "\nMachine:\n");
    for (k, v) in machine() {
        let _ = writeln!(w, "- {k}: {v}");
    }

    let mut out = io::stdout().lock();
    let _ = out.write_all(md.as_bytes());
    let _ = out.flush();
    drop(out);

    drop(_https);
    drop(_dns);
    drop(bed);
    0
}
