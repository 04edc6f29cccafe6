//! Hostile input, end to end: what servers, certificates, the environment and the local file
//! system hand the tool, crafted the way an attacker (or a careless setup) would.
//!
//! Six classes, each run against the real binary:
//! 1. injection — certificates, HTTP answers and local strings full of escape sequences, bidi
//!    overrides, markup and 30 KB names reach every format as plain, visible text;
//! 2. secrets — proxy passwords with unencoded special characters, and URL secrets beyond the
//!    query, never appear in any format, the history, or the exit-3 message;
//! 3. files — symbolic links, FIFOs, device nodes, a full tmpfs: nothing is written through a
//!    link, nothing blocks, nothing is replaced that should not be, nothing is torn;
//! 4. bounded input — `/dev/zero` and FIFOs as profile or CA file are refused at once; an append
//!    to a large history costs O(1) memory;
//! 5. own limits — a descriptor limit far below the endpoint count is the tool's problem, never
//!    network evidence;
//! 6. misreadings — statuses outside 100–599, a flood of `100 Continue`, a lying `Date`, an
//!    unbalanced `[::1`.
//!
//! Every test prints `hostile: <class>: N cases tried, N passed` to the test log. Root-only
//! cases (device nodes, tmpfs, owners) skip through `support::skip` elsewhere.

use crate::support::{
    EndpointSpec, HttpBehaviour, HttpReply, HttpsServer, Netcheck, Outcome, Pki, ProfileFile,
    RawMode, RawTcpServer, ServerIdentity, checks_of, closed_port, say,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, DnValue, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const FORMATS: [&str; 5] = ["human", "json", "markdown", "prometheus", "nagios"];

/// The text an attacker would put anywhere the tool prints: screen clear and cursor home, a fake
/// pass mark after a carriage return, a window title (OSC 0), a terminal hyperlink (OSC 8), a C1
/// CSI, backspace, bell, a bidi override, HTML, a Markdown link, bare URLs and an entity.
const HOSTILE: &str = "\u{1b}[2J\u{1b}[1;1H\u{2713} PASS\r\u{1b}]0;pwned\u{7}\u{1b}]8;;https://evil.example/\u{7}click\u{1b}]8;;\u{7}\u{9b}31m\u{8}\u{202e}gnp.exe <strong>bold</strong> [x](https://evil.example/a) https://evil.example/b www.evil.example &lt;i&gt; _em_\n# heading";

use bmw_netcheck::sanitize::is_hazard;

/// Counts cases for the log line of a class.
struct Tally {
    class: &'static str,
    tried: usize,
}

impl Tally {
    fn new(class: &'static str) -> Tally {
        Tally { class, tried: 0 }
    }
    fn case(&mut self) {
        self.tried += 1;
    }
    /// Reached only when every assertion held.
    fn done(self) {
        say(&format!(
            "hostile: {}: {} cases tried, {} passed",
            self.class, self.tried, self.tried
        ));
    }
}

/// What a format's output must be, whatever was fed in: no control or bidi character but the
/// format's own line feeds; JSON strings free of them too once decoded; Markdown with no HTML,
/// no link or image, and no bare URL a renderer would turn into a link.
pub fn assert_clean(format: &str, out: &Outcome) {
    let text = &out.stdout;
    if let Some((i, c)) = text
        .char_indices()
        .find(|(_, c)| *c != '\n' && is_hazard(*c))
    {
        let at = text[..i].chars().rev().take(60).collect::<String>();
        panic!(
            "{format}: raw {:?} after …{:?}\n{}",
            c,
            at.chars().rev().collect::<String>(),
            out.describe()
        );
    }
    assert!(
        !out.stderr.chars().any(|c| c != '\n' && is_hazard(c)),
        "{format}: stderr carries a control character\n{}",
        out.describe()
    );
    match format {
        "json" => {
            fn walk(v: &Value, path: &str) {
                match v {
                    Value::String(s) => assert!(
                        !s.chars().any(is_hazard),
                        "json string at {path} holds a control character: {s:?}"
                    ),
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
                    Value::Object(m) => m.iter().for_each(|(k, x)| {
                        assert!(!k.chars().any(is_hazard), "json key {k:?}");
                        walk(x, &format!("{path}.{k}"))
                    }),
                    _ => {}
                }
            }
            walk(&out.report(), "$");
        }
        "markdown" => assert_markdown_inert(text),
        "prometheus" => assert_promtool_accepts(text),
        _ => {}
    }
}

/// `promtool check metrics` parses the exposition text (where promtool is installed: CI's
/// `.ci/run` installs it): escaped label values keep every sample parseable.
fn assert_promtool_accepts(text: &str) {
    use std::io::Write;
    let Some(promtool) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    }) else {
        crate::support::skip(
            "hostile: promtool is not installed (Debian package `prometheus`), the exposition text is not checked",
        );
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Markdown renders no HTML element but the report's own fold, no link or image, and
/// carries no bare `scheme://` or `www.` that GitHub or Jira would make a link.
pub fn assert_markdown_inert(md: &str) {
    use pulldown_cmark::{Event, Parser, Tag};
    for event in Parser::new(md) {
        match &event {
            // The report's own fold of every check, and nothing else.
            Event::Html(h) if bmw_netcheck::report::markdown::is_own_fold(h) => {}
            Event::Html(h) | Event::InlineHtml(h) => panic!("HTML {h:?} rendered from\n{md}"),
            Event::Start(Tag::Link { dest_url, .. }) => {
                panic!("a link to {dest_url:?} rendered from\n{md}")
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                panic!("an image {dest_url:?} rendered from\n{md}")
            }
            Event::Text(t) => {
                // Text after parsing: an escaped `https\://` reads `https://` here, so look at
                // the source instead, below.
                let _ = t;
            }
            _ => {}
        }
    }
    for (i, _) in md.match_indices("://") {
        assert!(
            md[..i].ends_with('\\') || in_code_span(md, i),
            "bare URL at …{}… would be autolinked\n{md}",
            &md[i.saturating_sub(20)..(i + 20).min(md.len())]
        );
    }
    for (i, _) in md.match_indices("www.") {
        assert!(
            in_code_span(md, i),
            "bare www. name would be autolinked\n{md}"
        );
    }
}

/// Whether byte `i` of `md` sits inside a backtick code span on its line (autolinks do not
/// happen there).
fn in_code_span(md: &str, i: usize) -> bool {
    let line_start = md[..i].rfind('\n').map_or(0, |n| n + 1);
    let before = &md[line_start..i];
    let ticks = before.matches('`').count() - before.matches("\\`").count();
    ticks % 2 == 1
}

/// A CA whose name is `ca_cn`, and a leaf for 127.0.0.1 whose subject is `leaf_cn`: the PEM of
/// the CA (for `--ca-file`) and the server's identity.
fn hostile_chain(ca_cn: &str, leaf_cn: &str) -> (String, ServerIdentity) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, DnValue::Utf8String(ca_cn.to_owned()));
    ca.distinguished_name.push(
        DnType::OrganizationName,
        DnValue::Utf8String(ca_cn.to_owned()),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).expect("self-sign the hostile CA");
    let key = KeyPair::generate().expect("leaf key");
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf for 127.0.0.1");
    leaf.distinguished_name
        .push(DnType::CommonName, DnValue::Utf8String(leaf_cn.to_owned()));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).expect("sign the leaf");
    let identity = ServerIdentity {
        chain: vec![
            cert.der().clone(),
            CertificateDer::from(issuer.der().to_vec()),
        ],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    };
    (issuer.pem(), identity)
}

