//! Runs the real `bmw-netcheck` binary and reads its JSON report.

use super::dns::DnsServer;
use super::pki::Pki;
use super::profile::ProfileFile;
use serde_json::Value;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Any run taking longer than this is a hang: the child is killed and the test fails.
const HANG: Duration = Duration::from_secs(60);

/// Proxy variables the tool honours (the tool's own list); removed from every run unless a
/// test sets them.
pub use bmw_netcheck::probe::proxy::VARS as PROXY_VARS;

/// Endpoint stages only: device probes (storage, proxy, ...) depend on the machine.
pub fn engine_probes() -> String {
    let stages: Vec<&str> = bmw_netcheck::probe::registry::endpoint_stages()
        .map(|p| p.name())
        .collect();
    stages.join(",")
}

/// A state directory for this test process, so default-history runs stay out of the user's.
fn scratch_state_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("netcheck-state")
            .tempdir()
            .expect("temporary state directory")
    })
    .path()
}

/// A command line for the binary, built up and then run.
#[derive(Debug, Clone, Default)]
pub struct Netcheck {
    profile: Option<OsString>,
    resolver: Option<String>,
    ca_file: Option<OsString>,
    format: Option<String>,
    timeout: Option<String>,
    deadline: Option<String>,
    only: Option<String>,
    skip: Option<String>,
    samples: Option<u32>,
    color: Option<String>,
    no_history: bool,
    extra: Vec<OsString>,
    env: Vec<(String, Option<String>)>,
}

impl Netcheck {
    /// No arguments at all; add them with [`Netcheck::arg`].
    pub fn bare() -> Netcheck {
        Netcheck::default()
    }

    /// An engine run of `profile`: JSON, endpoint stages only, `--timeout 1s`, 3 latency
    /// samples, no history.
    pub fn engine(profile: &ProfileFile) -> Netcheck {
        Netcheck {
            profile: Some(profile.path().into()),
            format: Some("json".into()),
            timeout: Some("1s".into()),
            only: Some(engine_probes()),
            samples: Some(3),
            no_history: true,
            ..Netcheck::default()
        }
    }

    pub fn resolver(mut self, dns: &DnsServer) -> Netcheck {
        self.resolver = Some(dns.addr().to_string());
        self
    }

    pub fn resolver_addr(mut self, addr: &str) -> Netcheck {
        self.resolver = Some(addr.into());
        self
    }

    pub fn ca_file(mut self, pki: &Pki) -> Netcheck {
        self.ca_file = Some(pki.ca_file().into());
        self
    }

    pub fn ca_path(mut self, path: &Path) -> Netcheck {
        self.ca_file = Some(path.into());
        self
    }

    pub fn format(mut self, f: &str) -> Netcheck {
        self.format = Some(f.into());
        self
    }

    pub fn timeout(mut self, t: &str) -> Netcheck {
        self.timeout = Some(t.into());
        self
    }

    pub fn deadline(mut self, d: &str) -> Netcheck {
        self.deadline = Some(d.into());
        self
    }

    /// `--only`; `""` drops the flag.
    pub fn only(mut self, probes: &str) -> Netcheck {
        self.only = (!probes.is_empty()).then(|| probes.into());
        self
    }

    pub fn skip(mut self, probes: &str) -> Netcheck {
        self.skip = Some(probes.into());
        self
    }

    pub fn samples(mut self, n: u32) -> Netcheck {
        self.samples = Some(n);
        self
    }

