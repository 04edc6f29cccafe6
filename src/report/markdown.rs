//! Markdown: the report as a support-ticket attachment.
//!
//! Written for three destinations at once: rendered by GitHub or Jira, and read raw in an e-mail.
//! So: a short header table (report id, tool, OS, time, region), one table of checks, then the
//! likely causes as headed sections with numbered steps, then the measurements. Nothing that only
//! renders in one of them (no `<details>`, no HTML), and every piece of text from the network is
//! escaped so a `|` in a summary cannot break the table and a `<` cannot hide text as a tag.
//!
//! Redaction happens before this function (see `crate::redact`); the report's `redacted` list
//! is printed at the end so the reader knows what is missing and why.

use crate::model::{Check, Report, Status};
use serde_json::Value;
use std::fmt::Write;

/// Escapes text for Markdown: table pipes, inline HTML, entities, code spans, emphasis,
/// strike-through, headings, links and images, and the bare URLs (`https://…`, `www.…`) that
/// GitHub and Jira would turn into links. Line breaks become spaces, since every piece of text
/// here sits in one cell or one list item. Every escape is a backslash before ASCII punctuation,
/// which CommonMark renders as the character itself: the reader sees the text, never markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric());
        match c {
            '\\' | '|' | '<' | '`' | '*' | '~' | '[' | ']' | '&' => {
                out.push('\\');
                out.push(c);
            }
            // Inside a word (`rest_of_world`) an underscore is never emphasis.
            '_' if !(word(prev.as_ref()) && word(chars.peek())) => out.push_str("\\_"),
            // A heading, quote or list marker only counts at the start of a cell or an item.
            '#' | '>' | '+' | '-' | '=' if prev.is_none() => {
                out.push('\\');
                out.push(c);
            }
            // `scheme://` and `www.` start an autolink in GitHub-flavoured Markdown.
            ':' if chars.peek() == Some(&'/') => out.push_str("\\:"),
            '.' if out.ends_with("www") || out.ends_with("WWW") => out.push_str("\\."),
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// A code span for identifiers (`dns.nxdomain`); a backtick inside would end it, so it is
/// dropped, and a pipe is escaped because GitHub splits table cells even inside code spans.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "").replace('|', "\\|"))
}

fn took(c: &Check) -> String {
    if c.status == Status::Skip || c.duration_ms == 0.0 {
        String::new()
    } else if c.duration_ms >= 1000.0 {
        format!("{:.2} s", c.duration_ms / 1000.0)
    } else {
        format!("{:.1} ms", c.duration_ms)
    }
}

/// Checks in reading order: each endpoint's stages in profile order, then the device probes.
fn ordered(r: &Report) -> Vec<&Check> {
    let mut out: Vec<&Check> = Vec::with_capacity(r.checks.len());
    for ep in &r.endpoints {
        out.extend(
            r.checks
                .iter()
                .filter(|c| c.target.as_deref() == Some(ep.name.as_str())),
        );
    }
    out.extend(r.checks.iter().filter(|c| match &c.target {
        None => true,
        Some(t) => !r.endpoints.iter().any(|e| &e.name == t),
    }));
    // A per-uplink run reads uplink by uplink; checks of no uplink (the device) come last.
    if !r.uplinks.is_empty() {
        out.sort_by_key(|c| {
            c.interface
                .as_deref()
                .and_then(|i| r.uplinks.iter().position(|u| u.name == i))
                .unwrap_or(usize::MAX)
        });
    }
    out
}

/// The Target cell: the endpoint (or `device`), and the uplink the check went over.
fn target_cell(c: &Check) -> String {
    let t = c.target.as_deref().map_or_else(|| "device".into(), escape);
    match &c.interface {
        Some(i) => format!("{t} via {}", escape(i)),
        None => t,
    }
}

