//! End-to-end tests of the check engine (GitHub issue 2): the real binary against servers the
//! test starts on loopback. Each case asserts the code and status of every stage of the endpoint
//! and the exit code, so a change in any stage's verdict shows up here.

use crate::support::pki::{INTERMEDIATE_CN, ROOT_CN};
use crate::support::*;
use bmw_netcheck::model::Probe;
use bmw_netcheck::probe::registry::{self, Key, Shape};
use serde_json::Value;
use std::time::Duration;

const HOST: &str = "api.netcheck.lan";
const EP: &str = "api";

/// A DNS server answering `HOST` with `127.0.0.1`.
fn dns_localhost() -> DnsServer {
    DnsServer::start([(HOST, DnsAnswer::localhost())])
}

/// `HOST` served by an HTTPS server presenting `leaf` and behaving as told; one engine run.
fn https_run(leaf: Leaf, behaviour: HttpBehaviour) -> (Outcome, HttpsServer) {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.issue(&leaf), behaviour);
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    (out, server)
}

/// A valid certificate for `HOST`, and an HTTP behaviour.
fn http_run(behaviour: HttpBehaviour) -> (Outcome, HttpsServer) {
    https_run(Leaf::for_host(HOST), behaviour)
}

/// `HOST` on a raw TCP server.
fn raw_run(mode: RawMode) -> Outcome {
    let pki = Pki::new();
    let server = RawTcpServer::start(mode);
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run()
}

/// `HOST` answered by the DNS server as told; a healthy HTTPS server behind 127.0.0.1.
fn dns_run(answer: DnsAnswer) -> (Outcome, DnsServer) {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = DnsServer::start([(HOST, answer)]);
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    (out, dns)
}

/// The later stages are skipped, each naming the stage that failed and its code.
fn assert_skips_name(report: &Value, probes: &[&str], failed: &str, failed_code: &str) {
    for p in probes {
        let c = stage(report, EP, p);
        let summary = c["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains(failed) && summary.contains(failed_code),
            "{p} skip summary should name {failed} ({failed_code}): {summary:?}"
        );
    }
}

fn num(v: &Value, key: &str) -> f64 {
    v["data"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("data.{key} should be a number in {v:#}"))
}

// ---- healthy ----------------------------------------------------------------------------------

#[test]
fn healthy_endpoint_passes_every_stage_with_its_measurements() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port()).path("/v1/ping")]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(0);
    let r = out.report();
    assert_stages(&r, EP, &ALL_OK);

    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["status"], "pass");
    assert_eq!(r["region"], "fixture");
    assert_eq!(r["tool"]["name"], "bmw-netcheck");
    assert!(!r["report_id"].as_str().unwrap_or("").is_empty());
    assert!(
        r["started_at"]
            .as_str()
            .is_some_and(|s| humantime::parse_rfc3339(s).is_ok())
    );
    assert!(r["suspects"].is_array());

    let d = stage(&r, EP, "dns");
    assert_eq!(d["data"]["addresses"], serde_json::json!(["127.0.0.1"]));
    assert!(num(d, "resolve_ms") >= 0.0);

    let t = stage(&r, EP, "tcp");
    assert_eq!(t["data"]["address"], format!("127.0.0.1:{}", server.port()));
    assert!(num(t, "connect_ms") >= 0.0);

    let s = stage(&r, EP, "tls");
    assert!(num(s, "handshake_ms") > 0.0);
    assert_eq!(s["data"]["version"], "TLSv1.3");
    let issuer = s["data"]["issuer"].as_str().unwrap_or("");
    assert!(issuer.contains(ROOT_CN), "issuer: {issuer}");
    let not_after = s["data"]["not_after"].as_str().unwrap_or("");
    assert!(
        humantime::parse_rfc3339(not_after).is_ok(),
        "not_after: {not_after}"
    );
    let days = s["data"]["days_left"].as_i64().unwrap_or(-1);
    assert!((364..=365).contains(&days), "days_left: {days}");

    let h = stage(&r, EP, "http");
    assert_eq!(h["data"]["status_code"], 200);
    assert!(num(h, "ttfb_ms") > 0.0);

    let l = stage(&r, EP, "latency");
    let samples = l["data"]["samples_ms"].as_array().expect("samples_ms");
    assert_eq!(samples.len(), 3);
    assert!(samples.iter().all(Value::is_number), "{samples:?}");
    assert!(num(l, "median_ms") >= 0.0);
    assert_eq!(num(l, "loss_pct"), 0.0);

    // The request the server got: the profile's path, with Host naming the non-default port.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/v1/ping")
    );
    let expected_host = format!("{HOST}:{}", server.port());
    assert_eq!(reqs[0].header("host"), Some(expected_host.as_str()));
    assert!(dns.queries_for(HOST) >= 1);
}

// ---- dns --------------------------------------------------------------------------------------

const AFTER_DNS: [&str; 4] = ["tcp", "tls", "http", "latency"];

