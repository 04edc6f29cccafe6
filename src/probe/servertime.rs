//! A server's time from its `Date` header, against the local clock.
//!
//! Shared below the probes: every HTTP exchange notes the offset when its headers arrive, and the
//! clock reader compares the offsets of all of them afterwards. A `Date` outside the years any
//! server can honestly be in is not used at all.

use std::time::SystemTime;

/// Server time minus local time, in seconds, from a `Date` header and the local receipt time.
pub fn offset(date_header: &str, received: SystemTime) -> Option<f64> {
    let server = httpdate::parse_http_date(date_header).ok()?;
    // 2020-01-01 .. 2200-01-01: a server time outside these is a broken or lying server.
    let secs = server.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    if !(1_577_836_800..7_258_118_400).contains(&secs) {
        return None;
    }
    Some(match server.duration_since(received) {
        Ok(ahead) => ahead.as_secs_f64(),
        Err(behind) => -behind.duration().as_secs_f64(),
    })
}
