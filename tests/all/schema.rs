//! The published JSON Schema: `bmw-netcheck schema` prints exactly the committed file, the file
//! is a valid draft 2020-12 schema, and every JSON document the tool writes — run, list,
//! explain, history, show, watch — validates against it. (The runner helper validates every
//! `--format json` output of the whole suite as well; these tests make sure each kind is seen.)

use crate::support::schema::{Doc, VALIDATED, assert_valid, committed};
use crate::support::*;
use serde_json::Value;
use std::sync::atomic::Ordering;

const HOST: &str = "api.netcheck.lan";

#[test]
fn schema_command_prints_the_committed_file() {
    let out = Netcheck::bare().arg("schema").run();
    out.assert_exit(0);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");
    let file = std::fs::read_to_string(path).expect("read the committed schema");
    assert!(
        out.stdout == file,
        "schema/report.schema.json differs from `bmw-netcheck schema`: regenerate it with \
         `cargo run -- schema > schema/report.schema.json`"
    );
    let doc = committed();
    assert_eq!(
        doc["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(
        jsonschema::meta::is_valid(&doc),
        "the committed schema is not a valid JSON Schema"
    );
}

#[test]
fn the_schema_rejects_what_is_not_a_report() {
    let doc = committed();
    let v = jsonschema::draft202012::new(&doc).expect("compiles");
    let good: Value = serde_json::json!({
        "schema_version": 1, "report_id": "abc", "tool": {"name": "bmw-netcheck", "version": "0.1.0"},
        "started_at": "2026-01-01T00:00:00.000Z", "duration_ms": 1.0, "region": "r",
        "status": "pass", "checks": [], "suspects": [], "endpoints": []
    });
    assert!(v.is_valid(&good));
    for (field, bad) in [
        ("schema_version", serde_json::json!(2)),
        ("status", serde_json::json!("maybe")),
        ("checks", serde_json::json!([{"probe": "telepathy"}])),
    ] {
        let mut r = good.clone();
        r[field] = bad;
        assert!(!v.is_valid(&r), "{field} should be rejected");
    }
}

#[test]
fn every_kind_of_json_output_validates() {
    let before = VALIDATED.load(Ordering::Relaxed);
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.identity(HOST), HttpBehaviour::status(200));
    let dns = DnsServer::start([(HOST, DnsAnswer::localhost())]);
    let profile = ProfileFile::new(&[EndpointSpec::new("api", HOST, server.port())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("history.jsonl");

    // A run, recorded in a history file.
    let run = Netcheck::bare()
        .format("json")
        .timeout("2s")
        .samples(2)
        .only("dns,tcp,tls,http,latency")
        .resolver(&dns)
        .ca_file(&pki)
        .arg("--profile")
        .arg(profile.path())
        .arg("--history")
        .arg(&log)
        .run();
    run.assert_exit(0);
    let history = std::fs::read_to_string(&log).expect("history written");
    for line in history.lines() {
        assert_valid(
            Doc::Report,
            &serde_json::from_str(line).expect("a JSON line"),
        );
    }
    // list, explain (one and all), history, show — each validated by the runner helper.
    let outputs = [
        Netcheck::bare()
            .arg("list")
            .arg("--format")
            .arg("json")
            .arg("--profile")
            .arg(profile.path())
            .run(),
        Netcheck::bare()
            .arg("explain")
            .arg("dns_filter")
            .arg("--format")
            .arg("json")
            .run(),
        Netcheck::bare()
            .arg("explain")
            .arg("--format")
            .arg("json")
            .run(),
        Netcheck::bare()
            .arg("history")
            .arg("--history")
            .arg(&log)
            .arg("--format")
            .arg("json")
            .run(),
        Netcheck::bare()
            .arg("show")
            .arg(&log)
            .arg("--format")
            .arg("json")
            .run(),
    ];
    for out in &outputs {
        out.assert_exit(0);
        serde_json::from_str::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.describe()));
    }
    let validated = VALIDATED.load(Ordering::Relaxed) - before;
    // run + history line + list + explain + explain (all) + history + show.
    assert!(validated >= 7, "only {validated} documents validated");
    say(&format!(
        "schema: {} JSON documents of the suite validated so far",
        VALIDATED.load(Ordering::Relaxed)
    ));
}