fn dns_failure(answer: DnsAnswer, want: &str) -> Value {
    let (out, dns) = dns_run(answer);
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("fail", want),
            ("skip", "tcp.skipped"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    assert_skips_name(&r, &AFTER_DNS, "dns", want);
    assert!(dns.queries_for(HOST) >= 1, "the resolver was asked");
    r
}

#[test]
fn dns_nxdomain_fails_and_skips_the_rest() {
    dns_failure(DnsAnswer::NxDomain, "dns.nxdomain");
}

#[test]
fn dns_servfail_fails_and_skips_the_rest() {
    dns_failure(DnsAnswer::ServFail, "dns.servfail");
}

#[test]
fn dns_refused_fails_and_skips_the_rest() {
    dns_failure(DnsAnswer::Refused, "dns.refused");
}

#[test]
fn dns_answer_without_records_is_no_address() {
    dns_failure(DnsAnswer::NoRecords, "dns.no_address");
}

#[test]
fn dns_zero_addresses_are_a_sinkhole_even_for_private_endpoints() {
    let r = dns_failure(DnsAnswer::Sinkhole, "dns.sinkholed");
    let addrs = &stage(&r, EP, "dns")["data"]["addresses"];
    assert_eq!(*addrs, serde_json::json!(["::", "0.0.0.0"]));
}

#[test]
fn dns_loopback_answer_for_a_public_endpoint_is_a_sinkhole() {
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, 443).public(true)]);
    let out = Netcheck::engine(&profile).resolver(&dns).run();
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("fail", "dns.sinkholed"),
            ("skip", "tcp.skipped"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
}

#[test]
fn dns_silent_resolver_times_out_within_the_step_timeout() {
    let (out, dns) = dns_run(DnsAnswer::Silent);
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("fail", "dns.timeout"),
            ("skip", "tcp.skipped"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    assert_skips_name(&r, &AFTER_DNS, "dns", "dns.timeout");
    let took = stage(&r, EP, "dns")["duration_ms"].as_f64().unwrap_or(0.0);
    assert!(
        (900.0..1500.0).contains(&took),
        "dns took {took} ms for --timeout 1s"
    );
    assert!(out.elapsed < Duration::from_secs(3), "{}", out.describe());
    assert!(dns.queries() >= 1);
}

#[test]
fn ip_literal_host_needs_no_dns() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, "127.0.0.1", server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(0);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("skip", "dns.skipped"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("pass", "http.ok"),
            ("pass", "latency.ok"),
        ],
    );
    let summary = stage(&r, EP, "dns")["summary"].as_str().unwrap_or("");
    assert!(summary.contains("127.0.0.1"), "{summary}");
    assert_eq!(dns.queries(), 0, "an IP literal must not be looked up");
    let expected = format!("127.0.0.1:{}", server.port());
    assert_eq!(stage(&r, EP, "tcp")["data"]["address"], expected);
}

#[test]
fn ipv6_only_answer_connects_over_ipv6() {
    if !ipv6_loopback() {
        skip(
            "engine::ipv6_only_answer_connects_over_ipv6: cannot bind [::1] here (no IPv6 loopback)",
        );
        return;
    }
    let pki = Pki::new();
    let server = HttpsServer::start_on("[::1]:0", &pki.identity(HOST), HttpBehaviour::status(200));
    let dns = DnsServer::start([(HOST, DnsAnswer::addrs(["::1"]))]);
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(0);
    let r = out.report();
    assert_stages(&r, EP, &ALL_OK);
    assert_eq!(
        stage(&r, EP, "dns")["data"]["addresses"],
        serde_json::json!(["::1"])
    );
    let expected = format!("[::1]:{}", server.port());
    assert_eq!(stage(&r, EP, "tcp")["data"]["address"], expected);
    assert_eq!(server.requests().len(), 1);
}

// ---- tcp --------------------------------------------------------------------------------------

#[test]
fn tcp_refused_on_a_closed_port() {
    let port = closed_port().port();
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, port)]);
    let out = Netcheck::engine(&profile).resolver(&dns).run();
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("fail", "tcp.refused"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    assert_skips_name(&r, &["tls", "http", "latency"], "tcp", "tcp.refused");
    assert_eq!(
        stage(&r, EP, "tcp")["data"]["address"],
        format!("127.0.0.1:{port}")
    );
}

// ---- tls --------------------------------------------------------------------------------------

/// The stages when the handshake fails with `code`: http skipped, latency measured beside.
fn tls_failure(out: &Outcome, code: &str) -> Value {
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("fail", code),
            ("skip", "http.skipped"),
            ("pass", "latency.ok"),
        ],
    );
    assert_skips_name(&r, &["http"], "tls", code);
    r
}

#[test]
fn tls_chain_through_an_intermediate_is_ok() {
    let leaf = Leaf::for_host(HOST).issuer(Issuer::Intermediate { send_chain: true });
    let (out, server) = https_run(leaf, HttpBehaviour::status(200));
    out.assert_exit(0);
    let r = out.report();
    assert_stages(&r, EP, &ALL_OK);
    let tls = stage(&r, EP, "tls");
    assert_eq!(tls["data"]["chain_intermediates"], 1);
    let issuer = tls["data"]["issuer"].as_str().unwrap_or("");
    assert!(issuer.contains(INTERMEDIATE_CN), "issuer: {issuer}");
    assert_eq!(server.handshakes(), 1);
}

