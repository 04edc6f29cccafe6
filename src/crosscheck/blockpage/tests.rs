//! Unit tests of the parent module.

use super::*;

fn ep(name: &str, host: &str, port: u16, role: Role) -> Endpoint {
    Endpoint::for_test(name, host, port, role)
}

fn dns(target: &str, addrs: &[&str]) -> Check {
    Check::new(Probe::Dns, Some(target), Status::Pass, "dns.ok", "x")
        .with("resolver", "127.0.0.53:53")
        .with("addresses", addrs.to_vec())
}

fn tls(target: &str, subject: &str) -> Check {
    Check::new(
        Probe::Tls,
        Some(target),
        Status::Fail,
        "tls.untrusted",
        "untrusted",
    )
    .with("subject", subject)
    .with("issuer", subject)
}

fn refused(target: &str) -> Check {
    Check::new(
        Probe::Tcp,
        Some(target),
        Status::Fail,
        "tcp.refused",
        "refused",
    )
}

fn world() -> Vec<Endpoint> {
    vec![
        ep("api", "api.example", 443, Role::Service),
        ep("sign-in", "id.example", 443, Role::Service),
        ep("stream", "stream.example", 9000, Role::Service),
        ep("neutral", "www.example", 443, Role::Baseline),
    ]
}

fn code<'a>(c: &'a [Check], t: &str, p: Probe) -> &'a str {
    c.iter()
        .find(|c| c.probe == p && c.target.as_deref() == Some(t))
        .map_or("", |c| c.code.as_str())
}

#[test]
fn a_shared_address_with_foreign_certificates_is_a_block_page_and_its_other_port_too() {
    let eps = world();
    let base = vec![
        dns("api", &["198.51.100.7"]),
        dns("sign-in", &["198.51.100.7"]),
        dns("stream", &["198.51.100.7"]),
        dns("neutral", &["192.0.2.1"]),
        tls("api", "CN=block.example"),
        tls("sign-in", "CN=block.example"),
        refused("stream"),
    ];
    let mut c = base.clone();
    apply(&mut c, &eps, None);
    for t in ["api", "sign-in", "stream"] {
        assert_eq!(code(&c, t, Probe::Dns), "dns.block_page", "{t}");
    }
    assert_eq!(c[4].data["explained_by"], "dns.block_page");
    assert_eq!(c[6].data["explained_by"], "dns.block_page");
    assert_eq!(c[2].data["block_evidence"], json!(["same_address"]));
    assert_eq!(c[0].data["block_evidence"], json!(["shared_address"]));
    assert_eq!(c[0].data["filter"], resolverid::UNKNOWN);

    // The baseline shares the address (one CDN for all): no claim.
    let mut c = base.clone();
    c[3] = dns("neutral", &["198.51.100.7"]);
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
    assert_eq!(code(&c, "stream", Probe::Dns), "dns.ok");
    // An outage of the shared address (refusals, no certificate seen): no claim.
    let mut c = base.clone();
    c[4] = refused("api");
    c[5] = refused("sign-in");
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
    // No neutral host resolved: an address the names share proves nothing.
    let mut c = base.clone();
    c.remove(3);
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
    // The direct path's failures are explained by a working proxy: not this name's.
    let mut c = base.clone();
    for i in [4, 5, 6] {
        c[i] = c[i].clone().with("explained_by", "proxy");
    }
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
    // The connections work: no claim either.
    let mut c = base;
    c.truncate(4);
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
}

