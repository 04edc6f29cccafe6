//! BMW's services as they answer in 2026, end to end: the built-in endpoint sets and their roles
//! (pinned through `list --format json`), the CarData set and where it is offered, and what each
//! answer shape of BMW's means to a probe that is not the app — against HTTPS servers on
//! loopback playing BMW's answers.

use crate::support::*;
use serde_json::Value;
use std::sync::Arc;

const API: &str = "api.netcheck.lan";
const SIGNIN: &str = "signin.netcheck.lan";
const NEUTRAL: &str = "neutral.netcheck.lan";
const STREAM: &str = "stream.netcheck.lan";
/// The attestation host of the built-in sets. The fixture resolver answers for it: nothing here
/// leaves loopback.
const ATTESTATION: &str = "bmw-a4a.appspot.com";

const NET: &str = "dns,tcp,tls,http,latency";

/// The body of BMW's quota answer, as public clients logged it.
const QUOTA: &str = r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 02:26:24."}"#;

// ---- the built-in sets --------------------------------------------------------------------------

fn list_json(args: &[&str]) -> Value {
    let mut cmd = Netcheck::bare().arg("list").arg("--format").arg("json");
    for a in args {
        cmd = cmd.arg(*a);
    }
    let out = cmd.run();
    out.assert_exit(0);
    out.report()
}