fn endpoint_profile(port: u16) -> ProfileFile {
    ProfileFile::new(&[EndpointSpec::new("api", "127.0.0.1", port)])
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("netcheck-hostile")
        .tempdir()
        .expect("temporary directory")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

// ---- 1. injection -------------------------------------------------------------------------------

#[test]
fn injection_certificate_names_reach_every_format_as_plain_text() {
    let mut tally = Tally::new("injection (certificates)");
    let _quiet = crate::support::quiet_machine();
    let huge = "A".repeat(30_000);
    let (ca_pem, identity) = hostile_chain(HOSTILE, &format!("{HOSTILE}{huge}"));
    let server = HttpsServer::start(&identity, HttpBehaviour::status(200));
    let profile = endpoint_profile(server.port());
    let ca = profile.dir().join("hostile-ca.pem");
    std::fs::write(&ca, ca_pem).expect("write the CA file");
    // Trusted (the names appear in tls.ok) and untrusted (they appear in tls.untrusted).
    for trusted in [true, false] {
        for format in FORMATS {
            tally.case();
            let mut run = Netcheck::engine(&profile).format(format).color("never");
            if trusted {
                run = run.ca_path(&ca);
            }
            let out = run.run();
            assert!(matches!(out.code, 0..=2), "{}", out.describe());
            assert_clean(format, &out);
            assert!(
                !out.stdout.contains(&"A".repeat(300)),
                "{format}: the 30 KB name is not capped\n{}",
                out.describe()
            );
            if format == "json" {
                let r = out.report();
                let tls = checks_of(&r, "api")
                    .into_iter()
                    .find(|c| c["probe"] == "tls")
                    .cloned()
                    .expect("a tls check");
                let issuer = tls["data"]["issuer"].as_str().unwrap_or_default();
                assert!(
                    issuer.contains("\\x1b[2J") && issuer.contains("\\u{202e}"),
                    "hostile characters are shown escaped, not dropped: {issuer}"
                );
            }
        }
    }
    tally.done();
}

#[test]
fn injection_http_answers_reach_every_format_as_plain_text() {
    let mut tally = Tally::new("injection (HTTP answers)");
    let pki = Pki::new();
    let reply = HttpReply::status(302)
        .header(
            "Location",
            "https://evil.example/[x](javascript:alert(1))<img src=x onerror=alert(1)>&lt;b&gt;",
        )
        .header("Server", "<script>alert(1)</script> www.evil.example")
        .body(HOSTILE)
        .date(crate::support::DateHeader::Raw(
            "<b>Mon</b> [d](https://evil.example/date)".into(),
        ));
    let server = HttpsServer::start(&pki.identity("127.0.0.1"), HttpBehaviour::Reply(reply));
    let profile = endpoint_profile(server.port());
    for format in FORMATS {
        tally.case();
        let out = Netcheck::engine(&profile)
            .ca_file(&pki)
            .format(format)
            .color("never")
            .run();
        assert!(matches!(out.code, 0..=2), "{}", out.describe());
        assert_clean(format, &out);
    }
    tally.done();
}

#[test]
fn injection_local_strings_reach_every_format_as_plain_text() {
    let mut tally = Tally::new("injection (profile, paths, environment)");
    let dir = scratch();
    let storage = dir
        .path()
        .join(format!("disk{}", HOSTILE.replace(['/', '\n'], "_")));
    std::fs::create_dir(&storage).expect("a directory with a hostile name");
    let toml_name = HOSTILE
        .chars()
        .map(|c| format!("\\U{:08X}", c as u32))
        .collect::<String>();
    let profile = ProfileFile::raw(&format!(
        "name = \"{toml_name}\"\n[[endpoint]]\nname = \"api\"\nhost = \"127.0.0.1\"\nport = {}\npublic = false\n",
        closed_port().port()
    ));
    for format in FORMATS {
        tally.case();
        let out = Netcheck::bare()
            .arg("--profile")
            .arg(profile.path())
            .arg("--only")
            .arg("storage,proxy")
            .arg("--storage-path")
            .arg(&storage)
            .arg("--no-history")
            .arg("--format")
            .arg(format)
            .arg("--color")
            .arg("never")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env(
                "NO_PROXY",
                &format!("localhost,{}", HOSTILE.replace(',', ";")),
            )
            .run();
        assert!(matches!(out.code, 0..=2), "{}", out.describe());
        assert_clean(format, &out);
    }
    tally.done();
}

// ---- 2. secrets ---------------------------------------------------------------------------------

/// Passwords with every character RFC 3986 wants encoded, typed raw; every piece between them
/// is marked `SEK`, so any piece that leaks is found.
const PASSWORDS: [&str; 4] = [
    "SEKa#SEKb?SEKc^SEKd|SEKe\"SEKf\\SEKg{SEKh}SEKi<SEKj>SEKk",
    "SEKl SEKm with SEKn spaces",
    "SEKo\"SEKp\\SEKq{SEKr}<SEKs>",
    // An unencoded '/' ends the authority: not a usable URL (exit 3), still never printed.
    "SEKt/SEKu/SEKv",
];

#[test]
fn secrets_proxy_passwords_with_special_characters_never_leak() {
    let mut tally = Tally::new("secrets (proxy passwords)");
    let dir = scratch();
    let proxy = closed_port();
    for pw in PASSWORDS {
        let url = format!("http://alice:{pw}@127.0.0.1:{}", proxy.port());
        let usable = !pw.contains('/');
        for format in FORMATS {
            tally.case();
            let history = dir.path().join("h.jsonl");
            let out = Netcheck::bare()
                .arg("--profile")
                .arg(endpoint_profile(closed_port().port()).path())
                .arg("--only")
                .arg("proxy")
                .arg("--history")
                .arg(&history)
                .arg("--format")
                .arg(format)
                .env("HTTPS_PROXY", &url)
                .run();
            let log = std::fs::read_to_string(&history).unwrap_or_default();
            let seen = format!("{}{}{log}", out.stdout, out.stderr);
            assert!(
                !seen.contains("SEK"),
                "{format}: a piece of {pw:?} leaked\n{}\nhistory: {log}",
                out.describe()
            );
            assert!(
                !seen.contains("alice"),
                "user name leaked\n{}",
                out.describe()
            );
            if usable {
                assert!(matches!(out.code, 0..=2), "{}", out.describe());
            } else {
                // Not a URL the tool can use: exit 3, one line, the secret still hidden.
                out.assert_exit(3);
                assert_eq!(
                    out.stderr.trim_end().lines().count(),
                    1,
                    "{}",
                    out.describe()
                );
                assert!(out.stderr.contains("***@127.0.0.1"), "{}", out.describe());
            }
        }
    }
    tally.done();
}

#[test]
fn secrets_in_portal_redirects_beyond_the_query_never_leak() {
    let mut tally = Tally::new("secrets (URL tokens)");
    let location = "http://portal.example/login;jsessionid=JSID7SECRET?sid=SID7SECRET&SAMLRequest=SAML7SECRET&lang=en#access_token=TOKEN7SECRET&expires_in=60";
    let answer = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let portal = RawTcpServer::start(RawMode::ReplyAfterHello(answer.into_bytes()));
    let profile = ProfileFile::raw(&format!(
        "[[endpoint]]\nname = \"api\"\nhost = \"127.0.0.1\"\nport = {}\npublic = false\n[captive]\nurl = \"http://127.0.0.1:{}/generate_204\"\n",
        closed_port().port(),
        portal.addr().port()
    ));
    let dir = scratch();
    for format in FORMATS {
        tally.case();
        let history = dir.path().join("h.jsonl");
        let out = Netcheck::bare()
            .arg("--profile")
            .arg(profile.path())
            .arg("--only")
            .arg("captive")
            .arg("--history")
            .arg(&history)
            .arg("--format")
            .arg(format)
            .run();
        assert!(matches!(out.code, 0..=2), "{}", out.describe());
        let log = std::fs::read_to_string(&history).unwrap_or_default();
        let seen = format!("{}{}{log}", out.stdout, out.stderr);
        assert!(seen.contains("portal.example"), "{}", out.describe());
        for secret in ["JSID7SECRET", "SID7SECRET", "SAML7SECRET", "TOKEN7SECRET"] {
            assert!(
                !seen.contains(secret),
                "{format}: {secret} leaked\n{}\nhistory: {log}",
                out.describe()
            );
        }
    }
    tally.done();
}

// ---- 3. files -----------------------------------------------------------------------------------

fn quick(profile: &ProfileFile) -> Netcheck {
    Netcheck::bare()
        .arg("--profile")
        .arg(profile.path())
        .arg("--only")
        .arg("tcp")
        .arg("--timeout")
        .arg("1s")
        .arg("--format")
        .arg("json")
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
}

fn mknod_char(path: &Path, major: u32, minor: u32) -> bool {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(major, minor),
    )
    .is_ok()
}

