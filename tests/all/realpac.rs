//! The path the app really takes when the proxy is not in the environment: a PAC file (given,
//! set in GNOME's settings, or found by WPAD through DNS or DHCP option 252), run against real
//! programs — nginx serves the PAC files, squid is the proxy they name, dnsmasq resolves and
//! hands out leases, dhclient writes the lease the tool reads, gsettings writes GNOME's settings.
//!
//! The company network is built on loopback as in `realproxy.rs`: the tool's resolver (dnsmasq)
//! points the BMW-like host at 127.0.0.9, where nothing listens, so its direct path is refused;
//! squid has its own host table and reaches the fixture. The neutral host resolves to the
//! fixture itself and is reached directly.
//!
//! | case | where the PAC comes from | expected |
//! | --- | --- | --- |
//! | corporate PAC | `--pac` | proxy.pac; the API through squid (after a refused first PROXY), neutral DIRECT; pass |
//! | `--proxy URL` / `--proxy direct` | the command line | proxy.cli; pass through squid / the refusal fails |
//! | GNOME auto / manual | gsettings (keyfile backend) | proxy.pac from gnome / proxy.desktop; pass |
//! | KDE | `kioslaverc` with a `Proxy Config Script` | proxy.pac from kde; pass |
//! | WPAD by DNS | `wpad.<search domain>` on port 80 | proxy_source wpad:dns; pass |
//! | WPAD absent | a search domain without a wpad name | proxy.none, said in looked_at |
//! | WPAD by DHCP | dnsmasq's option 252 to dhclient in a namespace | proxy_source wpad:dhcp; pass |
//! | hostile PAC files | loop, 10 MB, throw, garbage, unreachable | proxy.pac_error / proxy.pac_unreachable, direct path tested |
//! | firewalled namespace | `--pac file://`; nftables lets only squid's user reach the API | proxy.pac, direct tcp.refused as information; pass (fail with `--proxy direct`) |

use crate::netns::ns::{self, Netns};
use crate::support::dnsmasq::Dnsmasq;
use crate::support::pacserver::PacServer;
use crate::support::squid::{Squid, SquidSpec};
use crate::support::{
    EndpointSpec, HttpBehaviour, HttpsServer, Netcheck, Pki, ProfileFile, device_check, skip,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const API: &str = "cocoapi.pac.netcheck.lan";
const NEUTRAL: &str = "neutral.pac.netcheck.lan";
const PAC_HOST: &str = "pac.netcheck.lan";

/// The fixtures, the resolver and squid of one test.
struct Corp {
    pki: Pki,
    /// Held for the run: the servers stop when dropped.
    _servers: [HttpsServer; 2],
    dns: Dnsmasq,
    squid: Squid,
    profile: ProfileFile,
}

impl Corp {
    fn new(test: &str, extra_dns: &str) -> Option<Corp> {
        let pki = Pki::new();
        let api = HttpsServer::start(&pki.identity(API), HttpBehaviour::status(401));
        let neutral = HttpsServer::start(&pki.identity(NEUTRAL), HttpBehaviour::status(200));
        let lines = format!(
            "address=/{API}/127.0.0.9\naddress=/{NEUTRAL}/127.0.0.1\naddress=/{PAC_HOST}/127.0.0.1\n{extra_dns}"
        );
        let dns = match Dnsmasq::start(&lines) {
            Ok(d) => d,
            Err(why) => {
                skip(&format!("realpac::{test}: {why}"));
                return None;
            }
        };
        let spec = SquidSpec {
            hosts: vec![
                (API.to_owned(), "127.0.0.1".to_owned()),
                (NEUTRAL.to_owned(), "127.0.0.1".to_owned()),
            ],
            ..SquidSpec::default()
        };
        let squid = match Squid::start(&spec) {
            Ok(s) => s,
            Err(why) => {
                skip(&format!("realpac::{test}: {why}"));
                return None;
            }
        };
        let profile = ProfileFile::new(&[
            EndpointSpec::new("api", API, api.port()),
            EndpointSpec::new("neutral", NEUTRAL, neutral.port()).role("baseline"),
        ]);
        Some(Corp {
            pki,
            _servers: [api, neutral],
            dns,
            squid,
            profile,
        })
    }

    /// The corporate PAC: the API through squid (after a proxy that refuses), the rest direct.
    fn pac(&self) -> String {
        format!(
            "function FindProxyForURL(url, host) {{\n\
               if (dnsDomainIs(host, \"cocoapi.pac.netcheck.lan\") && shExpMatch(url, \"https://*\"))\n\
                 return \"PROXY 127.0.0.9:3128; PROXY {}; DIRECT\";\n\
               return \"DIRECT\";\n}}\n",
            self.squid.addr
        )
    }

    fn netcheck(&self) -> Netcheck {
        Netcheck::engine(&self.profile)
            .resolver_addr(&self.dns.addr.to_string())
            .ca_file(&self.pki)
            .only("dns,tcp,tls,http,proxy")
    }
}

fn run(n: &Netcheck) -> (i32, Value) {
    let out = n.run();
    assert!(
        (0..=2).contains(&out.code),
        "the run completes\n{}",
        out.describe()
    );
    (out.code, out.report())
}

/// The check of `target` by `probe` on the given path.
fn on_path<'a>(r: &'a Value, target: &str, probe: &str, path: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|c| c["target"] == target && c["probe"] == probe && c["data"]["path"] == path)
        })
        .unwrap_or_else(|| panic!("no {probe} check of {target} on the {path} path:\n{r:#}"))
}

