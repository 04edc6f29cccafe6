//! Every TLS failure class against real implementations: nginx with Debian's OpenSSL (security
//! level 0 where it must serve what is broken), certificates made by the openssl command line,
//! mitmproxy as an explicit proxy and in front of a server, and a middlebox that resets large
//! ClientHellos. Each case asserts the exact code; a case whose program is missing skips through
//! `support::skip` with the reason.

use crate::support::hellorelay::{HelloRelay, OnLarge};
use crate::support::mitmproxy::{Mitmproxy, mitmdump};
use crate::support::nginx::{Nginx, nginx_binary};
use crate::support::opensslpki::{IssuedLeaf, LeafSpec, OpensslCa, openssl_available};
use crate::support::tlslite::{Tlslite, python as tlslite_python};
use crate::support::*;
use serde_json::Value;
use std::path::Path;

const TEST_ROOT: &str = "/O=bmw-netcheck tests/CN=Netcheck OpenSSL Root";
const OK_BODY: &str = "return 200 \"ok\\n\";";
const LEGACY: &str = "ssl_ciphers \"DEFAULT:@SECLEVEL=0\";";

/// nginx and openssl are there, or the case skips (saying so in the test log).
fn can_run(case: &str) -> bool {
    if nginx_binary().is_none() {
        skip(&format!(
            "realtls::{case}: nginx is not installed (apt-get install nginx-light)"
        ));
        return false;
    }
    if !openssl_available() {
        skip(&format!(
            "realtls::{case}: the openssl command is not installed"
        ));
        return false;
    }
    true
}

fn profile(port: u16, extra: &str) -> ProfileFile {
    ProfileFile::raw(&format!(
        "name = \"realtls\"\n\n[[endpoint]]\nname = \"api\"\nhost = \"127.0.0.1\"\nport = {port}\npublic = false\n{extra}\n[thresholds]\nlatency_warn_ms = 1000.0\nlatency_fail_ms = 5000.0\n"
    ))
}

fn run(port: u16, ca: Option<&Path>, extra: &str, env: &[(&str, &str)]) -> Value {
    let profile = profile(port, extra);
    let mut cmd = Netcheck::engine(&profile).only("tls,http");
    if let Some(ca) = ca {
        cmd = cmd.ca_path(ca);
    }
    // The system store is what the test says, or the machine's.
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run().report()
}

fn serve(ca: &OpensslCa, spec: &LeafSpec, name: &str, server_extra: &str) -> (IssuedLeaf, Nginx) {
    let leaf = ca.issue(name, spec);
    let nginx = Nginx::start(&leaf.chain, &leaf.key, server_extra, OK_BODY);
    (leaf, nginx)
}

fn tls(r: &Value) -> &Value {
    stage(r, "api", "tls")
}

fn summary(c: &Value) -> &str {
    c["summary"].as_str().unwrap_or("")
}

#[test]
fn a_healthy_nginx_passes() {
    if !can_run("a_healthy_nginx_passes") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "ok", "");
    let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
    assert_eq!(code(&r, "api", "http"), "http.ok");
}

#[test]
fn nginx_answers_with_the_suite_the_app_offers_first() {
    if !can_run("nginx_answers_with_the_suite_the_app_offers_first") {
        return;
    }
    // nginx follows the client's order unless told to prefer its own: the hello offers
    // AES-128-GCM first, as the app's platforms do, in TLS 1.3 and in TLS 1.2. (nginx before
    // 1.23.4 leaves TLS 1.3 out unless it is named.)
    let ca = OpensslCa::new(TEST_ROOT);
    let v13 = "ssl_protocols TLSv1.2 TLSv1.3;";
    let (_a, modern) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "modern", v13);
    let r = run(modern.port(), Some(&ca.ca_file()), "", &[]);
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
    assert_eq!(tls(&r)["data"]["version"], "TLSv1.3", "{}", tls(&r));
    assert_eq!(
        tls(&r)["data"]["cipher"],
        "TLS13_AES_128_GCM_SHA256",
        "{}",
        tls(&r)
    );
    let v12 = "ssl_protocols TLSv1.2;";
    let (_b, older) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "v12", v12);
    let r = run(older.port(), Some(&ca.ca_file()), "", &[]);
    assert_eq!(tls(&r)["data"]["version"], "TLSv1.2", "{}", tls(&r));
    let cipher = tls(&r)["data"]["cipher"].as_str().unwrap_or_default();
    assert!(
        cipher.starts_with("TLS_ECDHE_") && cipher.ends_with("_WITH_AES_128_GCM_SHA256"),
        "{}",
        tls(&r)
    );
}