#[test]
fn tls_expired_certificate() {
    let leaf = Leaf::for_host(HOST).validity(Validity::Expired);
    let (out, server) = https_run(leaf, HttpBehaviour::status(200));
    let r = tls_failure(&out, "tls.expired");
    let tls = stage(&r, EP, "tls");
    assert!(
        tls["data"]["days_left"].as_i64().is_some_and(|d| d < 0),
        "{tls:#}"
    );
    assert!(
        tls["data"]["not_after"].is_string(),
        "the certificate is shown: {tls:#}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn tls_not_yet_valid_certificate() {
    let leaf = Leaf::for_host(HOST).validity(Validity::NotYetValid);
    let (out, _server) = https_run(leaf, HttpBehaviour::status(200));
    tls_failure(&out, "tls.not_yet_valid");
}

#[test]
fn tls_certificate_for_another_host() {
    let leaf = Leaf::only(&["other.netcheck.lan"]);
    let (out, _server) = https_run(leaf, HttpBehaviour::status(200));
    tls_failure(&out, "tls.hostname_mismatch");
}

#[test]
fn tls_self_signed_certificate_is_untrusted() {
    let leaf = Leaf::for_host(HOST).issuer(Issuer::SelfSigned);
    let (out, _server) = https_run(leaf, HttpBehaviour::status(200));
    let r = tls_failure(&out, "tls.untrusted");
    let issuer = stage(&r, EP, "tls")["data"]["issuer"]
        .as_str()
        .unwrap_or("");
    assert!(issuer.contains(pki::SELF_SIGNED_CN), "issuer: {issuer}");
}

#[test]
fn tls_missing_intermediate_is_untrusted() {
    let leaf = Leaf::for_host(HOST).issuer(Issuer::Intermediate { send_chain: false });
    let (out, _server) = https_run(leaf, HttpBehaviour::status(200));
    let r = tls_failure(&out, "tls.untrusted");
    assert_eq!(stage(&r, EP, "tls")["data"]["chain_intermediates"], 0);
}

#[test]
fn tls_valid_certificate_of_an_unknown_ca_is_untrusted() {
    // The same server as the healthy case, but the run is not given the test CA.
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile).resolver(&dns).run();
    tls_failure(&out, "tls.untrusted");
}

#[test]
fn tls_silent_server_times_out() {
    let out = raw_run(RawMode::Silent);
    let r = tls_failure(&out, "tls.timeout");
    let took = stage(&r, EP, "tls")["duration_ms"].as_f64().unwrap_or(0.0);
    assert!(
        (900.0..1500.0).contains(&took),
        "tls took {took} ms for --timeout 1s"
    );
}

#[test]
fn tls_handshake_with_something_else_fails() {
    let out = raw_run(RawMode::ssh());
    tls_failure(&out, "tls.handshake_failed");
}

#[test]
fn tls_connection_reset_during_the_handshake_fails() {
    let out = raw_run(RawMode::ResetAfterHello);
    tls_failure(&out, "tls.handshake_failed");
}

#[test]
fn tls_connection_closed_during_the_handshake_fails() {
    let out = raw_run(RawMode::CloseAfterHello);
    tls_failure(&out, "tls.handshake_failed");
}

#[test]
fn tls_certificate_expiring_in_five_days_warns() {
    let leaf = Leaf::for_host(HOST).validity(Validity::ExpiresInDays(5));
    let (out, _server) = https_run(leaf, HttpBehaviour::status(200));
    out.assert_exit(1);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("warn", "tls.expiring_soon"),
            ("pass", "http.ok"),
            ("pass", "latency.ok"),
        ],
    );
    assert_eq!(r["status"], "warn");
    assert_eq!(stage(&r, EP, "tls")["data"]["days_left"], 5);
}

// ---- http -------------------------------------------------------------------------------------

/// The stages when only the http verdict differs from a healthy run.
fn http_verdict(behaviour: HttpBehaviour, status: &str, code: &str, exit: i32) -> Value {
    let (out, server) = http_run(behaviour);
    out.assert_exit(exit);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            (status, code),
            ("pass", "latency.ok"),
        ],
    );
    assert_eq!(server.requests().len(), 1);
    r
}

fn reply(status: u16, body: &str) -> HttpBehaviour {
    HttpBehaviour::Reply(HttpReply::status(status).body(body))
}

#[test]
fn http_200_is_ok() {
    let r = http_verdict(reply(200, "{}"), "pass", "http.ok", 0);
    assert_eq!(stage(&r, EP, "http")["data"]["status_code"], 200);
}

#[test]
fn http_401_is_ok_because_the_service_answered() {
    let r = http_verdict(
        reply(401, "{\"error\":\"unauthorized\"}"),
        "pass",
        "http.ok",
        0,
    );
    assert_eq!(stage(&r, EP, "http")["data"]["status_code"], 401);
}

#[test]
fn http_429_is_rate_limited() {
    let r = http_verdict(reply(429, ""), "warn", "http.rate_limited", 1);
    assert_eq!(r["status"], "warn");
}

