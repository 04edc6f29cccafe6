//! Bad input never panics and never probes: every case below exits 3 with exactly one line on
//! stderr naming the problem, and nothing on stdout (a script reading stdout must not mistake an
//! error for a report).

use assert_cmd::Command;
use std::ffi::OsString;
use std::path::Path;

struct Case {
    name: &'static str,
    args: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
    /// A word the one-line message must contain.
    says: &'static str,
}

fn case(name: &'static str, args: &[&str], says: &'static str) -> Case {
    Case {
        name,
        args: args.iter().map(OsString::from).collect(),
        env: Vec::new(),
        says,
    }
}

fn profile_case(dir: &Path, name: &'static str, body: &[u8], says: &'static str) -> Case {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).expect("write test profile");
    Case {
        name,
        args: vec!["--profile".into(), path.into_os_string()],
        env: Vec::new(),
        says,
    }
}

const EP: &str = "[[endpoint]]\nname = \"a\"\nhost = \"a.netcheck.lan\"\n";

fn cases(dir: &Path) -> Vec<Case> {
    let mut v = vec![
        profile_case(dir, "malformed", b"[[endpoint]\nname = \"a\"\n", "profile"),
        profile_case(
            dir,
            "wrong-type",
            b"[[endpoint]]\nname = \"a\"\nhost = \"h.lan\"\nport = \"443\"\n",
            "invalid type",
        ),
        profile_case(
            dir,
            "unknown-key",
            format!("{EP}colour = \"blue\"\n").as_bytes(),
            "unknown field",
        ),
        profile_case(
            dir,
            "unknown-table",
            format!("{EP}[extras]\nx = 1\n").as_bytes(),
            "unknown field",
        ),
        profile_case(
            dir,
            "duplicate",
            format!("{EP}{EP}").as_bytes(),
            "duplicate",
        ),
        profile_case(dir, "no-endpoints", b"name = \"x\"\n", "no [[endpoint]]"),
        profile_case(dir, "empty-file", b"", "no [[endpoint]]"),
        profile_case(
            dir,
            "bad-host",
            b"[[endpoint]]\nname = \"a\"\nhost = \"not a host\"\n",
            "host",
        ),
        profile_case(dir, "port-0", format!("{EP}port = 0\n").as_bytes(), "port"),
        profile_case(
            dir,
            "port-65536",
            format!("{EP}port = 65536\n").as_bytes(),
            "65536",
        ),
        profile_case(
            dir,
            "bad-name",
            b"[[endpoint]]\nname = \"a/b\"\nhost = \"h.lan\"\n",
            "name",
        ),
        profile_case(
            dir,
            "bad-path",
            format!("{EP}path = \"no-slash\"\n").as_bytes(),
            "path",
        ),
        profile_case(
            dir,
            "empty-expect",
            format!("{EP}expect_status = []\n").as_bytes(),
            "expect_status",
        ),
        profile_case(
            dir,
            "bad-expect",
            format!("{EP}expect_status = [999]\n").as_bytes(),
            "expect_status",
        ),
        profile_case(
            dir,
            "bad-role",
            format!("{EP}role = \"boss\"\n").as_bytes(),
            "role",
        ),
        profile_case(
            dir,
            "https-captive",
            format!("{EP}[captive]\nurl = \"https://c.lan/\"\n").as_bytes(),
            "plain http",
        ),
        profile_case(
            dir,
            "bad-threshold",
            format!("{EP}[thresholds]\nlatency_warn_ms = -5\n").as_bytes(),
            "latency_warn_ms",
        ),
        profile_case(
            dir,
            "binary-garbage",
            &[0x00, 0xff, 0xfe, 0x13, 0x37, 0x80, 0x00, 0x9f],
            "UTF-8",
        ),
        profile_case(
            dir,
            "ten-megabytes",
            &vec![b'#'; 10 * 1024 * 1024],
            "at most",
        ),
        case(
            "missing-profile",
            &["--profile", "/nonexistent/netcheck/profile.toml"],
            "does not exist",
        ),
        case("directory-profile", &["--profile", "/"], "directory"),
        case("bad-resolver", &["--resolver", "dns.google"], "--resolver"),
        case(
            "resolver-port",
            &["--resolver", "1.2.3.4:99999"],
            "--resolver",
        ),
        case("bad-timeout", &["--timeout", "banana"], "--timeout"),
        case("zero-timeout", &["--timeout", "0s"], "--timeout"),
        case("negative-deadline", &["--deadline", "-1s"], "--deadline"),
        case("samples-0", &["--samples", "0"], "--samples"),
        case("samples-huge", &["--samples", "100000000"], "--samples"),
        case("unknown-flag", &["--frobnicate"], "--frobnicate"),
        case("unknown-format", &["--format", "xml"], "--format"),
        case("unknown-probe", &["--only", "dns,teleport"], "teleport"),
        case("unknown-region", &["--region", "mars"], "mars"),
        case("bad-color", &["--color", "rainbow"], "--color"),
        case(
            "unwritable-output",
            &["--output", "/nonexistent/netcheck/out.json"],
            "--output",
        ),
        case("output-is-directory", &["--output", "/tmp"], "--output"),
        case(
            "missing-ca-file",
            &["--ca-file", "/nonexistent/ca.pem"],
            "--ca-file",
        ),
        case(
            "missing-storage-path",
            &["--storage-path", "/nonexistent/netcheck"],
            "--storage-path",
        ),
        case("explain-unknown", &["explain", "gremlins"], "gremlins"),
        case("history-last-0", &["history", "--last", "0"], "--last"),
    ];
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    v.push(Case {
        name: "ca-file-not-pem",
        args: vec!["--ca-file".into(), not_pem.into_os_string()],
        env: Vec::new(),
        says: "--ca-file",
    });
    let mut garbage_proxy = case("proxy-garbage", &[], "HTTPS_PROXY");
    garbage_proxy
        .env
        .push(("HTTPS_PROXY", OsString::from("::::not a url")));
    v.push(garbage_proxy);
    let mut secret_proxy = case("proxy-garbage-secret", &[], "ALL_PROXY");
    secret_proxy.env.push((
        "ALL_PROXY",
        OsString::from("gopher://agent:hunter2@proxy.lan"),
    ));
    v.push(secret_proxy);
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        v.push(Case {
            name: "non-utf8-argument",
            args: vec![
                "--region".into(),
                OsString::from_vec(vec![0x66, 0x6f, 0xff, 0x6f]),
            ],
            env: Vec::new(),
            says: "UTF-8",
        });
        let mut env_case = case("non-utf8-proxy-env", &[], "UTF-8");
        env_case.env.push((
            "HTTPS_PROXY",
            OsString::from_vec(vec![b'h', 0xff, b':', b'1']),
        ));
        v.push(env_case);
    }
    v
}

