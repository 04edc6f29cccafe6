//! The network faults, each run against the real binary in the client namespace, across the
//! delay line, against servers in the server namespace. Every case asserts exact codes, the
//! lower bounds physics sets on its times and the limits a wrong behaviour would cross, and
//! returns a line of what it measured for the CI log (how close the figures come to the floor
//! and to curl is the benchmark's, BENCHMARKS.md).

use super::bed::{SERVER_V4, SERVER_V6, Testbed};
use super::delayline::{Filter, Shaping, predicted_losses};
use super::harness::{
    Curl, assert_bounded, assert_within, data_f64, dns_in, duration_ms, https_in, median, raw_in,
    run_in,
};
use crate::support::{
    DnsAnswer, EndpointSpec, HttpBehaviour, Netcheck, Pki, ProfileFile, RawMode, assert_stages,
    stage,
};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const HOST: &str = "api.netcheck.lan";
const NAME: &str = "api";
const RESOLVER: &str = "10.213.0.2:53";

/// A case: its name, whether it compares timings (those run alone), and the function that
/// runs it (panics on failure, returns its figures).
pub struct Case {
    pub name: &'static str,
    pub timing: bool,
    pub run: fn() -> String,
}

const fn case(name: &'static str, timing: bool, run: fn() -> String) -> Case {
    Case { name, timing, run }
}

/// Every case; within each kind, longest first.
pub fn all() -> Vec<Case> {
    vec![
        case("rtt_1500ms", true, || {
            rtt_case(1500, 3, ("fail", "latency.high"), 2)
        }),
        case("rtt_300ms", true, || {
            rtt_case(300, 5, ("warn", "latency.high"), 1)
        }),
        case("rtt_50ms", true, || {
            rtt_case(50, 7, ("pass", "latency.ok"), 0)
        }),
        case("loss_50pct", false, || loss_case(0.5, 120, 0x5eed_0050)),
        case("http_silence", false, http_silence),
        case("tls_silence", false, tls_silence),
        case("loss_10pct", false, || loss_case(0.1, 200, 0x5eed_0010)),
        case("broken_ipv6", false, broken_ipv6),
        case("syn_blackhole", false, syn_blackhole),
        case("dns_blackhole", false, dns_blackhole),
        case("dns_slow_link", false, dns_slow_link),
        case("reset_mid_handshake", false, reset_mid_handshake),
        case("ipv6_only_host", false, ipv6_only_host),
    ]
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_V4), port)
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(SERVER_V6), port)
}

fn testbed(shaping: Shaping) -> Testbed {
    let bed = Testbed::new(shaping).expect("set up the namespaces and the delay line");
    bed.check_isolated()
        .expect("the client namespace reaches nothing but the line");
    bed
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A profile of one endpoint with the default thresholds (warn above 250 ms, fail above
/// 1000 ms, fail at 50 % loss).
fn profile(host: &str) -> ProfileFile {
    ProfileFile::with_thresholds(&[EndpointSpec::new(NAME, host, 443)], "")
}

/// The endpoint stages and the ipv6 probe (reported where the binary has it).
const PROBES: &str = "dns,tcp,tls,http,latency,ipv6";

/// The ipv6 probe's check, when this build of the tool reports one.
fn ipv6_check(report: &Value) -> Option<&Value> {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["probe"] == "ipv6"))
}