#[test]
fn sha1_and_md5_signatures_are_weak_signatures() {
    if !can_run("sha1_and_md5_signatures_are_weak_signatures") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    for (digest, alg) in [
        ("sha1", "sha1WithRSAEncryption"),
        ("md5", "md5WithRSAEncryption"),
    ] {
        let spec = LeafSpec {
            digest,
            ..LeafSpec::new("api.netcheck.lan")
        };
        let (_leaf, nginx) = serve(&ca, &spec, digest, LEGACY);
        let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
        let t = tls(&r);
        assert_eq!(t["code"], "tls.weak_signature", "{digest}: {t}");
        assert_eq!(t["data"]["signature_algorithm"], alg, "{t}");
        let words = if digest == "md5" { "MD5" } else { "SHA-1" };
        assert!(summary(t).contains(words), "{t}");
    }
}

#[test]
fn an_rsa_key_under_2048_bits_is_a_weak_key() {
    if !can_run("an_rsa_key_under_2048_bits_is_a_weak_key") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    for bits in [1024u32, 512] {
        let spec = LeafSpec {
            bits,
            ..LeafSpec::new("api.netcheck.lan")
        };
        // A 512-bit key cannot make an RSA-PSS signature: PKCS#1 over TLS 1.2 it is.
        let extra = format!(
            "ssl_protocols TLSv1.2; ssl_conf_command SignatureAlgorithms RSA+SHA256; {LEGACY}"
        );
        let (_leaf, nginx) = serve(&ca, &spec, &format!("rsa{bits}"), &extra);
        let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
        let t = tls(&r);
        assert_eq!(t["code"], "tls.weak_key", "{bits}: {t}");
        assert_eq!(t["data"]["key_bits"], bits, "{t}");
    }
}

#[test]
fn a_tls_1_0_and_1_1_server_is_an_old_protocol() {
    if !can_run("a_tls_1_0_and_1_1_server_is_an_old_protocol") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    for protocols in ["TLSv1", "TLSv1.1", "TLSv1 TLSv1.1"] {
        let extra = format!("ssl_protocols {protocols}; {LEGACY}");
        let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "old", &extra);
        let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
        let t = tls(&r);
        assert_eq!(t["code"], "tls.old_protocol", "{protocols}: {t}");
        let highest = if protocols.contains("1.1") {
            "TLS 1.1"
        } else {
            "TLS 1.0"
        };
        assert_eq!(
            t["data"]["offered_versions"],
            serde_json::json!([highest]),
            "{t}"
        );
        assert_eq!(t["data"]["reason"], "protocol_version");
        assert_eq!(code(&r, "api", "http"), "http.skipped");
    }
}

#[test]
fn broken_ciphers_only_is_no_common_cipher() {
    if !can_run("broken_ciphers_only_is_no_common_cipher") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    // Plain RSA key exchange, NULL encryption, finite-field Diffie-Hellman only: nothing a
    // current client offers. (OpenSSL 3 no longer serves RC4 or 3DES at all.)
    for ciphers in ["AES128-SHA", "NULL-SHA256", "DHE-RSA-AES128-GCM-SHA256"] {
        let extra = format!("ssl_protocols TLSv1.2; ssl_ciphers \"{ciphers}:@SECLEVEL=0\";");
        let (_leaf, nginx) = serve(
            &ca,
            &LeafSpec::new("api.netcheck.lan"),
            "weakcipher",
            &extra,
        );
        let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
        let t = tls(&r);
        assert_eq!(
            t["code"],
            "tls.no_common_cipher",
            "{ciphers}: {t}\n{}",
            nginx.log()
        );
    }
}