/// `(name, url, role)` of every endpoint, with ` min_tls=<v>` appended to the url where set and
/// the method in front of it where it is not a GET.
fn endpoint_set(list: &Value) -> Vec<(String, String, String)> {
    list["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            let mut url = e["url"].as_str().unwrap_or("?").to_owned();
            if let Some(v) = e["min_tls"].as_str() {
                url.push_str(&format!(" min_tls={v}"));
            }
            match e["method"].as_str() {
                Some("GET") => {}
                m => url = format!("{} {url}", m.unwrap_or("?")),
            }
            (
                e["name"].as_str().unwrap_or("?").to_owned(),
                url,
                e["role"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

fn set(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(n, u, r)| ((*n).into(), (*u).into(), (*r).into()))
        .collect()
}

#[test]
fn list_pins_the_endpoint_set_of_every_region_and_service() {
    let info_hosts = [
        (
            "identity-cloud",
            "https://gcdm.api.gcp.bmw.cloud:443/",
            "info",
        ),
        ("attestation", "https://bmw-a4a.appspot.com:443/", "info"),
        ("analytics", "https://countly.bmwgroup.com:443/", "info"),
        (
            "analytics-api",
            "https://api.countly.bmwgroup.com:443/",
            "info",
        ),
    ];
    // Late 2026: the app's attestation (Approov) and sign-in's captcha (hCaptcha).
    let attestation_and_captcha = [
        (
            "app-attestation",
            "https://attest.api.approov.io:443/",
            "info",
        ),
        (
            "app-attestation-token",
            "https://haine.approoval.com:443/token",
            "info",
        ),
        ("captcha", "https://hcaptcha.com:443/", "info"),
    ];
    let neutral = ("neutral", "https://www.wikipedia.org:443/", "baseline");

    let mut row = vec![
        (
            "api",
            "https://cocoapi.bmwgroup.com:443/eadrax-ucs/v1/presentation/oauth/config",
            "service",
        ),
        (
            "sign-in",
            "https://customer.bmwgroup.com:443/gcdm/oauth/authenticate",
            "service",
        ),
    ];
    row.extend(info_hosts);
    row.push((
        "analytics-emea",
        "https://emea.analytics.bmwgroup.com:443/",
        "info",
    ));
    row.extend(attestation_and_captcha);
    row.push(neutral);
    for args in [
        &[][..],
        &["--region", "rest_of_world", "--service", "app"][..],
    ] {
        let l = list_json(args);
        assert_eq!(l["profile"], "rest_of_world");
        assert_eq!(l["reading"], "probe");
        assert_eq!(endpoint_set(&l), set(&row), "{args:?}");
    }

    let mut na = vec![
        (
            "api",
            "https://cocoapi.bmwgroup.us:443/eadrax-ucs/v1/presentation/oauth/config",
            "service",
        ),
        ("sign-in", "https://login.bmwusa.com:443/", "service"),
    ];
    na.extend(info_hosts);
    na.extend(attestation_and_captcha);
    na.push(neutral);
    let l = list_json(&["--region", "north_america"]);
    assert_eq!(
        (&l["profile"], &l["reading"]),
        (&"north_america".into(), &"probe".into())
    );
    assert_eq!(endpoint_set(&l), set(&na));

    let l = list_json(&["--region", "china"]);
    assert_eq!(l["reading"], "probe");
    assert_eq!(
        endpoint_set(&l),
        set(&[
            (
                "api",
                "https://myprofile.bmw.com.cn:443/eadrax-coas/v1/cop/publickey",
                "service"
            ),
            ("neutral", "https://www.baidu.com:443/", "baseline"),
        ])
    );

    let l = list_json(&["--service", "cardata"]);
    assert_eq!(
        (&l["profile"], &l["reading"]),
        (&"cardata".into(), &"probe".into())
    );
    assert_eq!(
        endpoint_set(&l),
        set(&[
            (
                "sign-in",
                "https://customer.bmwgroup.com:443/gcdm/oauth/device/code",
                "service"
            ),
            (
                "token",
                "POST https://customer.bmwgroup.com:443/gcdm/oauth/token",
                "service"
            ),
            (
                "api",
                "https://api-cardata.bmwgroup.com:443/customers/vehicles/mappings",
                "service"
            ),
            (
                "stream",
                "tls://customer.streaming-cardata.bmwgroup.com:9000 min_tls=1.3",
                "service"
            ),
            ("captcha", "https://hcaptcha.com:443/", "info"),
            neutral,
        ])
    );
    // The token endpoint gets a made-up device-code grant: no real device code, a nil client id.
    let token = &l["endpoints"][1];
    let body = token["body"].as_str().unwrap_or("");
    assert!(
        body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code")
            && body.contains("client_id=00000000-0000-0000-0000-000000000000"),
        "{token}"
    );
    assert!(
        token["stages"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == "http")),
        "{token}"
    );
    // The stream is only ever a handshake: no http stage, so nothing is said to it.
    let stream = &l["endpoints"][3];
    assert_eq!(stream["protocol"], "tls");
    assert!(
        !stream["stages"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == "http")),
        "{stream}"
    );

    // CarData is not something the app needs: no app set names its hosts.
    for region in ["rest_of_world", "north_america", "china"] {
        let text = list_json(&["--region", region]).to_string();
        assert!(!text.contains("cardata"), "{region}: {text}");
        assert!(!text.contains(":9000"), "{region}: {text}");
    }
    // One user's allow-listing of two Adobe analytics hosts is too weak a source: no set has them.
    for args in [
        &["--service", "cardata"][..],
        &[][..],
        &["--region", "north_america"][..],
    ] {
        let text = list_json(args).to_string();
        assert!(!text.contains("omtrdc"), "{args:?}: {text}");
    }
}

#[test]
fn cardata_outside_the_eu_markets_is_a_usage_error() {
    for region in ["north_america", "china"] {
        for cmd in [&["run"][..], &["list"][..]] {
            let mut n = Netcheck::bare();
            for a in cmd {
                n = n.arg(*a);
            }
            let out = n
                .arg("--service")
                .arg("cardata")
                .arg("--region")
                .arg(region)
                .arg("--no-history")
                .run();
            out.assert_exit(3);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
            assert!(
                out.stderr.contains("EU markets only") && out.stderr.contains(region),
                "{}",
                out.describe()
            );
            assert!(out.stdout.is_empty(), "{}", out.describe());
        }
    }
    // --service names a built-in set; --profile replaces the built-in sets.
    let p = ProfileFile::new(&[EndpointSpec::new("a", "a.netcheck.lan", 443)]);
    let out = Netcheck::bare()
        .arg("list")
        .arg("--profile")
        .arg(p.path().as_os_str())
        .arg("--service")
        .arg("app")
        .run();
    out.assert_exit(3);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    assert!(out.stderr.contains("--service"), "{}", out.describe());
}

// ---- BMW's answers, end to end -------------------------------------------------------------------

/// An app-like world: `api` and `sign-in` answering as told, a healthy neutral baseline, and any
/// extra endpoints; the profile reads answers as `reading` says.
struct World {
    pki: Pki,
    _servers: Vec<HttpsServer>,
    dns: DnsServer,
    profile: ProfileFile,
}

fn world(reading: &str, api: HttpBehaviour, signin: HttpBehaviour) -> World {
    world_with(reading, api, signin, &[])
}

fn world_with(
    reading: &str,
    api: HttpBehaviour,
    signin: HttpBehaviour,
    extra: &[(EndpointSpec, &str)],
) -> World {
    let pki = Pki::new();
    let servers = vec![
        HttpsServer::start(&pki.identity(API), api),
        HttpsServer::start(&pki.identity(SIGNIN), signin),
        HttpsServer::start(&pki.identity(NEUTRAL), HttpBehaviour::status(200)),
    ];
    let dns = DnsServer::start([
        (API, DnsAnswer::localhost()),
        (SIGNIN, DnsAnswer::localhost()),
        (NEUTRAL, DnsAnswer::localhost()),
    ]);
    let mut text = format!("name = \"fixture\"\nreading = \"{reading}\"\n\n");
    text.push_str(&EndpointSpec::new("api", API, servers[0].port()).to_toml());
    text.push_str(&EndpointSpec::new("sign-in", SIGNIN, servers[1].port()).to_toml());
    text.push_str(
        &EndpointSpec::new("neutral", NEUTRAL, servers[2].port())
            .role("baseline")
            .to_toml(),
    );
    for (spec, more) in extra {
        text.push_str(&spec.to_toml());
        text.push_str(more);
    }
    text.push_str("\n[thresholds]\n");
    text.push_str(profile::LOOPBACK_THRESHOLDS);
    World {
        pki,
        _servers: servers,
        dns,
        profile: ProfileFile::raw(&text),
    }
}

fn run(w: &World) -> Outcome {
    Netcheck::engine(&w.profile)
        .resolver(&w.dns)
        .ca_file(&w.pki)
        .only(NET)
        .run()
}

fn reply(status: u16, body: &str) -> HttpBehaviour {
    HttpBehaviour::Reply(HttpReply::status(status).body(body))
}

fn top(r: &Value) -> (String, String) {
    let s = &r["suspects"][0];
    (
        s["id"].as_str().unwrap_or("").to_owned(),
        s["confidence"].as_str().unwrap_or("").to_owned(),
    )
}

/// The steps of every suspect of the report, joined.
fn all_steps(r: &Value) -> String {
    r["suspects"]
        .as_array()
        .map(|a| {
            a.iter()
                .flat_map(|s| s["steps"].as_array().cloned().unwrap_or_default())
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn a_489_or_403_from_the_app_api_with_a_healthy_network_passes() {
    let w = world("probe", reply(489, "Blocked"), reply(403, "Forbidden"));
    let out = run(&w);
    out.assert_exit(0);
    let r = out.report();
    assert_eq!(r["status"], "pass");
    for ep in ["api", "sign-in", "neutral"] {
        assert_stages(&r, ep, &ALL_OK);
    }
    let api = stage(&r, "api", "http");
    assert_eq!(api["data"]["status_code"], 489);
    let summary = api["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("work end to end") && summary.contains("says nothing about your app"),
        "{summary}"
    );
    let text = out.stdout.to_lowercase();
    assert!(!text.contains("http.blocked"), "{}", out.stdout);
    assert!(!all_steps(&r).contains("update the official app"));
    // Nothing points anywhere: only what a network probe cannot test is listed, at low confidence.
    assert!(
        r["suspects"]
            .as_array()
            .is_some_and(|a| a.iter().all(|s| s["confidence"] == "low")),
        "{:#}",
        r["suspects"]
    );

    // The same answers to a custom profile keep their general meaning: the service refuses.
    let w = world("general", reply(489, "Blocked"), reply(403, "Forbidden"));
    let out = run(&w);
    out.assert_exit(2);
    let r = out.report();
    assert_eq!(code(&r, "api", "http"), "http.blocked");
    assert_eq!(code(&r, "sign-in", "http"), "http.blocked");
    assert_eq!(top(&r).0, "server_side");
}

#[test]
fn a_quota_countdown_is_read_and_not_held_against_the_app() {
    let w = world("probe", reply(403, QUOTA), HttpBehaviour::status(401));
    let out = run(&w);
    out.assert_exit(1);
    let r = out.report();
    let api = stage(&r, "api", "http");
    assert_eq!(
        (&api["status"], &api["code"]),
        (&"warn".into(), &"http.rate_limited".into())
    );
    assert_eq!(api["data"]["retry_after_s"], 8784);
    assert_eq!(api["data"]["reason"], "probe_identity");
    let summary = api["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("replenished in 2h 26m 24s"), "{summary}");
    assert!(summary.contains("not your app"), "{summary}");
    let ids = suspect_ids(&r);
    assert!(!ids.iter().any(|i| i == "server_side"), "{ids:?}");
    assert!(!out.stdout.contains("0:00 UTC"));

    // In the general reading the quota is the service's, named with its countdown.
    let w = world("general", reply(403, QUOTA), HttpBehaviour::status(401));
    let out = run(&w);
    out.assert_exit(1);
    let r = out.report();
    assert_eq!(code(&r, "api", "http"), "http.rate_limited");
    assert_eq!(stage(&r, "api", "http")["data"]["retry_after_s"], 8784);
    assert_eq!(top(&r).0, "server_side", "{:#}", r["suspects"]);
    assert!(!all_steps(&r).contains("0:00"), "{}", all_steps(&r));
}

#[test]
fn a_retry_after_header_is_read_like_the_countdown() {
    let limited = HttpBehaviour::Reply(HttpReply::status(429).header("Retry-After", "90"));
    let w = world("probe", limited, HttpBehaviour::status(401));
    let out = run(&w);
    out.assert_exit(1);
    let r = out.report();
    let api = stage(&r, "api", "http");
    assert_eq!(api["code"], "http.rate_limited");
    assert_eq!(api["data"]["retry_after_s"], 90);
    let summary = api["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("replenished in 1m 30s"), "{summary}");
}

#[test]
fn cardata_cu_429_is_rate_limited_and_cu_104_is_named() {
    let cu429 = r#"{"exveErrorId":"CU-429","exveErrorMsg":"API rate limit reached"}"#;
    for status in [403, 429] {
        let w = world("general", reply(status, cu429), HttpBehaviour::status(401));
        let out = run(&w);
        out.assert_exit(1);
        let r = out.report();
        let api = stage(&r, "api", "http");
        assert_eq!(api["code"], "http.rate_limited", "{status}");
        assert_eq!(api["data"]["error_id"], "CU-429");
        assert_eq!(top(&r).0, "cardata_rate_limit", "{:#}", r["suspects"]);
        assert!(all_steps(&r).contains("50 REST calls a day"));
    }
    // To the built-in reading, CU-429 answers this check's own request: a warning, no suspect.
    let w = world("probe", reply(403, cu429), HttpBehaviour::status(401));
    let out = run(&w);
    out.assert_exit(1);
    let r = out.report();
    assert_eq!(code(&r, "api", "http"), "http.rate_limited");
    // (The explain-only CarData cause, listed with what a network check cannot test, is not
    // evidence of this answer.)
    assert!(
        !suspect_ids(&r).iter().any(|i| [
            "cardata_rate_limit",
            "cardata_access",
            "cardata_tls13",
            "server_side"
        ]
        .contains(&i.as_str())),
        "{:#}",
        r["suspects"]
    );

    // A CarData refusal names its error id and what it means. The message is outside text.
    // (`\u001b` is JSON's escape for ESC: the service's message carries a terminal escape.)
    let body = r#"{"exveErrorId":"CU-104","message":"VIN not permitted\u001b[2J"}"#;
    let w = world("general", reply(403, body), HttpBehaviour::status(401));
    let out = run(&w);
    out.assert_exit(2);
    let r = out.report();
    let api = stage(&r, "api", "http");
    assert_eq!(api["code"], "http.blocked");
    assert_eq!(api["data"]["error_id"], "CU-104");
    let summary = api["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("CU-104") && summary.contains("(VIN)"),
        "{summary}"
    );
    assert!(
        !summary.contains('\u{1b}') && summary.contains("\\x1b"),
        "{summary}"
    );
    assert_eq!(top(&r).0, "cardata_access", "{:#}", r["suspects"]);
}

#[test]
fn a_sinkholed_attestation_host_alone_ranks_dns_filter_first() {
    let attestation = EndpointSpec::new("attestation", ATTESTATION, 443)
        .public(true)
        .role("info");
    let w = world_with(
        "probe",
        HttpBehaviour::status(401),
        HttpBehaviour::status(401),
        &[(attestation, "")],
    );
    w.dns.set(ATTESTATION, DnsAnswer::Sinkhole);
    let out = run(&w);
    // Informational: a warning, not a failure; the app's own hosts pass.
    out.assert_exit(1);
    let r = out.report();
    assert_eq!(
        (
            status(&r, "attestation", "dns"),
            code(&r, "attestation", "dns")
        ),
        ("warn", "dns.sinkholed")
    );
    assert_stages(&r, "api", &ALL_OK);
    assert_eq!(
        top(&r),
        ("dns_filter".to_owned(), "high".to_owned()),
        "{:#}",
        r["suspects"]
    );
    assert!(all_steps(&r).contains("bmw-a4a.appspot.com"));

    // A blocklist that answers NXDOMAIN instead points the same way.
    w.dns.set(ATTESTATION, DnsAnswer::NxDomain);
    let r = run(&w).report();
    assert_eq!(code(&r, "attestation", "dns"), "dns.nxdomain");
    assert_eq!(
        top(&r),
        ("dns_filter".to_owned(), "medium".to_owned()),
        "{:#}",
        r["suspects"]
    );
}

/// A TLS server speaking only the given versions, for the stream endpoint.
fn stream_server(pki: &Pki, versions: &[&'static rustls::SupportedProtocolVersion]) -> HttpsServer {
    let id = pki.identity(STREAM);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())
        .expect("certificate and key match");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stream fixture");
    HttpsServer::with_config(listener, config, HttpBehaviour::status(200))
}

#[test]
fn the_cardata_stream_needs_tls_1_3_and_is_never_spoken_to() {
    for (versions, want) in [
        (&[&rustls::version::TLS12][..], "tls.version_too_low"),
        (&[&rustls::version::TLS13][..], "tls.ok"),
    ] {
        let w = world(
            "probe",
            HttpBehaviour::status(401),
            HttpBehaviour::status(401),
        );
        let stream = stream_server(&w.pki, versions);
        w.dns.set(STREAM, DnsAnswer::localhost());
        let mut text = std::fs::read_to_string(w.profile.path()).expect("profile");
        let at = text.find("[thresholds]").expect("thresholds table");
        let spec = EndpointSpec::new("stream", STREAM, stream.port()).protocol("tls");
        text.insert_str(at, &format!("{}min_tls = \"1.3\"\n\n", spec.to_toml()));
        let p = ProfileFile::raw(&text);
        let out = Netcheck::engine(&p)
            .resolver(&w.dns)
            .ca_file(&w.pki)
            .only(NET)
            .run();
        let r = out.report();
        let tls = stage(&r, "stream", "tls");
        assert_eq!(tls["code"], want, "{tls}");
        assert_eq!(tls["data"]["min_tls"], "1.3");
        assert!(
            checks_of(&r, "stream").iter().all(|c| c["probe"] != "http"),
            "no http stage on the stream"
        );
        // A handshake and nothing else: no request, no login.
        assert!(stream.handshakes() >= 1);
        assert!(stream.requests().is_empty(), "{:?}", stream.requests());
        if want == "tls.version_too_low" {
            out.assert_exit(2);
            assert_eq!(tls["data"]["version"], "TLSv1.2");
            let summary = tls["summary"].as_str().unwrap_or_default();
            assert!(
                summary.contains("TLS 1.2") && summary.contains("TLS 1.3"),
                "{summary}"
            );
            assert_eq!(top(&r).0, "cardata_tls13", "{:#}", r["suspects"]);
        } else {
            out.assert_exit(0);
            assert_eq!(tls["data"]["version"], "TLSv1.3");
        }
    }
}

#[test]
fn explain_covers_the_cardata_entries_and_the_probe_reading() {
    for (id, words) in [
        ("cardata_tls13", "TLS 1.3"),
        ("cardata_rate_limit", "50 REST calls a day"),
        ("cardata_access", "CU-104"),
        ("cardata_access", "EU markets only"),
        ("dns_filter", "bmw-a4a.appspot.com"),
    ] {
        let out = Netcheck::bare().arg("explain").arg(id).run();
        out.assert_exit(0);
        assert!(out.stdout.contains(words), "{id}: {}", out.stdout);
    }
    let out = Netcheck::bare().arg("explain").arg("server_side").run();
    assert!(
        out.stdout.contains("(unless reason: probe_identity)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("0:00"), "{}", out.stdout);
}

// ---- CarData's token endpoint, read ---------------------------------------------------------------

const TOKEN: &str = "token.netcheck.lan";
/// The made-up device-code grant of `checks/cardata.toml`.
const GRANT: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=bmw-netcheck-dummy-device-code&client_id=00000000-0000-0000-0000-000000000000";
const FAULT: &str = r#"{"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":"keymanagement.service.invalid_access_token"}}}"#;

/// A CarData-like world: a token endpoint that posts the made-up grant, answered as told, and a
/// healthy neutral host. Returns the run and the requests the token server saw.
fn token_run(answer: HttpBehaviour) -> (Outcome, Vec<crate::support::https::Request>) {
    let pki = Pki::new();
    let token = HttpsServer::start(&pki.identity(TOKEN), answer);
    let neutral = HttpsServer::start(&pki.identity(NEUTRAL), HttpBehaviour::status(200));
    let dns = DnsServer::start([
        (TOKEN, DnsAnswer::localhost()),
        (NEUTRAL, DnsAnswer::localhost()),
    ]);
    let mut text = String::from("name = \"fixture\"\nreading = \"probe\"\n\n");
    text.push_str(
        &EndpointSpec::new("token", TOKEN, token.port())
            .path("/gcdm/oauth/token")
            .to_toml(),
    );
    text.push_str(&format!("method = \"POST\"\nbody = \"{GRANT}\"\n\n"));
    text.push_str(
        &EndpointSpec::new("neutral", NEUTRAL, neutral.port())
            .role("baseline")
            .to_toml(),
    );
    text.push_str("\n[thresholds]\n");
    text.push_str(profile::LOOPBACK_THRESHOLDS);
    let profile = ProfileFile::raw(&text);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .only(NET)
        .run();
    (out, token.requests())
}

#[test]
fn an_oauth_error_from_the_token_endpoint_means_the_sign_in_path_works() {
    for (status, error) in [
        (400, "invalid_grant"),
        (400, "authorization_pending"),
        (403, "access_denied"),
        (401, "invalid_client"),
    ] {
        let body =
            format!(r#"{{"error":"{error}","error_description":"The device code is not valid"}}"#);
        let (out, requests) = token_run(reply(status, &body));
        out.assert_exit(0);
        let r = out.report();
        let http = stage(&r, "token", "http");
        assert_eq!(
            (&http["status"], &http["code"]),
            (&"pass".into(), &"http.ok".into()),
            "{http:#}"
        );
        assert_eq!(http["data"]["oauth_error"], error);
        assert_eq!(http["data"]["status_code"], status);
        let summary = http["summary"].as_str().unwrap_or_default();
        assert!(summary.contains("sign-in path works"), "{summary}");
        // What was sent: the POST of the made-up grant as a form, nothing else.
        let req = requests.first().expect("the token endpoint was asked");
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/gcdm/oauth/token")
        );
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            req.header("content-length"),
            Some(GRANT.len().to_string().as_str())
        );
        assert!(req.header("authorization").is_none());
    }
}

#[test]
fn an_apigee_fault_from_the_token_endpoint_is_bmws_side_with_its_error_code() {
    let (out, _) = token_run(reply(500, FAULT));
    out.assert_exit(2);
    let r = out.report();
    let http = stage(&r, "token", "http");
    assert_eq!(
        (&http["status"], &http["code"]),
        (&"fail".into(), &"http.server_error".into())
    );
    assert_eq!(
        http["data"]["errorcode"],
        "keymanagement.service.invalid_access_token"
    );
    assert_eq!(http["data"]["faultstring"], "Invalid Access Token");
    assert_eq!(top(&r).0, "server_side");
    let summary = http["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("the service's side fails"), "{summary}");

    // The fault's own words are outside text: made plain before they reach the report.
    let hostile = r#"{"fault":{"faultstring":"\u001b[2J<script>x</script>","detail":{"errorcode":"a\u0007b"}}}"#;
    let (out, _) = token_run(reply(500, hostile));
    let r = out.report();
    let http = stage(&r, "token", "http");
    for key in ["errorcode", "faultstring"] {
        let v = http["data"][key].as_str().unwrap_or_default();
        assert!(!v.chars().any(|c| c.is_control()), "{key}: {v:?}");
    }
    assert!(!out.stdout.contains('\u{1b}'));
}

#[test]
fn garbage_or_a_huge_answer_from_the_token_endpoint_is_a_named_http_error() {
    let garbage =
        HttpBehaviour::Reply(HttpReply::status(200).body(vec![0xff, 0x00, 0x13, b'{', b'x']));
    let (out, _) = token_run(garbage);
    out.assert_exit(2);
    let r = out.report();
    let http = stage(&r, "token", "http");
    assert_eq!(http["code"], "http.error", "{http:#}");
    assert!(
        http["summary"]
            .as_str()
            .is_some_and(|s| s.contains("not an OAuth answer")),
        "{http:#}"
    );

    // A megabyte: read up to the cap, then named, never held in full.
    let huge = HttpBehaviour::Reply(HttpReply::status(400).body(vec![b'x'; 1024 * 1024]));
    let (out, _) = token_run(huge);
    out.assert_exit(2);
    let r = out.report();
    let http = stage(&r, "token", "http");
    assert_eq!(http["code"], "http.error", "{http:#}");
    assert_eq!(http["data"]["body_truncated"], true);
    assert!(
        http["data"]["body_bytes"]
            .as_u64()
            .is_some_and(|n| n <= 64 * 1024)
    );
    assert!(
        http["summary"]
            .as_str()
            .is_some_and(|s| s.contains("larger than the 64 KiB")),
        "{http:#}"
    );
}

#[test]
fn causes_no_probe_can_see_are_explained_and_listed_when_the_network_is_fine() {
    for (id, words) in [
        ("cardata_stream_refused", "Not authorized"),
        (
            "cardata_stream_refused",
            "one stream connection per account",
        ),
        ("cardata_stream_refused", "expires after an hour"),
        ("app_attestation_refused", "attest.api.approov.io"),
        ("app_attestation_refused", "rooted"),
        ("captcha_shared_address", "carrier-grade NAT"),
        ("captcha_shared_address", "--egress"),
    ] {
        let out = Netcheck::bare().arg("explain").arg(id).run();
        out.assert_exit(0);
        assert!(out.stdout.contains(words), "{id}: {}", out.stdout);
    }
    let out = Netcheck::bare()
        .arg("explain")
        .arg("--format")
        .arg("json")
        .run();
    out.assert_exit(0);
    for id in [
        "cardata_stream_refused",
        "app_attestation_refused",
        "captcha_shared_address",
    ] {
        assert!(out.stdout.contains(&format!("\"{id}\"")), "{id}");
    }

    // A run where every check passes lists them, at low confidence, beside the other causes a
    // network probe cannot test: the answer to "sign-in fails, the network is fine".
    let w = world(
        "probe",
        HttpBehaviour::status(401),
        HttpBehaviour::status(200),
    );
    let out = run(&w);
    out.assert_exit(0);
    let r = out.report();
    let ids = suspect_ids(&r);
    for id in ["account_credentials", "captcha_shared_address"] {
        assert!(ids.iter().any(|i| i == id), "{id}: {ids:?}");
    }
    // The stream's and the attestation's refusals belong to hosts this run did not check.
    for id in ["cardata_stream_refused", "app_attestation_refused"] {
        assert!(!ids.iter().any(|i| i == id), "{id}: {ids:?}");
    }
    assert!(
        r["suspects"]
            .as_array()
            .is_some_and(|a| a.iter().all(|s| s["confidence"] == "low")),
        "{:#}",
        r["suspects"]
    );
}

#[test]
fn a_blocked_attestation_or_captcha_host_points_at_the_filter_and_names_its_block_page() {
    const APPROOV: &str = "attest.api.approov.io";
    const CAPTCHA: &str = "hcaptcha.com";
    let extra = [
        (
            EndpointSpec::new("app-attestation", APPROOV, 443)
                .public(true)
                .role("info"),
            "",
        ),
        (
            EndpointSpec::new("captcha", CAPTCHA, 443)
                .public(true)
                .role("info"),
            "",
        ),
    ];
    let w = world_with(
        "probe",
        HttpBehaviour::status(401),
        HttpBehaviour::status(401),
        &extra,
    );
    w.dns.set(APPROOV, DnsAnswer::Sinkhole);
    w.dns.set(CAPTCHA, DnsAnswer::NxDomain);
    let out = run(&w);
    // BMW's own hosts answer; the blocked hosts the app also needs are warnings that name the
    // filter, never a pass.
    out.assert_exit(1);
    let r = out.report();
    assert_stages(&r, "api", &ALL_OK);
    assert_eq!(
        (
            status(&r, "app-attestation", "dns"),
            code(&r, "app-attestation", "dns")
        ),
        ("warn", "dns.sinkholed")
    );
    assert_eq!(code(&r, "captcha", "dns"), "dns.nxdomain");
    assert_eq!(
        top(&r),
        ("dns_filter".to_owned(), "high".to_owned()),
        "{:#}",
        r["suspects"]
    );

    // A filter's block page there is named like anywhere else (the dns stage only: the block
    // page's address is never contacted).
    w.dns.set(APPROOV, DnsAnswer::addrs(["146.112.61.104"]));
    let out = Netcheck::engine(&w.profile)
        .resolver(&w.dns)
        .ca_file(&w.pki)
        .only("dns")
        .run();
    let r = out.report();
    let dns = stage(&r, "app-attestation", "dns");
    assert_eq!(dns["code"], "dns.block_page", "{dns:#}");
    assert!(
        dns["data"]["filter"]
            .as_str()
            .is_some_and(|f| f.contains("Umbrella")),
        "{dns:#}"
    );
}

#[test]
fn control_d_s_resolvers_are_named_with_their_source() {
    use bmw_netcheck::probe::blockpages;
    for ip in [
        "76.76.2.2",
        "76.76.10.11",
        "2606:1a40::22",
        "2606:1a40:1::2",
    ] {
        let addr: std::net::IpAddr = ip.parse().expect("address");
        let f = blockpages::resolver_product(&addr).map(|f| f.product.as_str());
        assert_eq!(f, Some("Control D"), "{ip}");
    }
    let outside: std::net::IpAddr = "76.76.3.1".parse().expect("address");
    assert!(blockpages::resolver_product(&outside).is_none());
    let cd = blockpages::table()
        .iter()
        .find(|f| f.product == "Control D")
        .expect("Control D is listed");
    assert!(cd.sources.iter().any(|s| s.contains("docs.controld.com")));
}

#[test]
fn the_new_profile_keys_and_flags_refuse_what_cannot_be_sent() {
    let base = "[[endpoint]]\nname = \"t\"\nhost = \"t.netcheck.lan\"\n";
    for (extra, words) in [
        ("body = \"a=1\"\n", "POST"),
        ("method = \"POST\"\n", "needs a body"),
        ("method = \"POST\"\nbody = \"a=1 b\"\n", "form text"),
        (
            "method = \"DELETE\"\nbody = \"a=1\"\n",
            "expected `GET` or `POST`",
        ),
        (
            "protocol = \"tls\"\nmethod = \"POST\"\nbody = \"a=1\"\n",
            "TLS-only",
        ),
        ("\n[egress]\nstun = [\"no-port\"]\n", "HOST:PORT"),
        ("\n[egress]\nenabled = \"yes\"\n", "expected a boolean"),
    ] {
        let p = ProfileFile::raw(&format!("{base}{extra}"));
        let out = Netcheck::bare()
            .arg("list")
            .arg("--profile")
            .arg(p.path().as_os_str())
            .run();
        out.assert_exit(3);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        assert!(out.stderr.contains(words), "{extra}: {}", out.describe());
    }
    for args in [
        &["--stun", "stun.netcheck.lan:3478"][..],
        &["--egress", "--stun", "stun.netcheck.lan"][..],
        &[
            "--egress", "--stun", "a:1", "--stun", "b:1", "--stun", "c:1", "--stun", "d:1",
            "--stun", "e:1",
        ][..],
    ] {
        let mut cmd = Netcheck::bare().arg("list");
        for a in args {
            cmd = cmd.arg(*a);
        }
        let out = cmd.run();
        out.assert_exit(3);
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
    // Named, the servers are what `list` shows; the check itself stays off until asked for.
    let l = list_json(&["--egress", "--stun", "stun.netcheck.lan:3478"]);
    assert_eq!(l["stun"], serde_json::json!(["stun.netcheck.lan:3478"]));
    let state = |l: &Value| {
        l["probes"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == "egress"))
            .map(|p| p["state"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(state(&l).as_deref(), Some("on"));
    assert_eq!(state(&list_json(&[])).as_deref(), Some("off"));
}