    pub fn color(mut self, when: &str) -> Netcheck {
        self.color = Some(when.into());
        self
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Netcheck {
        self.extra.push(a.into());
        self
    }

    /// Sets a variable for the child. `NO_COLOR` and the proxy variables are removed unless set
    /// here, so the tests do not depend on the environment they run in.
    pub fn env(mut self, key: &str, value: &str) -> Netcheck {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut flag = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                a.push(name.into());
                a.push(v.into());
            }
        };
        flag("--format", &self.format);
        flag("--resolver", &self.resolver);
        flag("--timeout", &self.timeout);
        flag("--deadline", &self.deadline);
        flag("--only", &self.only);
        flag("--skip", &self.skip);
        flag("--samples", &self.samples.map(|n| n.to_string()));
        flag("--color", &self.color);
        if let Some(p) = &self.profile {
            a.push("--profile".into());
            a.push(p.clone());
        }
        if let Some(p) = &self.ca_file {
            a.push("--ca-file".into());
            a.push(p.clone());
        }
        if self.no_history {
            a.push("--no-history".into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// The command, ready to spawn: arguments and environment set, stdio not.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("bmw-netcheck"));
        cmd.args(self.args());
        cmd.env_remove("NO_COLOR");
        // Runs that keep a history must not write into the real user's state directory.
        cmd.env("XDG_STATE_HOME", scratch_state_dir());
        // A proxy in the test's environment would send the http stage off the machine.
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        // The default control resolver is a public one: a test names its own (`--control`).
        cmd.env("BMW_NETCHECK_CONTROL", "off");
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// Runs to completion (killed after a minute: a hang is a failure), capturing everything.
    pub fn run(&self) -> Outcome {
        run_command(self.command(), self.args()).validated()
    }

    /// Runs with stdout on a pipe whose reading end is already closed (`| head -0`).
    pub fn run_into_closed_pipe(&self) -> Outcome {
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn bmw-netcheck");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for bmw-netcheck");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
            args: self.args(),
        }
    }

    /// Runs with stdout on a pseudo-terminal, as when a person runs it; `stdout` holds what
    /// the terminal received.
    pub fn run_on_tty(&self) -> Outcome {
        self.run_with_tty(true)
    }

    /// Runs with stderr on a pseudo-terminal and stdout piped: `stderr` of the outcome is what
    /// the terminal received (progress output).
    pub fn run_with_stderr_on_tty(&self) -> Outcome {
        self.run_with_tty(false)
    }

    /// One of stdout (`true`) or stderr on a fresh pseudo-terminal; the other piped.
    fn run_with_tty(&self, tty_is_stdout: bool) -> Outcome {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a pseudo-terminal");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("pty name is UTF-8"))
            .expect("open the terminal's slave side");
        let mut cmd = self.command();
        cmd.stdin(Stdio::null());
        if tty_is_stdout {
            cmd.stdout(Stdio::from(slave)).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::from(slave));
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("spawn bmw-netcheck");
        // Our copies of the slave side must go, or reading the master never ends.
        drop(cmd);
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut master = std::fs::File::from(master);
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            // Linux answers EIO once the last slave descriptor is closed: that is the end.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            all
        });
        let out = child.wait_with_output().expect("wait for bmw-netcheck");
        let tty = String::from_utf8_lossy(&reader.join().expect("pty reader")).into_owned();
        let (stdout, stderr) = if tty_is_stdout {
            (tty, String::from_utf8_lossy(&out.stderr).into_owned())
        } else {
            (String::from_utf8_lossy(&out.stdout).into_owned(), tty)
        };
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr,
            elapsed: started.elapsed(),
            args: self.args(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub args: Vec<OsString>,
}

impl Outcome {
    /// Checks JSON output against the committed JSON Schema (every test that runs the binary
    /// with `--format json` thereby checks the schema too).
    pub fn validated(self) -> Outcome {
        super::schema::validate_outcome(&self.args, &self.stdout);
        self
    }

    /// The JSON report on stdout; panics with the whole outcome when it is not JSON.
    /// Every report a test reads passes here, so no summary in the suite may carry a library's
    /// debug text.
    pub fn report(&self) -> Value {
        let report: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not a JSON report ({e})\n{}", self.describe()));
        for c in report["checks"].as_array().into_iter().flatten() {
            let s = c["summary"].as_str().unwrap_or("");
            assert!(!looks_like_debug(s), "a summary shows debug text: {s}\n{c}");
        }
        report
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "args: {:?}\nexit: {}\nelapsed: {:?}\nstderr:\n{}\nstdout:\n{}",
            self.args, self.code, self.elapsed, self.stderr, self.stdout
        )
    }

    /// Asserts the exit code, showing the run when it differs.
    pub fn assert_exit(&self, code: i32) -> &Outcome {
        assert_eq!(self.code, code, "exit code\n{}", self.describe());
        self
    }
}