#[test]
fn a_server_demanding_a_client_certificate_is_named() {
    if !can_run("a_server_demanding_a_client_certificate_is_named") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let extra = format!(
        "ssl_verify_client on; ssl_client_certificate {};",
        ca.ca_file().display()
    );
    for protocols in ["TLSv1.3", "TLSv1.2"] {
        let extra = format!("ssl_protocols {protocols}; {extra}");
        let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "mtls", &extra);
        let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
        let t = tls(&r);
        assert_eq!(t["code"], "tls.client_cert_required", "{protocols}: {t}");
        assert_eq!(t["status"], "fail");
        assert_eq!(code(&r, "api", "http"), "http.skipped", "{}", r["checks"]);
    }
}

#[test]
fn a_chain_of_10000_names_is_too_large() {
    if !can_run("a_chain_of_10000_names_is_too_large") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let spec = LeafSpec {
        extra_names: 10_000,
        ..LeafSpec::new("api.netcheck.lan")
    };
    let (leaf, nginx) = serve(&ca, &spec, "big", "");
    let size = std::fs::metadata(&leaf.cert).map(|m| m.len()).unwrap_or(0);
    assert!(size > 250_000, "the leaf is {size} bytes of PEM");
    let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.chain_too_large", "{t}");
    let bytes = t["data"]["bytes"].as_u64().unwrap_or(0);
    assert!((200_000..320_000).contains(&bytes), "{t}");
    say(&format!(
        "realtls: a {bytes}-byte certificate chain: tls.chain_too_large ({})",
        summary(t)
    ));
    assert_ne!(top_suspect(&r), "vpn_firewall", "{}", r["suspects"]);
}

#[test]
fn a_stapled_revoked_answer_is_revoked() {
    if !can_run("a_stapled_revoked_answer_is_revoked") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let leaf = ca.issue("revoked", &LeafSpec::new("api.netcheck.lan"));
    let resp = ca.ocsp_revoked(&leaf);
    let extra = format!(
        "ssl_stapling on; ssl_stapling_file {}; ssl_trusted_certificate {};",
        resp.display(),
        ca.ca_file().display()
    );
    let nginx = Nginx::start(&leaf.chain, &leaf.key, &extra, OK_BODY);
    // nginx staples from the file on the first handshake; the tool asks for stapling.
    let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.revoked", "{t}\n{}", nginx.log());
    assert_eq!(t["data"]["ocsp_stapled"], true);
}

#[test]
fn a_name_only_in_the_common_name_is_said_exactly() {
    if !can_run("a_name_only_in_the_common_name_is_said_exactly") {
        return;
    }
    const HOST: &str = "cn-only.netcheck.lan";
    let ca = OpensslCa::new(TEST_ROOT);
    let spec = LeafSpec {
        san: false,
        ..LeafSpec::new(HOST)
    };
    let (_leaf, nginx) = serve(&ca, &spec, "cn", "");
    let dns = DnsServer::start([(
        HOST,
        DnsAnswer::Addrs(vec!["127.0.0.1".parse().expect("ip")]),
    )]);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", HOST, nginx.port())]);
    let r = Netcheck::engine(&profile)
        .resolver(&dns)
        .ca_path(&ca.ca_file())
        .run()
        .report();
    let t = tls(&r);
    assert_eq!(t["code"], "tls.hostname_mismatch", "{t}");
    assert!(
        summary(t).contains(&format!("names {HOST} only in its common name (CN)")),
        "{t}"
    );
}

