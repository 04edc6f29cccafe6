//! Faults of servers and middleboxes that loopback can play exactly (GitHub issue 5): proxies that
//! refuse, a server stuck on TLS 1.0, a redirect loop. The network-level faults (delay, loss,
//! blackholes) are in `netns`.

use crate::support::*;

const HOST: &str = "api.netcheck.lan";

fn top(report: &serde_json::Value) -> String {
    report["suspects"][0]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// A TLS 1.0 ServerHello (TLS_RSA_WITH_AES_128_CBC_SHA), as a server that knows nothing newer
/// answers any ClientHello.
fn tls10_server_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x01]; // server_version TLS 1.0
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // session id length
    body.extend_from_slice(&[0x00, 0x2f]); // cipher suite
    body.push(0); // compression: null
    let mut hs = vec![0x02, 0, 0, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0, hs.len() as u8];
    record.extend_from_slice(&hs);
    record
}

#[test]
fn a_tls_1_0_only_server_is_named_and_points_to_outdated_software() {
    let server = RawTcpServer::start(RawMode::ReplyAfterHello(tls10_server_hello()));
    let dns = DnsServer::start([(HOST, DnsAnswer::localhost())]);
    let pki = Pki::new();
    let profile = ProfileFile::new(&[EndpointSpec::new("api", HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(2);
    let r = out.report();
    let tls = stage(&r, "api", "tls");
    assert_eq!(tls["code"], "tls.old_protocol", "{tls}");
    let summary = tls["summary"].as_str().unwrap_or("");
    assert!(summary.contains("TLS 1.0 or 1.1"), "{summary}");
    assert_eq!(tls["data"]["reason"], "protocol_version");
    assert!(
        suspect_ids(&r).contains(&"outdated_software".to_owned()),
        "{:?}",
        suspect_ids(&r)
    );
}

fn through_proxy(answer: &[u8]) -> serde_json::Value {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = DnsServer::start([(HOST, DnsAnswer::localhost())]);
    let proxy = RawTcpServer::start(RawMode::ReplyAfterHello(answer.to_vec()));
    let profile = ProfileFile::new(&[EndpointSpec::new("api", HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .env(
            "HTTPS_PROXY",
            &format!("http://agent:hunter2@127.0.0.1:{}", proxy.port()),
        )
        .run();
    out.assert_exit(2);
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    out.report()
}

#[test]
fn a_proxy_asking_for_authentication_is_the_proxy_s_failure() {
    let r = through_proxy(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n");
    let http = stage(&r, "api", "http");
    assert_eq!(http["code"], "http.proxy_auth_required", "{http}");
    assert_eq!(http["data"]["proxy_status"], 407, "{http}");
    let summary = http["summary"].as_str().unwrap_or("");
    assert!(summary.contains("407"), "{summary}");
    assert!(summary.contains("***@127.0.0.1"), "{summary}");
    assert_eq!(
        code(&r, "api", "tls"),
        "tls.ok",
        "the direct path is tested as well"
    );
    assert_eq!(top(&r), "vpn_firewall");
}

#[test]
fn a_proxy_refusing_connect_is_the_proxy_s_failure() {
    let r = through_proxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let http = stage(&r, "api", "http");
    assert_eq!(http["code"], "http.proxy_denied", "{http}");
    assert_eq!(http["data"]["proxy_status"], 403, "{http}");
    let summary = http["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("CONNECT") || summary.contains("tunnel"),
        "{summary}"
    );
    assert_eq!(top(&r), "vpn_firewall");
}

#[test]
fn a_redirect_loop_costs_one_request() {
    let pki = Pki::new();
    let reply = HttpReply::status(302).header("Location", &format!("https://{HOST}/"));
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::Reply(reply));
    let dns = DnsServer::start([(HOST, DnsAnswer::localhost())]);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", HOST, server.port())]);
    let out = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_file(&pki)
        .run();
    out.assert_exit(0);
    let r = out.report();
    assert_eq!(code(&r, "api", "http"), "http.ok");
    assert_eq!(
        stage(&r, "api", "http")["data"]["location"],
        format!("https://{HOST}/")
    );
    assert_eq!(
        server.requests().len(),
        1,
        "redirects are reported, not followed"
    );
}