#[test]
fn files_links_are_never_followed_for_writing() {
    let mut tally = Tally::new("files (symbolic links)");
    let profile = endpoint_profile(closed_port().port());
    let dir = scratch();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious\n").expect("victim");

    tally.case();
    let history = dir.path().join("h.jsonl");
    std::os::unix::fs::symlink(&victim, &history).expect("planted history link");
    let out = quick(&profile).arg("--history").arg(&history).run();
    out.assert_exit(2);
    assert!(out.stderr.contains("symbolic link"), "{}", out.describe());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");

    tally.case();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let h2 = private.join("h.jsonl");
    std::os::unix::fs::symlink(&victim, private.join("h.jsonl.run.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, private.join("h.jsonl.lock")).unwrap();
    let out = quick(&profile)
        .arg("--lock")
        .arg("--history")
        .arg(&h2)
        .run();
    out.assert_exit(3);
    assert!(out.stderr.contains("symbolic link"), "{}", out.describe());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");

    tally.case();
    let output = dir.path().join("report.json");
    std::os::unix::fs::symlink(&victim, &output).unwrap();
    let out = quick(&profile).arg("-o").arg(&output).run();
    out.assert_exit(3);
    assert!(out.stderr.contains("symbolic link"), "{}", out.describe());
    assert!(
        std::fs::symlink_metadata(&output)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");

    tally.case();
    // A lock beside a log in a shared directory (the temp directory) is never created there.
    let shared =
        std::env::temp_dir().join(format!("netcheck-hostile-{}.jsonl", std::process::id()));
    let out = quick(&profile)
        .arg("--lock")
        .arg("--history")
        .arg(&shared)
        .run();
    let planted_lock = shared.with_extension("jsonl.run.lock");
    let append_lock = shared.with_extension("jsonl.lock");
    let leftovers = [planted_lock.exists(), append_lock.exists()];
    let _ = std::fs::remove_file(&shared);
    let _ = std::fs::remove_file(&planted_lock);
    let _ = std::fs::remove_file(&append_lock);
    out.assert_exit(2);
    if std::fs::metadata(std::env::temp_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o002
        != 0
    {
        assert_eq!(
            leftovers,
            [false, false],
            "lock files in the shared temp directory"
        );
    }
    tally.done();
}

#[test]
fn files_fifos_never_block_the_run() {
    let mut tally = Tally::new("files (FIFOs)");
    let profile = endpoint_profile(closed_port().port());
    let dir = scratch();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);

    tally.case();
    let started = Instant::now();
    let out = quick(&profile)
        .arg("--deadline")
        .arg("2s")
        .arg("--history")
        .arg(&fifo)
        .run();
    out.assert_exit(2);
    assert!(out.stderr.contains("FIFO"), "{}", out.describe());
    say(&format!(
        "hostile: files: run with a FIFO as history ended {:.0} ms after start (deadline 2 s)",
        started.elapsed().as_secs_f64() * 1000.0
    ));

    tally.case();
    let out = Netcheck::bare()
        .arg("history")
        .arg("--history")
        .arg(&fifo)
        .run();
    out.assert_exit(3);
    assert!(out.stderr.contains("FIFO"), "{}", out.describe());

    tally.case();
    // -o onto a FIFO nobody reads: an error at once, not a hang.
    let out = quick(&profile).arg("-o").arg(&fifo).run();
    out.assert_exit(3);
    assert!(
        out.stderr.contains("nobody is reading"),
        "{}",
        out.describe()
    );

    tally.case();
    // -o onto a FIFO with a reader: written into it, like tee; it stays a FIFO.
    let reader = FifoReader::open(&fifo);
    let out = quick(&profile).arg("-o").arg(&fifo).run();
    out.assert_exit(2);
    let got = reader.read_until_closed(Duration::from_secs(20));
    let r: Value = serde_json::from_slice(&got).expect("the report arrived through the FIFO");
    assert_eq!(r["schema_version"], 1);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    tally.done();
}

/// The reading end of a FIFO, opened without blocking, so a run that never writes to it cannot
/// hang the test.
struct FifoReader(std::fs::File);

impl FifoReader {
    fn open(path: &Path) -> FifoReader {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .expect("open the FIFO for reading");
        FifoReader(f)
    }

    /// Everything written until the writer closed, or what came before `limit` passed.
    fn read_until_closed(mut self, limit: Duration) -> Vec<u8> {
        use std::io::Read;
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while started.elapsed() < limit {
            match self.0.read(&mut buf) {
                // No writer yet (nothing read so far) or the writer closed.
                Ok(0) if got.is_empty() => std::thread::sleep(Duration::from_millis(10)),
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => break,
            }
        }
        got
    }
}

#[test]
fn files_replacing_keeps_mode_and_owner_and_spares_devices() {
    let mut tally = Tally::new("files (mode, owner, devices)");
    let profile = endpoint_profile(closed_port().port());
    let dir = scratch();

    tally.case();
    let report = dir.path().join("bmw.prom");
    std::fs::write(&report, b"old\n").unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&report, Some(4242), Some(4343)).unwrap();
    }
    quick(&profile).arg("-o").arg(&report).run().assert_exit(2);
    let meta = std::fs::metadata(&report).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    }

    tally.case();
    // The trim replaces the log: mode kept there too.
    let history = dir.path().join("h.jsonl");
    let line = one_history_line(&profile);
    let mut log = Vec::new();
    for _ in 0..1100 {
        log.extend_from_slice(&line);
    }
    std::fs::write(&history, &log).unwrap();
    std::fs::set_permissions(&history, std::fs::Permissions::from_mode(0o640)).unwrap();
    quick(&profile)
        .arg("--history")
        .arg(&history)
        .run()
        .assert_exit(2);
    let kept = std::fs::read(&history).unwrap();
    assert_eq!(kept.iter().filter(|b| **b == b'\n').count(), 1000);
    assert_eq!(
        std::fs::metadata(&history).unwrap().permissions().mode() & 0o7777,
        0o640
    );

    if !is_root() {
        crate::support::skip("hostile::files: device nodes need root (mknod)");
        tally.done();
        return;
    }
    tally.case();
    let null = dir.path().join("null");
    assert!(mknod_char(&null, 1, 3), "mknod c 1 3");
    quick(&profile).arg("-o").arg(&null).run().assert_exit(2);
    assert!(
        std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device()
    );

    tally.case();
    // A block device (an unattached loop device's number: nothing could be written anyway) is
    // refused before the run: a report never lands on a disk.
    let disk = dir.path().join("disk");
    assert!(
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &disk,
            rustix::fs::FileType::BlockDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            rustix::fs::makedev(7, 250),
        )
        .is_ok(),
        "mknod b 7 250"
    );
    let out = quick(&profile).arg("-o").arg(&disk).run();
    out.assert_exit(3);
    assert!(out.stderr.contains("block device"), "{}", out.describe());
    assert!(
        std::fs::symlink_metadata(&disk)
            .unwrap()
            .file_type()
            .is_block_device()
    );

    tally.case();
    let full = dir.path().join("full");
    assert!(mknod_char(&full, 1, 7), "mknod c 1 7");
    let out = quick(&profile).arg("--history").arg(&full).run();
    out.assert_exit(2);
    assert!(
        out.stderr.contains("character device"),
        "{}",
        out.describe()
    );
    assert!(
        !dir.path().join("full.lock").exists(),
        "a lock beside a device"
    );
    assert!(
        std::fs::symlink_metadata(&full)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    tally.done();
}

