//! A fleet on Prometheus, against the real engine: Debian's `prometheus` and
//! `prometheus-pushgateway` run on loopback with generated configurations, the tool pushes to the
//! gateway or is scraped as `serve`, and the assertions read Prometheus' query API — what a fleet
//! admin's dashboards and alerts would see. The query results are printed in the test log.
//! Where a program is missing the test says so and skips (CI installs them in `.ci/run`).

use crate::support::prometheus::{Prometheus, Pushgateway, get, have, label, value};
use crate::support::*;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOST: &str = "api.netcheck.lan";

/// Lab endpoints: a healthy HTTPS service behind a name, a closed port, a silent server.
struct Lab {
    pki: Pki,
    dns: DnsServer,
    _api: HttpsServer,
    _stuck: RawTcpServer,
    /// Only the healthy endpoint: every run passes.
    healthy: ProfileFile,
    /// The healthy endpoint and one refusing connections: every run fails (tcp.refused).
    failing: ProfileFile,
    /// The healthy endpoint and one that accepts and never answers the TLS handshake.
    stuck: ProfileFile,
}

impl Lab {
    fn new() -> Lab {
        let pki = Pki::new();
        let api = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
        let dns = DnsServer::start([(HOST, DnsAnswer::localhost())]);
        let stuck = RawTcpServer::start(RawMode::Silent);
        let ok = EndpointSpec::new("api", HOST, api.port());
        let down = EndpointSpec::new("down", "127.0.0.1", closed_port().port());
        let silent = EndpointSpec::new("stuck", "127.0.0.1", stuck.port());
        // Twenty devices on two cores: slow connects are load, not the verdict under test.
        let relaxed = "latency_warn_ms = 5000\nlatency_fail_ms = 10000\n";
        Lab {
            healthy: ProfileFile::with_thresholds(std::slice::from_ref(&ok), relaxed),
            failing: ProfileFile::with_thresholds(&[ok.clone(), down], relaxed),
            stuck: ProfileFile::with_thresholds(&[ok, silent], relaxed),
            pki,
            dns,
            _api: api,
            _stuck: stuck,
        }
    }

    /// A run of `profile` against the lab (endpoint stages, JSON, no history); steps get 5 s,
    /// as twenty runs at once on a small machine need.
    fn run(&self, profile: &ProfileFile) -> Netcheck {
        Netcheck::engine(profile)
            .resolver(&self.dns)
            .ca_file(&self.pki)
            .timeout("5s")
    }
}

fn pushgateway_job(gw: &Pushgateway) -> String {
    format!(
        "  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        gw.port()
    )
}