/// 50, 300 and 1500 ms: the tool's connect time and latency median agree with curl's
/// time_connect on the same path within max(2 ms, 5 %), and the latency code follows the
/// default thresholds. DNS, TLS and HTTP each take about one round trip.
fn rtt_case(rtt_ms: u64, samples: u32, want: (&str, &str), exit: i32) -> String {
    let rtt = rtt_ms as f64;
    let bed = testbed(Shaping::rtt(millis(rtt_ms)));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let _https = https_in(
        &bed,
        v4(443),
        &pki.identity(HOST),
        HttpBehaviour::status(200),
    );
    let profile = profile(HOST);
    let curl = Curl::start(&bed, v4(443), 5);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .timeout("5s")
            .deadline("30s")
            .samples(samples),
    );
    let curl_ms = curl.map(Curl::connect_ms);
    out.assert_exit(exit);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("pass", "http.ok"),
            want,
        ],
    );
    let resolve = data_f64(stage(&report, NAME, "dns"), "resolve_ms");
    let connect = data_f64(stage(&report, NAME, "tcp"), "connect_ms");
    let lat = stage(&report, NAME, "latency");
    let med = data_f64(lat, "median_ms");
    assert_eq!(data_f64(lat, "loss_pct"), 0.0, "no loss on this line");
    let handshake = data_f64(stage(&report, NAME, "tls"), "handshake_ms");
    let ttfb = data_f64(stage(&report, NAME, "http"), "ttfb_ms");
    // What curl measures on the same path, at the same time: logged beside the tool's figures.
    // How close the two are is a benchmark figure (BENCHMARKS.md, `bench/run.sh`), not a test:
    // on a loaded machine any upper bound on a time is a coin toss.
    let curl_text = match curl_ms {
        Ok(c) => format!(
            "curl time_connect median {:.2} ms of {} runs",
            median(&c),
            c.len()
        ),
        Err(why) => why,
    };
    // Nothing crosses the line faster than its delay; each of these is at least one round trip.
    // A lower bound holds whatever else the machine is doing, so it is what the test asserts.
    for (what, value) in [
        ("tcp connect_ms", connect),
        ("latency median_ms", med),
        ("dns resolve_ms", resolve),
        ("tls handshake_ms", handshake),
        ("http ttfb_ms", ttfb),
    ] {
        assert!(
            value >= rtt,
            "{what} = {value:.2} beats the {rtt_ms} ms round trip"
        );
    }
    // A request that waits for the ACK of the TLS Finished (Nagle's algorithm; the tool's socket
    // needs TCP_NODELAY) leaves a whole round trip late. On the long lines that extra round trip
    // dwarfs any scheduling delay, so there the test can tell it apart from load.
    if rtt_ms >= 300 {
        assert!(
            ttfb < rtt * 1.5,
            "http ttfb_ms = {ttfb:.2} for a {rtt_ms} ms round trip: the request left one round \
             trip late (Nagle's algorithm; the tool's socket needs TCP_NODELAY)"
        );
    }
    format!(
        "RTT {rtt_ms} ms: tool connect {connect:.2} ms, latency median {med:.2} ms ({}; samples {}), \
         {curl_text}; dns {resolve:.2} ms, tls {handshake:.2} ms, ttfb {ttfb:.2} ms",
        want.1, lat["data"]["samples_ms"]
    )
}

/// 10 % and 50 % loss of connection attempts, drawn from a seeded generator: the tool's
/// loss_pct is exactly the share of its samples the line dropped (and which ones), and that
/// share is within 3 sigma of the binomial expectation.
fn loss_case(rate: f64, samples: u32, seed: u64) -> String {
    let n = samples as usize;
    // The tcp stage's connect is the first sample, then one connect per further sample: SYN k
    // is sample k. The first seed from `seed` on that lets the tcp stage through is used
    // (without a connection there are no samples): still fixed, so the run is reproducible.
    let (seed, predicted) = (seed..)
        .map(|s| (s, predicted_losses(s, rate, n)))
        .find(|(_, p)| !p[0])
        .expect("some seed lets the first SYN through");
    let lost: Vec<usize> = (0..n).filter(|i| predicted[*i]).collect();
    // Samples 1..n are Bernoulli draws; sample 0 is answered by construction.
    let draws = (n - 1) as f64;
    let sigma = (draws * rate * (1.0 - rate)).sqrt();
    let expect_pct = (lost.len() as f64 * 1000.0 / n as f64).round() / 10.0;
    let centre = draws * rate * 100.0 / n as f64;
    let band = 300.0 * sigma / n as f64;
    assert_within(
        "loss of the seeded draw (%)",
        expect_pct,
        centre - band,
        centre + band,
    );

    let bed = testbed(Shaping::rtt(millis(2)).with_loss(rate, Filter::syn_to(Some(443)), seed));
    let _server = raw_in(&bed, v4(443), RawMode::Silent);
    let profile = profile(&SERVER_V4.to_string());
    // A lost SYN is retransmitted after 1 s; a 100 ms step timeout makes it a lost sample.
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .only("tcp,latency")
            .timeout("100ms")
            .deadline("60s")
            .samples(samples),
    );
    let (status, exit) = if expect_pct >= 50.0 {
        ("fail", 2)
    } else {
        ("warn", 1)
    };
    out.assert_exit(exit);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[("pass", "tcp.ok"), (status, "latency.loss")],
    );
    let lat = stage(&report, NAME, "latency");
    let loss_pct = data_f64(lat, "loss_pct");
    assert_eq!(loss_pct, expect_pct, "loss_pct against the line's drops");
    let got: Vec<usize> = lat["data"]["samples_ms"]
        .as_array()
        .expect("samples_ms is a list")
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_null())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        got, lost,
        "the samples reported lost are those the line dropped"
    );
    let stats = bed.stats();
    assert_eq!(stats.loss_draws, n as u64, "SYNs that met the loss rule");
    assert_eq!(stats.lost[0], lost.len() as u64, "SYNs the line dropped");
    let med = data_f64(lat, "median_ms");
    format!(
        "{:.0} % loss, {n} samples, seed {seed:#x}: line dropped {} SYNs, tool loss_pct {loss_pct} ({status}), \
         binomial {centre:.1} ± {band:.1} (3 sigma); median {med:.2} ms at 2 ms RTT",
        rate * 100.0,
        lost.len(),
    )
}

