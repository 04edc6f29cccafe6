//! Unit tests of the parent module.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn sinkhole_addresses() {
    assert!(is_sinkhole(&ip("0.0.0.0"), false));
    assert!(is_sinkhole(&ip("::"), false));
    assert!(!is_sinkhole(&ip("127.0.0.1"), false));
    for s in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.1.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:10.0.0.1",
    ] {
        assert!(is_sinkhole(&ip(s), true), "{s}");
    }
    for s in ["8.8.8.8", "2001:db8::1", "100.64.0.1"] {
        assert!(!is_sinkhole(&ip(s), true), "{s}");
    }
}

#[test]
fn block_pages_from_the_table_and_the_resolver_s_own_address() {
    let pihole = [ip("203.0.113.53")];
    let bp = |addrs: &[&str], public, sunk| {
        let a: Vec<IpAddr> = addrs.iter().map(|s| ip(s)).collect();
        block_page("h.example", &[], &a, &pihole, public, sunk)
    };
    assert!(matches!(
        bp(&["203.0.113.53"], true, false),
        Some(BlockPage::ResolverItself(_))
    ));
    assert_eq!(bp(&["203.0.113.53"], false, false), None, "a local service");
    assert_eq!(bp(&["198.51.100.1"], true, false), None);
    assert!(matches!(
        bp(&["146.112.61.105"], true, false),
        Some(BlockPage::Known { .. })
    ));
    let lan = [ip("192.168.1.2")];
    let a = [ip("192.168.1.2")];
    assert!(matches!(
        block_page("h.example", &[], &a, &lan, true, true),
        Some(BlockPage::SinkholeIsResolver(_))
    ));
    let chain = ["hit-block.opendns.com".to_owned()];
    match block_page("h.example", &chain, &[], &[], true, false) {
        Some(BlockPage::Known { product, summary }) => {
            assert_eq!(product, "Cisco Umbrella (OpenDNS)");
            assert!(summary.contains("via hit-block.opendns.com"), "{summary}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn classification() {
    let addrs = |v: &[&str]| Answer::Addrs(v.iter().map(|s| ip(s)).collect());
    let none = Answer::NoRecords { nx: false };
    let nx = Answer::NoRecords { nx: true };
    let c = |a: &Answer, b: &Answer, public| classify("h.example", a, b, public).1;
    assert_eq!(c(&addrs(&["1.2.3.4"]), &none, true), "dns.ok");
    assert_eq!(c(&addrs(&["1.2.3.4"]), &Answer::Timeout, true), "dns.ok");
    assert_eq!(
        c(&addrs(&["0.0.0.0"]), &addrs(&["::"]), false),
        "dns.sinkholed"
    );
    assert_eq!(
        c(&addrs(&["1.2.3.4"]), &addrs(&["::"]), true),
        "dns.sinkholed"
    );
    assert_eq!(c(&addrs(&["127.0.0.1"]), &none, true), "dns.sinkholed");
    assert_eq!(c(&addrs(&["127.0.0.1"]), &none, false), "dns.ok");
    assert_eq!(c(&nx, &nx, true), "dns.nxdomain");
    assert_eq!(c(&Answer::Timeout, &nx, true), "dns.nxdomain");
    assert_eq!(
        c(&Answer::ServFail, &Answer::ServFail, true),
        "dns.servfail"
    );
    assert_eq!(c(&Answer::Refused, &Answer::Refused, true), "dns.refused");
    assert_eq!(c(&Answer::Timeout, &Answer::Timeout, true), "dns.timeout");
    // A silent A beside a refused AAAA is asked again; an answered A keeps the refusal.
    assert_eq!(c(&Answer::Timeout, &Answer::Refused, true), "dns.timeout");
    assert_eq!(c(&Answer::Timeout, &Answer::ServFail, true), "dns.timeout");
    assert_eq!(c(&Answer::Refused, &Answer::Timeout, true), "dns.refused");
    assert_eq!(c(&none, &none, true), "dns.no_address");
    assert_eq!(c(&Answer::Other("x".into()), &none, true), "dns.error");
    let (status, _, summary) = classify("h.example", &nx, &nx, true);
    assert_eq!(status, Status::Fail);
    assert!(summary.contains("NXDOMAIN"));
}
