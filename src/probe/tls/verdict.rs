//! The tls check from what the handshake gave: the session's facts, or the failure classified
//! precisely and refined by the certificate (weak signature, small key, a name only in the CN,
//! a stapled revocation, a version under the endpoint's minimum), and a refusal that follows a
//! request for a client certificate.

use super::certificate::*;
use super::classify::*;
use super::handshake::*;
use super::interception::*;
use super::ocsp;
use super::trust::*;
use super::verifier::*;
use crate::model::{Check, Probe, Status, ms};
use std::io;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// What one handshake showed, for [`judge`] and its two halves.
pub(super) struct Evidence<'a> {
    t: Option<&'a str>,
    host: &'a str,
    elapsed: Duration,
    captured: Option<&'a Seen>,
    facts: Option<CertFacts>,
    now: i64,
    chain_names: Vec<String>,
    top_issuer: String,
    warn_days: i64,
    policy: Policy,
}

/// Turns one handshake's outcome into the check: the certificate's facts, then the finest code
/// the evidence allows.
pub(super) fn judge(
    setup: &TlsSetup,
    target: &str,
    host: &str,
    a: &Attempt,
    warn_days: i64,
    policy: Policy,
) -> Check {
    let captured = a.seen.as_ref();
    let ev = Evidence {
        t: Some(target),
        host,
        elapsed: a.elapsed,
        captured,
        facts: captured.and_then(|s| cert_facts(&s.end_entity)),
        now: now_unix(),
        chain_names: captured.map(|s| chain_names(&s.chain)).unwrap_or_default(),
        top_issuer: captured
            .and_then(|s| s.chain.last())
            .and_then(|der| cert_facts(der))
            .map(|f| f.issuer)
            .unwrap_or_default(),
        warn_days,
        policy,
    };
    let check = match &a.result {
        Ok(tls) => judge_session(tls, &ev),
        Err(e) => judge_failure(e, &ev),
    }
    .with("roots", setup.roots_source());
    with_certificate(check, &ev)
}

/// A handshake that completed: the certificate's validity, then revocation, interception and
/// the endpoint's lowest version, finest first.
pub(super) fn judge_session(tls: &TlsStream<TcpStream>, ev: &Evidence) -> Check {
    let (_, conn) = tls.get_ref();
    let version = version_name(conn.protocol_version());
    let c = match &ev.facts {
        Some(f) => {
            let days = days_left(f.not_after, ev.now);
            let (status, code) = if days < ev.warn_days {
                (Status::Warn, "tls.expiring_soon")
            } else {
                (Status::Pass, "tls.ok")
            };
            let note = if code == "tls.expiring_soon" {
                " — renewal is due"
            } else {
                ""
            };
            Check::new(
                Probe::Tls,
                ev.t,
                status,
                code,
                format!(
                    "{version} in {:.1} ms; certificate by {}, valid until {} ({days} days){note}",
                    ms(ev.elapsed),
                    short_name(&f.issuer),
                    &rfc3339(f.not_after)[..10]
                ),
            )
        }
        None => Check::new(
            Probe::Tls,
            ev.t,
            Status::Pass,
            "tls.ok",
            format!("{version} in {:.1} ms", ms(ev.elapsed)),
        ),
    }
    .with("version", version)
    .with(
        "cipher",
        conn.negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str()),
    )
    .with(
        "alpn",
        conn.alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    );
    past_the_certificate(c, conn, version, ev)
}

