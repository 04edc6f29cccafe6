//! The real Prometheus and Pushgateway (Debian's `prometheus` and `prometheus-pushgateway`),
//! started on loopback with generated configurations in a temporary directory, and Prometheus'
//! HTTP query API to read what arrived.
//!
//! Each server gets a free port, its own storage directory and short intervals, and is killed
//! when its handle drops. Where a program is not installed, `start` says so and returns `None`:
//! the caller skips with that reason.

use super::pki::ServerIdentity;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to become ready.
const READY: Duration = Duration::from_secs(30);

/// Is `program` on the PATH? If not, says why the caller skips, through `support::skip`.
pub fn have(program: &str, why: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        super::skip(&format!(
            "{why}: `{program}` is not installed (Debian: apt-get install prometheus prometheus-pushgateway; .ci/run does)"
        ));
    }
    found
}

/// A free loopback port (bound and released; the server binds it a moment later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `url` (loopback only); the status and body, or why it failed.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<(u16, String), String> {
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "tests talk to loopback only: {url}"
    );
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    super::runtime().block_on(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = client.get(&url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, body))
    })
}

/// Waits until `url` answers 200.
fn wait_ready(url: &str, child: &mut Child, what: &str, log: &Path) {
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = get(url, &[]) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < READY,
            "{what} not ready within {READY:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until something accepts connections on the loopback port (for servers that want TLS
/// and credentials even on their readiness endpoint).
fn wait_listening(port: u16, child: &mut Child, what: &str, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before it listened:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < READY,
            "{what} not listening within {READY:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"))
}

/// A Pushgateway on a loopback port.
pub struct Pushgateway {
    _child: Killed,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    /// `None` (with the reason printed) where `prometheus-pushgateway` is not installed.
    pub fn start(why: &str) -> Option<Pushgateway> {
        Pushgateway::start_secured(why, None)
    }

    /// With `secured` = (identity, basic-auth users as `name: bcrypt-hash` lines), the gateway
    /// serves HTTPS with that certificate and wants one of those users (its `--web.config.file`).
    pub fn start_secured(
        why: &str,
        secured: Option<(&ServerIdentity, &str)>,
    ) -> Option<Pushgateway> {
        if !have("prometheus-pushgateway", why) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let log = dir.path().join("pushgateway.log");
        let mut cmd = Command::new("prometheus-pushgateway");
        // Debian's build persists to /var/lib/prometheus by default: keep the state in the
        // test's directory, so no run sees another's groups or leaves any behind.
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("pushgateway.data").display()
            ))
            .arg("--log.level=warn");
        if let Some((identity, users)) = secured {
            let cert = dir.path().join("gateway.crt");
            let key = dir.path().join("gateway.key");
            let chain: Vec<pem::Pem> = identity
                .chain
                .iter()
                .map(|c| pem::Pem::new("CERTIFICATE", c.to_vec()))
                .collect();
            std::fs::write(&cert, pem::encode_many(&chain)).expect("write the certificate");
            std::fs::write(
                &key,
                pem::encode(&pem::Pem::new(
                    "PRIVATE KEY",
                    identity.key.secret_der().to_vec(),
                )),
            )
            .expect("write the key");
            let web = dir.path().join("web.yml");
            let users: String = users.lines().map(|l| format!("  {l}\n")).collect();
            std::fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n{users}",
                    cert.display(),
                    key.display()
                ),
            )
            .expect("write the web configuration");
            cmd.arg(format!("--web.config.file={}", web.display()));
        }
        let mut child = spawn_logged(&mut cmd, &log);
        if secured.is_some() {
            wait_listening(port, &mut child, "prometheus-pushgateway", &log);
        } else {
            wait_ready(
                &format!("http://127.0.0.1:{port}/-/ready"),
                &mut child,
                "prometheus-pushgateway",
                &log,
            );
        }
        Some(Pushgateway {
            _child: Killed(child),
            port,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL `--push` takes.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A Prometheus server on a loopback port, scraping what its `scrape_configs` name.
pub struct Prometheus {
    _child: Killed,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with a 1 s evaluation interval and these scrape jobs (YAML list items,
    /// indented by two spaces). `None` (reason printed) where `prometheus` is not installed.
    pub fn start(why: &str, scrape_configs: &str) -> Option<Prometheus> {
        if !have("prometheus", why) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}"
            ),
        )
        .expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let mut child = spawn_logged(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn"),
            &log,
        );
        wait_ready(
            &format!("http://127.0.0.1:{port}/-/ready"),
            &mut child,
            "prometheus",
            &log,
        );
        Some(Prometheus {
            _child: Killed(child),
            port,
            dir,
        })
    }

    /// The generated configuration, for failure messages.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.yml")).unwrap_or_default()
    }

    /// An instant query: the `data.result` vector, or an error naming what Prometheus said.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            encode(expr)
        );
        let (status, body) = get(&url, &[])?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("HTTP {status}: {body}"));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Polls `expr` until `done` accepts its result (printed to the test log), or `within` passes.
    pub fn wait_for(
        &self,
        expr: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let got = self
                .query(expr)
                .unwrap_or_else(|e| panic!("query {expr}: {e}"));
            if done(&got) {
                let shown: Vec<String> = got.iter().map(compact).collect();
                super::say(&format!("prometheus: {expr} → [{}]", shown.join(", ")));
                return got;
            }
            assert!(
                started.elapsed() < within,
                "{expr} did not reach the expected result within {within:?}; last: {got:?}\nconfig:\n{}",
                self.config()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A sample as `{label="value",...} value`, without `__name__` and `job`, for the test log.
pub fn compact(sample: &Value) -> String {
    let labels: Vec<String> = sample["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "__name__" && *k != "job")
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .unwrap_or_default();
    format!("{{{}}} {}", labels.join(","), value(sample))
}

/// A sample's value as a number.
pub fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A sample's label.
pub fn label<'a>(sample: &'a Value, name: &str) -> &'a str {
    sample["metric"][name].as_str().unwrap_or("")
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
