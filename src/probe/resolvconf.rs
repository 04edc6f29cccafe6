//! resolvconf: the name servers and search domains the system resolver uses, and where they came
//! from.
//!
//! The dns stage says what the resolver answered; this says who the resolver is. On Linux the
//! C library (and most programs) read `/etc/resolv.conf`, which is rarely written by hand: it is
//! a link to systemd-resolved's file (often naming only its local stub, 127.0.0.53, which
//! forwards to the servers in `/run/systemd/resolve/resolv.conf`), or a file NetworkManager,
//! resolvconf, dhcpcd or dhclient generated and marked with a comment. Knowing which is how a
//! support ticket gets from "DNS fails" to "the VPN client left its resolver behind" or "the
//! router hands out a filtering server".
//!
//! The file is read as hostile input: the link is read without being followed to name it, and
//! the file it leads to is opened without blocking, only if it is a regular file, and at most
//! [`MAX_BYTES`] ([`crate::safefile::read_bounded`]); every value shown passes
//! [`crate::sanitize::outside`]. `BMW_NETCHECK_RESOLV_ROOT` names a directory that stands in for
//! `/` (the tests build their own `etc/resolv.conf` there).

use crate::model::{Check, Probe, Status};
use crate::probe::definition::{Definition, DeviceFuture, DeviceInput, Key, Run};
use crate::sanitize::outside;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The resolvconf probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Resolvconf,
    name: "resolvconf",
    description: "the system's name servers and search domains, and what wrote them",
    codes: &[
        "resolvconf.ok",
        "resolvconf.no_resolver",
        "resolvconf.timeout",
        "resolvconf.skipped",
    ],
    keys: &[
        Key::list("nameservers"),
        Key::list("search"),
        Key::scalar("source"),
        Key::scalar("link"),
        Key::list("upstreams"),
    ],
    metrics: &[],
    needs: &[],
    run: Run::Device(start),
};

/// The most of a resolv.conf that is read: real ones are a few hundred bytes.
pub const MAX_BYTES: u64 = 64 * 1024;

/// The most name servers or search domains reported.
const MAX_ENTRIES: usize = 16;

/// systemd-resolved's local stub addresses.
const STUBS: [&str; 2] = ["127.0.0.53", "127.0.0.54"];

/// Where systemd-resolved writes the servers its stub forwards to.
const RESOLVED_UPSTREAMS: &str = "run/systemd/resolve/resolv.conf";

/// Reading two small files is blocking work: off the async workers.
fn start(_: Arc<DeviceInput>) -> DeviceFuture {
    Box::pin(async move {
        tokio::task::spawn_blocking(|| vec![run(&crate::platform::fs::root())])
            .await
            .unwrap_or_default()
    })
}

/// What a resolv.conf says.
#[derive(Debug, Default, PartialEq)]
pub struct Conf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    /// The program that marked the file as its own, from its comments.
    pub marked_by: Option<&'static str>,
}

/// Reads resolv.conf text: `nameserver` lines, the last `search` or `domain` line (as the C
/// library does), and the comment of the program that generated it.
pub fn parse(text: &str) -> Conf {
    let mut conf = Conf::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') {
            conf.marked_by = conf.marked_by.or_else(|| generator(line));
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next()
                    && conf.nameservers.len() < MAX_ENTRIES
                {
                    conf.nameservers.push(outside(ns));
                }
            }
            Some("search" | "domain") => {
                conf.search = words.take(MAX_ENTRIES).map(outside).collect();
            }
            _ => {}
        }
    }
    conf
}

/// The program a comment names as the file's writer.
fn generator(comment: &str) -> Option<&'static str> {
    let c = comment.to_ascii_lowercase();
    [
        ("systemd-resolved", "systemd-resolved"),
        ("networkmanager", "NetworkManager"),
        ("resolvconf", "resolvconf"),
        ("dhcpcd", "dhcpcd"),
        ("dhclient", "dhclient"),
    ]
    .into_iter()
    .find(|(mark, _)| c.contains(mark))
    .map(|(_, name)| name)
}

/// The program a link target belongs to.
fn owner_of_link(target: &str) -> Option<&'static str> {
    if target.contains("systemd/resolve/") {
        Some("systemd-resolved")
    } else if target.contains("NetworkManager/") {
        Some("NetworkManager")
    } else if target.contains("resolvconf/") {
        Some("resolvconf")
    } else {
        None
    }
}

/// Where the configuration came from: the link's owner, the file's own mark, or a static file.
pub fn source(link: Option<&str>, conf: &Conf) -> &'static str {
    link.and_then(owner_of_link)
        .or(conf.marked_by)
        .unwrap_or("static")
}

