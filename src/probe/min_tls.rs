//! min_tls: an endpoint that accepts only newer TLS versions, judged on the version the tls stage
//! negotiated.
//!
//! BMW CarData's stream has accepted TLS 1.3 only since early 2026: a client (or a middlebox that
//! re-encrypts the traffic) stuck at TLS 1.2 fails there, while the same device reaches every
//! other host. The tls stage negotiates the best version both sides speak; this step compares it
//! with the endpoint's `min_tls` and turns a successful handshake at a lower version into
//! `tls.version_too_low`, naming both versions. It reads only the check, so it stays apart from
//! the handshake itself.

use crate::model::{Check, Status};
use crate::profile::MinTls;

/// The version the tls stage reports (`data.version`, e.g. `TLSv1.2`), as a `min_tls` value.
fn negotiated(version: &str) -> Option<MinTls> {
    match version {
        "TLSv1.3" => Some(MinTls::V1_3),
        "TLSv1.2" => Some(MinTls::V1_2),
        _ => None,
    }
}

/// Applies the endpoint's `min_tls` to a finished tls check: a handshake that succeeded at a
/// lower version fails. Other checks (failed handshakes, no minimum) are returned as they are,
/// with the minimum recorded in `data.min_tls` where one is set.
pub fn apply(check: Check, min: Option<MinTls>) -> Check {
    let Some(min) = min else {
        return check;
    };
    let mut check = check.with("min_tls", min.as_str());
    let succeeded = matches!(check.status, Status::Pass | Status::Warn);
    let version = check.data_str("version").map(str::to_owned);
    let Some(version) = version.filter(|_| succeeded) else {
        return check;
    };
    if negotiated(&version).is_some_and(|v| v >= min) {
        return check;
    }
    let shown = version.replace("TLSv", "TLS ");
    let mut low = Check::new(
        check.probe,
        check.target.as_deref(),
        Status::Fail,
        "tls.version_too_low",
        format!(
            "the handshake settled on {shown}, but this endpoint accepts TLS {} or later only: \
             something on the path (a TLS-inspecting proxy or security product) or an outdated \
             TLS library speaks an older version",
            min.as_str()
        ),
    );
    low.duration_ms = check.duration_ms;
    low.data = std::mem::take(&mut check.data);
    low
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Probe;

    fn tls(version: &str) -> Check {
        Check::new(Probe::Tls, Some("stream"), Status::Pass, "tls.ok", "ok")
            .with("version", version)
    }

    #[test]
    fn a_lower_version_fails_and_names_both() {
        let c = apply(tls("TLSv1.2"), Some(MinTls::V1_3));
        assert_eq!(
            (c.status, c.code.as_str()),
            (Status::Fail, "tls.version_too_low")
        );
        assert!(
            c.summary.contains("TLS 1.2") && c.summary.contains("TLS 1.3"),
            "{}",
            c.summary
        );
        assert_eq!(c.data_str("version"), Some("TLSv1.2"));
        assert_eq!(c.data_str("min_tls"), Some("1.3"));
    }

    #[test]
    fn enough_or_no_minimum_leaves_the_check_alone() {
        let c = apply(tls("TLSv1.3"), Some(MinTls::V1_3));
        assert_eq!(
            (c.code.as_str(), c.data_str("min_tls")),
            ("tls.ok", Some("1.3"))
        );
        assert_eq!(apply(tls("TLSv1.2"), Some(MinTls::V1_2)).code, "tls.ok");
        assert_eq!(apply(tls("TLSv1.2"), None), tls("TLSv1.2"));
        let failed = Check::new(Probe::Tls, Some("s"), Status::Fail, "tls.untrusted", "x");
        assert_eq!(apply(failed, Some(MinTls::V1_3)).code, "tls.untrusted");
    }
}
