//! Glue between the test bed and the fixtures: servers bound inside the server namespace, the
//! real binary and curl run inside the client namespace, tolerances, and output for CI logs.

use super::bed::{SERVER_V4, Testbed};
use crate::support::{
    DnsAnswer, DnsServer, HttpBehaviour, HttpsServer, Netcheck, Outcome, RawMode, RawTcpServer,
    ServerIdentity,
};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run of the tool taking longer than this is a hang: it is killed and the case fails.
const HANG: Duration = Duration::from_secs(60);

/// Why the network cases cannot run here, or `None`. The caller skips through
/// `support::skip`, which `BMW_NETCHECK_TEST_REQUIRE=1` turns into a failure (for CI, where
/// root and iproute2 are a given).
pub fn skip_reason() -> Option<String> {
    super::ns::unavailable().or_else(|| {
        // Root is not always enough (a container without CAP_NET_ADMIN or /run/netns): try it.
        Testbed::new(super::delayline::Shaping::default())
            .err()
            .map(|e| format!("cannot set up network namespaces and TUN devices: {e}"))
    })
}

/// A line for CI logs. Written to the process's stderr directly, past the test harness's
/// capture, so the figures show even when every case passes; a closed stderr is ignored.
pub fn say(line: &str) {
    crate::support::say(line);
}

/// Asserts what a time can show whatever load the machine is under: `value` is at least `low`
/// (nothing crosses the line faster than its delay, no timeout fires early) and below `limit`, a
/// bound chosen far from the expected figure, where only a wrong behaviour lands (a timeout not
/// honoured, an extra round trip, a fallback timer). How close a figure comes to the physical
/// floor is the benchmark's to show (BENCHMARKS.md), not a test's.
pub fn assert_bounded(what: &str, value: f64, low: f64, limit: f64) {
    assert!(
        value >= low && value < limit,
        "{what} = {value:.2}, expected at least {low:.2} and below {limit:.2}"
    );
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A DNS server on `10.213.0.2:53` in the server namespace.
pub fn dns_in<'a>(
    bed: &Testbed,
    table: impl IntoIterator<Item = (&'a str, DnsAnswer)>,
) -> DnsServer {
    let socket = bed
        .server
        .bind_udp(SocketAddr::new(IpAddr::V4(SERVER_V4), 53))
        .expect("bind UDP 53 in the server namespace");
    DnsServer::from_socket(socket, table)
}

pub fn https_in(
    bed: &Testbed,
    addr: SocketAddr,
    identity: &ServerIdentity,
    behaviour: HttpBehaviour,
) -> HttpsServer {
    let listener = bed
        .server
        .bind_tcp(addr)
        .unwrap_or_else(|e| panic!("bind {addr} in the server namespace: {e}"));
    HttpsServer::from_listener(listener, identity, behaviour)
}

pub fn raw_in(bed: &Testbed, addr: SocketAddr, mode: RawMode) -> RawTcpServer {
    let listener = bed
        .server
        .bind_tcp(addr)
        .unwrap_or_else(|e| panic!("bind {addr} in the server namespace: {e}"));
    RawTcpServer::from_listener(listener, mode)
}

/// The binary under test: this build's, or `NETNS_TOOL=<path>` (e.g. a release build).
fn tool() -> std::ffi::OsString {
    std::env::var_os("NETNS_TOOL").unwrap_or_else(|| env!("CARGO_BIN_EXE_bmw-netcheck").into())
}

/// Runs the real binary inside the client namespace (`ip netns exec`), killed after a minute.
/// It runs at a raised priority (`nice -n -10`), as curl does, so the rest of the test suite
/// on the same two cores does not blur the timings.
pub fn run_in(bed: &Testbed, nc: &Netcheck) -> Outcome {
    let mut cmd = bed.client.command("nice");
    cmd.args(["-n", "-10"]).arg(tool()).args(nc.args());
    for var in [
        "NO_COLOR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(HANG);
    let started = Instant::now();
    let out = cmd
        .output()
        .expect("run bmw-netcheck in the client namespace");
    let elapsed = started.elapsed();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        elapsed < HANG,
        "bmw-netcheck hung: killed after {elapsed:?} ({:?})",
        nc.args()
    );
    Outcome {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
        args: nc.args(),
    }
    .validated()
}

/// curl runs started in the client namespace, each measuring `time_connect` to one address.
pub struct Curl {
    children: Vec<std::process::Child>,
}

impl Curl {
    /// Starts `runs` curls at once (the line has no bandwidth limit, so they do not disturb each
    /// other or the tool). `Err` holds the reason when curl is not installed.
    pub fn start(bed: &Testbed, addr: SocketAddr, runs: usize) -> Result<Curl, String> {
        match Command::new("curl").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            _ => return Err("curl is not installed: no comparison with time_connect".into()),
        }
        let url = format!("http://{addr}/");
        let mut children = Vec::new();
        for _ in 0..runs {
            let child = bed
                .client
                .command("nice")
                .args(["-n", "-10", "curl"])
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "--noproxy",
                    "*",
                    "--max-time",
                    "20",
                ])
                .args(["-w", "%{time_connect}", &url])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start curl: {e}"))?;
            children.push(child);
        }
        Ok(Curl { children })
    }

    /// The connect times in milliseconds. The request itself may fail (the server need not
    /// speak plain HTTP); only the connect time counts, and it must be there.
    pub fn connect_ms(self) -> Vec<f64> {
        self.children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("wait for curl");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let secs: f64 = text
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("curl printed no time_connect: {text:?}"));
                assert!(secs > 0.0, "curl did not connect (time_connect {text})");
                secs * 1000.0
            })
            .collect()
    }
}

/// A number from a check's `data`, with a clear message when missing.
pub fn data_f64(check: &serde_json::Value, key: &str) -> f64 {
    check["data"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("data.{key} is not a number in {check:#}"))
}

/// A check's `duration_ms`.
pub fn duration_ms(check: &serde_json::Value) -> f64 {
    check["duration_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("duration_ms is not a number in {check:#}"))
}

/// Asserts `value` lies in `[low, high]`, naming what it is.
pub fn assert_within(what: &str, value: f64, low: f64, high: f64) {
    assert!(
        (low..=high).contains(&value),
        "{what} = {value:.2}, expected within [{low:.2}, {high:.2}]"
    );
}