/// A completed handshake's findings past the certificate's dates: a stapled revocation, an
/// interception, a version under the endpoint's `min_tls`.
pub(super) fn past_the_certificate(
    mut c: Check,
    conn: &rustls::ClientConnection,
    version: &str,
    ev: &Evidence,
) -> Check {
    let anchor = ev.captured.and_then(|s| s.anchor);
    let revoked = ev.captured.is_some_and(|s| {
        !s.ocsp.is_empty()
            && leaf_serial(&s.end_entity).is_some_and(|serial| {
                ocsp::status_of(&s.ocsp, &serial) == Some(ocsp::Status::Revoked)
            })
    });
    if let Some(s) = ev.captured
        && !s.ocsp.is_empty()
    {
        c = c.with("ocsp_stapled", true);
    }
    let intercepted = anchor.and_then(|anchor| {
        judge_interception(
            &ev.chain_names,
            &ev.top_issuer,
            Some(anchor),
            ev.policy.private_ca,
        )
    });
    if revoked {
        c.restate(
            Status::Fail,
            "tls.revoked",
            "the server's own stapled revocation answer (OCSP) says its certificate has been revoked: the certificate must be replaced",
        );
    } else if let Some(i) = intercepted {
        c = i.apply(c);
    } else if let Some(min) = ev.policy.min_tls
        && too_low(conn.protocol_version(), min)
    {
        let need = version_name(Some(min));
        c.restate(
            Status::Fail,
            "tls.version_too_low",
            format!(
                "the handshake settled on {}, but this endpoint accepts {} or later only: something on the path (a TLS-inspecting proxy or firewall) or an old TLS library holds the connection back",
                version.replace("TLSv", "TLS "),
                need.replace("TLSv", "TLS ")
            ),
        );
    }
    if let Some(min) = ev.policy.min_tls {
        // In the profile's own notation ("1.3"), so scripts compare it with the profile.
        c = c.with(
            "min_tls",
            version_name(Some(min)).trim_start_matches("TLSv"),
        );
    }
    c
}

/// A handshake that failed: the rustls error classified, refined by what the server showed.
pub(super) fn judge_failure(e: &std::io::Error, ev: &Evidence) -> Check {
    let (code, why) = classify_error(e);
    let (code, why) = refine(code, why, ev.captured, ev.facts.as_ref(), ev.host, e);
    let mut c = Check::new(Probe::Tls, ev.t, Status::Fail, code, why)
        .with("version", serde_json::Value::Null)
        .with("error", crate::sanitize::outside(&e.to_string()));
    if code == "tls.untrusted"
        && let Some(i) =
            judge_interception(&ev.chain_names, &ev.top_issuer, None, ev.policy.private_ca)
    {
        c = i.apply(c);
    }
    if let Some(w) = ev.captured.and_then(|s| weakness(&s.chain)) {
        c = match w {
            Weakness::Signature(alg) if code == "tls.weak_signature" => {
                c.with("signature_algorithm", alg)
            }
            Weakness::Key(bits) if code == "tls.weak_key" => c.with("key_bits", bits),
            _ => c,
        };
    }
    match super::classify::reason_of(code) {
        Some(r) => c.with("reason", r),
        None => c,
    }
}

/// The certificate's facts (null where none was seen), the chain's length, a client
/// certificate request.
pub(super) fn with_certificate(mut check: Check, ev: &Evidence) -> Check {
    match &ev.facts {
        Some(f) => {
            check = check
                .with("issuer", f.issuer.clone())
                .with("subject", f.subject.clone())
                .with("not_before", rfc3339(f.not_before))
                .with("not_after", rfc3339(f.not_after))
                .with("days_left", days_left(f.not_after, ev.now));
        }
        None => {
            for k in ["issuer", "not_after", "days_left"] {
                check = check.with(k, serde_json::Value::Null);
            }
        }
    }
    if let Some(s) = ev.captured {
        check = check.with("chain_intermediates", s.intermediates as u64);
        if s.asked_for_cert {
            check = check.with("client_cert_requested", true);
        }
    }
    check
}