/// One real history line of `profile`'s quick run.
fn one_history_line(profile: &ProfileFile) -> Vec<u8> {
    let dir = scratch();
    let h = dir.path().join("one.jsonl");
    quick(profile).arg("--history").arg(&h).run().assert_exit(2);
    std::fs::read(&h).expect("one line")
}

/// A tmpfs of `bytes` mounted on a fresh directory; unmounted when dropped. `None` where it
/// cannot be mounted (not root, no tmpfs).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = scratch();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn files_a_full_disk_leaves_no_torn_line_and_honest_warnings() {
    let mut tally = Tally::new("files (full disk)");
    if !is_root() {
        crate::support::skip("hostile::files (full disk): mounting a tmpfs needs root");
        tally.done();
        return;
    }
    let Some(tiny) = Tmpfs::mount(16 * 1024) else {
        crate::support::skip("hostile::files (full disk): mount -t tmpfs failed here");
        tally.done();
        return;
    };
    tally.case();
    let profile = endpoint_profile(closed_port().port());
    let history = tiny.path().join("h.jsonl");
    // Leave 100 bytes of room: the next line starts to fit, then the disk is full.
    let mut fill = vec![b'x'; 16 * 1024 - 101];
    fill.push(b'\n');
    std::fs::write(&history, &fill).expect("fill the tmpfs");
    let before = std::fs::read(&history).unwrap();
    let out = quick(&profile).arg("--history").arg(&history).run();
    out.assert_exit(2);
    assert!(out.stderr.contains("not recorded"), "{}", out.describe());
    assert!(out.stderr.contains("as it was"), "{}", out.describe());
    assert_eq!(
        std::fs::read(&history).unwrap(),
        before,
        "a torn line was left"
    );

    tally.case();
    // Room for one more line but not for the trimmed copy: the run is recorded, and the warning
    // says the trim failed — not that the run was lost.
    let line = one_history_line(&profile);
    let log: Vec<u8> = line.repeat(1100);
    let page = 4096u64;
    let size = (log.len() as u64 + 2 * line.len() as u64).div_ceil(page) * page + page;
    let Some(snug) = Tmpfs::mount(size) else {
        crate::support::skip("hostile::files (full disk): mount -t tmpfs failed here");
        tally.done();
        return;
    };
    let history = snug.path().join("h.jsonl");
    std::fs::write(&history, &log).expect("write the log");
    let out = quick(&profile).arg("--history").arg(&history).run();
    out.assert_exit(2);
    assert!(
        out.stderr.contains("recorded in the history, but") && !out.stderr.contains("not recorded"),
        "{}",
        out.describe()
    );
    let after = std::fs::read(&history).unwrap();
    assert_eq!(after.iter().filter(|b| **b == b'\n').count(), 1101);
    let names: Vec<_> = std::fs::read_dir(snug.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["h.jsonl"], "the trim's temporary file stayed");
    tally.done();
}

