//! JSON: the contract's schema, pretty-printed for people and stable for scripts.

use crate::model::Report;

pub fn render(report: &Report) -> Vec<u8> {
    // Serializing plain data with string keys cannot fail; fall back to a valid document anyway.
    let mut out = serde_json::to_vec_pretty(report).unwrap_or_else(|e| {
        format!("{{\"schema_version\":1,\"error\":{:?}}}", e.to_string()).into_bytes()
    });
    out.push(b'\n');
    out
}

/// [`render`], written to `out` as it is serialized: a large report is never held as text too.
pub fn write(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// One line, for the history file.
pub fn render_line(report: &Report) -> Vec<u8> {
    let mut out = serde_json::to_vec(report).unwrap_or_default();
    out.push(b'\n');
    out
}
