//! Markdown: the report as a support-ticket attachment.
//!
//! Written for three destinations at once: rendered by GitHub or Jira, and read raw in an e-mail.
//! So it opens with what a support agent needs first: the verdict in words, the most likely cause
//! with the evidence that decided it and its first steps, and a compact table of what failed.
//! The run's details (OS, time, endpoints), the other causes and the measurements of what failed
//! follow; every check is there too, folded in one `<details>` block (the report's only HTML,
//! which a raw reader skips easily), an endpoint's skipped stages in one row.
//!
//! Text from the network is escaped only where Markdown would read markup, so a `|` cannot break
//! a table and a `<` cannot hide text as a tag, while the raw file reads as plain text; words
//! that would become links are code spans.
//!
//! Redaction happens before this function (see `crate::redact`); the report's `redacted` list
//! is printed at the end so the reader knows what is missing and why.

use super::glance;
use crate::model::{Check, Report, Status, Suspect};
use serde_json::Value;
use std::fmt::Write;

/// Escapes text for Markdown: table pipes, inline HTML, entities, code spans, emphasis,
/// strike-through, headings, links and images. A word that GitHub or Jira would turn into a link
/// (`https://…`, `www.…`) becomes a code span, which reads as itself raw and rendered. Line
/// breaks become spaces, since every piece of text here sits in one cell or one list item. Every
/// other escape is a backslash before ASCII punctuation, and only where Markdown would otherwise
/// read markup, so the raw file stays readable as plain text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let flat: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    for (i, word) in flat.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let lower = word.to_ascii_lowercase();
        // A wildcard name (`*.bmwgroup.com`) reads better as code than as `\*.bmwgroup.com`.
        let linkish = word.contains("://") || lower.contains("www.") || word.starts_with("*.");
        if linkish && !word.contains('`') {
            out.push_str(&code(word));
        } else {
            escape_word(&mut out, word, i == 0);
        }
    }
    out
}

/// One word of [`escape`]; `first`: it starts the cell or item (where `#`, `>`, `-` … count).
fn escape_word(out: &mut String, word: &str, first: bool) {
    let mut chars = word.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        let alnum = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric());
        let next = chars.peek().copied();
        match c {
            '\\' | '|' | '`' | '*' | '~' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            // A tag or an autolink starts with `<` and a letter, `/`, `!` or `?`.
            '<' if next.is_some_and(|n| n.is_ascii_alphabetic() || "/!?".contains(n)) => {
                out.push_str("\\<");
            }
            // An entity starts with `&` and a letter or `#`.
            '&' if next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '#') => {
                out.push_str("\\&");
            }
            // Inside a word (`rest_of_world`) an underscore is never emphasis.
            '_' if !(alnum(prev.as_ref()) && alnum(next.as_ref())) => out.push_str("\\_"),
            // A heading, quote or list marker only counts at the start of a cell or an item.
            '#' | '>' | '+' | '-' | '=' if prev.is_none() && first => {
                out.push('\\');
                out.push(c);
            }
            // `scheme://` inside a word (`(https://…`) still starts an autolink.
            ':' if next == Some('/') => out.push_str("\\:"),
            '.' if out.ends_with("www") || out.ends_with("WWW") => out.push_str("\\."),
            _ => out.push(c),
        }
        prev = Some(c);
    }
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
    verdict(&mut out, r);
    top_cause(&mut out, r);
    what_failed(&mut out, r);
    summary_table(&mut out, r);
    endpoints_and_uplinks(&mut out, r);
    other_causes(&mut out, r);
    checks(&mut out, r);
    measurements(&mut out, r);
    redaction(&mut out, r, personal_redacted);
    out
}

/// The title, the verdict in words and the tally: what a support agent reads first.
fn verdict(out: &mut String, r: &Report) {
    let verdict = r.status.verdict();
    let _ = writeln!(
        out,
        "## {} report {}: {} {verdict}\n",
        escape(&r.tool.name),
        code(&r.report_id),
        r.status.mark()
    );
    let _ = writeln!(out, "**{}**\n", escape(&glance::verdict(r)));
    let tally = glance::Tally::of(r).line(r.duration_ms / 1000.0);
    let _ = writeln!(out, "{}", escape(&tally));
}

