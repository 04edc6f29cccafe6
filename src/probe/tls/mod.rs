//! tls: the TLS handshake on the connected socket, verified the way the app verifies it.
//!
//! The certificate is captured even when verification fails, so an expired or intercepted
//! certificate is shown with its issuer and dates. Failures are classified precisely from rustls'
//! error enum: an expired certificate is `tls.expired`, an intercepting proxy's is `tls.untrusted`,
//! a middlebox that drops the handshake is `tls.handshake_failed` with the reason.
//!
//! One idea per file: [`trust`], [`verifier`], [`certificate`] facts, the [`handshake`] (the
//! stage itself), the [`verdict`], [`interception`], and the [`classify`]ing of failures, the
//! [`legacy`] hello and [`ocsp`] stapling they use.

pub mod certificate;
pub mod classify;
pub mod controls;
pub mod handshake;
pub mod interception;
pub mod legacy;
pub mod ocsp;
mod roots;
pub mod trust;
pub mod verdict;
pub mod verifier;

use crate::model::Probe;
use crate::probe::definition::{By, Definition, Key, Metric, Perf, Prometheus, Run, Scale, Stage};

pub use classify::classify_rustls;
pub use handshake::{Policy, alpn, run};
pub use interception::judge_proxied;
pub use trust::TlsSetup;
pub use verdict::client_cert_refusal;

/// The tls probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Tls,
    name: "tls",
    description: "TLS handshake with SNI; certificate trust, validity, host name, expiry",
    codes: &[
        "tls.ok",
        "tls.expiring_soon",
        "tls.expired",
        "tls.not_yet_valid",
        "tls.hostname_mismatch",
        "tls.untrusted",
        "tls.timeout",
        "tls.handshake_failed",
        "tls.intercepted",
        "tls.weak_signature",
        "tls.weak_key",
        "tls.old_protocol",
        "tls.no_common_cipher",
        "tls.client_cert_required",
        "tls.chain_too_large",
        "tls.revoked",
        "tls.large_hello_dropped",
        "tls.version_too_low",
        "tls.sni_blocked",
        "tls.mtu_blackhole",
        "tls.skipped",
    ],
    keys: &[
        Key::scalar("handshake_ms"),
        Key::scalar("version"),
        Key::scalar("issuer"),
        Key::scalar("not_after"),
        Key::scalar("days_left"),
    ],
    metrics: &[
        Metric {
            key: "handshake_ms",
            prometheus: Prometheus::Phase("tls"),
            nagios: Perf::Millis("handshake"),
        },
        Metric {
            key: "not_after",
            prometheus: Prometheus::Gauge {
                family: "bmw_netcheck_tls_cert_not_after_timestamp_seconds",
                help: "Expiry of the certificate each endpoint presented, in seconds since the Unix epoch.",
                scale: Scale::Timestamp,
                by: By::Target,
            },
            nagios: Perf::None,
        },
    ],
    needs: &[Probe::Dns, Probe::Tcp],
    run: Run::Stage(Stage::Secure),
};