// ---- 4. bounded input ---------------------------------------------------------------------------

#[test]
fn bounded_input_devices_and_fifos_are_refused_at_once() {
    let mut tally = Tally::new("bounded input (profile, CA file)");
    let dir = scratch();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let profile = endpoint_profile(closed_port().port());
    for (flag, path) in [
        ("--profile", Path::new("/dev/zero")),
        ("--profile", Path::new("/dev/urandom")),
        ("--profile", fifo.as_path()),
        ("--ca-file", Path::new("/dev/zero")),
        ("--ca-file", fifo.as_path()),
    ] {
        tally.case();
        let mut run = Netcheck::bare().arg("--no-history");
        if flag == "--ca-file" {
            run = run.arg("--profile").arg(profile.path());
        }
        let out = run.arg(flag).arg(path).run();
        out.assert_exit(3);
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("not a regular file"),
            "{}",
            out.describe()
        );
    }
    tally.done();
}

#[test]
fn bounded_input_appending_to_a_large_history_costs_little_memory() {
    let mut tally = Tally::new("bounded input (large history)");
    let _quiet = crate::support::quiet_machine();
    tally.case();
    let profile = endpoint_profile(closed_port().port());
    let dir = scratch();
    let history = dir.path().join("big.jsonl");
    // 64 MiB of short lines (not reports: they are skipped when read, and trimmed like any).
    let line = format!("{{\"filler\":\"{}\"}}\n", "z".repeat(180));
    let block: Vec<u8> = line.as_bytes().repeat(4096);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&history).unwrap();
        let mut size = 0;
        while size < 64 * 1024 * 1024 {
            f.write_all(&block).unwrap();
            size += block.len();
        }
    }
    let cmd = quick(&profile).arg("--history").arg(&history).command();
    let (code, max_rss_kib) = run_with_peak_rss(&cmd);
    assert_eq!(code, 2);
    let kept = std::fs::read(&history).unwrap();
    assert_eq!(kept.iter().filter(|b| **b == b'\n').count(), 1000);
    say(&format!(
        "hostile: bounded input: appending to a 64 MiB history: max RSS {} KiB",
        max_rss_kib
    ));
    assert!(
        max_rss_kib < 48 * 1024,
        "max RSS {max_rss_kib} KiB for an append: the log was read whole"
    );
    tally.done();
}

