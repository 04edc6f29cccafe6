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

/// The default cap for one field of outside text, in characters.
pub const DEFAULT_MAX_CHARS: usize = 256;

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
}
