//! A real nginx serving several hosts at once — plain HTTP on port 80 and HTTPS on 443 on each
//! address — started through a prepared command (e.g. `ip netns exec NS nginx`), so it can run
//! inside a test's network namespace. One process (`master_process off`), killed when its
//! [`Daemon`] drops. The caller waits for it from where the addresses are reachable.

use super::daemon::Daemon;
use super::nginx::nginx_binary;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where nginx is, or why a test cannot run here.
pub fn find() -> Result<PathBuf, String> {
    nginx_binary()
        .ok_or_else(|| "nginx is not installed (Debian: apt-get install nginx-light)".into())
}

/// Starts nginx with `cmd` (the program already set to [`find`]'s path, e.g. through
/// `ip netns exec`): every address in `addrs` answers `200 ok` on port 80 (plain HTTP) and on
/// port 443 (TLS with `chain` and `key`).
pub fn spawn(mut cmd: Command, addrs: &[&str], chain: &Path, key: &Path) -> Daemon {
    let dir = Daemon::scratch("netcheck-nginxhosts");
    let d = dir.path().display().to_string();
    let plain: String = addrs.iter().map(|a| format!("listen {a}:80; ")).collect();
    let tls: String = addrs
        .iter()
        .map(|a| format!("listen {a}:443 ssl; "))
        .collect();
    let conf = format!(
        "master_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
           fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
           server {{ {plain} server_name _; location / {{ return 200 \"ok\\n\"; }} }}\n\
           server {{ {tls} server_name _;\n    ssl_certificate {};\n    ssl_certificate_key {};\n\
             location / {{ return 200 \"ok\\n\"; }} }}\n}}\n",
        chain.display(),
        key.display()
    );
    std::fs::create_dir_all(dir.path().join("tmp")).expect("nginx temp dir");
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"]);
    Daemon::spawn_command("nginx", cmd, dir)
}
