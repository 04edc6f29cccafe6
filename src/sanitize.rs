//! The one sanitizer for text that comes from outside the program.
//!
//! Certificates, HTTP answers (reason phrases, headers, bodies), DNS names, profiles and the
//! environment are written by someone else — on a hostile Wi-Fi, by an attacker. Such text is
//! passed through [`outside`] (or [`outside_capped`]) where it enters the model, so that every
//! format receives plain, visible text: no escape sequence can clear the screen, retitle the
//! window or draw a fake `✓ PASS`, and a 30 KB certificate name cannot flood the report.
//!
//! What it does, and why:
//! - C0 and C1 control characters (ESC, CSI U+009B, BEL, BS, CR, LF, TAB, DEL …) are shown as
//!   visible escapes (`\x1b`, `\u{9b}`): the reader sees that something was there, and nothing is
//!   interpreted by a terminal.
//! - Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069), and the other invisible
//!   format characters that can reorder or hide text (U+200B–U+200F, U+2028/U+2029, U+FEFF), are
//!   escaped the same way.
//! - Length is capped (in characters) with an ellipsis, so one field cannot dominate a report.
//!
//! Markup (Markdown, HTML) is escaped by the formats that have markup, at render time: only they
//! know their own syntax.
//!
//! Behind the entry points stands [`report`]: every format renders a report that has passed
//! through it, so a string a probe forgot to sanitize (or a saved report from somewhere else,
//! re-rendered with `show`) still reaches the reader as plain, visible text.

use crate::model::Report;
use serde_json::Value;

/// The default cap for one field of outside text, in characters.
pub const DEFAULT_MAX_CHARS: usize = 256;

/// The cap for any one string of a finished report: the last line of defence behind the entry
/// points, generous enough for the tool's own sentences around a capped outside field.
pub const REPORT_MAX_CHARS: usize = 2048;

/// Sanitizes outside text with the default length cap.
pub fn outside(s: &str) -> String {
    outside_capped(s, DEFAULT_MAX_CHARS)
}

/// Sanitizes outside text, keeping at most `max_chars` characters of the original (escapes count
/// as the one character they replace) and ending with `…` when something was cut.
pub fn outside_capped(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(4)) + 4);
    for (taken, c) in s.chars().enumerate() {
        if taken >= max_chars {
            out.push('…');
            return out;
        }
        push_visible(&mut out, c);
    }
    out
}

/// Makes every string of a report plain, visible text (hazards escaped, lengths capped at
/// [`REPORT_MAX_CHARS`]): summaries, data values and keys at any depth, suspects, endpoints, the
/// device and the region. Clean text is left as it is, so the pass is cheap and idempotent.
pub fn report(r: &mut Report) {
    let fix = |s: &mut String| {
        if needs_fix(s) {
            *s = outside_capped(s, REPORT_MAX_CHARS);
        }
    };
    fix(&mut r.report_id);
    fix(&mut r.started_at);
    fix(&mut r.region);
    fix(&mut r.tool.name);
    fix(&mut r.tool.version);
    for c in &mut r.checks {
        if let Some(t) = c.target.as_mut() {
            fix(t);
        }
        fix(&mut c.code);
        fix(&mut c.summary);
        entries(&mut c.data, &fix);
    }
    for s in &mut r.suspects {
        fix(&mut s.id);
        fix(&mut s.title);
        fix(&mut s.symptom);
        s.evidence
            .iter_mut()
            .chain(s.steps.iter_mut())
            .for_each(fix);
    }
    for e in &mut r.endpoints {
        fix(&mut e.name);
        fix(&mut e.host);
    }
    if let Some(d) = r.device.as_mut() {
        fix(&mut d.os);
        fix(&mut d.hostname);
    }
    r.redacted.iter_mut().for_each(fix);
}

fn value(v: &mut Value, fix: &impl Fn(&mut String)) {
    match v {
        Value::String(s) => fix(s),
        Value::Array(items) => items.iter_mut().for_each(|i| value(i, fix)),
        Value::Object(map) => entries(map, fix),
        _ => {}
    }
}

/// Whether the report pass changes `s`: a hazard in it, or more than [`REPORT_MAX_CHARS`].
fn needs_fix(s: &str) -> bool {
    // Most text is short printable ASCII: one pass over the bytes says so, no char decoding.
    if s.len() <= REPORT_MAX_CHARS && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    s.chars().any(is_hazard) || s.chars().nth(REPORT_MAX_CHARS).is_some()
}