/// The one detector of a library's debug text, the library's own.
pub use bmw_netcheck::sanitize::looks_like_debug;

#[test]
fn the_debug_text_detector_sees_library_text() {
    assert!(!looks_like_debug(
        "the service's rate limit is reached (CarData CU-429: API rate limit reached)"
    ));
    assert!(!looks_like_debug(
        "a block page of Cisco Umbrella (OpenDNS)"
    ));
    assert!(looks_like_debug("handshake failed (BadSignature)"));
    assert!(looks_like_debug("Other(OtherError(CaUsedAsEndEntity))"));
    assert!(looks_like_debug(
        "UnsupportedSignatureAlgorithmContext { signature_algorithm_id: [6] }"
    ));
    assert!(!looks_like_debug("interrupted (Ctrl-C) before it finished"));
    assert!(!looks_like_debug(
        "offers only TLS 1.0 (SSL 3.0, TLS 1.0 or 1.1)"
    ));
}

/// Runs a prepared command of the binary (in a network namespace, say) to completion, killed
/// after a minute (a hang is a failure), capturing everything; `args` are what the outcome's
/// description shows.
pub fn run_command(cmd: Command, args: Vec<OsString>) -> Outcome {
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(HANG);
    let started = Instant::now();
    let out = cmd.output().expect("run bmw-netcheck");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
        args,
    }
}

/// The device check of `probe` (one without a target), or null.
pub fn device_check(report: &Value, probe: &str) -> Value {
    report["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["probe"] == probe))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The report's suspect ids, in rank order.
pub fn suspect_ids(report: &Value) -> Vec<String> {
    report["suspects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The id of the suspect ranked first ("" when there is none).
pub fn top_suspect(report: &Value) -> String {
    suspect_ids(report).into_iter().next().unwrap_or_default()
}

/// The proxy-path check of an endpoint (the one whose `data.path` is `proxy`).
pub fn via_proxy<'a>(report: &'a Value, target: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|c| c["target"] == target && c["data"]["path"] == "proxy")
        })
        .unwrap_or_else(|| panic!("no proxy-path check for {target}:\n{:#}", report["checks"]))
}

/// The checks of one endpoint, in report order.
pub fn checks_of<'a>(report: &'a Value, target: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .filter(|c| c["target"] == target)
        .collect()
}

/// The check of `probe` for `target`; panics, showing the report's checks, when there is none.
pub fn stage<'a>(report: &'a Value, target: &str, probe: &str) -> &'a Value {
    checks_of(report, target)
        .into_iter()
        .find(|c| c["probe"] == probe)
        .unwrap_or_else(|| panic!("no {probe} check for {target} in\n{:#}", report["checks"]))
}

pub fn code<'a>(report: &'a Value, target: &str, probe: &str) -> &'a str {
    stage(report, target, probe)["code"]
        .as_str()
        .expect("code is a string")
}

pub fn status<'a>(report: &'a Value, target: &str, probe: &str) -> &'a str {
    stage(report, target, probe)["status"]
        .as_str()
        .expect("status is a string")
}

/// Asserts the endpoint's checks are exactly these `(status, code)` pairs, in this order (the
/// probe is the code's prefix).
pub fn assert_stages(report: &Value, target: &str, expected: &[(&str, &str)]) {
    let got: Vec<(String, String, String)> = checks_of(report, target)
        .iter()
        .map(|c| {
            (
                c["probe"].as_str().unwrap_or("?").to_owned(),
                c["status"].as_str().unwrap_or("?").to_owned(),
                c["code"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(status, code)| {
            let probe = code.split('.').next().unwrap_or("?");
            (probe.to_owned(), (*status).to_owned(), (*code).to_owned())
        })
        .collect();
    assert_eq!(
        got, want,
        "stages of {target}\nchecks:\n{:#}",
        report["checks"]
    );
}

/// The stages of a healthy HTTPS endpoint.
pub const ALL_OK: [(&str, &str); 5] = [
    ("pass", "dns.ok"),
    ("pass", "tcp.ok"),
    ("pass", "tls.ok"),
    ("pass", "http.ok"),
    ("pass", "latency.ok"),
];
