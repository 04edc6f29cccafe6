//! End-to-end tests of the scheduled-use and support-ticket surface (GitHub issue 4): Markdown
//! and Prometheus reports, redaction, atomic `--output`, `--quiet`, `--lock`, completions and
//! the man page — the real binary against servers the test starts on loopback.
//!
//! The Markdown report and the Prometheus file of the first tests are also copied to
//! `$CARGO_TARGET_TMPDIR/reports/` so a person can look at what the tests produced.

use crate::history::recorded;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = "api.netcheck.lan";

/// A healthy HTTPS endpoint `api` (by name, through the fixture DNS) and a dead one `down`
/// (an IP literal on a closed port), with the storage probe pointed at `storage`.
struct Scene {
    _pki: Pki,
    _server: HttpsServer,
    dns: DnsServer,
    pki_ca: PathBuf,
    profile: ProfileFile,
}

fn scene() -> Scene {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = DnsServer::start([(HOST, DnsAnswer::localhost())]);
    let closed = closed_port();
    let profile = ProfileFile::new(&[
        EndpointSpec::new("api", HOST, server.port()),
        EndpointSpec::new("down", "127.0.0.1", closed.port()),
    ]);
    Scene {
        pki_ca: pki.ca_file().to_owned(),
        _pki: pki,
        _server: server,
        dns,
        profile,
    }
}

impl Scene {
    fn netcheck(&self, format: &str) -> Netcheck {
        Netcheck::engine(&self.profile)
            .resolver(&self.dns)
            .ca_path(&self.pki_ca)
            .format(format)
            .only("dns,tcp,tls,http,latency,storage")
    }
}

/// Keeps a copy of what a test produced, for people to read.
fn keep(name: &str, text: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reports");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(name), text);
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn device_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| h.len() >= 3 && h != "localhost")
}

// ---- markdown -----------------------------------------------------------------------------------

#[test]
fn markdown_report_is_a_redacted_ticket_attachment() {
    let s = scene();
    let out_dir = tempfile::tempdir().expect("temp dir");
    // A storage path with a user name in it, as a home directory would have.
    let home = out_dir.path().join("home").join("alice");
    std::fs::create_dir_all(&home).expect("create the fake home");
    let file = out_dir.path().join("ticket.md");
    let out = s
        .netcheck("markdown")
        .arg("--storage-path")
        .arg(&home)
        .arg("-o")
        .arg(&file)
        .run();
    out.assert_exit(2);
    assert!(
        out.stdout.is_empty(),
        "-o leaves stdout empty\n{}",
        out.describe()
    );
    let md = std::fs::read_to_string(&file).expect("the markdown file");
    keep("ticket.md", &md);

    for needle in [
        "## bmw-netcheck report `",
        "| Result | ✗ **FAIL**",
        &format!("| Tool | bmw-netcheck {} |", env!("CARGO_PKG_VERSION")),
        "| OS | ",
        "| Host | `<hostname>` |",
        "| Region | fixture |",
        "| | Probe | Target | Code | Time | Summary |",
        "| ✓ | tls | api | `tls.ok` |",
        "| ✗ | tcp | down | `tcp.refused` |",
        "| down | `*.skipped` |",
        "| ✗ | `tcp.refused` | down |",
        "| ✓ | storage | device | `storage.ok` |",
        "### Most likely cause: ",
        "**You see:**",
        "### Redaction",
        "private, loopback and link-local addresses (",
        "user names in paths (",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    // Redacted: loopback addresses, the user name, the host name.
    assert!(!md.contains("127.0.0.1"), "{md}");
    assert!(!md.contains("alice"), "{md}");
    assert!(md.contains("home/\\*\\*\\*"), "{md}");
    if let Some(h) = device_hostname() {
        assert!(!md.contains(&h), "host name {h} in\n{md}");
    }
    // Every table row has as many cells as its header.
    let mut columns = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let cells = line.replace("\\|", "").matches('|').count();
            let c = *columns.get_or_insert(cells);
            assert_eq!(cells, c, "row {line:?}");
        } else {
            columns = None;
        }
    }
    // The suspects have their difficulty and confidence.
    assert!(md.contains(" confidence"), "{md}");
}

#[test]
fn no_redact_keeps_addresses_and_says_so() {
    let s = scene();
    let out = s.netcheck("markdown").arg("--no-redact").run();
    out.assert_exit(2);
    assert!(out.stdout.contains("127.0.0.1"), "{}", out.describe());
    assert!(
        out.stdout.contains("Made with `--no-redact`"),
        "{}",
        out.describe()
    );
}