/// Renders one `data` value compactly: `a, b` for lists, `k=v` for objects.
fn data_value(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                // A list of records (connection attempts): one parenthesised group each.
                Value::Object(_) => format!("({})", data_value(i)),
                _ => data_value(i),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", data_value(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// `personal_redacted`: whether host names, user names and private addresses were removed (the
/// default), or kept on request (`--no-redact`). The report says which.
pub fn render(r: &Report, personal_redacted: bool) -> String {
    let mut out = String::new();
    summary_table(&mut out, r);
    endpoints_and_uplinks(&mut out, r);
    checks(&mut out, r);
    likely_causes(&mut out, r);
    measurements(&mut out, r);
    redaction(&mut out, r, personal_redacted);
    out
}

/// The title and the table of what, where and when.
fn summary_table(out: &mut String, r: &Report) {
    let verdict = r.status.verdict();
    let _ = writeln!(
        out,
        "## {} report {}: {} {verdict}\n",
        escape(&r.tool.name),
        code(&r.report_id),
        r.status.mark()
    );
    let (fail, warn, pass, skip) = (
        r.count(Status::Fail),
        r.count(Status::Warn),
        r.count(Status::Pass),
        r.count(Status::Skip),
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| Result | {} **{verdict}**: {fail} failed, {warn} warning(s), {pass} passed, {skip} skipped |",
        r.status.mark()
    );
    let _ = writeln!(out, "| Report id | {} |", code(&r.report_id));
    let _ = writeln!(
        out,
        "| Tool | {} {} |",
        escape(&r.tool.name),
        escape(&r.tool.version)
    );
    match &r.device {
        Some(d) => {
            let os = if d.os.is_empty() { "unknown" } else { &d.os };
            let _ = writeln!(out, "| OS | {} |", escape(os));
            if !d.hostname.is_empty() {
                let _ = writeln!(out, "| Host | {} |", escape(&d.hostname));
            }
        }
        None => {
            let _ = writeln!(out, "| OS | unknown |");
        }
    }
    let _ = writeln!(
        out,
        "| Time | {} (took {:.1} s) |",
        escape(&r.started_at),
        r.duration_ms / 1000.0
    );
    let _ = writeln!(out, "| Region | {} |", escape(&r.region));
}

/// The endpoints checked and the uplinks the run went over.
fn endpoints_and_uplinks(out: &mut String, r: &Report) {
    if !r.endpoints.is_empty() {
        let _ = writeln!(out, "\n### Endpoints\n");
        let _ = writeln!(out, "| Endpoint | Address | Role |\n|---|---|---|");
        for e in &r.endpoints {
            let _ = writeln!(
                out,
                "| {} | {}:{} | {} |",
                escape(&e.name),
                escape(&e.host),
                e.port,
                e.role.as_str()
            );
        }
    }

    if !r.uplinks.is_empty() {
        let _ = writeln!(out, "\n### Uplinks\n");
        let _ = writeln!(out, "| Interface | Kind | Status |\n|---|---|---|");
        for u in &r.uplinks {
            let _ = writeln!(
                out,
                "| {} | {} | {} {} |",
                escape(&u.name),
                u.kind_label(),
                u.status.mark(),
                u.status.verdict()
            );
        }
    }
}

/// One row per check.
fn checks(out: &mut String, r: &Report) {
    let _ = writeln!(out, "\n### Checks\n");
    if r.checks.is_empty() {
        let _ = writeln!(out, "No checks ran.");
    } else {
        let _ = writeln!(
            out,
            "| | Probe | Target | Code | Time | Summary |\n|---|---|---|---|--:|---|"
        );
        for c in ordered(r) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                c.status.mark(),
                c.probe.name(),
                target_cell(c),
                code(&c.code),
                took(c),
                escape(&c.summary)
            );
        }
        let _ = writeln!(out, "\n✓ pass · ! warning · ✗ failure · - skipped");
    }
}

/// The suspects, ranked, with their evidence and steps.
fn likely_causes(out: &mut String, r: &Report) {
    let _ = writeln!(out, "\n### Likely causes\n");
    if r.suspects.is_empty() {
        let _ = writeln!(out, "None identified.");
    } else if r.status == Status::Pass {
        let _ = writeln!(
            out,
            "The network path is fine. What a network check cannot test:\n"
        );
    }
    for (i, s) in r.suspects.iter().enumerate() {
        let _ = writeln!(out, "#### {}. {}\n", i + 1, escape(&s.title));
        let difficulty = s
            .difficulty
            .map(|d| format!(" · difficulty {d}/5"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} · {} confidence{difficulty}\n",
            code(&s.id),
            s.confidence.as_str()
        );
        let _ = writeln!(out, "**You see:** {}\n", escape(&s.symptom));
        if !s.evidence.is_empty() {
            let _ = writeln!(out, "**Evidence:**\n");
            for e in &s.evidence {
                let _ = writeln!(out, "- {}", escape(e));
            }
            out.push('\n');
        }
        if !s.steps.is_empty() {
            let _ = writeln!(out, "**Steps:**\n");
            for (n, step) in s.steps.iter().enumerate() {
                let _ = writeln!(out, "{}. {}", n + 1, escape(step));
            }
            out.push('\n');
        }
    }
}

/// Every check's measurements, as `key: value` pairs.
fn measurements(out: &mut String, r: &Report) {
    let measured: Vec<&Check> = ordered(r)
        .into_iter()
        .filter(|c| !c.data.is_empty())
        .collect();
    if !measured.is_empty() {
        let _ = writeln!(out, "\n### Measurements\n");
        for c in measured {
            let values: Vec<String> = c
                .data
                .iter()
                .map(|(k, v)| format!("{k}: {}", escape(&data_value(v))))
                .collect();
            let _ = writeln!(
                out,
                "- **{} {}**: {}",
                c.target.as_deref().map_or_else(|| "device".into(), escape),
                c.probe.name(),
                values.join("; ")
            );
        }
    }
}