/// Every connection attempt to the port vanishes while port 80 of the host answers (a reset): a
/// port filter, `tcp.filtered` (drop) after exactly `--timeout`, and
/// the run ends soon after.
fn syn_blackhole() -> String {
    let bed = testbed(Shaping::rtt(millis(50)).with_blackhole(Filter::syn_to(Some(443))));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let https = https_in(
        &bed,
        v4(443),
        &pki.identity(HOST),
        HttpBehaviour::status(200),
    );
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .timeout("1s"),
    );
    out.assert_exit(2);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("fail", "tcp.filtered"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    let tcp = stage(&report, NAME, "tcp");
    // Port 80 of the same host answers (a reset): the silence is port 443's, a filter.
    assert_eq!(tcp["data"]["filter"], "drop", "{tcp:#}");
    assert_eq!(tcp["data"]["control"]["result"], "refused", "{tcp:#}");
    let took = duration_ms(tcp);
    assert_bounded("tcp duration_ms", took, 1000.0, 1500.0);
    let elapsed = out.elapsed.as_secs_f64() * 1000.0;
    assert!(
        elapsed < 2500.0,
        "the run took {elapsed:.0} ms; --timeout 1s and one 50 ms lookup should end it well before 2.5 s"
    );
    let stats = bed.stats();
    assert!(stats.blackholed[0] >= 1, "the line dropped the SYNs");
    assert_eq!(https.handshakes(), 0, "nothing reached the server");
    format!(
        "SYN blackhole, --timeout 1s: tcp.filtered (drop) after {took:.1} ms, run ended in {elapsed:.0} ms, \
         {} SYN(s) dropped",
        stats.blackholed[0]
    )
}

/// The resolver's port swallows every query: `dns.timeout` within `--timeout`.
fn dns_blackhole() -> String {
    let bed = testbed(Shaping::rtt(millis(50)).with_blackhole(Filter::udp_to(53)));
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .timeout("1s"),
    );
    out.assert_exit(2);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("fail", "dns.timeout"),
            ("skip", "tcp.skipped"),
            ("skip", "tls.skipped"),
            ("skip", "http.skipped"),
            ("skip", "latency.skipped"),
        ],
    );
    let took = duration_ms(stage(&report, NAME, "dns"));
    assert_bounded("dns duration_ms", took, 1000.0, 1500.0);
    let elapsed = out.elapsed.as_secs_f64() * 1000.0;
    assert!(
        elapsed < 2500.0,
        "the run took {elapsed:.0} ms with --timeout 1s"
    );
    format!(
        "DNS blackhole, --timeout 1s: dns.timeout after {took:.1} ms, run ended in {elapsed:.0} ms, \
         {} queries dropped",
        bed.stats().blackholed[0]
    )
}