#[test]
fn proxy_credentials_never_appear_in_any_format_or_the_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history.jsonl");
    let profile = ProfileFile::new(&[EndpointSpec::new("down", "127.0.0.1", closed_port().port())]);
    for format in ["human", "json", "markdown", "prometheus", "nagios"] {
        for redact in [true, false] {
            let mut cmd = recorded(&profile, &history)
                .format(format)
                .only("tcp,proxy")
                .env("HTTPS_PROXY", "http://alice:hunter2@127.0.0.1:9/")
                .env("http_proxy", "bob:swordfish@proxy.example:3128")
                .color("never");
            if !redact {
                cmd = cmd.arg("--no-redact");
            }
            let out = cmd.run();
            assert!(out.code == 1 || out.code == 2, "{}", out.describe());
            for secret in ["hunter2", "swordfish"] {
                assert!(
                    !out.stdout.contains(secret) && !out.stderr.contains(secret),
                    "{secret} printed by --format {format}\n{}",
                    out.describe()
                );
            }
        }
    }
    let log = std::fs::read_to_string(&history).expect("history written");
    assert_eq!(log.lines().count(), 10);
    for line in log.lines() {
        let r = serde_json::from_str(line).expect("a history line is JSON");
        crate::support::schema::assert_valid(crate::support::schema::Doc::Report, &r);
    }
    assert!(
        !log.contains("hunter2") && !log.contains("swordfish"),
        "{log}"
    );
    crate::support::say(
        "secrets: 2 planted credentials, 10 outputs (5 formats x redaction on/off) and 10 history lines checked, 0 leaked",
    );
}

// ---- prometheus ---------------------------------------------------------------------------------

#[test]
fn prometheus_file_passes_promtool() {
    let s = scene();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bmw_netcheck.prom");
    let out = s
        .netcheck("prometheus")
        .arg("--storage-path")
        .arg(dir.path())
        .arg("-o")
        .arg(&file)
        .run();
    out.assert_exit(2);
    let text = std::fs::read_to_string(&file).expect("the .prom file");
    keep("bmw_netcheck.prom", &text);

    for needle in [
        "# TYPE bmw_netcheck_run_status gauge",
        "bmw_netcheck_run_status 2",
        "bmw_netcheck_run_info{report_id=\"",
        "bmw_netcheck_run_timestamp_seconds ",
        "bmw_netcheck_run_duration_seconds ",
        "bmw_netcheck_check_status{probe=\"tcp\",target=\"down\",code=\"tcp.refused\"} 2",
        "bmw_netcheck_check_status{probe=\"tls\",target=\"down\",code=\"tls.skipped\"} -1",
        "bmw_netcheck_check_status{probe=\"http\",target=\"api\",code=\"http.ok\"} 0",
        "bmw_netcheck_phase_duration_seconds{target=\"api\",phase=\"resolve\"} ",
        "bmw_netcheck_phase_duration_seconds{target=\"api\",phase=\"connect\"} ",
        "bmw_netcheck_phase_duration_seconds{target=\"api\",phase=\"tls\"} ",
        "bmw_netcheck_phase_duration_seconds{target=\"api\",phase=\"ttfb\"} ",
        "bmw_netcheck_http_status_code{target=\"api\"} 200",
        "bmw_netcheck_tls_cert_not_after_timestamp_seconds{target=\"api\"} ",
        "bmw_netcheck_latency_median_seconds{target=\"api\"} ",
        "bmw_netcheck_latency_loss_ratio{target=\"api\"} 0",
        "bmw_netcheck_storage_free_bytes{path=\"",
        "bmw_netcheck_storage_total_bytes{path=\"",
        "bmw_netcheck_suspect_rank{id=\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // The certificate expires in about a year.
    let not_after: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("bmw_netcheck_tls_cert_not_after_timestamp_seconds{target=\"api\"} ")
        })
        .and_then(|v| v.parse().ok())
        .expect("expiry sample");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let days = (not_after - now) / 86_400.0;
    assert!((363.0..=366.0).contains(&days), "expiry in {days} days");

    let Some(promtool) = promtool() else {
        skip("reports: promtool is not installed (Debian package `prometheus`)");
        return;
    };
    let check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("open the .prom file"))
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check metrics failed:\nstdout: {}\nstderr: {}\nfile:\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        complaints.trim().is_empty(),
        "promtool lint: {complaints}\n{text}"
    );
}

fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

// ---- output -------------------------------------------------------------------------------------

#[test]
fn every_format_can_go_to_a_file() {
    let profile = ProfileFile::new(&[EndpointSpec::new("down", "127.0.0.1", closed_port().port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    for (format, starts) in [
        ("human", "bmw-netcheck"),
        ("json", "{"),
        ("markdown", "## bmw-netcheck report"),
        ("prometheus", "# HELP"),
    ] {
        let file = dir.path().join(format!("report.{format}"));
        std::fs::write(&file, "previous").expect("write the previous report");
        let out = Netcheck::engine(&profile)
            .format(format)
            .only("tcp")
            .arg("-o")
            .arg(&file)
            .run();
        out.assert_exit(2);
        assert!(out.stdout.is_empty(), "{}", out.describe());
        let text = std::fs::read_to_string(&file).expect("read the report");
        assert!(text.starts_with(starts), "--format {format} wrote:\n{text}");
        if format == "json" {
            let r = serde_json::from_str(&text).expect("the JSON report file");
            crate::support::schema::assert_valid(crate::support::schema::Doc::Report, &r);
        }
        assert!(!text.contains('\x1b'), "no colour in a file");
    }
    assert_eq!(
        files_in(dir.path()),
        [
            "report.human",
            "report.json",
            "report.markdown",
            "report.prometheus"
        ]
    );
}

#[test]
fn a_killed_run_leaves_the_previous_output_intact() {
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bmw_netcheck.prom");
    let previous = "# previous run's metrics\nbmw_netcheck_run_status 0\n";
    std::fs::write(&file, previous).expect("write the previous file");

    let mut child = Netcheck::engine(&profile)
        .format("prometheus")
        .only("tls")
        .timeout("30s")
        .deadline("60s")
        .arg("-o")
        .arg(&file)
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bmw-netcheck");
    // Once the silent server has the connection, the run is waiting on the TLS handshake.
    let started = Instant::now();
    while server.accepted() == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.accepted() > 0, "the run never connected");
    child.kill().expect("kill the run");
    let _ = child.wait();

    assert_eq!(std::fs::read_to_string(&file).expect("read"), previous);
    assert_eq!(
        files_in(dir.path()),
        ["bmw_netcheck.prom"],
        "no temporary file left behind"
    );
}

#[test]
fn unwritable_output_is_exit_3_before_probing() {
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    let out = Netcheck::engine(&profile)
        .only("tcp")
        .arg("-o")
        .arg("/nonexistent-bmw-netcheck-dir/report.json")
        .run();
    out.assert_exit(3);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("/nonexistent-bmw-netcheck-dir"),
        "{}",
        out.describe()
    );
    assert_eq!(server.accepted(), 0, "no probe ran");
}

// ---- quiet --------------------------------------------------------------------------------------

#[test]
fn quiet_prints_nothing_when_everything_passes() {
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    for format in ["human", "json", "markdown", "prometheus", "nagios"] {
        let out = Netcheck::engine(&profile)
            .format(format)
            .only("tcp")
            .arg("-q")
            .run();
        out.assert_exit(0);
        assert_eq!(out.stdout, "", "--format {format}\n{}", out.describe());
        assert_eq!(out.stderr, "", "--format {format}\n{}", out.describe());
    }
    // A file named with -o is still written: the textfile collector must see good runs too.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ok.prom");
    let out = Netcheck::engine(&profile)
        .format("prometheus")
        .only("tcp")
        .arg("--quiet")
        .arg("-o")
        .arg(&file)
        .run();
    out.assert_exit(0);
    let text = std::fs::read_to_string(&file).expect("the file was written");
    assert!(text.contains("bmw_netcheck_run_status 0"), "{text}");
}

#[test]
fn quiet_still_prints_problems() {
    let profile = ProfileFile::new(&[EndpointSpec::new("down", "127.0.0.1", closed_port().port())]);
    let out = Netcheck::engine(&profile)
        .format("human")
        .only("tcp")
        .color("never")
        .arg("-q")
        .run();
    out.assert_exit(2);
    assert!(out.stdout.contains("tcp.refused"), "{}", out.describe());
}

// ---- lock ---------------------------------------------------------------------------------------

#[test]
fn a_second_locked_run_exits_3_naming_the_holder() {
    let server = RawTcpServer::start(RawMode::Silent);
    let slow = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    let fast = ProfileFile::new(&[EndpointSpec::new("down", "127.0.0.1", closed_port().port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history.jsonl");

    let mut holder = recorded(&slow, &history)
        .only("tls")
        .timeout("30s")
        .deadline("60s")
        .arg("--lock")
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the first run");
    let started = Instant::now();
    while server.accepted() == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.accepted() > 0, "the first run never connected");

    let second = recorded(&fast, &history).only("tcp").arg("--lock").run();
    // Without --lock, runs side by side are fine.
    let unlocked = recorded(&fast, &history).only("tcp").run();
    let holder_pid = holder.id();
    holder.kill().expect("kill the first run");
    let _ = holder.wait();

    second.assert_exit(3);
    assert_eq!(second.stdout, "", "{}", second.describe());
    assert_eq!(second.stderr.lines().count(), 1, "{}", second.describe());
    assert!(
        second.stderr.contains(&format!("pid {holder_pid}")),
        "{}",
        second.describe()
    );
    assert!(second.stderr.contains("lock"), "{}", second.describe());
    unlocked.assert_exit(2);

    // Once the holder is gone (even killed), the lock is free again.
    recorded(&fast, &history)
        .only("tcp")
        .arg("--lock")
        .run()
        .assert_exit(2);
}

#[test]
fn jitter_delays_the_start_but_not_the_deadline() {
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", server.port())]);
    let out = Netcheck::engine(&profile)
        .only("tls")
        .timeout("10s")
        .deadline("500ms")
        .arg("--jitter")
        .arg("300ms")
        .run();
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "api", "tls"), "tls.timeout");
    // The deadline's clock starts after the jitter: the run used its whole deadline.
    let took = r["duration_ms"].as_f64().expect("duration_ms");
    assert!((450.0..1500.0).contains(&took), "duration_ms {took}");
    assert!(out.elapsed < Duration::from_secs(5), "{}", out.describe());
}

// ---- completions and man page -------------------------------------------------------------------

#[test]
fn completions_for_every_shell_mention_the_flags() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Netcheck::bare().arg("completions").arg(shell).run();
        out.assert_exit(0);
        // fish spells long options `-l region`; the others `--region`.
        assert!(out.stdout.contains("region"), "{shell}\n{}", out.describe());
        assert!(out.stdout.contains("history"), "{shell}: subcommands");
    }
    Netcheck::bare()
        .arg("completions")
        .arg("tcsh")
        .run()
        .assert_exit(3);
}