#[test]
fn http_redirect_is_ok_and_its_target_is_kept() {
    let found = HttpReply::status(302).header("Location", "https://login.netcheck.lan/");
    let r = http_verdict(HttpBehaviour::Reply(found), "pass", "http.ok", 0);
    let h = stage(&r, EP, "http");
    assert_eq!(h["data"]["status_code"], 302);
    assert_eq!(h["data"]["location"], "https://login.netcheck.lan/");
}

#[test]
fn http_server_date_header_reaches_the_report() {
    // The clock probe compares this header with the device clock; here the server is 1 h behind.
    let behind = HttpReply::status(200).date(DateHeader::Offset(-3600));
    let r = http_verdict(HttpBehaviour::Reply(behind), "pass", "http.ok", 0);
    let date = stage(&r, EP, "http")["data"]["date"]
        .as_str()
        .expect("data.date is the server's Date header");
    let at = httpdate::parse_http_date(date).expect("an HTTP date");
    let lag = std::time::SystemTime::now()
        .duration_since(at)
        .expect("the server's date is in the past")
        .as_secs();
    assert!(
        (3590..3700).contains(&lag),
        "server is {lag} s behind, expected 3600"
    );
}

#[test]
fn http_403_speaking_of_a_quota_is_rate_limited() {
    let body = "{\"statusCode\":403,\"message\":\"Out of call volume quota. Quota will be replenished in 02:00:00.\"}";
    http_verdict(reply(403, body), "warn", "http.rate_limited", 1);
}

#[test]
fn http_403_is_blocked() {
    let r = http_verdict(
        reply(403, "{\"error\":\"forbidden\"}"),
        "fail",
        "http.blocked",
        2,
    );
    assert_eq!(stage(&r, EP, "http")["data"]["status_code"], 403);
}

#[test]
fn http_489_is_blocked() {
    http_verdict(reply(489, "Blocked"), "fail", "http.blocked", 2);
}

#[test]
fn http_503_is_a_server_error() {
    http_verdict(
        reply(503, "down for maintenance"),
        "fail",
        "http.server_error",
        2,
    );
}

#[test]
fn http_408_is_a_server_error() {
    http_verdict(reply(408, ""), "fail", "http.server_error", 2);
}

#[test]
fn http_silence_after_the_handshake_times_out() {
    let (out, server) = http_run(HttpBehaviour::SilentAfterHandshake);
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("fail", "http.timeout"),
            ("pass", "latency.ok"),
        ],
    );
    assert_eq!(server.handshakes(), 1);
    let took = stage(&r, EP, "http")["duration_ms"].as_f64().unwrap_or(0.0);
    assert!(
        (900.0..1500.0).contains(&took),
        "http took {took} ms for --timeout 1s"
    );
}

#[test]
fn expect_status_decides_what_counts_as_reachable() {
    let pki = Pki::new();
    let identity = pki.identity(HOST);
    let unexpected = HttpsServer::start(&identity, HttpBehaviour::status(401));
    let expected_503 = HttpsServer::start(&identity, HttpBehaviour::status(503));
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[
        EndpointSpec::new("strict", HOST, unexpected.port()).expect_status(&[200, 204]),
        EndpointSpec::new("lenient", HOST, expected_503.port()).expect_status(&[503]),
    ]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        "strict",
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("fail", "http.unexpected_status"),
            ("pass", "latency.ok"),
        ],
    );
    assert_stages(&r, "lenient", &ALL_OK);
    assert_eq!(stage(&r, "lenient", "http")["data"]["status_code"], 503);
}

#[test]
fn endless_body_is_capped_and_the_run_finishes() {
    let (out, _server) = http_run(HttpBehaviour::EndlessBody(HttpReply::status(200)));
    out.assert_exit(0);
    let r = out.report();
    assert_stages(&r, EP, &ALL_OK);
    let h = stage(&r, EP, "http");
    assert_eq!(h["data"]["body_truncated"], true);
    assert_eq!(h["data"]["body_bytes"], 64 * 1024);
    assert!(out.elapsed < Duration::from_secs(3), "{}", out.describe());
}

#[test]
fn trickling_body_is_cut_at_the_step_timeout() {
    let behaviour = HttpBehaviour::TrickleBody(HttpReply::status(200), Duration::from_millis(50));
    let (out, _server) = http_run(behaviour);
    out.assert_exit(0);
    let r = out.report();
    assert_stages(&r, EP, &ALL_OK);
    let h = stage(&r, EP, "http");
    assert_eq!(h["data"]["body_truncated"], true);
    let took = h["duration_ms"].as_f64().unwrap_or(0.0);
    assert!(
        (900.0..1500.0).contains(&took),
        "http took {took} ms for --timeout 1s"
    );
}

// ---- deadline ---------------------------------------------------------------------------------

/// The run ends at its deadline, whatever the step timeout (30 s) says: the report's own clock
/// stops within a small margin of it, and the process (start-up and exit included, which a
/// loaded machine stretches) ends far before the step timeout would have let it.
fn assert_within_deadline(out: &Outcome) {
    let took = out.report()["duration_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        took < 1250.0,
        "--deadline 1s, yet the report says the run took {took} ms\n{}",
        out.describe()
    );
    assert!(
        out.elapsed < Duration::from_secs(5),
        "--deadline 1s, yet the process took {:?}\n{}",
        out.elapsed,
        out.describe()
    );
}