/// DNS across an 800 ms link: resolve_ms is one round trip (A and AAAA go out together).
fn dns_slow_link() -> String {
    let rtt = 800.0;
    let bed = testbed(Shaping::rtt(millis(800)));
    let dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .only("dns")
            .timeout("5s"),
    );
    out.assert_exit(0);
    let report = out.report();
    assert_stages(&report, NAME, &[("pass", "dns.ok")]);
    let resolve = data_f64(stage(&report, NAME, "dns"), "resolve_ms");
    // One round trip, not two (a resend or a second query in a row would take two).
    assert_bounded("dns resolve_ms", resolve, rtt, 2.0 * rtt);
    assert_eq!(
        stage(&report, NAME, "dns")["data"]["addresses"],
        serde_json::json!([SERVER_V4.to_string()])
    );
    format!(
        "DNS over an 800 ms RTT link: resolve_ms {resolve:.2} ({} queries answered)",
        dns.queries()
    )
}

/// The server accepts, then never says a word: `tls.timeout` after `--timeout`, across a
/// 300 ms link, while the latency samples still see the link.
fn tls_silence() -> String {
    let bed = testbed(Shaping::rtt(millis(300)));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let server = raw_in(&bed, v4(443), RawMode::Silent);
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .timeout("2s")
            .samples(3),
    );
    out.assert_exit(2);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("fail", "tls.timeout"),
            ("skip", "http.skipped"),
            ("warn", "latency.high"),
        ],
    );
    let connect = data_f64(stage(&report, NAME, "tcp"), "connect_ms");
    assert_bounded("tcp connect_ms", connect, 300.0, 600.0);
    let tls = stage(&report, NAME, "tls");
    let took = duration_ms(tls);
    assert_bounded("tls duration_ms", took, 2000.0, 2600.0);
    let elapsed = ms_of(&out);
    // dns (1 RTT) + tcp (1 RTT) + the 2 s handshake wait, and not much more.
    assert_bounded("run time (ms)", elapsed, 2600.0, 4000.0);
    assert!(server.accepted() >= 1, "the server accepted the connection");
    format!(
        "accept then silence at TLS over 300 ms RTT, --timeout 2s: tls.timeout after {took:.1} ms, \
         run {elapsed:.0} ms, connect {connect:.2} ms"
    )
}

/// The handshake completes, the request gets no answer: `http.timeout` after `--timeout`.
fn http_silence() -> String {
    let bed = testbed(Shaping::rtt(millis(300)));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let server = https_in(
        &bed,
        v4(443),
        &pki.identity(HOST),
        HttpBehaviour::SilentAfterHandshake,
    );
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .timeout("2s")
            .samples(3),
    );
    out.assert_exit(2);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("fail", "http.timeout"),
            ("warn", "latency.high"),
        ],
    );
    let handshake = data_f64(stage(&report, NAME, "tls"), "handshake_ms");
    assert_bounded("tls handshake_ms", handshake, 300.0, 600.0);
    let took = duration_ms(stage(&report, NAME, "http"));
    assert_bounded("http duration_ms", took, 2000.0, 2600.0);
    assert_eq!(server.handshakes(), 1, "one TLS session (the http stage's)");
    format!(
        "accept then silence at HTTP over 300 ms RTT, --timeout 2s: http.timeout after {took:.1} ms \
         (tls.ok in {handshake:.2} ms)"
    )
}

/// The server reads the ClientHello and answers with a TCP reset: `tls.handshake_failed`
/// about one round trip after the hello, and the latency samples are unaffected.
fn reset_mid_handshake() -> String {
    let bed = testbed(Shaping::rtt(millis(50)));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4)]))],
    );
    let _server = raw_in(&bed, v4(443), RawMode::ResetAfterHello);
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .timeout("2s"),
    );
    out.assert_exit(2);
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("fail", "tls.handshake_failed"),
            ("skip", "http.skipped"),
            ("pass", "latency.ok"),
        ],
    );
    let tls = stage(&report, NAME, "tls");
    let handshake = data_f64(tls, "handshake_ms");
    assert_bounded("tls handshake_ms", handshake, 50.0, 100.0);
    format!(
        "RST after the ClientHello over 50 ms RTT: tls.handshake_failed after {handshake:.2} ms ({})",
        tls["summary"].as_str().unwrap_or("?")
    )
}