#[test]
fn an_https_endpoint_redirecting_to_plain_http_is_insecure() {
    if !can_run("an_https_endpoint_redirecting_to_plain_http_is_insecure") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let leaf = ca.issue("redirect", &LeafSpec::new("api.netcheck.lan"));
    let nginx = Nginx::start(
        &leaf.chain,
        &leaf.key,
        "",
        "return 301 http://127.0.0.1/login;",
    );
    let r = run(nginx.port(), Some(&ca.ca_file()), "", &[]);
    let h = stage(&r, "api", "http");
    assert_eq!(h["code"], "http.insecure_redirect", "{h}");
    assert_eq!(h["data"]["location"], "http://127.0.0.1/login");
    assert_eq!(tls(&r)["code"], "tls.ok");
}

#[test]
fn a_lower_version_than_min_tls_is_too_low() {
    if !can_run("a_lower_version_than_min_tls_is_too_low") {
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let (_leaf, nginx) = serve(
        &ca,
        &LeafSpec::new("api.netcheck.lan"),
        "v12",
        "ssl_protocols TLSv1.2;",
    );
    let r = run(
        nginx.port(),
        Some(&ca.ca_file()),
        "min_tls = \"1.3\"\n",
        &[],
    );
    let t = tls(&r);
    assert_eq!(t["code"], "tls.version_too_low", "{t}");
    assert_eq!(t["data"]["version"], "TLSv1.2");
    assert_eq!(t["data"]["min_tls"], "1.3");
    let r = run(
        nginx.port(),
        Some(&ca.ca_file()),
        "min_tls = \"1.2\"\n",
        &[],
    );
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
}

#[test]
fn an_untrusted_inspection_product_is_named() {
    if !can_run("an_untrusted_inspection_product_is_named") {
        return;
    }
    let ca = OpensslCa::new("/O=Zscaler Inc./CN=Zscaler Root CA");
    let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "zs", "");
    let r = run(nginx.port(), None, "", &[]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.intercepted", "{t}");
    assert_eq!(t["status"], "fail");
    assert_eq!(t["data"]["interceptor"], "Zscaler");
    assert_eq!(t["data"]["interceptor_kind"], "corporate");
    assert!(
        t["data"]["issuer"]
            .as_str()
            .unwrap_or("")
            .contains("Zscaler Root CA")
    );
    assert_eq!(
        top_suspect(&r),
        "corporate_tls_inspection",
        "{}",
        r["suspects"]
    );
}

#[test]
fn a_trusted_inspection_product_is_still_named() {
    if !can_run("a_trusted_inspection_product_is_still_named") {
        return;
    }
    let ca =
        OpensslCa::new("/O=AO Kaspersky Lab/CN=Kaspersky Anti-Virus Personal Root Certificate");
    let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "kl", "");
    let store = ca.ca_file();
    let store = store.to_string_lossy();
    let r = run(nginx.port(), None, "", &[("SSL_CERT_FILE", &store)]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.intercepted", "{t}");
    assert_eq!(t["status"], "warn");
    assert_eq!(t["data"]["interceptor"], "Kaspersky");
    assert_eq!(t["data"]["interceptor_kind"], "antivirus");
    assert!(summary(t).contains("pin"), "{t}");
    assert_eq!(code(&r, "api", "http"), "http.ok");
    assert_eq!(
        top_suspect(&r),
        "antivirus_https_scanning",
        "{}",
        r["suspects"]
    );
}

#[test]
fn an_unknown_root_is_judged_by_who_trusts_it() {
    if !can_run("an_unknown_root_is_judged_by_who_trusts_it") {
        return;
    }
    let ca = OpensslCa::new("/O=Home/CN=Home Router CA");
    let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "home", "");
    let store = ca.ca_file();
    let store_s = store.to_string_lossy();
    // Only the device's store trusts it: an installed root, named by its issuer.
    let r = run(nginx.port(), None, "", &[("SSL_CERT_FILE", &store_s)]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.intercepted", "{t}");
    assert_eq!(
        t["data"]["interceptor"],
        "a root installed on this device: Home Router CA"
    );
    assert_eq!(top_suspect(&r), "installed_root");
    // Declared with --ca-file: the user's own trust, not judged.
    let r = run(nginx.port(), Some(&store), "", &[]);
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
    // An internal service with its own CA.
    let r = run(
        nginx.port(),
        None,
        "private_ca = true\n",
        &[("SSL_CERT_FILE", &store_s)],
    );
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
    // Trusted by nobody and unknown to the table: plainly untrusted.
    let r = run(nginx.port(), None, "", &[]);
    assert_eq!(tls(&r)["code"], "tls.untrusted", "{}", tls(&r));
}

/// A run whose system store is `bundle`'s root in the bundle file (`SSL_CERT_FILE`) and
/// `in_dir`'s only in the certificate directory (`SSL_CERT_DIR`).
fn run_with_store(port: u16, bundle: &OpensslCa, in_dir: &OpensslCa) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(in_dir.ca_file(), dir.path().join("local.pem")).expect("copy");
    let file = bundle.ca_file();
    let file = file.to_string_lossy();
    let dir_s = dir.path().to_string_lossy();
    run(
        port,
        None,
        "",
        &[("SSL_CERT_FILE", &*file), ("SSL_CERT_DIR", &*dir_s)],
    )
}

