//! The probe registry against what users and the diagnosis see: every registered probe is shown
//! by `list`, each of its failure codes points to a suspect in the knowledge base, and its
//! measurement keys are documented in the README. A probe added to the registry and forgotten
//! anywhere else fails here.

use crate::support::netcheck::Netcheck;
use bmw_netcheck::knowledge::Knowledge;
use bmw_netcheck::model::Probe;
use bmw_netcheck::probe::registry::{self, Kind};
use serde_json::Value;

fn readme() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(path).expect("README.md is readable")
}

#[test]
fn every_registered_probe_appears_in_list() {
    let out = Netcheck::bare()
        .arg("list")
        .arg("--format")
        .arg("json")
        .run();
    out.assert_exit(0);
    let doc: Value = serde_json::from_str(&out.stdout).expect("list --format json is JSON");
    let listed: Vec<&str> = doc["probes"]
        .as_array()
        .expect("a probes array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let registered: Vec<&str> = Probe::all().iter().map(|p| p.name()).collect();
    assert_eq!(listed, registered, "list shows the registry, in its order");
    for p in doc["probes"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        let probe = Probe::from_name(name).expect("a registered probe");
        assert_eq!(p["what"].as_str(), Some(probe.describe()), "{name}");
    }
    let human = Netcheck::bare().arg("list").run();
    for name in registered {
        assert!(
            human
                .stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} missing from `list`:\n{}",
            human.stdout
        );
    }
}

#[test]
fn every_probe_has_its_failures_in_the_knowledge_base() {
    let kb = Knowledge::builtin().expect("the built-in knowledge base");
    let in_kb = |code: &str| {
        kb.suspect
            .iter()
            .any(|s| s.evidence.iter().any(|e| e.code == code))
    };
    for p in Probe::all().iter().copied() {
        let d = registry::definition(p);
        // Every probe can time out, and a timeout is always evidence of something.
        let timeout = format!("{}.timeout", d.name);
        assert!(
            d.codes.contains(&timeout.as_str()),
            "{} has no {timeout}",
            d.name
        );
        let evidence: Vec<&&str> = d.codes.iter().filter(|c| in_kb(c)).collect();
        assert!(
            !evidence.is_empty(),
            "no code of {} is evidence in checks/suspects.toml",
            d.name
        );
    }
    // And the other way: the knowledge base names only codes some probe declares.
    for s in &kb.suspect {
        for e in &s.evidence {
            assert!(
                registry::is_known(&e.code),
                "{}: {} is no probe's code",
                s.id,
                e.code
            );
        }
    }
}

#[test]
fn every_probe_documents_its_measurement_keys_in_the_readme() {
    let text = readme();
    let start = text
        .find("Measurements are in each check's `data`:")
        .expect("the README's paragraph on measurements");
    let end = text[start..].find("\n\n").map_or(text.len(), |n| start + n);
    let paragraph = text[start..end].replace('\n', " ");
    for p in Probe::all().iter().copied() {
        let d = registry::definition(p);
        if d.keys.is_empty() {
            continue;
        }
        let at = paragraph
            .find(&format!(" {} `", d.name))
            .unwrap_or_else(|| panic!("the README's measurements do not name {}", d.name));
        for key in d.keys.iter().map(|k| k.name) {
            assert!(
                paragraph[at..].contains(&format!("`{key}`")),
                "the README does not document {}'s `{key}`",
                d.name
            );
        }
    }
    // Every probe has its row in the README's table of codes, naming each of its codes
    // (`<probe>.timeout` and `<probe>.skipped` are said once for all below the table).
    for p in Probe::all().iter().copied() {
        let d = registry::definition(p);
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {} | ", d.name)))
            .unwrap_or_else(|| panic!("the README's table of codes has no row for {}", d.name));
        for code in d.codes {
            if code.ends_with(".timeout") || code.ends_with(".skipped") {
                continue;
            }
            assert!(
                row.contains(&format!("`{code}`")),
                "the README's row for {} does not name `{code}`",
                d.name
            );
        }
    }
}

#[test]
fn the_kinds_run_where_the_registry_says() {
    // --only with a device probe runs no endpoint stage; with a stage, its needs run unreported.
    let out = Netcheck::bare()
        .arg("list")
        .arg("--only")
        .arg("tls")
        .arg("--format")
        .arg("json")
        .run();
    out.assert_exit(0);
    let doc: Value = serde_json::from_str(&out.stdout).expect("JSON");
    for p in doc["probes"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        let probe = Probe::from_name(name).expect("registered");
        let want = if probe == Probe::Tls {
            "on"
        } else if Probe::Tls.needs().contains(&probe) {
            "pre"
        } else {
            "off"
        };
        assert_eq!(p["state"].as_str(), Some(want), "{name}");
        if probe.kind() != Kind::Endpoint {
            assert!(probe.needs().iter().all(|n| n.kind() == Kind::Endpoint));
        }
    }
}