/// The finest code the captured chain allows for a failure the verifier named coarsely.
pub(super) fn refine(
    code: &'static str,
    why: String,
    captured: Option<&Seen>,
    facts: Option<&CertFacts>,
    host: &str,
    e: &io::Error,
) -> (&'static str, String) {
    let weak = captured.and_then(|s| weakness(&s.chain));
    let signature_trouble = matches!(
        code,
        "tls.untrusted" | "tls.weak_signature" | "tls.handshake_failed"
    ) || e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::PeerMisbehaved(_)));
    match weak {
        Some(Weakness::Signature(alg)) if signature_trouble => {
            return (
                "tls.weak_signature",
                format!(
                    "the certificate chain is signed with {}, a broken algorithm that no current client accepts",
                    algorithm_words(alg)
                ),
            );
        }
        Some(Weakness::Key(bits)) if signature_trouble => {
            return (
                "tls.weak_key",
                format!(
                    "the server's RSA key has only {bits} bits; clients refuse keys under 2048 bits"
                ),
            );
        }
        _ => {}
    }
    if captured.is_some_and(|s| s.asked_for_cert)
        && e.get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .is_some_and(|r| matches!(r, rustls::Error::AlertReceived(_)))
    {
        return (
            "tls.client_cert_required",
            "the server demands a client certificate, which this device does not have, and ended the handshake without one".into(),
        );
    }
    match (code, facts) {
        ("tls.hostname_mismatch", _)
            if captured.is_some_and(|s| name_only_in_cn(&s.end_entity, host)) =>
        {
            (
                code,
                format!(
                    "the certificate names {host} only in its common name (CN) and has no subject alternative name; clients have required the name there since 2017, so the server's operator must reissue it"
                ),
            )
        }
        ("tls.expired", Some(f)) => (
            code,
            format!("{why} (expired {})", &rfc3339(f.not_after)[..10]),
        ),
        ("tls.not_yet_valid", Some(f)) => (
            code,
            format!("{why} (valid from {})", &rfc3339(f.not_before)[..10]),
        ),
        ("tls.untrusted" | "tls.hostname_mismatch", Some(f)) => {
            (code, format!("{why}; issuer: {}", short_name(&f.issuer)))
        }
        _ => (code, why),
    }
}

/// Is `got` below `min`?
pub(super) fn too_low(got: Option<rustls::ProtocolVersion>, min: rustls::ProtocolVersion) -> bool {
    let rank = |v: rustls::ProtocolVersion| match v {
        rustls::ProtocolVersion::TLSv1_3 => 4,
        rustls::ProtocolVersion::TLSv1_2 => 3,
        _ => 0,
    };
    got.is_none_or(|g| rank(g) < rank(min))
}

/// A server that asked for a client certificate and then refused the request without one
/// (HTTP 400, 403, 495 or 496 from nginx and most servers): the tls check says so, and the http
/// check, whose answer is only the consequence, is marked as such.
pub fn client_cert_refusal(checks: &mut [Check], target: &str) {
    let asked = checks.iter().any(|c| {
        c.probe == Probe::Tls
            && c.target.as_deref() == Some(target)
            && c.data.get("client_cert_requested") == Some(&serde_json::Value::Bool(true))
    });
    let refused = checks.iter().find(|c| {
        c.probe == Probe::Http
            && c.target.as_deref() == Some(target)
            && matches!(c.data_f64("status_code"), Some(s) if [400.0, 403.0, 495.0, 496.0].contains(&s))
    });
    let Some(status) = refused.and_then(|c| c.data_f64("status_code")) else {
        return;
    };
    if !asked {
        return;
    }
    for c in checks
        .iter_mut()
        .filter(|c| c.target.as_deref() == Some(target))
    {
        match c.probe {
            Probe::Tls => {
                c.restate(
                    Status::Fail,
                    "tls.client_cert_required",
                    format!(
                        "the server demands a client certificate, which this device does not have: it asked for one in the handshake and refused the request without it (HTTP {status})"
                    ),
                );
            }
            Probe::Http => {
                c.restate(
                    Status::Skip,
                    "http.skipped",
                    format!(
                        "needs a session the server accepts; tls failed (tls.client_cert_required), the server answered HTTP {status}"
                    ),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_after_a_certificate_request_is_named() {
        let tls = Check::new(Probe::Tls, Some("api"), Status::Pass, "tls.ok", "ok")
            .with("client_cert_requested", true);
        let http = Check::new(
            Probe::Http,
            Some("api"),
            Status::Pass,
            "http.ok",
            "HTTP 400",
        )
        .with("status_code", 400);
        let mut checks = vec![tls.clone(), http.clone()];
        client_cert_refusal(&mut checks, "api");
        assert_eq!(checks[0].code, "tls.client_cert_required");
        assert_eq!(checks[1].status, Status::Skip);
        // Asked but answered normally: an optional certificate, nothing to report.
        let ok = http.clone().with("status_code", 200);
        let mut checks = vec![tls, ok];
        client_cert_refusal(&mut checks, "api");
        assert_eq!(checks[0].code, "tls.ok");
    }
}