/// A host with only an AAAA record, reached over IPv6 across the line.
fn ipv6_only_host() -> String {
    let bed = testbed(Shaping::rtt(millis(20)));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(HOST, DnsAnswer::Addrs(vec![IpAddr::V6(SERVER_V6)]))],
    );
    let _https = https_in(
        &bed,
        v6(443),
        &pki.identity(HOST),
        HttpBehaviour::status(200),
    );
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .only(PROBES)
            .timeout("2s"),
    );
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("pass", "http.ok"),
            ("pass", "latency.ok"),
        ],
    );
    let tcp = stage(&report, NAME, "tcp");
    assert_eq!(tcp["data"]["address"], format!("[{SERVER_V6}]:443"));
    assert_eq!(tcp["data"]["family"], "ipv6");
    let connect = data_f64(tcp, "connect_ms");
    assert_bounded("tcp connect_ms", connect, 20.0, 250.0);
    let v6 = ipv6_check(&report);
    let note = match v6 {
        Some(c) => {
            assert_eq!(
                c["code"], "ipv6.ok",
                "ipv6 probe on a working IPv6 path: {c:#}"
            );
            "ipv6 probe: ipv6.ok".to_owned()
        }
        None => "no ipv6 probe in this build's report".to_owned(),
    };
    out.assert_exit(0);
    format!("AAAA-only host over 20 ms RTT: tcp.ok over IPv6 in {connect:.2} ms; {note}")
}

/// A and AAAA, but the line drops every IPv6 packet: the connection is made over IPv4 without
/// waiting for IPv6, and the ipv6 probe (where present) says `ipv6.broken`.
fn broken_ipv6() -> String {
    let bed = testbed(Shaping::rtt(millis(20)).with_blackhole(Filter::ipv6()));
    let pki = Pki::new();
    let _dns = dns_in(
        &bed,
        [(
            HOST,
            DnsAnswer::Addrs(vec![IpAddr::V4(SERVER_V4), IpAddr::V6(SERVER_V6)]),
        )],
    );
    let identity = pki.identity(HOST);
    let _https4 = https_in(&bed, v4(443), &identity, HttpBehaviour::status(200));
    let _https6 = https_in(&bed, v6(443), &identity, HttpBehaviour::status(200));
    let profile = profile(HOST);
    let out = run_in(
        &bed,
        &Netcheck::engine(&profile)
            .resolver_addr(RESOLVER)
            .ca_file(&pki)
            .only(PROBES)
            .timeout("1s"),
    );
    let report = out.report();
    assert_stages(
        &report,
        NAME,
        &[
            ("pass", "dns.ok"),
            ("pass", "tcp.ok"),
            ("pass", "tls.ok"),
            ("pass", "http.ok"),
            ("pass", "latency.ok"),
        ],
    );
    let tcp = stage(&report, NAME, "tcp");
    assert_eq!(tcp["data"]["family"], "ipv4");
    assert_eq!(tcp["data"]["address"], format!("{SERVER_V4}:443"));
    let connect = data_f64(tcp, "connect_ms");
    // Both families start together: IPv4 does not wait for IPv6's timeout (seconds) nor for a
    // fallback timer (250 ms).
    assert_bounded("tcp connect_ms", connect, 20.0, 250.0);
    let stats = bed.stats();
    assert!(stats.blackholed[0] >= 1, "the line dropped the IPv6 SYN");
    let note = match ipv6_check(&report) {
        Some(c) => {
            assert_eq!(c["code"], "ipv6.broken", "ipv6 probe: {c:#}");
            assert_eq!(c["status"], "warn");
            out.assert_exit(1);
            let suspects: Vec<&str> = report["suspects"]
                .as_array()
                .map(|s| s.iter().filter_map(|x| x["id"].as_str()).collect())
                .unwrap_or_default();
            format!("ipv6 probe: ipv6.broken (warn); suspects {suspects:?}")
        }
        None => {
            out.assert_exit(0);
            "no ipv6 probe in this build's report".to_owned()
        }
    };
    format!(
        "IPv6 blackholed, IPv4 fine, 20 ms RTT: tcp.ok over IPv4 in {connect:.2} ms, \
         {} IPv6 packet(s) dropped; {note}",
        stats.blackholed[0] + stats.blackholed[1]
    )
}

fn ms_of(out: &crate::support::Outcome) -> f64 {
    out.elapsed.as_secs_f64() * 1000.0
}