/// Looks at `<root>/etc/resolv.conf`.
pub fn run(root: &Path) -> Check {
    let started = Instant::now();
    let path = root.join("etc/resolv.conf");
    let link = std::fs::symlink_metadata(&path)
        .ok()
        .filter(|m| m.file_type().is_symlink())
        .and_then(|_| std::fs::read_link(&path).ok())
        .map(|t| outside(&t.to_string_lossy()));
    let text = match crate::safefile::read_bounded(&path, MAX_BYTES, "resolv.conf") {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(why) => {
            let summary =
                format!("/etc/resolv.conf {why}: the system resolver's settings are unknown");
            return Check::skipped(Probe::Resolvconf, None, outside(&summary))
                .with("link", link)
                .took(started.elapsed());
        }
    };
    let conf = parse(&text);
    let source = source(link.as_deref(), &conf);
    let upstreams = if conf.nameservers.iter().any(|n| STUBS.contains(&n.as_str())) {
        let upstream =
            crate::safefile::read_bounded(&root.join(RESOLVED_UPSTREAMS), MAX_BYTES, "resolv.conf");
        upstream.map_or_else(
            |_| Vec::new(),
            |b| parse(&String::from_utf8_lossy(&b)).nameservers,
        )
    } else {
        Vec::new()
    };
    judge(conf, source, link, upstreams).took(started.elapsed())
}

/// The check from what the file says.
pub fn judge(conf: Conf, source: &str, link: Option<String>, upstreams: Vec<String>) -> Check {
    let writer = match source {
        "static" => "a static file".to_owned(),
        other => format!("written by {other}"),
    };
    let from = match &link {
        Some(target) => format!("{writer}; /etc/resolv.conf links to {target}"),
        None => writer,
    };
    let search = if conf.search.is_empty() {
        String::new()
    } else {
        format!(", search {}", conf.search.join(" "))
    };
    let (status, code, summary) = if conf.nameservers.is_empty() {
        (
            Status::Fail,
            "resolvconf.no_resolver",
            format!(
                "/etc/resolv.conf names no name server, so programs that read it ask 127.0.0.1, where usually nothing answers; {from}"
            ),
        )
    } else if !upstreams.is_empty() {
        (
            Status::Pass,
            "resolvconf.ok",
            format!(
                "DNS goes to the local stub {}, which forwards to {}{search}; {from}",
                conf.nameservers.join(", "),
                upstreams.join(", ")
            ),
        )
    } else {
        (
            Status::Pass,
            "resolvconf.ok",
            format!(
                "DNS goes to {}{search}; {from}",
                conf.nameservers.join(", ")
            ),
        )
    };
    let list = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    Check::new(Probe::Resolvconf, None, status, code, summary)
        .with("nameservers", list(conf.nameservers))
        .with("search", list(conf.search))
        .with("source", source)
        .with("link", link)
        .with("upstreams", list(upstreams))
        .unmeasured()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_servers_search_and_the_writers_mark() {
        let c = parse(
            "# Generated by NetworkManager\nsearch lan corp.example\nnameserver 192.168.1.1\n\
             nameserver  fd00::1 \noptions edns0\n; comment\n",
        );
        assert_eq!(c.nameservers, ["192.168.1.1", "fd00::1"]);
        assert_eq!(c.search, ["lan", "corp.example"]);
        assert_eq!(c.marked_by, Some("NetworkManager"));
        assert_eq!(source(None, &c), "NetworkManager");
        let stub = parse(
            "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n\
             nameserver 127.0.0.53\nsearch .\n",
        );
        assert_eq!(stub.marked_by, Some("systemd-resolved"));
        let plain = parse("domain home\nnameserver 10.0.0.1\n");
        assert_eq!(source(None, &plain), "static");
        assert_eq!(plain.search, ["home"]);
        // The link's owner wins over a comment copied along with the file.
        assert_eq!(
            source(Some("/run/NetworkManager/resolv.conf"), &stub),
            "NetworkManager"
        );
    }

    #[test]
    fn a_file_without_name_servers_fails_and_outside_text_is_sanitized() {
        let c = judge(parse("search lan\n"), "static", None, Vec::new());
        assert_eq!(
            (c.status, c.code.as_str()),
            (Status::Fail, "resolvconf.no_resolver")
        );
        let c = parse("nameserver 10.0.0.1\x1b[31m\n");
        assert!(!c.nameservers[0].contains('\x1b'), "{:?}", c.nameservers);
    }
}