/// What was redacted, and the closing line.
fn redaction(out: &mut String, r: &Report, personal_redacted: bool) {
    let _ = writeln!(out, "\n### Redaction\n");
    let kinds = if r.redacted.is_empty() {
        "nothing needed removing".to_owned()
    } else {
        r.redacted
            .iter()
            .map(|k| escape(k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if personal_redacted {
        let _ = writeln!(
            out,
            "Removed before writing this report: {kinds}. Proxy credentials are always removed; \
             the device host name, user names in paths and private, loopback and link-local \
             addresses are removed unless the report is made with `--no-redact`."
        );
    } else {
        let _ = writeln!(
            out,
            "Made with `--no-redact`: host name, user names in paths and private addresses are \
             included. Removed: {kinds}. Proxy credentials are always removed."
        );
    }
    let _ = writeln!(
        out,
        "\n_Made by {} {}. Quote report id {} when you reply._",
        escape(&r.tool.name),
        escape(&r.tool.version),
        code(&r.report_id)
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Confidence, Device, EndpointInfo, Probe, Suspect, Tool};

    pub fn sample() -> Report {
        let checks = vec![
            Check::new(
                Probe::Dns,
                Some("api"),
                Status::Pass,
                "dns.ok",
                "2 addresses",
            )
            .took(std::time::Duration::from_micros(12_300))
            .with("addresses", vec!["203.0.113.7", "2001:db8::7"])
            .with("resolve_ms", 12.3),
            Check::new(
                Probe::Http,
                Some("api"),
                Status::Fail,
                "http.blocked",
                "403 from a | pipe <b>html</b> `tick` *star* [link](x)\nsecond line",
            )
            .took(std::time::Duration::from_millis(1500))
            .with("status_code", 403),
            Check::skipped(Probe::Latency, Some("api"), "needs a connection"),
            Check::new(Probe::Vpn, None, Status::Warn, "vpn.active", "tun0 is up"),
        ];
        Report {
            schema_version: 1,
            report_id: "0123456789ab".into(),
            tool: Tool::this(),
            started_at: "2025-03-01T10:00:00.000Z".into(),
            duration_ms: 2345.0,
            region: "rest_of_world".into(),
            status: Status::Fail,
            checks,
            suspects: vec![Suspect {
                id: "server_side".into(),
                title: "BMW's servers refuse this client".into(),
                symptom: "The app says the service is unavailable".into(),
                difficulty: Some(1),
                confidence: Confidence::High,
                evidence: vec!["http.blocked on api".into()],
                steps: vec!["Wait and retry".into(), "Check the status page".into()],
            }],
            endpoints: vec![EndpointInfo {
                name: "api".into(),
                host: "cocoapi.example.com".into(),
                port: 443,
                role: crate::model::Role::Service,
            }],
            device: Some(Device {
                os: "Debian 13".into(),
                hostname: "<hostname>".into(),
            }),
            redacted: vec!["device host name (1)".into()],
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn escape_keeps_tables_and_text_intact() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<private>"), "\\<private>");
        assert_eq!(escape("x\ny"), "x y");
        assert_eq!(escape("rest_of_world"), "rest_of_world");
    }

    #[test]
    fn every_table_row_has_the_header_s_column_count() {
        let md = render(&sample(), true);
        let mut columns = None;
        for line in md.lines() {
            if line.starts_with('|') {
                // Cells split on pipes that are not escaped.
                let cells = line.replace("\\|", "").matches('|').count();
                if line.starts_with("| |") || line.starts_with("| Endpoint") {
                    columns = Some(cells);
                }
                assert_eq!(Some(cells), columns, "row {line:?} in\n{md}");
            } else {
                columns = None;
            }
        }
    }

    #[test]
    fn has_what_a_ticket_needs() {
        let md = render(&sample(), true);
        for needle in [
            "report `0123456789ab`",
            "| OS | Debian 13 |",
            "| Host | \\<hostname> |",
            "| Region | rest_of_world |",
            "2025-03-01T10:00:00.000Z",
            &format!("| Tool | bmw-netcheck {} |", env!("CARGO_PKG_VERSION")),
            "| ✗ | http | api | `http.blocked` | 1.50 s | 403 from a \\| pipe \\<b>html\\</b> \\`tick\\` \\*star\\* \\[link\\](x) second line |",
            "| - | latency | api | `latency.skipped` |  | needs a connection |",
            "| ! | vpn | device | `vpn.active` |",
            "#### 1. BMW's servers refuse this client",
            "`server_side` · high confidence · difficulty 1/5",
            "- http.blocked on api",
            "1. Wait and retry\n2. Check the status page",
            "- **api dns**: addresses: 203.0.113.7, 2001:db8::7; resolve_ms: 12.3",
            "Removed before writing this report: device host name (1).",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
    }

    #[test]
    fn says_when_not_redacted() {
        let md = render(&sample(), false);
        assert!(md.contains("Made with `--no-redact`"), "{md}");
    }
}