/// The PAC chose squid for the API and DIRECT for the neutral host, and the run passes on them.
fn assert_corporate(r: &Value, code: i32, source: &str, squid: &str) {
    let proxy = device_check(r, "proxy");
    assert_eq!(proxy["code"], "proxy.pac", "{proxy:#}");
    assert_eq!(proxy["data"]["source"], source, "{proxy:#}");
    let choices = proxy["data"]["pac_choices"].as_array().expect("choices");
    let api = choices.iter().find(|c| c["host"] == API).expect("api");
    assert_eq!(api["via_proxy"], format!("http://{squid}"), "{proxy:#}");
    assert!(
        api["notes"].to_string().contains("127.0.0.9:3128"),
        "the refused first proxy is named: {proxy:#}"
    );
    let neutral = choices
        .iter()
        .find(|c| c["host"] == NEUTRAL)
        .expect("neutral");
    assert_eq!(neutral["path"], "direct", "{proxy:#}");
    let via = on_path(r, "api", "http", "proxy");
    assert_eq!(via["code"], "http.ok", "{via:#}");
    assert_eq!(via["data"]["proxy_source"], source, "{via:#}");
    let direct = on_path(r, "neutral", "http", "direct");
    assert_eq!(direct["code"], "http.ok", "{direct:#}");
    assert_eq!(direct["data"]["proxy_source"], source, "{direct:#}");
    assert_eq!(code, 0, "the verdict passes on the PAC's paths:\n{r:#}");
}

#[test]
fn a_corporate_pac_sends_bmw_through_squid_and_the_rest_direct() {
    let Some(corp) = Corp::new("corporate", "") else {
        return;
    };
    let pac = corp.pac();
    let server = match PacServer::start("127.0.0.1", 0, &[("proxy.pac", pac.as_bytes())]) {
        Ok(s) => s,
        Err(why) => return skip(&format!("realpac::corporate: {why}")),
    };
    // By name through the tool's resolver, with credentials in the URL that must never show.
    let url = format!(
        "http://pacuser:pacsecret@{PAC_HOST}:{}/proxy.pac",
        server.addr.port()
    );
    let out = corp.netcheck().arg("--pac").arg(&url).run();
    assert!(
        !out.stdout.contains("pacsecret") && !out.stderr.contains("pacsecret"),
        "the PAC URL's password leaked\n{}",
        out.describe()
    );
    let r = out.report();
    let source = format!("pac:http://***@{PAC_HOST}:{}/proxy.pac", server.addr.port());
    assert_corporate(&r, out.code, &source, &corp.squid.addr.to_string());
    // The proxy named on the command line: every host through squid.
    let (code, r) = run(&corp
        .netcheck()
        .arg("--proxy")
        .arg(corp.squid.addr.to_string()));
    assert_eq!(device_check(&r, "proxy")["code"], "proxy.cli");
    let via = on_path(&r, "api", "http", "proxy");
    assert_eq!(via["code"], "http.ok", "{via:#}");
    assert_eq!(via["data"]["proxy_source"], "cli");
    assert_eq!(code, 0, "{r:#}");
    // The same with the direct path chosen on the command line: the API's refusal counts.
    let (code, r) = run(&corp.netcheck().arg("--proxy").arg("direct"));
    assert_eq!(device_check(&r, "proxy")["code"], "proxy.cli");
    assert_eq!(on_path(&r, "api", "tcp", "direct")["code"], "tcp.refused");
    assert_eq!(code, 2, "{r:#}");
}