#[test]
fn every_bad_input_exits_3_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let all = cases(dir.path());
    let mut failures = Vec::new();
    for c in &all {
        let mut cmd = Command::cargo_bin("bmw-netcheck").expect("binary");
        cmd.args(&c.args)
            .args(["--no-history", "--deadline", "2s", "--timeout", "500ms"])
            .env("BMW_NETCHECK_CONTROL", "off")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy");
        // `explain` and `history` take no run options: give them only their own arguments.
        if matches!(
            c.args.first().and_then(|a| a.to_str()),
            Some("explain" | "history")
        ) {
            cmd = Command::cargo_bin("bmw-netcheck").expect("binary");
            cmd.args(&c.args);
        }
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let out = cmd
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut problems = Vec::new();
        if out.status.code() != Some(3) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        if !out.stdout.is_empty() {
            problems.push(format!(
                "stdout not empty: {:?}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        if lines.len() != 1 {
            problems.push(format!("{} stderr lines", lines.len()));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panic".into());
        }
        if !stderr.to_lowercase().contains(&c.says.to_lowercase()) {
            problems.push(format!("message does not mention {:?}", c.says));
        }
        if stderr.contains("hunter2") {
            problems.push("leaked a secret".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} — stderr: {}",
                c.name,
                problems.join(", "),
                stderr.trim()
            ));
        }
    }
    crate::support::say(&format!(
        "bad input: {} cases tried, {} passed, {} failed; 0 panics",
        all.len(),
        all.len() - failures.len(),
        failures.len()
    ));
    assert!(
        failures.is_empty(),
        "bad inputs mishandled:\n{}",
        failures.join("\n")
    );
}

/// Root reads any file, so the unreadable-profile case runs the binary as `nobody` when the
/// tests run as root (as in CI), and as the current user otherwise.
#[test]
fn an_unreadable_profile_exits_3() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let path = dir.path().join("secret.toml");
    std::fs::write(
        &path,
        "[[endpoint]]\nname = \"a\"\nhost = \"a.netcheck.lan\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let bin = assert_cmd::cargo::cargo_bin!("bmw-netcheck");
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let mut cmd = if is_root {
        if !Path::new("/usr/bin/setpriv").exists() {
            crate::support::skip(
                "bad_input: running as root and setpriv is not available to drop privileges",
            );
            return;
        }
        let mut c = std::process::Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    let out = cmd
        .env("BMW_NETCHECK_CONTROL", "off")
        .arg("--profile")
        .arg(&path)
        .args(["--no-history", "--only", "dns"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied") && stderr.contains("setpriv")
        || stderr.contains("No such file")
    {
        crate::support::skip(&format!(
            "bad_input: cannot run the binary as nobody here: {stderr}"
        ));
        return;
    }
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
}
