//! servebench: does `bmw-netcheck serve` stay flat in memory over many scrapes, and what does a
//! scrape cost?
//!
//! Starts the test lab on loopback (the DNS and HTTPS fixtures of `tests/all/support/`: two
//! endpoints behind names, certificates generated here), runs the release binary as `serve` on
//! it, and scrapes `/probe` 10,000 times in a row over one keep-alive connection, as Prometheus
//! does, with its scrape-timeout header. Every scrape is a full run of the endpoint stages (dns,
//! tcp, tls, http, latency with the default 5 samples). The resident memory of the exporter
//! (`VmRSS` of `/proc/<pid>/status`, with its anonymous and file parts) is read after scrapes
//! 100, 1,000, 5,000 and 10,000 (and 20,000 and 30,000 when asked for); the time of each scrape
//! (request sent to body received) is recorded, and the allocator settings the exporter runs with
//! (`GLIBC_TUNABLES` of its environment) are reported. Loopback only; no root needed.
//!
//! Run: `bench/serve.sh` (builds the release binary and this example). The Markdown report goes
//! to stdout, progress to stderr. `SERVEBENCH_SCRAPES` (default 10000) and `SERVEBENCH_TOOL`
//! (default: `bmw-netcheck` next to this binary's directory) change the run.

// Scenario scripts, long on purpose; the 80-line rule is for src/.
#![allow(clippy::too_many_lines)]

#[path = "../tests/all/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{DnsAnswer, DnsServer, EndpointSpec, HttpBehaviour, HttpsServer, Pki, ProfileFile};

/// After how many scrapes the exporter's memory is read.
const CHECKPOINTS: [usize; 6] = [100, 1_000, 5_000, 10_000, 20_000, 30_000];