/// `gsettings` with the keyfile backend in a scratch configuration directory.
fn gsettings(config: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("gsettings")
        .env("GSETTINGS_BACKEND", "keyfile")
        .env("XDG_CONFIG_HOME", config)
        .args(args)
        .output()
        .map_err(|e| format!("gsettings cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gsettings {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn gnome_settings_decide_the_path() {
    let Some(corp) = Corp::new("gnome", "") else {
        return;
    };
    let pac = corp.pac();
    let server = match PacServer::start("127.0.0.1", 0, &[("proxy.pac", pac.as_bytes())]) {
        Ok(s) => s,
        Err(why) => return skip(&format!("realpac::gnome: {why}")),
    };
    let config = tempfile::tempdir().expect("config dir");
    let url = server.url("proxy.pac");
    let set = [
        vec!["set", "org.gnome.system.proxy", "mode", "auto"],
        vec![
            "set",
            "org.gnome.system.proxy",
            "autoconfig-url",
            url.as_str(),
        ],
    ];
    for args in &set {
        if let Err(why) = gsettings(config.path(), args) {
            return skip(&format!("realpac::gnome: {why}"));
        }
    }
    let gnome = |n: Netcheck| {
        n.env("GSETTINGS_BACKEND", "keyfile")
            .env("XDG_CONFIG_HOME", &config.path().display().to_string())
    };
    let (code, r) = run(&gnome(corp.netcheck()));
    assert_corporate(
        &r,
        code,
        &format!("pac:{url}"),
        &corp.squid.addr.to_string(),
    );
    assert_eq!(device_check(&r, "proxy")["data"]["settings_from"], "gnome");

    // Manual: every host through squid, with credentials that never show; the neutral host is
    // in ignore-hosts.
    let port = corp.squid.addr.port().to_string();
    let manual = [
        vec!["set", "org.gnome.system.proxy", "mode", "manual"],
        vec!["set", "org.gnome.system.proxy.http", "host", "127.0.0.1"],
        vec!["set", "org.gnome.system.proxy.http", "port", port.as_str()],
        vec![
            "set",
            "org.gnome.system.proxy.http",
            "use-authentication",
            "true",
        ],
        vec![
            "set",
            "org.gnome.system.proxy.http",
            "authentication-user",
            "u",
        ],
        vec![
            "set",
            "org.gnome.system.proxy.http",
            "authentication-password",
            "gnomesecret",
        ],
        vec![
            "set",
            "org.gnome.system.proxy",
            "ignore-hosts",
            "['*.neutral.lan', 'neutral.pac.netcheck.lan']",
        ],
    ];
    for args in &manual {
        gsettings(config.path(), args).expect("gsettings set");
    }
    let out = gnome(corp.netcheck()).run();
    assert!(
        !out.stdout.contains("gnomesecret") && !out.stderr.contains("gnomesecret"),
        "the desktop's proxy password leaked\n{}",
        out.describe()
    );
    let r = out.report();
    let proxy = device_check(&r, "proxy");
    assert_eq!(proxy["code"], "proxy.desktop", "{proxy:#}");
    assert_eq!(proxy["data"]["source"], "gnome");
    let via = on_path(&r, "api", "http", "proxy");
    assert_eq!(via["code"], "http.ok", "{via:#}");
    assert_eq!(via["data"]["proxy_source"], "gnome");
    assert_eq!(on_path(&r, "neutral", "http", "direct")["code"], "http.ok");
    assert_eq!(out.code, 0, "{r:#}");
}

#[test]
fn kde_settings_name_the_pac_file() {
    let Some(corp) = Corp::new("kde", "") else {
        return;
    };
    let pac = corp.pac();
    let server = match PacServer::start("127.0.0.1", 0, &[("proxy.pac", pac.as_bytes())]) {
        Ok(s) => s,
        Err(why) => return skip(&format!("realpac::kde: {why}")),
    };
    let config = tempfile::tempdir().expect("config dir");
    let url = server.url("proxy.pac");
    std::fs::write(
        config.path().join("kioslaverc"),
        format!("[Proxy Settings]\nProxyType=2\nProxy Config Script={url}\n"),
    )
    .expect("kioslaverc");
    let n = corp
        .netcheck()
        .env("XDG_CONFIG_HOME", &config.path().display().to_string());
    let (code, r) = run(&n);
    assert_corporate(
        &r,
        code,
        &format!("pac:{url}"),
        &corp.squid.addr.to_string(),
    );
    assert_eq!(device_check(&r, "proxy")["data"]["settings_from"], "kde");
}

/// A directory standing in for `/` with this resolv.conf.
fn root_with(resolv: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("root");
    std::fs::create_dir_all(root.path().join("etc")).expect("etc");
    std::fs::write(root.path().join("etc/resolv.conf"), resolv).expect("resolv.conf");
    root
}

#[test]
fn wpad_by_the_dns_search_domain() {
    // wpad.dat is fetched from port 80, as browsers fetch it: a loopback address of its own.
    let wpad_ip = "127.83.0.1";
    let extra = format!("address=/wpad.corp.pac.netcheck.lan/{wpad_ip}\n");
    let Some(corp) = Corp::new("wpad_dns", &extra) else {
        return;
    };
    let pac = corp.pac();
    let server = match PacServer::start(wpad_ip, 80, &[("wpad.dat", pac.as_bytes())]) {
        Ok(s) => s,
        Err(why) => return skip(&format!("realpac::wpad_dns: {why}")),
    };
    let root = root_with("nameserver 127.0.0.1\nsearch corp.pac.netcheck.lan\n");
    let n = corp.netcheck().env(
        "BMW_NETCHECK_RESOLV_ROOT",
        &root.path().display().to_string(),
    );
    let (code, r) = run(&n);
    assert_corporate(&r, code, "wpad:dns", &corp.squid.addr.to_string());
    let proxy = device_check(&r, "proxy");
    assert_eq!(
        proxy["data"]["pac_url"],
        "http://wpad.corp.pac.netcheck.lan/wpad.dat"
    );
    drop(server);

    // A search domain without a wpad name: no proxy, and the report says where it looked.
    let root = root_with("search elsewhere.netcheck.lan\n");
    let n = corp.netcheck().env(
        "BMW_NETCHECK_RESOLV_ROOT",
        &root.path().display().to_string(),
    );
    let (_, r) = run(&n);
    let proxy = device_check(&r, "proxy");
    assert_eq!(proxy["code"], "proxy.none", "{proxy:#}");
    assert!(
        proxy["data"]["looked_at"]
            .to_string()
            .contains("wpad.elsewhere.netcheck.lan does not resolve"),
        "{proxy:#}"
    );
    assert_eq!(
        on_path(&r, "api", "tcp", "direct")["data"]["proxy_source"],
        "none"
    );
}

/// Waits until `path` holds `needle`, for at most `limit`.
fn wait_for_text(path: &Path, needle: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn wpad_by_dhcp_option_252() {
    if let Some(why) = ns::unavailable() {
        return skip(&format!("realpac::wpad_dhcp: {why}"));
    }
    let (Ok(dnsmasq), Ok(dhclient)) = (
        crate::support::daemon::find("dnsmasq"),
        crate::support::daemon::find("dhclient"),
    ) else {
        return skip("realpac::wpad_dhcp: dnsmasq or dhclient is not installed");
    };
    let Some(corp) = Corp::new("wpad_dhcp", "") else {
        return;
    };
    let pac = corp.pac();
    let server = match PacServer::start("127.0.0.1", 0, &[("wpad.dat", pac.as_bytes())]) {
        Ok(s) => s,
        Err(why) => return skip(&format!("realpac::wpad_dhcp: {why}")),
    };
    let (server_ns, client_ns) = match (Netns::create("dhcpd"), Netns::create("dhcpc")) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return skip("realpac::wpad_dhcp: no network namespaces here"),
    };
    ns::link(
        &server_ns,
        "pacd0",
        "10.83.0.1/24",
        &client_ns,
        "pacc0",
        "169.254.83.2/16",
    );
    let dir = tempfile::tempdir().expect("scratch");
    let url = server.url("wpad.dat");
    // In a configuration file, as administrators write it (dnsmasq keeps the quotes of a
    // command-line argument).
    let option = dir.path().join("wpad.conf");
    std::fs::write(&option, format!("dhcp-option-force=252,\"{url}\"\n")).expect("wpad.conf");
    let mut dhcpd = Command::new("ip");
    dhcpd
        .args(["netns", "exec", server_ns.name()])
        .arg(&dnsmasq)
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--interface=pacd0",
            "--bind-interfaces",
            "--dhcp-range=10.83.0.10,10.83.0.20,255.255.255.0,2m",
            "--log-dhcp",
        ])
        .arg(format!("--conf-file={}", option.display()))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.path().join("dnsmasq.leases").display()
        ))
        .arg(format!(
            "--pid-file={}",
            dir.path().join("dnsmasq.pid").display()
        ));
    let _dhcpd = crate::support::daemon::Daemon::spawn_command(
        "dnsmasq-dhcp",
        dhcpd,
        crate::support::daemon::Daemon::scratch("netcheck-dhcpd"),
    );
    let root = root_with("");
    let leases = root.path().join("var/lib/dhcp");
    std::fs::create_dir_all(&leases).expect("lease dir");
    let lease = leases.join("dhclient.pacc0.leases");
    let conf = dir.path().join("dhclient.conf");
    std::fs::write(
        &conf,
        "option wpad code 252 = text;\nrequest subnet-mask, broadcast-address, wpad;\n",
    )
    .expect("dhclient.conf");
    // No script: the client only writes its lease; the namespace's addresses stay as they are.
    let mut client = client_ns.command(&dhclient);
    client
        .args(["-d", "-1", "-sf", "/bin/true", "-cf"])
        .arg(&conf)
        .arg("-lf")
        .arg(&lease)
        .arg("-pf")
        .arg(dir.path().join("dhclient.pid"))
        .arg("pacc0");
    let client = crate::support::daemon::Daemon::spawn_command(
        "dhclient",
        client,
        crate::support::daemon::Daemon::scratch("netcheck-dhclient"),
    );
    if !wait_for_text(&lease, "wpad", Duration::from_secs(30)) {
        panic!(
            "dhclient wrote no lease with option 252:\n{}\nlease: {:?}",
            client.output(),
            std::fs::read_to_string(&lease)
        );
    }
    drop(client);
    eprintln!(
        "the lease dhclient wrote:\n{}",
        std::fs::read_to_string(&lease).unwrap_or_default()
    );
    let n = corp.netcheck().env(
        "BMW_NETCHECK_RESOLV_ROOT",
        &root.path().display().to_string(),
    );
    let (code, r) = run(&n);
    assert_corporate(&r, code, "wpad:dhcp", &corp.squid.addr.to_string());
    assert_eq!(device_check(&r, "proxy")["data"]["pac_url"], url);
}