/// A root an administrator placed only in the certificate directory (`SSL_CERT_DIR`, as
/// `c_rehash` leaves it) is found although the bundle file does not hold it: the directory is
/// read when the bundle refuses the chain, and the report says what it added.
#[test]
fn a_root_only_in_the_certificate_directory_still_counts() {
    if !can_run("a_root_only_in_the_certificate_directory_still_counts") {
        return;
    }
    let ca = OpensslCa::new("/O=Home/CN=Home Lab CA");
    let other = OpensslCa::new("/O=Elsewhere/CN=Some Other CA");
    let (_leaf, nginx) = serve(&ca, &LeafSpec::new("api.netcheck.lan"), "homedir", "");
    let r = run_with_store(nginx.port(), &other, &ca);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.intercepted", "{t}");
    assert_eq!(
        t["data"]["interceptor"],
        "a root installed on this device: Home Lab CA"
    );
    assert_eq!(
        t["data"]["roots"], "system (1 root) + 1 from its certificate directories",
        "{t}"
    );
    // Without the directory the same chain is trusted by nobody.
    let empty = tempfile::tempdir().expect("tempdir");
    let empty = empty.path().to_string_lossy();
    let bundle = other.ca_file();
    let bundle = bundle.to_string_lossy();
    let env = [("SSL_CERT_FILE", &*bundle), ("SSL_CERT_DIR", &*empty)];
    let r = run(nginx.port(), None, "", &env);
    assert_eq!(tls(&r)["code"], "tls.untrusted", "{}", tls(&r));
    assert_eq!(tls(&r)["data"]["roots"], "system (1 root)");
}

/// A certificate made out for another name, from a root in the bundle, reached that root
/// already (the name is checked after the chain): the certificate directory, which holds a
/// root of its own, is not read for it.
#[test]
fn another_name_does_not_read_the_certificate_directory() {
    if !can_run("another_name_does_not_read_the_certificate_directory") {
        return;
    }
    let ca = OpensslCa::new("/O=Home/CN=Home Lab CA");
    let other = OpensslCa::new("/O=Elsewhere/CN=Some Other CA");
    // Its name only in the subject: no alternative name covers the address the check asks.
    let spec = LeafSpec {
        san: false,
        ..LeafSpec::new("nas.netcheck.lan")
    };
    let (_leaf, nginx) = serve(&ca, &spec, "othername", "");
    let r = run_with_store(nginx.port(), &ca, &other);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.hostname_mismatch", "{t}");
    assert_eq!(t["data"]["roots"], "system (1 root)", "{t}");
}