/// The keys and values of a map. The map is rebuilt only when a key changes (a changed key
/// takes a new place in the order); clean keys, the rule, keep the map and its allocations.
fn entries(map: &mut serde_json::Map<String, Value>, fix: &impl Fn(&mut String)) {
    if !map.keys().any(|k| needs_fix(k)) {
        map.values_mut().for_each(|v| value(v, fix));
        return;
    }
    let old = std::mem::take(map);
    *map = old
        .into_iter()
        .map(|(mut k, mut v)| {
            fix(&mut k);
            value(&mut v, fix);
            (k, v)
        })
        .collect();
}

/// True when `c` must not reach a terminal or a document as itself.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// True when `s` is already clean: nothing [`outside`] would escape.
#[cfg(test)]
pub fn is_clean(s: &str) -> bool {
    !s.chars().any(is_hazard)
}

fn push_visible(out: &mut String, c: char) {
    use std::fmt::Write;
    if !is_hazard(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// Does `s` show a library's debug formatting rather than a sentence: struct braces, rustls'
/// `Context` and `Other(` variants, or a CamelCase identifier right after a parenthesis
/// (`(BadSignature)`)? "(Ctrl-C)", "(TLS 1.0)" and "(IPv4)" are words. Every summary is a
/// sentence for a person; the tests hold every report they read to this.
pub fn looks_like_debug(s: &str) -> bool {
    if s.contains("{ ") || s.contains("Context") || s.contains("Other(") {
        return true;
    }
    // `(BadSignature)`, `(HandshakePayloadTooLarge(…`: an enum variant's name in parentheses,
    // CamelCase with at least two humps, directly followed by `)` or `(`. A product name in
    // prose, "(CarData CU-429: …)", is followed by a space and is not one.
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        if b[i] != b'(' {
            return false;
        }
        let word: Vec<u8> = b[i + 1..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_alphanumeric)
            .collect();
        let humps = word.iter().filter(|c| c.is_ascii_uppercase()).count();
        // Variant names are CamelCase word by word; "(OpenDNS)" has an acronym in it.
        let acronym = word
            .windows(2)
            .any(|w| w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase());
        let after = b.get(i + 1 + word.len());
        word.first().is_some_and(u8::is_ascii_uppercase)
            && humps >= 2
            && !acronym
            && word.iter().any(u8::is_ascii_lowercase)
            && matches!(after, Some(b')') | Some(b'('))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(outside("GeoTrust TLS RSA CA G1"), "GeoTrust TLS RSA CA G1");
        assert_eq!(outside("Zürich — ✓ ok"), "Zürich — ✓ ok");
    }

    #[test]
    fn controls_and_bidi_are_escaped_visibly() {
        assert_eq!(outside("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(outside("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(outside("bell\x07\r\n"), "bell\\x07\\x0d\\x0a");
        assert_eq!(outside("abc\u{202E}fed"), "abc\\u{202e}fed");
        assert_eq!(outside("\u{7f}"), "\\x7f");
        assert!(is_clean(&outside(
            "\x1b]8;;http://evil\x07link\x1b]8;;\x07"
        )));
    }

    #[test]
    fn long_text_is_capped_with_an_ellipsis() {
        let long = "A".repeat(30_000);
        let s = outside(&long);
        assert_eq!(s.chars().count(), DEFAULT_MAX_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(outside_capped("abcdef", 6), "abcdef");
        assert_eq!(outside_capped("abcdefg", 6), "abcdef…");
    }

    #[test]
    fn a_report_pass_reaches_every_string_and_is_idempotent() {
        let mut r = crate::report::markdown::tests::sample();
        r.region = "r\u{1b}[2J".into();
        r.checks[0].summary = "ok\u{202e}\r\n✓ PASS".into();
        r.checks[0].data.insert(
            "k\u{7}".into(),
            serde_json::json!({"deep": ["\u{9b}31m", 3], "n": 1}),
        );
        r.suspects[0].steps.push("x".repeat(10_000));
        report(&mut r);
        let text = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        for s in all_strings(&back) {
            assert!(is_clean(&s), "{s:?}");
            assert!(s.chars().count() <= REPORT_MAX_CHARS + 1);
        }
        let again = {
            let mut a = r.clone();
            report(&mut a);
            a
        };
        assert_eq!(again, r);
    }

    fn all_strings(r: &Report) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|i| walk(i, out)),
                Value::Object(m) => m.iter().for_each(|(k, i)| {
                    out.push(k.clone());
                    walk(i, out)
                }),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&serde_json::to_value(r).unwrap(), &mut out);
        out
    }
}