/// A hostile PAC file is a bounded finding: the run completes, tests the direct path and says
/// why the PAC was not followed.
#[test]
fn hostile_pac_files_are_bounded_findings() {
    let Some(corp) = Corp::new("hostile", "") else {
        return;
    };
    let huge = format!(
        "// {}\nfunction FindProxyForURL(u, h) {{ return \"DIRECT\"; }}\n",
        "x".repeat(10 * 1024 * 1024)
    );
    let files: Vec<(&str, &[u8])> = vec![
        (
            "loop.pac",
            b"function FindProxyForURL(u, h) { for (;;) {} }",
        ),
        ("huge.pac", huge.as_bytes()),
        (
            "throws.pac",
            b"function FindProxyForURL(u, h) { throw new Error('no rule for ' + h); }",
        ),
        (
            "garbage.pac",
            b"function FindProxyForURL(u, h) { return 'lol \\u001b[31m nope'; }",
        ),
        ("notjs.pac", b"<html>this is a login page</html>"),
    ];
    let server = match PacServer::start("127.0.0.1", 0, &files) {
        Ok(s) => s,
        Err(why) => return skip(&format!("realpac::hostile: {why}")),
    };
    let cases = [
        ("loop.pac", "proxy.pac_error", "was stopped"),
        ("huge.pac", "proxy.pac_error", "larger than 1 MiB"),
        (
            "throws.pac",
            "proxy.pac_error",
            "no rule for cocoapi.pac.netcheck.lan",
        ),
        (
            "garbage.pac",
            "proxy.pac_error",
            "names no proxy and no DIRECT",
        ),
        ("notjs.pac", "proxy.pac_error", "the script fails"),
        ("missing.pac", "proxy.pac_unreachable", "HTTP 404"),
    ];
    for (file, want, says) in cases {
        let (code, r) = run(&corp.netcheck().arg("--pac").arg(server.url(file)));
        let proxy = device_check(&r, "proxy");
        assert_eq!(proxy["code"], want, "{file}: {proxy:#}");
        assert_eq!(proxy["status"], "warn", "{file}: {proxy:#}");
        let summary = proxy["summary"].as_str().unwrap_or("");
        assert!(summary.contains(says), "{file}: {summary}");
        assert!(!summary.contains('\u{1b}'), "{file}: {summary}");
        // The direct path was tested: the API's refusal is there, and a suspect names the PAC.
        assert_eq!(
            on_path(&r, "api", "tcp", "direct")["code"],
            "tcp.refused",
            "{file}"
        );
        assert_eq!(code, 2, "{file}: {r:#}");
        assert!(
            crate::support::suspect_ids(&r).contains(&"vpn_firewall".to_owned()),
            "{file}: {r:#}"
        );
    }
    // Nothing listens: unreachable, quickly.
    let closed = crate::support::closed_port();
    let (_, r) = run(&corp
        .netcheck()
        .arg("--pac")
        .arg(format!("http://{closed}/p.pac")));
    assert_eq!(device_check(&r, "proxy")["code"], "proxy.pac_unreachable");
}

