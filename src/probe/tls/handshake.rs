//! The handshakes of the tls stage: the one a modern client makes, and the second looks when it
//! is cut off (the [`controls`] that tell a dropped large hello, a path-MTU black hole and an SNI
//! filter apart, a legacy hello to learn what an old server speaks, the clear-text chain of a
//! TLS 1.2 server).
//!
//! [`run`] is the stage; the runner and the proxy path call it on their connection.

use super::controls::{self, Outcome};
use super::legacy;
use super::trust::*;
use super::verdict::*;
use super::verifier::*;
use crate::model::{Check, Probe, Status, ms};
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Which ClientHello to send.
///
/// Modern clients (browsers since late 2024, more and more platform TLS stacks, and so the app)
/// offer a post-quantum hybrid key share (X25519MLKEM768) first: their hello is about 1.2 KB
/// larger and spans two TCP segments, which some middleboxes drop or reset. The classic hello
/// (X25519 alone, no resumption) is the retry that tells such a path from a dead server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    Modern,
    Classic,
}

impl Hello {
    pub(super) fn provider(self, base: &CryptoProvider) -> CryptoProvider {
        use rustls::crypto::aws_lc_rs::kx_group;
        let kx_groups = match self {
            Hello::Modern => vec![
                kx_group::X25519MLKEM768,
                kx_group::X25519,
                kx_group::SECP256R1,
                kx_group::SECP384R1,
            ],
            Hello::Classic => vec![kx_group::X25519],
        };
        CryptoProvider {
            kx_groups,
            ..base.clone()
        }
    }
}

/// `provider` with its cipher suites in [`APP_SUITE_ORDER`] (a stable sort: suites the order
/// does not name keep the provider's order, after it). Done once, for the run's base provider
/// ([`TlsSetup::load`]); every hello starts from it.
pub(super) fn in_app_order(mut provider: CryptoProvider) -> CryptoProvider {
    provider.cipher_suites.sort_by_key(|s| {
        APP_SUITE_ORDER
            .iter()
            .position(|&x| x == s.suite())
            .unwrap_or(APP_SUITE_ORDER.len())
    });
    provider
}

/// The cipher suites in the order the app's platforms offer them: Android's stack (BoringSSL
/// and OkHttp's modern list) and Apple's put AES-128-GCM first, where the provider's default
/// puts AES-256 first. A server that honours the client's order (nginx and OpenSSL by default)
/// then answers as it answers the app, and the TLS 1.3 key schedule runs on SHA-256, which
/// processors hash in hardware, instead of SHA-384, which they do not.
const APP_SUITE_ORDER: &[rustls::CipherSuite] = &[
    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The size in bytes of the ClientHello `config` sends to `name` (built offline, never sent).
pub fn hello_bytes(config: Arc<ClientConfig>, name: ServerName<'static>) -> Option<usize> {
    let mut conn = rustls::ClientConnection::new(config, name).ok()?;
    let mut out = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut out).ok()? == 0 {
            break;
        }
    }
    Some(out.len())
}

/// What an endpoint asks of its TLS beyond a valid certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// The lowest TLS version the endpoint accepts (`min_tls`); `None` accepts TLS 1.2 and 1.3.
    pub min_tls: Option<rustls::ProtocolVersion>,
    /// An internal service with its own CA: a non-public root is expected, not judged.
    pub private_ca: bool,
    /// The step timeout: after half of it without an answer, a classic hello is tried beside.
    pub timeout: Duration,
}

impl Policy {
    /// The endpoint's `min_tls` and `private_ca`, with the step timeout: the same on the direct
    /// path and inside a proxy's tunnel.
    pub fn for_endpoint(ep: &crate::profile::Endpoint, timeout: Duration) -> Policy {
        use crate::profile::MinTls;
        Policy {
            min_tls: ep.min_tls.map(|v| match v {
                MinTls::V1_2 => rustls::ProtocolVersion::TLSv1_2,
                MinTls::V1_3 => rustls::ProtocolVersion::TLSv1_3,
            }),
            private_ca: ep.private_ca,
            timeout,
        }
    }
}

pub(super) type Handshake = io::Result<TlsStream<TcpStream>>;

/// One handshake attempt and what its verifier saw.
pub(super) struct Attempt {
    pub(super) result: Handshake,
    pub(super) seen: Option<Seen>,
    pub(super) elapsed: Duration,
}

pub(super) async fn attempt(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: ServerName<'static>,
    stream: TcpStream,
    hello: Hello,
) -> Result<Attempt, String> {
    let seen = Arc::new(Mutex::new(None));
    let config = setup.client_config_with(alpn, seen.clone(), hello)?;
    let started = Instant::now();
    let result = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await;
    let elapsed = started.elapsed();
    let seen = seen.lock().ok().and_then(|s| s.clone());
    Ok(Attempt {
        result,
        seen,
        elapsed,
    })
}

/// A failure a path that drops large hellos produces: reset, closed, cut.
pub(super) fn cut_off(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_none()
        && matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        )
}