/// Waits for `child` and returns its exit code and peak resident set (KiB), from `wait4`.
/// Runs `cmd` and returns its exit code and its own peak resident size in KiB.
///
/// Not `wait4` on a child of this test process: Linux carries the high-water mark of the
/// address space a process leaves at `exec` into its `ru_maxrss`, and a child spawned from this
/// process (fork or vfork alike) leaves this test binary's — tens of MiB while other tests run.
/// A small Python process spawns the tool instead and reads its children's peak, so the figure
/// is the tool's own (or Python's, about 10 MiB, whichever is larger).
fn run_with_peak_rss(cmd: &std::process::Command) -> (i32, i64) {
    const SCRIPT: &str = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
        print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let mut py = std::process::Command::new("python3");
    py.arg("-c")
        .arg(SCRIPT)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        py.current_dir(dir);
    }
    let out = py.stderr(Stdio::inherit()).output().expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>());
    match (fields.next(), fields.next()) {
        (Some(Ok(code)), Some(Ok(rss))) => (code as i32, rss),
        _ => panic!("python3 did not report the run: {text}"),
    }
}

// ---- 5. the tool's own limits ---------------------------------------------------------------------

#[test]
fn own_limits_a_low_descriptor_limit_is_never_network_evidence() {
    let mut tally = Tally::new("own limits (descriptors)");
    let _quiet = crate::support::quiet_machine();
    tally.case();
    // Accepts and closes at once, on a thread of its own (a busy fixture runtime must not let
    // the backlog overflow): the only scarce descriptors are the tool's.
    let server = Acceptor::start(false);
    let profile = ProfileFile::new(&endpoints_at(1000, server.port));
    let run = Netcheck::engine(&profile)
        .only("tcp,latency")
        .samples(2)
        .timeout("5s")
        .deadline("50s");
    let (out, report) = under_ulimit(128, &run);
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert!(
        failed.is_empty(),
        "{} checks failed under a low descriptor limit, e.g. {}",
        failed.len(),
        failed[0]
    );
    let ids: Vec<&str> = report["suspects"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    for blamed in ["weak_signal", "weak_wifi", "no_connectivity"] {
        assert!(
            !ids.contains(&blamed),
            "{blamed} blamed for the tool's limit: {ids:?}"
        );
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tally.done();
}

/// At most 256 endpoints are in flight at once, whatever the descriptors allow: of 300
/// endpoints whose server accepts and then says nothing, the first 256 connect and wait for a
/// TLS answer until the deadline, and the other 44 are still queued then ("not reached").
#[test]
fn own_limits_at_most_256_endpoints_in_flight() {
    let mut tally = Tally::new("own limits (endpoints in flight)");
    let _quiet = crate::support::quiet_machine();
    tally.case();
    let server = Acceptor::start(true);
    let profile = ProfileFile::new(&endpoints_at(300, server.port));
    let run = Netcheck::engine(&profile)
        .only("tcp,tls")
        .timeout("30s")
        .deadline("3s");
    // Descriptors for 672 pipelines: the cap, not the limit, decides.
    let (_, report) = under_ulimit(4096, &run);
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let connected = checks
        .iter()
        .filter(|c| c["probe"] == "tcp" && c["code"] == "tcp.ok")
        .count();
    assert_eq!(connected, 256, "{}", report["checks"]);
    let waited = checks
        .iter()
        .filter(|c| c["probe"] == "tls" && c["code"] == "tls.timeout")
        .count();
    assert_eq!(waited, 256, "{}", report["checks"]);
    tally.done();
}

/// `n` endpoints, all at `127.0.0.1:port`.
fn endpoints_at(n: usize, port: u16) -> Vec<EndpointSpec> {
    (0..n)
        .map(|i| EndpointSpec::new(&format!("e{i}"), "127.0.0.1", port))
        .collect()
}

/// Runs `run` under `ulimit -n limit` (no control, no proxy): the exit status and the report.
fn under_ulimit(limit: u32, run: &Netcheck) -> (std::process::Output, Value) {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(assert_cmd::cargo::cargo_bin!("bmw-netcheck"))
        .args(run.args())
        .env("BMW_NETCHECK_CONTROL", "off")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    let out = cmd.output().expect("run under ulimit -n");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out, report)
}

/// A loopback server that accepts every connection, on a thread of its own, and closes it at
/// once or (`hold`) keeps it open and silent until dropped.
struct Acceptor {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    fn start(hold: bool) -> Acceptor {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if hold {
                    held.extend(conn.ok());
                }
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
            }
        });
        Acceptor {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- 6. misreadings -----------------------------------------------------------------------------

#[test]
fn misreadings_statuses_interim_floods_dates_and_brackets() {
    let mut tally = Tally::new("misreadings");
    let pki = Pki::new();
    for status in [600u16, 999] {
        tally.case();
        let server = HttpsServer::start(&pki.identity("127.0.0.1"), HttpBehaviour::status(status));
        let out = Netcheck::engine(&endpoint_profile(server.port()))
            .ca_file(&pki)
            .run();
        out.assert_exit(2);
        let r = out.report();
        let http = checks_of(&r, "api")
            .into_iter()
            .find(|c| c["probe"] == "http")
            .cloned()
            .expect("http check");
        assert_eq!(http["code"], "http.error", "{status}: {http}");
        assert!(
            http["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("not an HTTP status"),
            "{http}"
        );
    }

    tally.case();
    let flood = InterimFlood::start(&pki.identity("127.0.0.1"));
    let out = Netcheck::engine(&endpoint_profile(flood.port))
        .ca_file(&pki)
        .run();
    out.assert_exit(2);
    let r = out.report();
    let http = checks_of(&r, "api")
        .into_iter()
        .find(|c| c["probe"] == "http")
        .cloned()
        .expect("http check");
    assert_eq!(http["code"], "http.error", "{http}");
    assert!(
        http["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("100 Continue"),
        "{http}"
    );

    tally.case();
    let liar = HttpsServer::start(
        &pki.identity("127.0.0.1"),
        HttpBehaviour::Reply(HttpReply::status(200).date(crate::support::DateHeader::Raw(
            "Fri, 31 Dec 9999 23:59:59 GMT".into(),
        ))),
    );
    let honest = HttpsServer::start(&pki.identity("127.0.0.1"), HttpBehaviour::status(200));
    let profile = ProfileFile::new(&[
        EndpointSpec::new("liar", "127.0.0.1", liar.port()),
        EndpointSpec::new("honest", "127.0.0.1", honest.port()),
    ]);
    let out = Netcheck::engine(&profile)
        .ca_file(&pki)
        .only("dns,tcp,tls,http,clock")
        .run();
    out.assert_exit(0);
    let r = out.report();
    let clock = r["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["probe"] == "clock"))
        .cloned()
        .expect("clock check");
    assert_eq!(clock["code"], "clock.ok", "{clock}");

    for host in ["[::1", "::1]", "[127.0.0.1]"] {
        tally.case();
        let profile = ProfileFile::new(&[EndpointSpec::new("api", host, 443)]);
        let out = Netcheck::engine(&profile).run();
        out.assert_exit(3);
        assert!(
            out.stderr.contains("neither a DNS name"),
            "{}",
            out.describe()
        );
    }
    tally.done();
}

/// A TLS server that answers every request with `100 Continue`, again and again, forever.
struct InterimFlood {
    port: u16,
    _task: crate::support::Task,
}

impl InterimFlood {
    fn start(identity: &ServerIdentity) -> InterimFlood {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
            crate::support::https::server_config(identity),
        ));
        let task = crate::support::Task::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    loop {
                        if tls
                            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        InterimFlood { port, _task: task }
    }
}

// ---- properties ---------------------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,40}",
            "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}<>\\[\\]()`*_&#!|:/. a-z]{1,60}",
            Just(HOSTILE.to_owned()),
        ]
        .prop_filter("non-empty", |s| !s.is_empty())
    }

    /// Header values hyper lets through: visible ASCII and spaces.
    fn header_text() -> impl Strategy<Value = String> {
        "[ -~]{1,80}"
            .prop_map(|s| s.trim().to_owned())
            .prop_filter("non-empty", |s| !s.is_empty())
    }

    /// Cases per run; each case runs the binary once per format.
    const CASES: u32 = 6;

    /// Arbitrary text in the certificate's names, the answer's headers and the profile's name:
    /// every format stays plain text, and the Markdown renders nothing the tool did not write.
    #[test]
    fn any_outside_text_stays_plain_in_every_format() {
        let _quiet = crate::support::quiet_machine();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: CASES,
            ..ProptestConfig::default()
        });
        let strategy = (hostile_text(), header_text(), header_text(), hostile_text());
        let result = runner.run(&strategy, |(cn, location, server, name)| {
            let (ca_pem, identity) = hostile_chain(&cn, &cn);
            let reply = HttpReply::status(302)
                .header("Location", &location)
                .header("Server", &server);
            let https = HttpsServer::start(&identity, HttpBehaviour::Reply(reply));
            let toml_name: String = name.chars().map(|c| format!("\\U{:08X}", c as u32)).collect();
            let profile = ProfileFile::raw(&format!(
                "name = \"{toml_name}\"\n[[endpoint]]\nname = \"api\"\nhost = \"127.0.0.1\"\nport = {}\npublic = false\n",
                https.port()
            ));
            let ca = profile.dir().join("ca.pem");
            std::fs::write(&ca, ca_pem).expect("CA file");
            for format in FORMATS {
                let out = Netcheck::engine(&profile)
                    .ca_path(&ca)
                    .format(format)
                    .color("never")
                    .run();
                prop_assert!(matches!(out.code, 0..=2), "{}", out.describe());
                assert_clean(format, &out);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        say(&format!(
            "hostile: properties (certificate names, headers, profile names): {CASES} cases x {} formats tried, all passed",
            FORMATS.len()
        ));
    }
}