/// The most likely cause, with the evidence that decided it and its first steps.
fn top_cause(out: &mut String, r: &Report) {
    let Some(s) = r.suspects.first() else {
        return;
    };
    let heading = if r.status == Status::Pass {
        "What a network check cannot test"
    } else {
        "Most likely cause"
    };
    let _ = writeln!(out, "\n### {heading}: {}\n", escape(&s.title));
    cause_body(out, s, glance::decisive(r), FIRST_STEPS);
    if s.steps.len() > FIRST_STEPS {
        let _ = writeln!(
            out,
            "All {} steps: {}.\n",
            s.steps.len(),
            code(&format!("bmw-netcheck explain {}", s.id))
        );
    }
}

/// Steps of the top cause shown before the tables; the rest are one `explain` away.
const FIRST_STEPS: usize = 3;

/// A cause's id, confidence, symptom, evidence and the first `steps` steps.
fn cause_body(out: &mut String, s: &Suspect, because: Option<String>, steps: usize) {
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
    if let Some(because) = because.filter(|b| !b.is_empty()) {
        let _ = writeln!(out, "**Because:** {}\n", escape(&because));
    }
    if !s.steps.is_empty() {
        for (n, step) in s.steps.iter().take(steps).enumerate() {
            let _ = writeln!(out, "{}. {}", n + 1, escape(step));
        }
        out.push('\n');
    }
}

/// What failed or warned, each distinct finding once with the endpoints showing it.
fn what_failed(out: &mut String, r: &Report) {
    let problems = glance::groups(r, |c| matches!(c.status, Status::Fail | Status::Warn));
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### What failed\n");
    let _ = writeln!(out, "| | Code | Where | Summary |\n|---|---|---|---|");
    for g in problems {
        let whence = match g.targets.len() {
            0 => "device".to_owned(),
            1 => escape(&g.targets[0]),
            n => format!("{n} endpoints: {}", escape(&g.targets.join(", "))),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {whence} | {} |",
            g.status.mark(),
            code(&g.code),
            escape(&g.summary)
        );
    }
}

/// The table of what, where and when.
fn summary_table(out: &mut String, r: &Report) {
    let verdict = r.status.verdict();
    let (fail, warn, pass, skip) = (
        r.count(Status::Fail),
        r.count(Status::Warn),
        r.count(Status::Pass),
        r.count(Status::Skip),
    );
    let _ = writeln!(out, "\n### Run\n");
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
                let _ = writeln!(out, "| Host | {} |", code(&d.hostname));
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

/// Every check, folded: failures and warnings are in the table above, so this is for the
/// curious. An endpoint's skipped stages are one row.
fn checks(out: &mut String, r: &Report) {
    if r.checks.is_empty() {
        let _ = writeln!(out, "\n### Checks\n\nNo checks ran.");
        return;
    }
    let _ = writeln!(
        out,
        "\n<details><summary>All {} checks: {} passed, {} skipped</summary>\n",
        r.checks.len(),
        r.count(Status::Pass),
        r.count(Status::Skip)
    );
    let _ = writeln!(
        out,
        "| | Probe | Target | Code | Time | Summary |\n|---|---|---|---|--:|---|"
    );
    let all = ordered(r);
    let mut i = 0;
    while i < all.len() {
        let c = all[i];
        let mut j = i + 1;
        while c.status == Status::Skip
            && j < all.len()
            && all[j].status == Status::Skip
            && all[j].target == c.target
            && all[j].interface == c.interface
            // A device's probes are unrelated: only the same reason folds them.
            && (c.target.is_some() || all[j].summary == c.summary)
        {
            j += 1;
        }
        let probes: Vec<&str> = all[i..j].iter().map(|c| c.probe.name()).collect();
        let code_cell = if j - i > 1 {
            code("*.skipped")
        } else {
            code(&c.code)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            c.status.mark(),
            probes.join(", "),
            target_cell(c),
            code_cell,
            took(c),
            escape(&c.summary)
        );
        i = j;
    }
    let _ = writeln!(
        out,
        "\n✓ pass · ! warning · ✗ failure · - skipped\n\n</details>"
    );
}

/// Whether `html` (a block of HTML a parser found) is the report's own fold of every check: its
/// opening line, which holds only counts, or its closing tag. Everything else in the report is
/// text.
pub fn is_own_fold(html: &str) -> bool {
    let h = html.trim();
    h == "</details>"
        || h.strip_prefix("<details><summary>All ")
            .and_then(|rest| rest.strip_suffix("</summary>"))
            .is_some_and(|inner| {
                inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " ,:".contains(c))
            })
}