fn can_run_mitmproxy(case: &str) -> bool {
    if mitmdump().is_none() {
        skip(&format!(
            "realtls::{case}: mitmproxy is not installed in /opt/bmw-netcheck-venvs/mitmproxy (.ci/run installs it)"
        ));
        return false;
    }
    true
}

#[test]
fn mitmproxy_as_an_explicit_proxy_is_named_on_the_proxy_path() {
    if !can_run_mitmproxy("mitmproxy_as_an_explicit_proxy_is_named_on_the_proxy_path") {
        return;
    }
    let pki = Pki::new();
    let server = HttpsServer::start(
        &pki.identity("api.netcheck.lan"),
        HttpBehaviour::status(200),
    );
    let mitm = Mitmproxy::start("regular");
    let store = mitm.ca_file();
    let profile = profile(server.port(), "");
    let out = Netcheck::engine(&profile)
        .only("tls,http")
        .ca_file(&pki)
        .env("SSL_CERT_FILE", &store.to_string_lossy())
        .env("HTTPS_PROXY", &format!("http://127.0.0.1:{}", mitm.port()))
        .run();
    let r = out.report();
    // The direct path reaches the server itself.
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
    let h = stage(&r, "api", "http");
    assert_eq!(h["code"], "tls.intercepted", "{h}");
    assert_eq!(h["status"], "warn");
    assert_eq!(h["data"]["interceptor"], "mitmproxy");
    assert_eq!(h["data"]["interceptor_kind"], "debugging");
    assert_eq!(h["data"]["status_code"], 200);
    assert_eq!(top_suspect(&r), "debugging_proxy", "{}", r["suspects"]);
    // Not trusted by the device: the request through the proxy fails, and says whose it is.
    let out = Netcheck::engine(&profile)
        .only("tls,http")
        .ca_file(&pki)
        .env("HTTPS_PROXY", &format!("http://127.0.0.1:{}", mitm.port()))
        .run();
    let r = out.report();
    let h = stage(&r, "api", "http");
    assert_eq!(h["code"], "tls.intercepted", "{h}");
    assert_eq!(h["status"], "fail");
    assert_eq!(h["data"]["interceptor"], "mitmproxy");
}