/// The modern handshake, and the controls of [`controls`] when it is reset or has no answer
/// after `patience`. Err: no handshake could be made (the reason).
pub(super) async fn handshakes(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    (host, name): (&str, ServerName<'static>),
    stream: TcpStream,
    peer: Option<std::net::SocketAddr>,
    (patience, until): (Duration, Instant),
) -> Result<Outcome, String> {
    let modern = attempt(setup, alpn, name, stream, Hello::Modern);
    tokio::pin!(modern);
    tokio::select! {
        done = &mut modern => Ok(after_done(setup, alpn, host, (peer, until), done?).await),
        _ = tokio::time::sleep(patience), if !patience.is_zero() => {
            // No answer yet: the controls beside it. The modern hello started first on the
            // same path, so it wins unless the path holds it back.
            let mut beside = Box::pin(controls::after_silence(setup, alpn, host, peer, until));
            tokio::select! {
                done = &mut modern => Ok(after_done(setup, alpn, host, (peer, until), done?).await),
                got = &mut beside => match got {
                    Some(outcome) => Ok(outcome),
                    None => Ok(Outcome::Own(modern.await?)),
                },
            }
        }
    }
}

/// The modern handshake's outcome: its own, unless it was cut off, when the controls after a
/// reset run (on the heap: see `controls::fresh`; a completed handshake allocates nothing).
async fn after_done(
    setup: &TlsSetup,
    alpn: &[&[u8]],
    host: &str,
    (peer, until): (Option<std::net::SocketAddr>, Instant),
    done: Attempt,
) -> Outcome {
    match peer {
        Some(peer) if controls::was_cut_off(&done) => {
            Box::pin(controls::after_reset(
                setup,
                alpn,
                host,
                (peer, until),
                done,
            ))
            .await
        }
        _ => Outcome::Own(done),
    }
}

/// A server that refused before showing a certificate, for want of a version or a suite, is
/// asked with a legacy hello what it does speak; a chain too large to accept is measured from a
/// TLS 1.2 server's clear-text Certificate message.
pub(super) async fn second_looks(
    mut check: Check,
    a: &Attempt,
    peer: Option<std::net::SocketAddr>,
    host: &str,
    policy: Policy,
    started: Instant,
) -> Check {
    // A server that refused before showing a certificate, for want of a version or a suite:
    // ask it with a legacy hello what it does speak.
    if a.seen.is_none()
        && matches!(
            check.code.as_str(),
            "tls.no_common_cipher" | "tls.old_protocol"
        )
        && let Some(addr) = peer
    {
        let left = policy.timeout.saturating_sub(started.elapsed());
        if let Some(answer) = legacy::probe(addr, host, left).await {
            check = legacy(check, &answer);
        }
    }
    // A chain too large to accept: how large, from a TLS 1.2 server's clear-text Certificate.
    if check.code == "tls.chain_too_large"
        && let Some(addr) = peer
    {
        let left = policy.timeout.saturating_sub(started.elapsed());
        if let Some(bytes) = legacy::chain_bytes(addr, host, left).await {
            check.summary = format!(
                "the server's certificate chain is {} KB, larger than the 64 KiB a TLS client accepts",
                bytes / 1000
            );
            check = check.with("bytes", bytes as u64);
        }
    }
    check
}

/// `tls.large_hello_dropped`: the modern hello was cut off while a classic one got through;
/// the sizes of both hellos as this client sends them.
pub(super) fn large_hello_dropped(
    mut check: Check,
    setup: &TlsSetup,
    alpn: &[&[u8]],
    name: &ServerName<'static>,
) -> Check {
    let size = |hello| {
        let config = setup
            .client_config_with(alpn, Arc::new(Mutex::new(None)), hello)
            .ok()?;
        hello_bytes(Arc::new(config), name.clone())
    };
    let (large, small) = (size(Hello::Modern), size(Hello::Classic));
    let sizes = match (large, small) {
        (Some(l), Some(s)) => format!(" ({l} bytes against {s})"),
        _ => String::new(),
    };
    check.restate(
        Status::Fail,
        "tls.large_hello_dropped",
        format!(
            "a modern client's ClientHello{sizes}, with a post-quantum key share, is dropped or reset on the way while a small classic one gets through: a firewall, router or filter on the path mishandles large hellos, and modern apps fail here"
        ),
    );
    check = check.with(
        "hello_bytes",
        serde_json::json!({ "large": large, "small": small }),
    );
    check
}

/// The application protocols offered in the handshake: HTTP/1.1 for an HTTPS endpoint (its
/// http stage reuses the session), none for a TLS-only one.
pub fn alpn(protocol: crate::profile::Protocol) -> &'static [&'static [u8]] {
    match protocol {
        crate::profile::Protocol::Https => &[b"http/1.1"],
        crate::profile::Protocol::Tls => &[],
    }
}