fn main() {
    let scrapes: usize = std::env::var("SERVEBENCH_SCRAPES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let tool = std::env::var_os("SERVEBENCH_TOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(|examples| examples.parent())
                .map(|dir| dir.join("bmw-netcheck"))
                .expect("target directory")
        });

    let pki = Pki::new();
    let api = HttpsServer::start(
        &pki.identity("api.netcheck.lan"),
        HttpBehaviour::status(401),
    );
    let signin = HttpsServer::start(
        &pki.identity("signin.netcheck.lan"),
        HttpBehaviour::status(200),
    );
    let dns = DnsServer::start([
        ("api.netcheck.lan", DnsAnswer::localhost()),
        ("signin.netcheck.lan", DnsAnswer::localhost()),
    ]);
    let profile = ProfileFile::new(&[
        EndpointSpec::new("api", "api.netcheck.lan", api.port()),
        EndpointSpec::new("sign-in", "signin.netcheck.lan", signin.port()),
    ]);

    let mut child = Command::new(&tool)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-history"])
        .args(["--only", "dns,tcp,tls,http,latency"])
        .arg("--profile")
        .arg(profile.path())
        .arg("--resolver")
        .arg(dns.addr().to_string())
        .arg("--ca-file")
        .arg(pki.ca_file())
        .args(["--instance", "servebench"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", tool.display()));
    let addr = listening_address(&mut child);
    let pid = child.id();
    let url = format!("http://{addr}/probe");
    eprintln!(
        "servebench: {} serving on {addr}, {scrapes} scrapes",
        tool.display()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let mut times = Vec::with_capacity(scrapes);
    let mut rss: Vec<(usize, u64)> = Vec::new();
    // The same checkpoints, split: anonymous memory (heap, stacks) and pages of files (code).
    let mut split: Vec<(u64, u64)> = Vec::new();
    let mut failed_runs = 0usize;
    let rss_before = resident_kib(pid);
    let split_before = (status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:"));
    let tunables = allocator_tunables(pid);
    let started = Instant::now();
    for n in 1..=scrapes {
        let t = Instant::now();
        let body = rt.block_on(async {
            let resp = client
                .get(&url)
                .header("X-Prometheus-Scrape-Timeout-Seconds", "10")
                .send()
                .await
                .expect("scrape");
            assert_eq!(resp.status().as_u16(), 200, "scrape {n}");
            resp.text().await.expect("scrape body")
        });
        times.push(t.elapsed());
        if !body.contains("bmw_netcheck_run_status{instance=\"servebench\"} 0") {
            failed_runs += 1;
        }
        if CHECKPOINTS.contains(&n) || n == scrapes {
            let kib = resident_kib(pid);
            rss.push((n, kib));
            split.push((status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:")));
            eprintln!("servebench: after {n} scrapes: RSS {kib} KiB");
        }
    }
    let total = started.elapsed();
    let own = rt
        .block_on(async {
            client
                .get(format!("http://{addr}/metrics"))
                .send()
                .await?
                .text()
                .await
        })
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();

    times.sort();
    let pct = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        ms(times[i])
    };
    let mut out = String::new();
    out.push_str(
        "| scrapes done | exporter RSS | of it anonymous | of it files |\n| ---: | ---: | ---: | ---: |\n",
    );
    out.push_str(&format!(
        "| 0 (started, idle) | {rss_before} KiB | {} KiB | {} KiB |\n",
        split_before.0, split_before.1
    ));
    for ((n, kib), (anon, file)) in rss.iter().zip(&split) {
        out.push_str(&format!("| {n} | {kib} KiB | {anon} KiB | {file} KiB |\n"));
    }
    let first = rss.iter().find(|(n, _)| *n == 100).map(|r| r.1);
    let last = rss.last().map(|r| r.1);
    if let (Some(a), Some(b)) = (first, last) {
        out.push_str(&format!(
            "\nRSS after {} scrapes minus RSS after 100: {} KiB ({:+.1} %).\n",
            rss.last().map_or(0, |r| r.0),
            b as i64 - a as i64,
            (b as f64 - a as f64) / a as f64 * 100.0
        ));
    }
    out.push_str(&format!(
        "\n| time per scrape | ms |\n| --- | ---: |\n| median | {:.2} |\n| p90 | {:.2} |\n| p99 | {:.2} |\n| max | {:.2} |\n| mean (total / scrapes) | {:.2} |\n",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        ms(*times.last().expect("scrapes")),
        ms(total) / scrapes as f64
    ));
    out.push_str(&format!(
        "\nScrapes whose run did not pass: {failed_runs} of {scrapes}.\n"
    ));
    out.push_str(&format!(
        "Exporter's allocator settings (GLIBC_TUNABLES): {tunables}.\n"
    ));
    let runs = own
        .lines()
        .filter(|l| l.starts_with("bmw_netcheck_exporter_runs_total"))
        .collect::<Vec<_>>()
        .join("; ");
    out.push_str(&format!("Exporter's own count: {runs}.\n"));
    let _ = std::io::stdout().write_all(out.as_bytes());
}

/// Reads `serving on http://ADDR/` from the exporter's stderr, then drains the rest.
fn listening_address(child: &mut Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    let _ = lines.read_line(&mut first);
    std::thread::spawn(move || for _ in lines.lines() {});
    first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("serve did not say where it listens: {first:?}"))
        .to_owned()
}

/// `GLIBC_TUNABLES` in a process's environment (serve sets it for itself), or "none". glibc
/// splits the value in place at its `:` when it reads it, so the tunables after the first show
/// as entries of their own.
fn allocator_tunables(pid: u32) -> String {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return "unknown".to_owned();
    };
    let entries: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    let Some(at) = entries
        .iter()
        .position(|e| e.starts_with(b"GLIBC_TUNABLES="))
    else {
        return "none".to_owned();
    };
    let mut parts = vec![&entries[at]["GLIBC_TUNABLES=".len()..]];
    parts.extend(
        entries[at + 1..]
            .iter()
            .take_while(|e| e.starts_with(b"glibc.")),
    );
    parts
        .iter()
        .map(|p| String::from_utf8_lossy(p))
        .collect::<Vec<_>>()
        .join(":")
}

/// `VmRSS` of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A field of `/proc/<pid>/status` given in KiB (`VmRSS:`, `RssAnon:`, `RssFile:`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