#[test]
fn mitmproxy_in_front_of_the_server_is_named_on_the_direct_path() {
    if !can_run_mitmproxy("mitmproxy_in_front_of_the_server_is_named_on_the_direct_path") {
        return;
    }
    let pki = Pki::new();
    let server = HttpsServer::start(
        &pki.identity("api.netcheck.lan"),
        HttpBehaviour::status(200),
    );
    let mitm = Mitmproxy::start(&format!("reverse:https://127.0.0.1:{}", server.port()));
    let store = mitm.ca_file();
    let store = store.to_string_lossy();
    // Trusted by the device's store: a warning that names it.
    let r = run(
        mitm.port(),
        Some(pki.ca_file()),
        "",
        &[("SSL_CERT_FILE", &store)],
    );
    let t = tls(&r);
    assert_eq!(t["code"], "tls.intercepted", "{t}");
    assert_eq!(t["status"], "warn");
    assert_eq!(t["data"]["interceptor"], "mitmproxy");
    // Not trusted: a failure that names it.
    let r = run(mitm.port(), Some(pki.ca_file()), "", &[]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.intercepted", "{t}");
    assert_eq!(t["status"], "fail");
}

#[test]
fn a_path_that_resets_large_hellos_is_named() {
    let pki = Pki::new();
    let server = HttpsServer::start(
        &pki.identity("api.netcheck.lan"),
        HttpBehaviour::status(200),
    );
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", server.port())
        .parse()
        .expect("address");
    // A path that passes everything: the tool's hello is the large, post-quantum one.
    let open = HelloRelay::start(upstream, usize::MAX, OnLarge::Reset);
    let r = run(open.port(), Some(pki.ca_file()), "", &[]);
    assert_eq!(tls(&r)["code"], "tls.ok", "{}", tls(&r));
    let first = open.sizes()[0];
    assert!(
        first > 1200,
        "the hello was {first} bytes: no post-quantum key share"
    );

    for (on_large, timeout) in [(OnLarge::Reset, "1s"), (OnLarge::Drop, "2s")] {
        let relay = HelloRelay::start(upstream, 1000, on_large);
        let profile = profile(relay.port(), "");
        let out = Netcheck::engine(&profile)
            .only("tls,http")
            .ca_file(&pki)
            .timeout(timeout)
            .run();
        let r = out.report();
        let t = tls(&r);
        assert_eq!(t["code"], "tls.large_hello_dropped", "{on_large:?}: {t}");
        let sizes = relay.sizes();
        let (large, small) = (
            t["data"]["hello_bytes"]["large"].as_u64().unwrap_or(0) as usize,
            t["data"]["hello_bytes"]["small"].as_u64().unwrap_or(0) as usize,
        );
        assert!(large > 1000 && small < 1000, "{t}");
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        assert!(sizes[0] > 1000 && sizes[1] < 1000, "{sizes:?}");
        say(&format!(
            "realtls: a path that {} hellos over 1000 bytes: tls.large_hello_dropped, hellos of {} and {} bytes on the wire (reported {large} and {small})",
            if on_large == OnLarge::Reset {
                "resets"
            } else {
                "drops"
            },
            sizes[0],
            sizes[1]
        ));
        // The HTTP request went over the classic connection.
        assert_eq!(code(&r, "api", "http"), "http.ok");
        assert_eq!(top_suspect(&r), "vpn_firewall", "{}", r["suspects"]);
    }
}

#[test]
fn rc4_3des_and_small_dh_servers_have_no_common_cipher() {
    if tlslite_python().is_none() || !openssl_available() {
        skip(
            "realtls::rc4_3des_and_small_dh_servers_have_no_common_cipher: tlslite-ng is not installed in /opt/bmw-netcheck-venvs/tlslite (.ci/run installs it) or openssl is missing",
        );
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let leaf = ca.issue("tlslite", &LeafSpec::new("api.netcheck.lan"));
    for (mode, cipher) in [
        ("rc4", "RC4"),
        ("3des", "3DES"),
        ("small-dh", "TLS_DHE_RSA"),
    ] {
        let server = Tlslite::start(ca.dir(), &leaf.cert, &leaf.key, mode);
        let r = run(server.port(), Some(&ca.ca_file()), "", &[]);
        let t = tls(&r);
        assert_eq!(t["code"], "tls.no_common_cipher", "{mode}: {t}");
        let chose = t["data"]["server_cipher"].as_str().unwrap_or("");
        assert!(chose.contains(cipher), "{mode}: {t}");
        assert!(summary(t).contains(chose), "{t}");
    }
}

#[test]
fn an_ssl_3_0_server_is_an_old_protocol() {
    if tlslite_python().is_none() || !openssl_available() {
        skip(
            "realtls::an_ssl_3_0_server_is_an_old_protocol: tlslite-ng is not installed in /opt/bmw-netcheck-venvs/tlslite (.ci/run installs it) or openssl is missing",
        );
        return;
    }
    let ca = OpensslCa::new(TEST_ROOT);
    let leaf = ca.issue("ssl3", &LeafSpec::new("api.netcheck.lan"));
    let server = Tlslite::start(ca.dir(), &leaf.cert, &leaf.key, "ssl3");
    let r = run(server.port(), Some(&ca.ca_file()), "", &[]);
    let t = tls(&r);
    assert_eq!(t["code"], "tls.old_protocol", "{t}");
    assert_eq!(
        t["data"]["offered_versions"],
        serde_json::json!(["SSL 3.0"]),
        "{t}"
    );
    assert!(summary(t).contains("at most SSL 3.0"), "{t}");
    assert_eq!(t["data"]["reason"], "protocol_version");
}