#[test]
fn man_page_is_roff_with_the_options() {
    let out = Netcheck::bare().arg("man").run();
    out.assert_exit(0);
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains(".TH bmw-netcheck"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("region"), "{}", out.describe());
    assert!(
        out.stdout.contains("Exit codes"),
        "examples and exit codes are in the page"
    );
}

// ---- progress -----------------------------------------------------------------------------------

/// Runs with stderr on a pseudo-terminal (stdout piped): exit code, stdout, what the terminal got.
fn stderr_on_tty(cmd: &Netcheck) -> (i32, String, String) {
    let out = cmd.run_with_stderr_on_tty();
    (out.code, out.stdout, out.stderr)
}

#[test]
fn progress_names_pending_endpoints_on_a_terminal_and_clears_its_line() {
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[
        EndpointSpec::new("api", "127.0.0.1", server.port()),
        EndpointSpec::new("sign-in", "127.0.0.1", server.port()),
    ]);
    let slow = |format: &str| {
        Netcheck::engine(&profile)
            .format(format)
            .only("tls")
            .timeout("10s")
            .deadline("1200ms")
            .color("never")
    };
    let (code, stdout, tty) = stderr_on_tty(&slow("human"));
    assert_eq!(code, 2, "stdout:\n{stdout}\nterminal:\n{tty:?}");
    assert!(tty.contains("waiting for: api, sign-in"), "{tty:?}");
    assert!(
        tty.ends_with("\r\x1b[2K"),
        "the line is cleared at the end: {tty:?}"
    );
    assert!(!stdout.contains("waiting for"), "progress stays off stdout");

    // Not for other formats, even on a terminal.
    let (_, stdout, tty) = stderr_on_tty(&slow("json"));
    assert_eq!(tty, "", "no progress with --format json");
    assert!(stdout.starts_with('{'));

    // Not when stderr is a pipe.
    let out = slow("human").run();
    assert_eq!(out.stderr, "", "{}", out.describe());
}