#[test]
fn one_name_is_judged_by_its_own_answer() {
    let eps = world();
    // A foreign certificate alone could be interception: no claim.
    let alone = vec![
        dns("api", &["198.51.100.7"]),
        dns("sign-in", &["203.0.113.9"]),
        dns("neutral", &["192.0.2.1"]),
        tls("api", "CN=block.example"),
    ];
    let mut c = alone.clone();
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
    assert!(!c[3].data.contains_key("explained_by"));

    // The same with a CNAME to the certificate's name.
    let mut c = alone.clone();
    c[0] = c[0].clone().with("cname_chain", vec!["block.example"]);
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.block_page");
    assert!(
        c[0].summary
            .contains("CNAME to block.example, whose certificate"),
        "{}",
        c[0].summary
    );
    assert_eq!(code(&c, "sign-in", Probe::Dns), "dns.ok");

    // An Extended DNS Error 4 Forged Answer from Knot Resolver names it.
    let mut c = alone.clone();
    let ede = json!({"code": 4, "name": "Forged Answer", "text": "5DO5"});
    c[0] = c[0].clone().with("ede", ede);
    apply(&mut c, &eps, None);
    assert_eq!(c[0].code, "dns.block_page");
    assert_eq!(c[0].data["filter"], "Knot Resolver");

    // The resolver's own address, and Pi-hole's certificate.
    let pihole: IpAddr = "198.51.100.7".parse().expect("address");
    let mut c = alone.clone();
    c[3] = tls("api", "CN=pi.hole");
    apply(&mut c, &eps, Some(&(pihole, Identity::default())));
    assert_eq!(
        c[0].data["block_evidence"],
        json!(["resolver_address", "certificate"])
    );
    assert_eq!(c[0].data["filter"], "Pi-hole");
}

#[test]
fn an_interceptor_before_a_cdn_is_no_block_page() {
    let eps = world();
    // Two names behind one CDN edge (a CNAME each, one shared address), and a TLS-inspecting
    // gateway that mints a certificate for every name it is asked for.
    let minted = |t: &str, host: &str| {
        Check::new(
            Probe::Tls,
            Some(t),
            Status::Fail,
            "tls.intercepted",
            "a gateway",
        )
        .with("subject", format!("CN={host}"))
        .with("issuer", "CN=Corporate Gateway CA")
    };
    let cdn = |t: &str| dns(t, &["198.51.100.7"]).with("cname_chain", vec!["edge.cdn.example"]);
    let base = vec![
        cdn("api"),
        cdn("sign-in"),
        dns("neutral", &["192.0.2.1"]),
        minted("api", "api.example"),
        Check::new(
            Probe::Tls,
            Some("sign-in"),
            Status::Fail,
            "tls.intercepted",
            "a gateway",
        )
        .with("subject", "CN=*.example")
        .with("issuer", "CN=Corporate Gateway CA"),
    ];
    let mut c = base.clone();
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.ok");
    assert_eq!(code(&c, "sign-in", Probe::Dns), "dns.ok");
    assert_eq!(code(&c, "api", Probe::Tls), "tls.intercepted");

    // The resolver itself marks the answer as forged: the gateway's root is the block page's.
    let mut c = base;
    let ede = json!({"code": 17, "name": "Filtered", "text": ""});
    c[0] = c[0].clone().with("ede", ede);
    apply(&mut c, &eps, None);
    assert_eq!(code(&c, "api", Probe::Dns), "dns.block_page");
    assert_eq!(c[0].data["block_evidence"], json!(["ede"]));
    assert_eq!(code(&c, "api", Probe::Tls), "tls.untrusted");
    assert_eq!(c[3].data["explained_by"], "dns.block_page");
    // The other name fails at the address the forged answer leads to: the same block page.
    assert_eq!(c[1].data["block_evidence"], json!(["same_address"]));
}

#[test]
fn every_filter_finding_names_the_run_s_resolver() {
    let eps = world();
    let ip: IpAddr = "127.0.0.53".parse().expect("address");
    let bind = Identity {
        software: Some("9.18.49-1~deb12u3-Debian".into()),
        ..Identity::default()
    };
    let nx = |t: &str, who: &str| {
        Check::new(
            Probe::Dns,
            Some(t),
            Status::Fail,
            "dns.filtered",
            format!("blocked; in the way: {who}"),
        )
        .with("filter", who)
    };
    let mut c = vec![
        nx("api", resolverid::UNKNOWN),
        nx("sign-in", "BIND (9.18.49-1~deb12u3-Debian)"),
        nx("stream", "Cisco Umbrella (OpenDNS)"),
    ];
    apply(&mut c, &eps, Some(&(ip, bind)));
    let named = "BIND (9.18.49-1~deb12u3-Debian)";
    assert_eq!(c[0].data["filter"], named);
    assert!(c[0].summary.ends_with(named), "{}", c[0].summary);
    assert_eq!(c[0].data["resolver_software"], "9.18.49-1~deb12u3-Debian");
    assert_eq!(c[1].data["filter"], named);
    assert_eq!(
        c[2].data["filter"], "Cisco Umbrella (OpenDNS)",
        "a block page's own name stays"
    );
}