#[test]
fn deadline_cuts_a_stuck_handshake() {
    let pki = Pki::new();
    let server = RawTcpServer::start(RawMode::Silent);
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .timeout("30s")
        .deadline("1s")
        .run();
    assert_within_deadline(&out);
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("fail", "tls.timeout"),
            ("skip", "http.skipped"),
            ("pass", "latency.ok"),
        ],
    );
    assert_eq!(r["status"], "fail");
    assert!(r["duration_ms"].as_f64().is_some_and(|d| d < 1250.0));
}

#[test]
fn deadline_cuts_a_silent_http_server() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::SilentAfterHandshake);
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .timeout("30s")
        .deadline("1s")
        .run();
    assert_within_deadline(&out);
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("fail", "http.timeout"),
            ("pass", "latency.ok"),
        ],
    );
}

#[test]
fn deadline_cuts_a_silent_resolver() {
    let dns = DnsServer::start([(HOST, DnsAnswer::Silent)]);
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, 443)]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .timeout("30s")
        .deadline("1s")
        .run();
    assert_within_deadline(&out);
    out.assert_exit(2);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("fail", "dns.timeout"),
            ("skip", "tcp.skipped"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    assert_skips_name(&r, &AFTER_DNS, "dns", "deadline");
}

// ---- selection --------------------------------------------------------------------------------

