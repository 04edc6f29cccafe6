//! Property tests: the profile parser and every report format, fed generated input.
//!
//! They run in every `cargo test` with proptest's default case count; for a long fuzzing session
//! raise it, e.g. `PROPTEST_CASES=2000000 cargo test --release fuzz::` (see README, Development).
//! What must hold: no panic on any input, every bad profile is an error with a one-line message,
//! JSON round-trips, and planted credentials never survive redaction.

use crate::model::{
    Check, Confidence, Device, EndpointInfo, Probe, Report, SCHEMA_VERSION, Status, Suspect, Tool,
};
use crate::probe::registry;
use crate::report::{self, Format, RenderOptions};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn any_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Pass),
        Just(Status::Warn),
        Just(Status::Fail),
        Just(Status::Skip)
    ]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[a-z|*_`#<>\\[\\]\"\\\\{}\n\r\t =@:/.-]{0,40}",
        Just("http://user:pass@10.0.0.1:3128/x?y".to_owned()),
        Just("/home/alice/.cache and 192.168.1.20, fe80::1".to_owned()),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every measurement key a probe declares, and a few that checks carry besides.
fn data_keys() -> Vec<&'static str> {
    let declared = Probe::all()
        .iter()
        .flat_map(|p| p.definition().keys.iter().map(|k| k.name));
    declared.chain(["location", "offset_s"]).collect()
}

fn any_check(targets: Vec<String>) -> impl Strategy<Value = Check> {
    (
        0..Probe::all().len(),
        prop::option::of(prop::sample::select(targets)),
        any_status(),
        prop::sample::select(registry::all_codes().collect::<Vec<_>>()),
        any_text(),
        0.0f64..100_000.0,
        prop::collection::btree_map(prop::sample::select(data_keys()), any_value(), 0..6),
    )
        .prop_map(
            |(p, target, status, code, summary, duration_ms, data)| Check {
                probe: Probe::all()[p],
                target,
                status,
                code: code.to_owned(),
                summary,
                duration_ms,
                data: data
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>(),
                interface: None,
            },
        )
}

fn any_report() -> impl Strategy<Value = Report> {
    let names = prop::collection::vec("[a-z][a-z0-9_-]{0,10}", 1..4);
    names.prop_flat_map(|names| {
        let eps: Vec<EndpointInfo> = names
            .iter()
            .map(|n| EndpointInfo {
                name: n.clone(),
                host: format!("{n}.example"),
                port: 443,
                role: crate::model::Role::Service,
            })
            .collect();
        (
            prop::collection::vec(any_check(names.clone()), 0..12),
            prop::collection::vec(
                (
                    any_text(),
                    any_text(),
                    prop::option::of(1u8..=5),
                    prop::collection::vec(any_text(), 0..3),
                ),
                0..3,
            ),
            any_text(),
            any_text(),
        )
            .prop_map(move |(checks, suspects, host, region)| Report {
                schema_version: SCHEMA_VERSION,
                report_id: "0123456789ab".into(),
                tool: Tool::this(),
                started_at: "2026-11-25T18:00:00.000Z".into(),
                duration_ms: 12.5,
                region,
                status: Report::overall(&checks),
                suspects: suspects
                    .into_iter()
                    .map(|(title, symptom, difficulty, evidence)| Suspect {
                        id: "dns_filter".into(),
                        title,
                        symptom,
                        difficulty,
                        confidence: Confidence::Medium,
                        evidence: evidence.clone(),
                        steps: evidence,
                    })
                    .collect(),
                checks,
                endpoints: eps.clone(),
                device: Some(Device {
                    os: "Linux".into(),
                    hostname: host,
                }),
                redacted: Vec::new(),
                uplinks: Vec::new(),
            })
    })
}

/// The human format's own colour codes (`ESC [ … m`) removed.
fn strip_sgr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\u{1b}[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(k) if after[k..].starts_with('m') => rest = &after[k + 1..],
            _ => {
                out.push_str(&rest[i..i + 1]);
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            collect_strings(x, out)
        }),
        _ => {}
    }
}

proptest! {
    #[test]
    fn profile_parsing_never_panics(text in ".*") {
        if let Err(e) = crate::profile::parse(&text, "fuzz.toml") {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn profile_like_text_never_panics(
        name in "[a-z_\\- ]{0,8}",
        host in "[a-z0-9.:\\[\\]_-]{0,20}",
        port in any::<i64>(),
        path in ".{0,10}",
        extra in "[a-z_]{0,8} = [0-9\"a-z\\[\\]]{0,6}",
    ) {
        let text = format!(
            "[[endpoint]]\nname = {name:?}\nhost = {host:?}\nport = {port}\npath = {path:?}\n{extra}\n"
        );
        match crate::profile::parse(&text, "fuzz.toml") {
            Ok(p) => {
                prop_assert_eq!(p.endpoints.len(), 1);
                prop_assert!(p.endpoints[0].port > 0);
                prop_assert!(crate::profile::valid_host(&p.endpoints[0].host));
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n')),
        }
    }

    #[test]
    fn every_format_renders_any_report(r in any_report()) {
        for format in [Format::Human, Format::Json, Format::Markdown, Format::Prometheus, Format::Nagios] {
            let bytes = report::render(&r, format, RenderOptions { personal_redacted: true });
            prop_assert!(!bytes.is_empty());
            prop_assert!(std::str::from_utf8(&bytes).is_ok());
        }
        let json = report::render(&r, Format::Json, RenderOptions::default());
        let back: Value = serde_json::from_slice(&json).expect("JSON output parses");
        prop_assert_eq!(back["schema_version"].as_u64(), Some(1));
        prop_assert_eq!(back["checks"].as_array().map(Vec::len), Some(r.checks.len()));
    }

    /// Whatever text a report holds (a probe that forgot to sanitize, a saved report from
    /// elsewhere), no format carries a control or bidi character but its own line feeds (and the
    /// human format's own colour codes), and the Markdown renders no HTML, link or image.
    #[test]
    fn no_format_carries_outside_controls_or_markup(r in any_report()) {
        for format in [Format::Human, Format::Json, Format::Markdown, Format::Prometheus, Format::Nagios] {
            let out = String::from_utf8(report::render(&r, format, RenderOptions { personal_redacted: true })).expect("utf-8");
            let text = if format == Format::Human { strip_sgr(&out) } else { out.clone() };
            let bad = text.chars().find(|c| *c != '\n' && crate::sanitize::is_hazard(*c));
            prop_assert!(bad.is_none(), "{:?} carries {:?}:\n{}", format, bad, out);
            if format == Format::Json {
                let v: Value = serde_json::from_str(&out).expect("JSON output parses");
                let mut strings = Vec::new();
                collect_strings(&v, &mut strings);
                for s in strings {
                    prop_assert!(!s.chars().any(crate::sanitize::is_hazard), "JSON string {:?}", s);
                }
            }
            if format == Format::Markdown {
                use pulldown_cmark::{Event, Parser, Tag};
                for event in Parser::new(&out) {
                    // The report's own fold of every check is its only HTML.
                    let own = matches!(&event, Event::Html(h) if crate::report::markdown::is_own_fold(h));
                    let markup = !own && matches!(
                        event,
                        Event::Html(_) | Event::InlineHtml(_) | Event::Start(Tag::Link { .. }) | Event::Start(Tag::Image { .. })
                    );
                    prop_assert!(!markup, "{:?} rendered from\n{}", event, out);
                }
            }
        }
    }

    #[test]
    fn planted_credentials_never_survive(user in "[a-zA-Z0-9]{1,12}", pass in "[a-zA-Z0-9!$&()*+,;=]{6,20}", host in "[a-z]{1,10}\\.lan") {
        let secret = format!("Zq{pass}");
        let url = format!("http://{user}:{secret}@{host}:3128");
        let mut c = Check::new(Probe::Proxy, None, Status::Pass, "proxy.env", format!("proxy {url} set"));
        c.data.insert("https_proxy".into(), Value::String(url.clone()));
        c.data.insert("nested".into(), serde_json::json!({"list": [url.clone()]}));
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            report_id: "x".into(),
            tool: Tool::this(),
            started_at: String::new(),
            duration_ms: 0.0,
            region: "r".into(),
            status: Status::Pass,
            checks: vec![c],
            suspects: Vec::new(),
            endpoints: Vec::new(),
            device: None,
            redacted: Vec::new(),
            uplinks: Vec::new(),
        };
        crate::redact::credentials(&mut r);
        for format in [Format::Human, Format::Json, Format::Markdown, Format::Prometheus, Format::Nagios] {
            let out = String::from_utf8(report::render(&r, format, RenderOptions { personal_redacted: false })).expect("utf-8");
            prop_assert!(!out.contains(&secret), "{:?} leaks", format);
        }
        prop_assert!(!crate::probe::proxyenv::redact_url(&url).contains(&secret));
    }
}
