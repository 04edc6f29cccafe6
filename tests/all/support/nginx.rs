//! A real nginx (Debian's, with its OpenSSL) started by the test with a generated configuration
//! on a loopback port in a temporary directory, stopped when dropped. One process
//! (`master_process off`), so stopping it leaves no worker behind.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Where nginx is, if it is installed.
pub fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Writes the configuration of a test's nginx to `dir/nginx.conf`: one process, its pid, logs
/// and temporary files in `dir`, `access_log` (`off` or a path), and `http` (types, servers)
/// inside the `http` block. Returns `program` (nginx itself, or a launcher such as
/// `ip netns exec NS`) with the arguments that run nginx on it in the foreground.
pub fn configured(mut program: Command, dir: &Path, access_log: &str, http: &str) -> Command {
    let d = dir.display();
    let conf = format!(
        "master_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {access_log};\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
           fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n{http}}}\n"
    );
    std::fs::create_dir_all(dir.join("tmp")).expect("nginx temp dir");
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    program
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"]);
    program
}

pub struct Nginx {
    child: Child,
    dir: TempDir,
    ip: String,
    port: u16,
}

/// A free loopback port (bound and released: nginx binds it right after).
pub use super::daemon::free_port;

impl Nginx {
    /// Serves TLS on a loopback port with `cert` (chain PEM) and `key`; `server_extra` is added
    /// to the server block (ssl_protocols, ssl_ciphers, ...), `location` is the body of
    /// `location /`.
    pub fn start(cert: &Path, key: &Path, server_extra: &str, location: &str) -> Nginx {
        Nginx::start_at(
            ("127.0.0.1", free_port()),
            cert,
            key,
            server_extra,
            location,
        )
    }

    /// Like [`Nginx::start`], on one loopback address and port only (a block page's server,
    /// which serves its own ports and no other).
    pub fn start_at(
        (ip, port): (&str, u16),
        cert: &Path,
        key: &Path,
        server_extra: &str,
        location: &str,
    ) -> Nginx {
        let bin = nginx_binary().expect("nginx is installed");
        let dir = tempfile::Builder::new()
            .prefix("netcheck-nginx")
            .tempdir()
            .expect("temporary directory");
        let server = format!(
            "  server {{\n    listen {ip}:{port} ssl;\n    server_name _;\n\
                 ssl_certificate {};\n    ssl_certificate_key {};\n    {server_extra}\n\
                 location / {{ {location} }}\n  }}\n",
            cert.display(),
            key.display()
        );
        let child = configured(Command::new(bin), dir.path(), "off", &server)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let ip = ip.to_owned();
        let mut n = Nginx {
            child,
            dir,
            ip,
            port,
        };
        n.wait_ready();
        n
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect((self.ip.as_str(), self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nginx did not listen within 10 s:\n{}", self.log());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