/// Waits until `ready` holds inside `ns`, for at most 10 s.
fn wait_in(ns: &Netns, daemon: &mut crate::support::daemon::Daemon, ready: fn() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if ns.enter(ready).unwrap_or(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the daemon did not answer:\n{}", daemon.output());
}

/// The company network in a namespace of its own: its nftables firewall rejects every
/// connection to the API's port except squid's (user `proxy`), and the PAC file sends the API
/// through squid and the neutral host direct. The verdict passes, and the report says the PAC
/// chose the proxy.
#[test]
fn a_namespace_whose_firewall_lets_only_the_proxy_out() {
    use crate::support::daemon::{Daemon, answers_dns, find};
    if let Some(why) = ns::unavailable() {
        return skip(&format!("realpac::firewall: {why}"));
    }
    let (Ok(dnsmasq), Ok(squid), Ok(_)) = (find("dnsmasq"), find("squid"), find("nft")) else {
        return skip("realpac::firewall: dnsmasq, squid or nft is not installed");
    };
    let office = Netns::create("pacfw").expect("a namespace");
    let pki = Pki::new();
    let local: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
    let listen = |host: &str, status: u16| {
        let l = office.bind_tcp(local).expect("listen in the namespace");
        HttpsServer::from_listener(l, &pki.identity(host), HttpBehaviour::status(status))
    };
    let (api, neutral) = (listen(API, 401), listen(NEUTRAL, 200));
    // The namespace's resolver: dnsmasq on its own 127.0.0.1:53.
    let dir = Daemon::scratch("netcheck-pacfw-dns");
    let conf = dir.path().join("dnsmasq.conf");
    std::fs::write(
        &conf,
        format!(
            "no-resolv\nno-hosts\nlisten-address=127.0.0.1\nport=53\nbind-interfaces\n\
             address=/{API}/127.0.0.1\naddress=/{NEUTRAL}/127.0.0.1\n"
        ),
    )
    .expect("dnsmasq.conf");
    let mut cmd = office.command(&dnsmasq);
    cmd.arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf.display()))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()));
    let mut dns = Daemon::spawn_command("dnsmasq", cmd, dir);
    wait_in(&office, &mut dns, || {
        answers_dns("127.0.0.1:53".parse().expect("address"))
    });
    // squid on 127.0.0.1:3128 of the namespace; it runs as the user `proxy`.
    let dir = Daemon::scratch("netcheck-pacfw-squid");
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("hosts"), format!("127.0.0.1 {API}\n")).expect("hosts");
    let conf = dir.path().join("squid.conf");
    std::fs::write(
        &conf,
        format!(
            "http_port 127.0.0.1:3128\npid_filename {d}/squid.pid\ncache_log {d}/cache.log\n\
             access_log {d}/access.log\ncache_store_log none\ncache deny all\ncoredump_dir {d}\n\
             hosts_file {d}/hosts\nshutdown_lifetime 0 seconds\nvisible_hostname netcheck-proxy\n\
             dns_nameservers 127.0.0.1\nhttp_access allow all\n"
        ),
    )
    .expect("squid.conf");
    let mut cmd = office.command(&squid);
    cmd.args(["-N", "-f"]).arg(&conf);
    let mut proxy = Daemon::spawn_command("squid", cmd, dir);
    wait_in(&office, &mut proxy, || {
        std::net::TcpStream::connect("127.0.0.1:3128").is_ok()
    });
    // The firewall: only squid's user reaches the API's port.
    let rules = format!(
        "table inet pacfw {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
         tcp dport {} meta skuid != \"proxy\" reject with tcp reset\n  }}\n}}\n",
        api.port()
    );
    office.nft(&rules).expect("the office firewall");
    let pac = tempfile::NamedTempFile::new().expect("a PAC file");
    std::fs::write(
        pac.path(),
        format!(
            "function FindProxyForURL(url, host) {{\n\
               if (dnsDomainIs(host, \"{API}\")) return \"PROXY 127.0.0.1:3128; DIRECT\";\n\
               return \"DIRECT\";\n}}\n"
        ),
    )
    .expect("write the PAC file");
    let profile = ProfileFile::new(&[
        EndpointSpec::new("api", API, api.port()),
        EndpointSpec::new("neutral", NEUTRAL, neutral.port()).role("baseline"),
    ]);
    let run_with = |pac_arg: &[String]| {
        let mut cmd = office.command(env!("CARGO_BIN_EXE_bmw-netcheck"));
        cmd.args(["run", "--only", "dns,tcp,tls,http,proxy", "--timeout", "2s"])
            .args([
                "--resolver",
                "127.0.0.1",
                "--no-history",
                "--format",
                "json",
            ])
            .arg("--profile")
            .arg(profile.path())
            .arg("--ca-file")
            .arg(pki.ca_file())
            .args(pac_arg);
        for var in crate::support::netcheck::PROXY_VARS {
            cmd.env_remove(var);
        }
        crate::support::run_command(cmd, Vec::new())
    };
    let out = run_with(&["--pac".into(), format!("file://{}", pac.path().display())]);
    let r = out.report();
    let proxy_check = device_check(&r, "proxy");
    assert_eq!(proxy_check["code"], "proxy.pac", "{}", out.describe());
    let via = on_path(&r, "api", "http", "proxy");
    assert_eq!(
        via["code"],
        "http.ok",
        "{via:#}\nsquid:\n{}",
        proxy.output()
    );
    let refused = on_path(&r, "api", "tcp", "direct");
    assert_eq!(
        refused["code"], "tcp.refused",
        "the firewall rejects: {refused:#}"
    );
    assert_eq!(on_path(&r, "neutral", "http", "direct")["code"], "http.ok");
    assert_eq!(out.code, 0, "the verdict passes:\n{}", out.describe());
    // Without the PAC file the tool tests the blocked direct path, and fails.
    let out = run_with(&["--proxy".into(), "direct".into()]);
    assert_eq!(out.code, 2, "{}", out.describe());
}

#[test]
fn proxy_flags_that_cannot_be_used_are_usage_errors() {
    for args in [
        vec!["--pac", "http://x.lan/p.pac", "--proxy", "direct"],
        vec!["--pac", "ftp://u:flagsecret@x.lan/p.pac"],
        vec!["--pac", "nope"],
        vec!["--proxy", "gopher://u:flagsecret@x.lan"],
        vec!["--proxy", "http://x.lan:0"],
    ] {
        let mut n = Netcheck::bare();
        for a in &args {
            n = n.arg(*a);
        }
        let out = n.run();
        out.assert_exit(3);
        assert!(out.stdout.is_empty(), "{}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(!out.stderr.contains("flagsecret"), "{}", out.describe());
    }
}
