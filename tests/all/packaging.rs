//! The scheduled-check recipes against each other: `--help`, the README and the packaged systemd
//! service name one textfile directory (Debian's node_exporter default), the cron lines and the
//! service run the installed binary, and the timer runs every 15 minutes. A copied recipe that
//! writes where node_exporter does not read, or names a binary cron cannot find, fails here.
//! (`packaging/deb.sh` checks the built package itself.)

use crate::support::netcheck::Netcheck;

const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter/";
const INSTALLED: &str = "/usr/bin/bmw-netcheck";

fn file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel} is readable: {e}"))
}

/// The directory of every absolute `….prom` path in a text.
fn textfile_dirs(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c| c == '`' || c == '\\'))
        .filter(|w| w.starts_with('/') && w.ends_with(".prom"))
        .filter_map(|w| w.rsplit_once('/').map(|(dir, _)| format!("{dir}/")))
        .collect()
}

#[test]
fn help_readme_and_service_name_one_textfile_directory() {
    let help = Netcheck::bare().arg("--help").run();
    help.assert_exit(0);
    let readme = file("README.md");
    let service = file("packaging/bmw-netcheck.service");
    for (name, text) in [
        ("--help", help.stdout.as_str()),
        ("README.md", readme.as_str()),
        ("bmw-netcheck.service", service.as_str()),
    ] {
        let dirs = textfile_dirs(text);
        assert!(!dirs.is_empty(), "{name} names no textfile");
        for dir in dirs {
            assert_eq!(dir, TEXTFILE_DIR, "{name} names another textfile directory");
        }
    }
}

#[test]
fn cron_lines_and_the_units_run_the_installed_binary() {
    let readme = file("README.md");
    let cron: Vec<&str> = readme.lines().filter(|l| l.starts_with("*/")).collect();
    assert!(!cron.is_empty(), "the README has cron lines");
    for line in cron {
        // minute, hour, day, month, weekday, then the command
        assert_eq!(line.split_whitespace().nth(5), Some(INSTALLED), "{line}");
    }
    let service = file("packaging/bmw-netcheck.service");
    let exec = service
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("the service has an ExecStart line");
    assert!(
        exec.starts_with(&format!("ExecStart={INSTALLED} ")),
        "{exec}"
    );
    for option in ["--jitter", "--lock", "--format prometheus"] {
        assert!(service.contains(option), "the service runs with {option}");
    }
    let timer = file("packaging/bmw-netcheck.timer");
    assert!(
        timer.lines().any(|l| l == "OnCalendar=*:0/15"),
        "the timer runs every 15 minutes"
    );
}