#[test]
fn twenty_devices_pushing_at_once_give_twenty_instance_series() {
    const WHY: &str = "fleet::twenty_devices_pushing_at_once";
    if !have("prometheus", WHY) {
        return;
    }
    let Some(gw) = Pushgateway::start(WHY) else {
        return;
    };
    let Some(prom) = Prometheus::start(WHY, &pushgateway_job(&gw)) else {
        return;
    };
    let lab = Lab::new();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let textfile = scratch.path().join("dev-00.prom");

    // Even devices are healthy, odd ones fail; a few use the cron options alongside --push.
    let devices: Vec<(usize, Child)> = (0..20)
        .map(|i| {
            let profile = if i % 2 == 0 {
                &lab.healthy
            } else {
                &lab.failing
            };
            let mut nc = lab
                .run(profile)
                .arg("--push")
                .arg(gw.url())
                .arg("--instance")
                .arg(format!("dev-{i:02}"));
            nc = match i {
                0 => nc
                    .format("prometheus")
                    .arg("-q")
                    .arg("-o")
                    .arg(textfile.as_os_str()),
                1 => nc.arg("--jitter").arg("300ms"),
                // Its own state directory: the lock must not meet other tests' runs.
                2 => nc
                    .arg("--lock")
                    .env("XDG_STATE_HOME", &scratch.path().to_string_lossy()),
                3 => nc.arg("-q"),
                _ => nc,
            };
            let child = nc
                .command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start bmw-netcheck");
            (i, child)
        })
        .collect();
    for (i, child) in devices {
        let out = child.wait_with_output().expect("device run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let want = if i % 2 == 0 { 0 } else { 2 };
        let file = if i == 0 {
            std::fs::read_to_string(&textfile).unwrap_or_default()
        } else {
            String::new()
        };
        assert_eq!(
            out.status.code(),
            Some(want),
            "device {i}: exit\nstderr: {stderr}\nstdout: {stdout}\n{file}"
        );
        assert!(stderr.trim().is_empty(), "device {i}: stderr: {stderr}");
        if i == 0 {
            assert!(stdout.is_empty(), "-q with -o prints nothing: {stdout}");
        }
    }
    let written = std::fs::read_to_string(&textfile).expect("-o file written beside the push");
    assert!(written.contains("bmw_netcheck_run_status 0"), "{written}");

    let got = prom.wait_for(
        "bmw_netcheck_run_status{job=\"bmw_netcheck\",instance=~\"dev-.*\"}",
        Duration::from_secs(30),
        |r| r.len() == 20,
    );
    let by_instance: BTreeMap<String, f64> = got
        .iter()
        .map(|s| (label(s, "instance").to_owned(), value(s)))
        .collect();
    assert_eq!(by_instance.len(), 20, "{by_instance:?}");
    for i in 0..20 {
        let want = if i % 2 == 0 { 0.0 } else { 2.0 };
        assert_eq!(
            by_instance.get(&format!("dev-{i:02}")),
            Some(&want),
            "dev-{i:02}: {by_instance:?}"
        );
    }
    let refused = prom.wait_for(
        "bmw_netcheck_check_status{probe=\"tcp\",target=\"down\",instance=~\"dev-.*\"}",
        Duration::from_secs(10),
        |r| r.len() == 10,
    );
    for s in &refused {
        assert_eq!(value(s), 2.0, "{s}");
        assert_eq!(label(s, "code"), "tcp.refused", "{s}");
    }
    prom.wait_for(
        "count(bmw_netcheck_run_status{job=\"bmw_netcheck\",instance=~\"dev-.*\"} == 2)",
        Duration::from_secs(5),
        |r| r.first().map(value) == Some(10.0),
    );

    // The README's recipe for a decommissioned device: delete its group on the gateway.
    if have("curl", WHY) {
        let url = format!("{}/metrics/job/bmw_netcheck/instance/dev-19", gw.url());
        let status = Command::new("curl")
            .args(["-fsS", "-X", "DELETE", &url])
            .status()
            .expect("run curl");
        assert!(status.success(), "curl -X DELETE {url}");
        let left = prom.wait_for(
            "bmw_netcheck_run_status{job=\"bmw_netcheck\",instance=~\"dev-.*\"}",
            Duration::from_secs(15),
            |r| r.len() == 19,
        );
        assert!(left.iter().all(|s| label(s, "instance") != "dev-19"));
    }
}

#[test]
fn a_failed_push_is_one_redacted_line_and_the_exit_code_stays_the_reports() {
    let lab = Lab::new();
    // A "gateway" that reads the request and hangs up: it holds its port for the whole test, so
    // no other test's server can take it.
    let closed = RawTcpServer::start(RawMode::CloseAfterHello);
    let out = lab
        .run(&lab.healthy)
        .format("human")
        .arg("-q")
        .arg("--push")
        .arg(format!("http://fleet:s3cret@127.0.0.1:{}", closed.port()))
        .arg("--instance")
        .arg("kiosk-1")
        .run();
    out.assert_exit(0);
    assert!(out.stdout.is_empty(), "-q on a pass: {}", out.describe());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.describe());
    assert!(
        lines[0].contains("push to http://***@127.0.0.1:")
            && lines[0].contains("/metrics/job/bmw_netcheck/instance/kiosk-1")
            && lines[0].contains("closed the connection without an answer"),
        "{}",
        lines[0]
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);

    // A failing run whose push fails still exits 2.
    let out = lab
        .run(&lab.failing)
        .arg("--push")
        .arg(format!("http://127.0.0.1:{}", closed.port()))
        .run();
    out.assert_exit(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
}

#[test]
fn a_push_over_https_trusts_the_ca_file_and_sends_basic_auth_from_the_url() {
    let pki = Pki::new();
    let gateway = HttpsServer::start(
        &pki.issue(&Leaf::only(&["127.0.0.1"])),
        HttpBehaviour::status(200),
    );
    let lab = Lab::new();
    let out = Netcheck::engine(&lab.healthy)
        .resolver(&lab.dns)
        // The lab's CA for the probes, the gateway's for the push: one --ca-file holds both.
        .ca_path(&both_cas(&lab.pki, &pki))
        .arg("--push")
        .arg(format!(
            "https://fleet:pa%20ss@127.0.0.1:{}/gw/",
            gateway.port()
        ))
        .arg("--instance")
        .arg("car-7")
        .run();
    out.assert_exit(0);
    assert!(out.stderr.is_empty(), "{}", out.describe());
    let puts: Vec<_> = gateway
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].path, "/gw/metrics/job/bmw_netcheck/instance/car-7");
    // base64("fleet:pa ss")
    assert_eq!(
        puts[0].header("authorization"),
        Some("Basic ZmxlZXQ6cGEgc3M=")
    );
    assert!(
        puts[0]
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{puts:?}"
    );
}