/// The causes after the first, ranked, with the evidence the first did not already give.
fn other_causes(out: &mut String, r: &Report) {
    let Some((top, rest)) = r.suspects.split_first() else {
        return;
    };
    if rest.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Other likely causes\n");
    for (i, s) in rest.iter().enumerate() {
        let _ = writeln!(out, "#### {}. {}\n", i + 2, escape(&s.title));
        let new: Vec<&str> = s
            .evidence
            .iter()
            .filter(|e| !top.evidence.contains(e))
            .map(String::as_str)
            .collect();
        cause_body(out, s, Some(new.join("; ")), usize::MAX);
    }
}

/// A data key shown only where its finding is the check's: the DNS filter label means something
/// on a filter's finding, and nothing on a name that does not exist anywhere.
fn shown_key(c: &Check, key: &str) -> bool {
    key != "filter"
        || matches!(
            c.code.as_str(),
            "dns.sinkholed" | "dns.block_page" | "dns.filtered" | "dns.dropped" | "dns.rewritten"
        )
}

/// The measurements of the checks that failed or warned, as `key: value` pairs; empty values
/// are left out (every check's data is in the JSON report).
fn measurements(out: &mut String, r: &Report) {
    let rows: Vec<(&Check, Vec<String>)> = ordered(r)
        .into_iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        .map(|c| {
            let values = c
                .data
                .iter()
                .filter(|(k, v)| !is_empty(v) && shown_key(c, k))
                .map(|(k, v)| format!("{k}: {}", escape(&data_value(v))))
                .collect();
            (c, values)
        })
        .filter(|(_, values): &(&Check, Vec<String>)| !values.is_empty())
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Measurements of what failed\n");
    for (c, values) in rows {
        let _ = writeln!(
            out,
            "- **{} {}**: {}",
            c.target.as_deref().map_or_else(|| "device".into(), escape),
            c.probe.name(),
            values.join("; ")
        );
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
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
        assert_eq!(escape("a < b & c"), "a < b & c");
        assert_eq!(
            escape("www.wikipedia.org via http://x.example/"),
            "`www.wikipedia.org` via `http://x.example/`"
        );
        assert_eq!(escape("allow *.bmwgroup.com"), "allow `*.bmwgroup.com`");
    }

    #[test]
    fn the_top_cause_comes_before_the_tables() {
        let md = render(&sample(), true);
        let at = |needle: &str| md.find(needle).unwrap_or(usize::MAX);
        assert!(at("### Most likely cause") < at("### What failed"), "{md}");
        assert!(at("### What failed") < at("<details>"), "{md}");
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
            "| Host | `<hostname>` |",
            "| Region | rest_of_world |",
            "2025-03-01T10:00:00.000Z",
            &format!("| Tool | bmw-netcheck {} |", env!("CARGO_PKG_VERSION")),
            "| ✗ | http | api | `http.blocked` | 1.50 s | 403 from a \\| pipe \\<b>html\\</b> \\`tick\\` \\*star\\* \\[link\\](x) second line |",
            "| - | latency | api | `latency.skipped` |  | needs a connection |",
            "| ! | vpn | device | `vpn.active` |",
            "### Most likely cause: BMW's servers refuse this client",
            "| ✗ | `http.blocked` | api | 403 from a \\| pipe",
            "`server_side` · high confidence · difficulty 1/5",
            "**Because:** http.blocked on api",
            "1. Wait and retry\n2. Check the status page",
            "- **api http**: status_code: 403",
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