#[test]
fn skip_dns_with_a_host_name_skips_every_later_stage() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .skip("dns")
        .run();
    out.assert_exit(0);
    let r = out.report();
    assert_stages(
        &r,
        EP,
        &[
            ("skip", "tcp.skipped"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    assert_skips_name(&r, &AFTER_DNS, "dns", "left out");
    assert_eq!(dns.queries(), 0, "--skip dns must not query");
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn only_tls_reports_only_tls_checks() {
    let pki = Pki::new();
    let good = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let expired = pki.issue(&Leaf::for_host(HOST).validity(Validity::Expired));
    let bad = HttpsServer::start(&expired, HttpBehaviour::status(200));
    let dns = dns_localhost();
    let profile = ProfileFile::new(&[
        EndpointSpec::new("good", HOST, good.port()),
        EndpointSpec::new("bad", HOST, bad.port()),
    ]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .only("tls")
        .run();
    out.assert_exit(2);
    let r = out.report();
    let probes: Vec<&str> = r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["probe"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(probes, ["tls", "tls"], "{:#}", r["checks"]);
    assert_stages(&r, "good", &[("pass", "tls.ok")]);
    assert_stages(&r, "bad", &[("fail", "tls.expired")]);
    // The stages tls needs ran unreported; the one it does not need did not run.
    assert!(dns.queries_for(HOST) >= 1);
    assert!(
        good.requests().is_empty(),
        "http must not run under --only tls"
    );
}

// ---- concurrency ------------------------------------------------------------------------------

#[test]
fn endpoints_are_checked_concurrently() {
    let pki = Pki::new();
    let good = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let silent_a = RawTcpServer::start(RawMode::Silent);
    let silent_b = RawTcpServer::start(RawMode::Silent);
    let mute = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::SilentAfterHandshake);
    let dns = DnsServer::start([
        (HOST, DnsAnswer::localhost()),
        ("quiet.netcheck.lan", DnsAnswer::Silent),
    ]);
    let profile = ProfileFile::new(&[
        EndpointSpec::new("good", HOST, good.port()),
        EndpointSpec::new("silent-a", HOST, silent_a.port()),
        EndpointSpec::new("silent-b", HOST, silent_b.port()),
        EndpointSpec::new("mute", HOST, mute.port()),
        EndpointSpec::new("quiet", "quiet.netcheck.lan", 443),
    ]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(2);
    let r = out.report();
    assert_stages(&r, "good", &ALL_OK);
    assert_eq!(code(&r, "silent-a", "tls"), "tls.timeout");
    assert_eq!(code(&r, "silent-b", "tls"), "tls.timeout");
    assert_eq!(code(&r, "mute", "http"), "http.timeout");
    // Silent for this name only, asked twice, while the same resolver answers the others: a
    // filter dropping it, not a timeout of the network.
    assert_eq!(code(&r, "quiet", "dns"), "dns.dropped");
    assert_eq!(status(&r, "quiet", "tcp"), "skip");
    // Four endpoints each wait out a 1 s step; one after another that is at least 4 s.
    assert!(
        out.elapsed < Duration::from_millis(2500),
        "endpoints ran one after another? {:?}\n{}",
        out.elapsed,
        out.describe()
    );
}

// ---- usage errors -----------------------------------------------------------------------------

/// Exit 3, exactly one line on stderr mentioning `what`, nothing on stdout.
fn assert_usage_error(out: &Outcome, what: &str) {
    out.assert_exit(3);
    assert!(
        out.stdout.is_empty(),
        "stdout must be empty\n{}",
        out.describe()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", out.describe());
    assert!(
        out.stderr.ends_with('\n'),
        "the line is terminated\n{}",
        out.describe()
    );
    assert!(
        lines[0].contains(what),
        "stderr should mention {what:?}\n{}",
        out.describe()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = Netcheck::bare().arg("--frobnicate").run();
    assert_usage_error(&out, "--frobnicate");
}

#[test]
fn bad_timeout_is_a_usage_error() {
    let out = Netcheck::bare().arg("--timeout").arg("soon").run();
    assert_usage_error(&out, "soon");
}

#[test]
fn unknown_region_is_a_usage_error() {
    let out = Netcheck::bare()
        .arg("--region")
        .arg("mars")
        .arg("--no-history")
        .run();
    assert_usage_error(&out, "mars");
}

#[test]
fn profile_with_an_unknown_key_is_rejected() {
    let profile = ProfileFile::raw(
        "[[endpoint]]\nname = \"a\"\nhost = \"a.netcheck.lan\"\ncolour = \"blue\"\n",
    );
    let out = Netcheck::engine(&profile).run();
    assert_usage_error(&out, "colour");
}

#[test]
fn missing_profile_file_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("nowhere.toml");
    let out = Netcheck::bare()
        .arg("--profile")
        .arg(&missing)
        .arg("--no-history")
        .run();
    assert_usage_error(&out, "nowhere.toml");
}

// ---- human output -----------------------------------------------------------------------------

/// A run with one good and one failing endpoint, as a person would read it.
struct Mixed {
    _pki: Pki,
    _good: HttpsServer,
    _dns: DnsServer,
    profile: ProfileFile,
    ca: std::path::PathBuf,
    resolver: String,
}

impl Mixed {
    fn new() -> Mixed {
        let pki = Pki::new();
        let good = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
        let dns = DnsServer::start([
            (HOST, DnsAnswer::localhost()),
            ("gone.netcheck.lan", DnsAnswer::NxDomain),
        ]);
        let profile = ProfileFile::new(&[
            EndpointSpec::new("good", HOST, good.port()),
            EndpointSpec::new("gone", "gone.netcheck.lan", 443),
        ]);
        let ca = pki.ca_file().to_owned();
        let resolver = dns.addr().to_string();
        Mixed {
            _pki: pki,
            _good: good,
            _dns: dns,
            profile,
            ca,
            resolver,
        }
    }

    fn netcheck(&self) -> Netcheck {
        Netcheck::engine(&self.profile)
            .resolver_addr(&self.resolver)
            .ca_path(&self.ca)
            .format("human")
    }
}

const ESC: char = '\u{1b}';

#[test]
fn human_report_groups_marks_under_each_endpoint() {
    let m = Mixed::new();
    // -v: every check, one line each, under its endpoint.
    let out = m.netcheck().color("never").arg("-v").run();
    out.assert_exit(2);
    let text = &out.stdout;
    assert!(
        !text.contains(ESC),
        "--color never: no escape codes\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let header = |name: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no header line for {name}\n{text}"))
    };
    let (good, gone) = (header("good"), header("gone"));
    assert!(good < gone, "endpoints in profile order\n{text}");
    let block = |from: usize| -> Vec<&str> {
        lines[from + 1..]
            .iter()
            .take_while(|l| l.starts_with("  "))
            .copied()
            .collect()
    };
    let good_lines = block(good);
    assert_eq!(good_lines.len(), 5, "five stages under good\n{text}");
    for (line, probe) in good_lines
        .iter()
        .zip(["dns", "tcp", "tls", "http", "latency"])
    {
        assert!(
            line.trim_start().starts_with(&format!("✓ {probe}")),
            "{line:?} should be a ✓ {probe} line\n{text}"
        );
    }
    let gone_lines = block(gone);
    assert!(
        gone_lines.len() >= 2,
        "dns and the skips under gone\n{text}"
    );
    assert!(
        gone_lines[0].trim_start().starts_with("✗ dns") && gone_lines[0].contains("dns.nxdomain"),
        "{:?}\n{text}",
        gone_lines[0]
    );
    // The skipped stages, one line each or folded into one line when they share a reason.
    let skips = gone_lines[1..].join("\n");
    assert!(
        gone_lines[1..]
            .iter()
            .all(|l| l.trim_start().starts_with("- ")),
        "{text}"
    );
    for probe in ["tcp", "tls", "http", "latency"] {
        assert!(skips.contains(probe), "{probe} is shown as skipped\n{text}");
    }
    assert!(text.contains("FAIL"), "{text}");
}

#[test]
fn color_always_paints_even_into_a_pipe() {
    let m = Mixed::new();
    let out = m.netcheck().color("always").env("NO_COLOR", "1").run();
    out.assert_exit(2);
    assert!(
        out.stdout.contains(ESC),
        "--color always: escape codes\n{}",
        out.stdout
    );
}

#[test]
fn color_auto_paints_a_terminal() {
    let m = Mixed::new();
    let out = m.netcheck().run_on_tty();
    out.assert_exit(2);
    assert!(out.stdout.contains("good"), "{}", out.describe());
    assert!(
        out.stdout.contains(ESC),
        "a terminal gets colour\n{}",
        out.stdout
    );
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let m = Mixed::new();
    let out = m.netcheck().env("NO_COLOR", "1").run_on_tty();
    out.assert_exit(2);
    assert!(out.stdout.contains("good"), "{}", out.describe());
    assert!(
        !out.stdout.contains(ESC),
        "NO_COLOR: no escape codes\n{}",
        out.stdout
    );
}

#[test]
fn color_auto_leaves_a_pipe_plain() {
    let m = Mixed::new();
    let out = m.netcheck().run();
    out.assert_exit(2);
    assert!(
        !out.stdout.contains(ESC),
        "a pipe gets no colour\n{}",
        out.stdout
    );
}

// ---- closed pipe ------------------------------------------------------------------------------

#[test]
fn closed_stdout_pipe_is_not_a_crash() {
    let m = Mixed::new();
    for format in ["human", "json"] {
        let out = m.netcheck().format(format).run_into_closed_pipe();
        assert!(
            !out.stderr.contains("panicked"),
            "{format}\n{}",
            out.describe()
        );
        assert_eq!(
            out.code,
            2,
            "the verdict still decides the exit code\n{}",
            out.describe()
        );
    }
}

// ---- the system resolver's settings (resolvconf) ---------------------------------------------

/// A directory standing in for `/`, with `etc/` and systemd-resolved's `run/` directory.
fn resolv_root() -> tempfile::TempDir {
    let root = tempfile::Builder::new()
        .prefix("netcheck-resolv")
        .tempdir()
        .expect("temporary directory");
    for dir in ["etc", "run/systemd/resolve"] {
        std::fs::create_dir_all(root.path().join(dir)).expect("directory");
    }
    root
}

/// A run of the resolvconf probe alone on `root`'s files.
fn resolvconf_run(root: &std::path::Path) -> (Outcome, Value) {
    let profile = ProfileFile::new(&[EndpointSpec::new("unused", HOST, 443)]);
    let out = Netcheck::engine(&profile)
        .only("resolvconf")
        .env("BMW_NETCHECK_RESOLV_ROOT", &root.to_string_lossy())
        .run();
    let report = out.report();
    let checks = report["checks"].as_array().expect("checks").clone();
    assert_eq!(checks.len(), 1, "{:#}", report["checks"]);
    (out, checks[0].clone())
}

#[test]
fn resolvconf_names_systemd_resolveds_stub_and_the_servers_behind_it() {
    let root = resolv_root();
    let dir = root.path();
    std::fs::write(
        dir.join("run/systemd/resolve/stub-resolv.conf"),
        "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n\
         nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan corp.example\n",
    )
    .expect("stub file");
    std::fs::write(
        dir.join("run/systemd/resolve/resolv.conf"),
        "nameserver 192.0.2.53\nnameserver 2001:db8::53\n",
    )
    .expect("upstream file");
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        dir.join("etc/resolv.conf"),
    )
    .expect("link");
    let (out, c) = resolvconf_run(dir);
    out.assert_exit(0);
    assert_eq!(c["code"], "resolvconf.ok", "{c:#}");
    assert_eq!(c["data"]["source"], "systemd-resolved");
    assert_eq!(c["data"]["link"], "../run/systemd/resolve/stub-resolv.conf");
    assert_eq!(c["data"]["nameservers"], serde_json::json!(["127.0.0.53"]));
    assert_eq!(
        c["data"]["upstreams"],
        serde_json::json!(["192.0.2.53", "2001:db8::53"])
    );
    assert_eq!(
        c["data"]["search"],
        serde_json::json!(["lan", "corp.example"])
    );
    let summary = c["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("192.0.2.53"), "{summary}");
}

#[test]
fn resolvconf_without_a_name_server_fails_and_a_fifo_does_not_block() {
    let root = resolv_root();
    let dir = root.path();
    std::fs::write(
        dir.join("etc/resolv.conf"),
        "# Generated by NetworkManager\nsearch lan\n",
    )
    .expect("file");
    let (out, c) = resolvconf_run(dir);
    out.assert_exit(2);
    assert_eq!(c["code"], "resolvconf.no_resolver", "{c:#}");
    assert_eq!(c["data"]["source"], "NetworkManager");
    assert_eq!(c["data"]["nameservers"], serde_json::json!([]));
    assert_eq!(out.report()["suspects"][0]["id"], "no_connectivity");

    // A FIFO where the file should be: read without blocking, refused, reported as a skip.
    std::fs::remove_file(dir.join("etc/resolv.conf")).expect("remove");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        dir.join("etc/resolv.conf"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
    let (out, c) = resolvconf_run(dir);
    out.assert_exit(0);
    assert_eq!(c["code"], "resolvconf.skipped", "{c:#}");
    assert_eq!(c["data"]["nameservers"], serde_json::json!([]));
    assert!(
        c["summary"].as_str().unwrap_or_default().contains("FIFO"),
        "{c:#}"
    );
}

// ---- measurements in data ---------------------------------------------------------------------

/// The contract's `data` keys of a probe, as its definition declares them (with whether each is
/// a list).
fn contract_keys(probe: &str) -> &'static [Key] {
    let p = Probe::from_name(probe).unwrap_or_else(|| panic!("{probe} is no registered probe"));
    registry::measurement_keys(p)
}

/// `endpoint probe code: key` for every contract key missing from a check that ran, or of the
/// wrong shape (a value that could not be measured is there as `null`, a list as `[]`).
fn missing_keys(report: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    for c in report["checks"].as_array().expect("checks") {
        if c["status"] == "skip" {
            continue;
        }
        let probe = c["probe"].as_str().unwrap_or("?");
        for key in contract_keys(probe) {
            let value = &c["data"][key.name];
            let shaped = match key.shape {
                Shape::List => value.is_array(),
                Shape::Scalar => !value.is_array() && c["data"].get(key.name).is_some(),
            };
            if !shaped {
                let target = c["target"].as_str().unwrap_or("-");
                missing.push(format!(
                    "{target} {}: {}",
                    c["code"].as_str().unwrap_or("?"),
                    key.name
                ));
            }
        }
    }
    missing
}

#[test]
fn failed_checks_still_carry_their_measurement_keys() {
    let pki = Pki::new();
    let expired = pki.issue(&Leaf::for_host(HOST).validity(Validity::Expired));
    let expired = HttpsServer::start(&expired, HttpBehaviour::status(200));
    let mute = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::SilentAfterHandshake);
    let good = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(503));
    let dns = DnsServer::start([
        (HOST, DnsAnswer::localhost()),
        ("gone.netcheck.lan", DnsAnswer::NxDomain),
    ]);
    let profile = ProfileFile::new(&[
        EndpointSpec::new("gone", "gone.netcheck.lan", 443),
        EndpointSpec::new("closed", HOST, closed_port().port()),
        EndpointSpec::new("expired", HOST, expired.port()),
        EndpointSpec::new("mute", HOST, mute.port()),
        EndpointSpec::new("down", HOST, good.port()),
    ]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(2);
    let r = out.report();
    let codes: Vec<&str> = ["gone", "closed", "expired", "mute", "down"]
        .iter()
        .map(|ep| {
            checks_of(&r, ep)
                .into_iter()
                .find(|c| c["status"] == "fail")
                .and_then(|c| c["code"].as_str())
                .unwrap_or("none")
        })
        .collect();
    assert_eq!(
        codes,
        [
            "dns.nxdomain",
            "tcp.refused",
            "tls.expired",
            "http.timeout",
            "http.server_error"
        ]
    );
    assert_eq!(missing_keys(&r), Vec::<String>::new(), "{:#}", r["checks"]);
}

#[test]
fn timed_out_checks_still_carry_their_measurement_keys() {
    // The step timeout of the tls stage, and the run's deadline cutting dns and tls.
    let pki = Pki::new();
    let silent = RawTcpServer::start(RawMode::Silent);
    let dns = DnsServer::start([
        (HOST, DnsAnswer::localhost()),
        ("quiet.netcheck.lan", DnsAnswer::Silent),
    ]);
    let profile = ProfileFile::new(&[EndpointSpec::new("silent", HOST, silent.port())]);
    let step = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    let r = step.report();
    assert_eq!(code(&r, "silent", "tls"), "tls.timeout");
    let mut missing = missing_keys(&r);

    let profile = ProfileFile::new(&[
        EndpointSpec::new("silent", HOST, silent.port()),
        EndpointSpec::new("quiet", "quiet.netcheck.lan", 443),
    ]);
    let cut = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .timeout("30s")
        .deadline("1s")
        .run();
    let r = cut.report();
    assert_eq!(code(&r, "silent", "tls"), "tls.timeout");
    assert_eq!(code(&r, "quiet", "dns"), "dns.timeout");
    missing.extend(missing_keys(&r));
    assert_eq!(missing, Vec::<String>::new());
}

/// Ctrl-C is not a crash: the report of what finished is printed, and the stages that were cut
/// short are skipped (not failed: the network did nothing wrong).
#[test]
fn ctrl_c_prints_what_was_found_so_far() {
    interrupted_by(libc::SIGINT);
}

/// A service manager's SIGTERM (systemd stopping a slow run) gets the same report.
#[test]
fn sigterm_prints_what_was_found_so_far() {
    interrupted_by(libc::SIGTERM);
}

fn interrupted_by(signal: i32) {
    let server = RawTcpServer::start(RawMode::Silent);
    let profile = ProfileFile::new(&[EndpointSpec::new(EP, "127.0.0.1", server.port())]);
    let child = Netcheck::engine(&profile)
        .timeout("30s")
        .deadline("60s")
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until it has connected (its signal handlers are set by then) and started the
    // handshake the server never answers.
    let waited = std::time::Instant::now();
    while server.accepted() == 0 && waited.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "send signal {signal}");
    let started = std::time::Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "Ctrl-C must end the run at once"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    crate::support::schema::assert_valid(crate::support::schema::Doc::Report, &r);
    assert_eq!(code(&r, EP, "tcp"), "tcp.ok");
    assert_eq!(status(&r, EP, "tls"), "skip");
    let summary = stage(&r, EP, "tls")["summary"].as_str().unwrap_or("");
    assert!(summary.contains("interrupted"), "{summary}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "only what finished counts: {stdout}"
    );
}