/// A PEM file holding both CAs' roots.
fn both_cas(a: &Pki, b: &Pki) -> std::path::PathBuf {
    let dir = b.dir();
    let path = dir.join("both-cas.pem");
    let mut pem = std::fs::read_to_string(a.ca_file()).expect("read CA");
    pem.push_str(&std::fs::read_to_string(b.ca_file()).expect("read CA"));
    std::fs::write(&path, pem).expect("write CA bundle");
    path
}

#[test]
fn push_and_instance_mistakes_are_usage_errors() {
    for args in [
        vec!["--push", "pushgateway:9091"],
        vec!["--push", "ftp://gw"],
        vec!["--push", "http://u:s3cret@gw/?a=b"],
        vec!["--push", "http://gw", "--instance", "a/b"],
        vec!["--instance", ""],
    ] {
        let mut nc = Netcheck::bare().arg("--no-history");
        for a in &args {
            nc = nc.arg(*a);
        }
        let out = nc.run();
        out.assert_exit(3);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(out.stdout.is_empty(), "{}", out.describe());
        assert!(!out.stderr.contains("s3cret"), "{}", out.describe());
    }
}

/// A running `bmw-netcheck serve`, stopped with SIGTERM (or killed) on drop.
pub struct Serve {
    child: Option<Child>,
    pub addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    /// `serve --listen 127.0.0.1:0` with these run options; waits for its address on stderr.
    pub fn start(run: &Netcheck, state: &Path) -> Serve {
        Serve::start_with(run, state, &[])
    }