/// Runs the tls stage on a connected socket: the handshake a modern client makes, and when it
/// is reset or gets no answer, the controls that name what the path does
/// (`tls.large_hello_dropped`, `tls.mtu_blackhole`, `tls.sni_blocked`).
pub async fn run(
    setup: &TlsSetup,
    target: &str,
    host: &str,
    alpn: &[&[u8]],
    stream: TcpStream,
    warn_days: i64,
    policy: Policy,
) -> (Check, Option<TlsStream<TcpStream>>) {
    let t = Some(target);
    let entered = Instant::now();
    // Roots loaded and the RNG seeded, off the clock (see TlsSetup::warm_up).
    setup.ready().await;
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        let why = format!("{host} cannot be used as a TLS server name");
        let c = Check::new(Probe::Tls, t, Status::Fail, "tls.handshake_failed", why);
        return (c, None);
    };
    let peer = stream.peer_addr().ok();
    let started = Instant::now();
    let times = (policy.timeout / 2, controls::until(entered, policy.timeout));
    let outcome = match handshakes(setup, alpn, (host, name.clone()), stream, peer, times).await {
        Ok(o) => o,
        Err(why) => {
            let c = Check::new(Probe::Tls, t, Status::Fail, "tls.handshake_failed", why);
            return (c, None);
        }
    };
    let (a, control) = match outcome {
        Outcome::Own(a) => (a, None),
        Outcome::LargeHello(a) => (a, Some(None)),
        Outcome::Mtu(a, tried) => (a, Some(Some(tried))),
        Outcome::Sni(tried) => {
            let elapsed = started.elapsed();
            let c = controls::sni_blocked(target, host, &tried);
            return (c.took(elapsed).with("handshake_ms", ms(elapsed)), None);
        }
    };
    let elapsed = match control {
        Some(_) => started.elapsed(),
        None => a.elapsed,
    };
    let mut check = judge(setup, target, host, &a, warn_days, policy);
    check = second_looks(check, &a, peer, host, policy, started).await;
    check = match control {
        None => check,
        Some(None) => large_hello_dropped(check, setup, alpn, &name),
        Some(Some(tried)) => controls::mtu_blackhole(check, &tried),
    };
    let check = check.took(elapsed).with("handshake_ms", ms(elapsed));
    (check, a.result.ok())
}

/// A failed check, made precise by what the server chose when offered a legacy hello.
pub(super) fn legacy(mut c: Check, a: &legacy::Answer) -> Check {
    if a.version_old {
        let summary = format!(
            "the server speaks at most {} (it chose {} when offered everything); this device and the app need TLS 1.2 or later and no longer speak SSL 3.0, TLS 1.0 or 1.1",
            a.version, a.suite
        );
        c.restate(c.status, "tls.old_protocol", summary);
        c = c.with("reason", "protocol_version");
    } else if a.suite_broken {
        let summary = format!(
            "the server and this device have no cipher suite in common: offered everything, the server chose {}, which no current client accepts (RC4, 3DES, NULL, export, plain-RSA or finite-field Diffie-Hellman key exchange)",
            a.suite
        );
        c.restate(c.status, "tls.no_common_cipher", summary);
        c.data.remove("reason");
    } else {
        return c;
    }
    c.with("offered_versions", vec![a.version])
        .with("server_cipher", a.suite.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stage's state holds room for the handshake a healthy endpoint makes, not for every
    /// handshake a control may make: the controls' handshakes are on the heap, made when a
    /// control runs. (Awaited in place they made it 21 KB, sixteen handshakes' worth, copied
    /// once per endpoint as the stage moves into the runner.) Built, never polled.
    #[tokio::test]
    async fn the_stage_holds_room_for_one_handshake_not_every_control() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let connect = || TcpStream::connect(addr);
        let (s1, s2) = (
            connect().await.expect("connect"),
            connect().await.expect("connect"),
        );
        let setup = TlsSetup::load(None).expect("setup");
        let policy = Policy {
            min_tls: None,
            private_ca: false,
            timeout: Duration::from_secs(5),
        };
        let name = ServerName::try_from("api.test".to_owned()).expect("name");
        let one = attempt(&setup, &[], name, s1, Hello::Modern);
        let stage = run(&setup, "api", "api.test", &[], s2, 30, policy);
        let (one, stage) = (std::mem::size_of_val(&one), std::mem::size_of_val(&stage));
        assert!(
            stage <= 8 * one,
            "the stage holds {stage} bytes, one handshake {one}"
        );
    }

    #[test]
    fn both_hellos_offer_aes_128_first_and_every_suite_of_the_provider() {
        let default = rustls::crypto::aws_lc_rs::default_provider();
        let mut all: Vec<_> = default.cipher_suites.iter().map(|s| s.suite()).collect();
        let base = in_app_order(default);
        all.sort_by_key(|s| u16::from(*s));
        for hello in [Hello::Modern, Hello::Classic] {
            let offered: Vec<_> = hello
                .provider(&base)
                .cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect();
            assert_eq!(offered[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
            assert_eq!(offered[1], rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
            let mut same = offered.clone();
            same.sort_by_key(|s| u16::from(*s));
            assert_eq!(same, all, "{hello:?} offers another set: {offered:?}");
        }
    }
}