    /// As [`Serve::start`], with these variables added to its environment.
    pub fn start_with(run: &Netcheck, state: &Path, env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("bmw-netcheck"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(run.args())
            .env("XDG_STATE_HOME", state)
            .env("BMW_NETCHECK_CONTROL", "off")
            .env_remove("NO_COLOR")
            .env_remove("GLIBC_TUNABLES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for var in crate::support::netcheck::PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("start serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        let _ = lines.read_line(&mut first);
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("serve did not say where it listens: {first:?}"))
            .to_owned();
        let stderr = Arc::new(Mutex::new(first.clone()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Serve {
            child: Some(child),
            addr,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (killed if it does not stop within `within`).
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn serve_job(serve: &Serve, interval: &str, scrape_timeout: &str) -> String {
    format!(
        "  - job_name: bmw_netcheck_serve\n    metrics_path: /probe\n    honor_labels: true\n    scrape_interval: {interval}\n    scrape_timeout: {scrape_timeout}\n    static_configs:\n      - targets: ['{addr}']\n  - job_name: bmw_netcheck_exporter\n    static_configs:\n      - targets: ['{addr}']\n",
        addr = serve.addr
    )
}

#[test]
fn prometheus_scraping_serve_sees_up_and_the_runs_metrics() {
    const WHY: &str = "fleet::prometheus_scraping_serve";
    if !have("prometheus", WHY) {
        return;
    }
    let lab = Lab::new();
    let state = tempfile::tempdir().expect("temporary directory");
    let history = state.path().join("serve-history.jsonl");
    let run = Netcheck::engine(&lab.failing)
        .resolver(&lab.dns)
        .ca_file(&lab.pki)
        .format("human")
        .arg("--instance")
        .arg("serve-1");
    // Keep the history this time (engine runs pass --no-history).
    let args: Vec<OsString> = run
        .args()
        .into_iter()
        .filter(|a| a != "--no-history")
        .chain(["--history".into(), history.clone().into_os_string()])
        .collect();
    let mut rebuilt = Netcheck::bare();
    for a in args {
        rebuilt = rebuilt.arg(a);
    }
    let mut serve = Serve::start(&rebuilt, state.path());
    let Some(prom) = Prometheus::start(WHY, &serve_job(&serve, "1s", "1s")) else {
        return;
    };

    let up = prom.wait_for(
        "up{job=\"bmw_netcheck_serve\"}",
        Duration::from_secs(30),
        |r| r.len() == 1 && value(&r[0]) == 1.0,
    );
    assert_eq!(value(&up[0]), 1.0);
    let status = prom.wait_for(
        "bmw_netcheck_run_status{job=\"bmw_netcheck_serve\"}",
        Duration::from_secs(15),
        |r| r.len() == 1,
    );
    assert_eq!(value(&status[0]), 2.0, "{status:?}");
    assert_eq!(label(&status[0], "instance"), "serve-1", "{status:?}");
    let tcp = prom.wait_for(
        "bmw_netcheck_check_status{job=\"bmw_netcheck_serve\",probe=\"tcp\"}",
        Duration::from_secs(5),
        |r| r.len() == 2,
    );
    for s in &tcp {
        let (want, code) = match label(s, "target") {
            "api" => (0.0, "tcp.ok"),
            "down" => (2.0, "tcp.refused"),
            other => panic!("unexpected target {other}: {s}"),
        };
        assert_eq!((value(s), label(s, "code")), (want, code), "{s}");
    }
    let http = prom.wait_for(
        "bmw_netcheck_http_status_code{job=\"bmw_netcheck_serve\",target=\"api\"}",
        Duration::from_secs(5),
        |r| r.len() == 1,
    );
    assert_eq!(value(&http[0]), 200.0);
    let runs = prom.wait_for(
        "bmw_netcheck_exporter_runs_total{job=\"bmw_netcheck_exporter\",status=\"fail\"}",
        Duration::from_secs(10),
        |r| r.first().map(value).is_some_and(|v| v >= 2.0),
    );
    assert!(value(&runs[0]) >= 2.0);
    prom.wait_for(
        "bmw_netcheck_exporter_build_info{job=\"bmw_netcheck_exporter\"}",
        Duration::from_secs(5),
        |r| r.len() == 1,
    );

    // Every expression of the Grafana dashboard is valid PromQL that the real engine evaluates.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/grafana-dashboard.json"),
        )
        .expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr").replace("$instance", ".*");
            let got = prom
                .query(&expr)
                .unwrap_or_else(|e| panic!("dashboard panel {}: {expr}: {e}", panel["title"]));
            exprs += 1;
            say(&format!(
                "prometheus: dashboard {} → {} series",
                panel["title"],
                got.len()
            ));
        }
    }
    assert!(exprs >= 10, "{exprs}");

    // The page for a person and the health check.
    let (code, page) = get(&serve.url("/"), &[]).expect("GET /");
    assert_eq!(code, 200);
    assert!(page.contains("<pre>bmw-netcheck "), "{page}");
    assert!(page.contains("tcp.refused"), "{page}");
    assert!(!page.contains('\u{1b}'), "no colour codes on the page");
    assert_eq!(get(&serve.url("/-/healthy"), &[]).expect("healthy").0, 200);
    // Query parameters never choose what is checked.
    let (code, _) = get(&serve.url("/probe?target=example.com"), &[]).expect("GET");
    assert_eq!(code, 400);

    let code = serve.terminate(Duration::from_secs(5));
    assert_eq!(
        code,
        Some(0),
        "SIGTERM stops serve cleanly\n{}",
        serve.stderr()
    );
    let recorded = std::fs::read_to_string(&history).expect("serve records its runs");
    let lines = recorded.lines().count();
    assert!(lines >= 2, "{lines} history lines");
    say(&format!(
        "fleet: serve recorded {lines} runs in its history"
    ));
}

#[test]
fn a_scrape_timeout_shorter_than_a_stuck_endpoint_still_answers_in_time() {
    const WHY: &str = "fleet::a_scrape_timeout_shorter_than_a_stuck_endpoint";
    if !have("prometheus", WHY) {
        return;
    }
    let lab = Lab::new();
    let state = tempfile::tempdir().expect("temporary directory");
    // The stuck endpoint would hold a run for 10 s; the scrape allows 1.5 s.
    let run = Netcheck::engine(&lab.stuck)
        .resolver(&lab.dns)
        .ca_file(&lab.pki)
        .format("human")
        .timeout("10s")
        .deadline("30s")
        .arg("--instance")
        .arg("stuck-1");
    let serve = Serve::start(&run, state.path());

    // Directly, as Prometheus would ask: the answer comes within the scrape timeout.
    let started = Instant::now();
    let (code, body) = get(
        &serve.url("/probe"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    )
    .expect("GET /probe");
    let took = started.elapsed();
    assert_eq!(code, 200, "{body}");
    assert!(took < Duration::from_millis(1500), "answered in {took:?}");
    assert!(
        body.contains("bmw_netcheck_check_status{instance=\"stuck-1\",probe=\"tls\",target=\"stuck\",code=\"tls.timeout\"} 2"),
        "{body}"
    );
    say(&format!(
        "fleet: /probe with a 1.5 s scrape timeout and a stuck endpoint answered in {:.0} ms",
        took.as_secs_f64() * 1000.0
    ));

    let Some(prom) = Prometheus::start(WHY, &serve_job(&serve, "2s", "1500ms")) else {
        return;
    };
    prom.wait_for(
        "up{job=\"bmw_netcheck_serve\"}",
        Duration::from_secs(30),
        |r| r.len() == 1 && value(&r[0]) == 1.0,
    );
    let stuck = prom.wait_for(
        "bmw_netcheck_check_status{job=\"bmw_netcheck_serve\",target=\"stuck\",probe=\"tls\"}",
        Duration::from_secs(15),
        |r| r.len() == 1,
    );
    assert_eq!(label(&stuck[0], "code"), "tls.timeout");
    assert_eq!(value(&stuck[0]), 2.0);
    let ok = prom.wait_for(
        "bmw_netcheck_check_status{job=\"bmw_netcheck_serve\",target=\"api\",probe=\"http\"}",
        Duration::from_secs(5),
        |r| r.len() == 1,
    );
    assert_eq!(value(&ok[0]), 0.0, "the healthy endpoint still passes");
    let duration = prom.wait_for(
        "scrape_duration_seconds{job=\"bmw_netcheck_serve\"}",
        Duration::from_secs(5),
        |r| r.len() == 1,
    );
    assert!(value(&duration[0]) < 1.5, "{duration:?}");
}

#[test]
fn concurrent_scrapes_share_one_run() {
    let lab = Lab::new();
    let state = tempfile::tempdir().expect("temporary directory");
    let run = Netcheck::engine(&lab.stuck)
        .resolver(&lab.dns)
        .ca_file(&lab.pki)
        .format("human")
        .arg("--instance")
        .arg("shared-1");
    let serve = Serve::start(&run, state.path());
    let url = serve.url("/probe");
    let scrapes: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]).expect("GET /probe")
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for s in scrapes {
        let (code, body) = s.join().expect("scrape thread");
        assert_eq!(code, 200, "{body}");
        let id = body
            .lines()
            .find(|l| l.starts_with("bmw_netcheck_run_info{"))
            .and_then(|l| l.split("report_id=\"").nth(1))
            .and_then(|s| s.split('"').next())
            .expect("report id")
            .to_owned();
        ids.insert(id);
    }
    let (_, own) = get(&serve.url("/metrics"), &[]).expect("GET /metrics");
    say(&format!(
        "fleet: 5 concurrent scrapes were answered by {} run(s)",
        ids.len()
    ));
    assert_eq!(ids.len(), 1, "one run for all five: {ids:?}\n{own}");
    assert!(
        own.contains("bmw_netcheck_exporter_scrapes_joined_total 4"),
        "{own}"
    );
    assert!(
        own.contains("bmw_netcheck_exporter_runs_total{status=\"fail\"} 1"),
        "{own}"
    );
    if have(
        "promtool",
        "fleet::concurrent_scrapes_share_one_run (promtool check metrics)",
    ) {
        for path in ["/metrics", "/probe"] {
            let (_, text) = get(&serve.url(path), &[]).expect("GET");
            promtool_check_metrics(&text, path);
        }
    }
}

/// serve restarts itself with glibc's allocator told to keep one arena and no per-thread cache
/// (what keeps its memory flat over many scrapes; BENCHMARKS.md), once, and serves as before; a
/// user's own setting of either is left alone.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_runs_with_the_allocator_settings_that_keep_its_memory_flat() {
    let lab = Lab::new();
    let state = tempfile::tempdir().expect("temporary directory");
    let run = Netcheck::engine(&lab.healthy)
        .resolver(&lab.dns)
        .ca_file(&lab.pki)
        .format("human");
    for (given, expected) in [
        (None, "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1"),
        (
            Some("glibc.malloc.perturb=0"),
            "glibc.malloc.perturb=0:glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1",
        ),
        (Some("glibc.malloc.arena_max=2"), "glibc.malloc.arena_max=2"),
    ] {
        let env: Vec<(&str, &str)> = given.map(|g| ("GLIBC_TUNABLES", g)).into_iter().collect();
        let serve = Serve::start_with(&run, state.path(), &env);
        let pid = serve.child.as_ref().expect("running").id();
        let tunables = tunables_of(pid);
        say(&format!(
            "fleet: serve started with GLIBC_TUNABLES={given:?} runs with {tunables:?}"
        ));
        assert_eq!(
            tunables.as_deref(),
            Some(expected),
            "started with {given:?}"
        );
        // Restarted once, not over and over: it answers.
        let (code, body) = get(&serve.url("/probe"), &[]).expect("GET /probe");
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("bmw_netcheck_run_status{"), "{body}");
    }
}

/// `GLIBC_TUNABLES` of a process as it was exec'd. glibc splits the value in place at its `:`
/// when it reads it, so the tunables after the first show as entries of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tunables_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let entries: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    let at = entries
        .iter()
        .position(|e| e.starts_with(b"GLIBC_TUNABLES="))?;
    let mut parts =
        vec![String::from_utf8_lossy(&entries[at]["GLIBC_TUNABLES=".len()..]).into_owned()];
    parts.extend(
        entries[at + 1..]
            .iter()
            .take_while(|e| e.starts_with(b"glibc."))
            .map(|e| String::from_utf8_lossy(e).into_owned()),
    );
    Some(parts.join(":"))
}

/// `promtool check metrics` on an exposition: no problems reported.
fn promtool_check_metrics(text: &str, what: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics {what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool() {
    if !have("promtool", "fleet::the_alert_rules_pass_promtool") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring");
    for args in [
        vec!["check", "rules", "bmw-netcheck.rules.yml"],
        vec!["test", "rules", "bmw-netcheck.rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        say(&format!("promtool {}: {}", args.join(" "), text.trim()));
        assert!(out.status.success(), "promtool {args:?}: {text}");
    }
}

#[test]
fn serve_refuses_options_an_exporter_cannot_honour() {
    for extra in [
        ["-o", "x.prom"],
        ["--push", "http://127.0.0.1:9"],
        ["--format", "json"],
    ] {
        let out = Netcheck::bare()
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--no-history")
            .arg(extra[0])
            .arg(extra[1])
            .run();
        out.assert_exit(3);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(out.stderr.contains(extra[0]), "{}", out.describe());
    }
}

#[test]
fn the_page_shows_outside_text_as_text() {
    let pki = Pki::new();
    let profile = ProfileFile::raw(&format!(
        "name = \"<script>alert(1)</script> & co\"\n\n{}",
        EndpointSpec::new("down", "127.0.0.1", closed_port().port()).to_toml()
    ));
    let state = tempfile::tempdir().expect("temporary directory");
    let run = Netcheck::engine(&profile)
        .ca_file(&pki)
        .format("human")
        .arg("--instance")
        .arg("page-1");
    let serve = Serve::start(&run, state.path());
    let (code, metrics) = get(&serve.url("/probe"), &[]).expect("GET /probe");
    assert_eq!(code, 200, "{metrics}");
    let (code, page) = get(&serve.url("/"), &[]).expect("GET /");
    assert_eq!(code, 200);
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
        "{page}"
    );
    assert!(page.contains("tcp.refused"), "{page}");
}

#[test]
fn a_gateway_that_never_answers_cannot_hold_the_run_past_its_deadline() {
    let lab = Lab::new();
    let silent = RawTcpServer::start(RawMode::Silent);
    let out = lab
        .run(&lab.healthy)
        .deadline("2s")
        .arg("--push")
        .arg(format!("http://127.0.0.1:{}", silent.port()))
        .run();
    out.assert_exit(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.describe());
    assert!(lines[0].contains("no answer within"), "{}", lines[0]);
    // The deadline holds for the push too (with the margin every run has for its own exit).
    assert!(
        out.elapsed < Duration::from_millis(3500),
        "{:?}\n{}",
        out.elapsed,
        out.describe()
    );
    say(&format!(
        "fleet: --deadline 2s with a silent gateway ended after {:.2} s",
        out.elapsed.as_secs_f64()
    ));
}

/// bcrypt (cost 4) of `fleet-pass`, for the gateway's `basic_auth_users`.
const FLEET_PASS_BCRYPT: &str = "$2b$04$aLdWjcF3gb1YKg4m09Uf4elpkvVP/j6k2eSCzYeeUQwZHfBEFqi8m";

#[test]
fn a_push_reaches_a_pushgateway_behind_tls_and_basic_auth() {
    const WHY: &str = "fleet::a_push_reaches_a_pushgateway_behind_tls_and_basic_auth";
    let gw_pki = Pki::new();
    let identity = gw_pki.issue(&Leaf::only(&["127.0.0.1"]));
    let users = format!("fleet: {FLEET_PASS_BCRYPT}");
    let Some(gw) = Pushgateway::start_secured(WHY, Some((&identity, &users))) else {
        return;
    };
    let lab = Lab::new();
    let cas = both_cas(&lab.pki, &gw_pki);
    let push = |password: &str, instance: &str| {
        Netcheck::engine(&lab.healthy)
            .resolver(&lab.dns)
            .timeout("5s")
            .ca_path(&cas)
            .arg("--push")
            .arg(format!("https://fleet:{password}@127.0.0.1:{}", gw.port()))
            .arg("--instance")
            .arg(instance)
            .run()
    };
    let ok = push("fleet-pass", "tls-1");
    ok.assert_exit(0);
    assert!(ok.stderr.is_empty(), "{}", ok.describe());

    let wrong = push("not-the-pass", "tls-2");
    wrong.assert_exit(0);
    let lines: Vec<&str> = wrong.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", wrong.describe());
    assert!(lines[0].contains("HTTP 401"), "{}", lines[0]);
    assert!(lines[0].contains("https://***@127.0.0.1:"), "{}", lines[0]);
    assert!(!wrong.stderr.contains("not-the-pass"), "{}", wrong.stderr);

    // Without the gateway's CA the handshake fails, and says so.
    let untrusted = Netcheck::engine(&lab.healthy)
        .resolver(&lab.dns)
        .ca_file(&lab.pki)
        .arg("--push")
        .arg(format!("https://fleet:fleet-pass@127.0.0.1:{}", gw.port()))
        .run();
    untrusted.assert_exit(0);
    assert!(
        untrusted
            .stderr
            .contains("TLS handshake with the gateway failed"),
        "{}",
        untrusted.describe()
    );

    // What the gateway holds, read with curl over the same TLS and credentials.
    if have("curl", WHY) {
        let out = Command::new("curl")
            .args(["-fsS", "--cacert"])
            .arg(gw_pki.ca_file())
            .args(["-u", "fleet:fleet-pass"])
            .arg(format!("https://127.0.0.1:{}/metrics", gw.port()))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("bmw_netcheck_run_status{"))
            .collect();
        say(&format!(
            "pushgateway (TLS, basic auth): {}",
            status.join("; ")
        ));
        assert_eq!(
            status,
            ["bmw_netcheck_run_status{instance=\"tls-1\",job=\"bmw_netcheck\"} 0"]
        );
    }
}

/// A client that sends half a request head and then nothing is disconnected by the exporter (a
/// few seconds later; a minute is allowed here), and the exporter serves on.
#[test]
fn serve_closes_a_connection_whose_request_head_never_completes() {
    use std::io::{Read, Write};
    let lab = Lab::new();
    let state = tempfile::tempdir().expect("temporary directory");
    let run = Netcheck::engine(&lab.stuck)
        .resolver(&lab.dns)
        .ca_file(&lab.pki)
        .format("human");
    let serve = Serve::start(&run, state.path());
    let mut half = std::net::TcpStream::connect(&serve.addr).expect("connect to serve");
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nAccept: text/plain\r\n")
        .expect("send half a request head");
    half.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut buf = [0u8; 256];
    let closed = match half.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!(
            "an answer to half a request: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    };
    assert!(closed, "the exporter kept the half-sent request open");
    let (code, own) = get(&serve.url("/metrics"), &[]).expect("GET /metrics");
    assert_eq!(code, 200, "{own}");
}
