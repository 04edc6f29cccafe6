//! resolverid: who the resolver is, asked once per resolver per run.
//!
//! When a filter answers for the resolver, the product in the way tells the user whose settings
//! to change. Resolvers say who they are when asked in class CHAOS (`version.bind`, `id.server`,
//! `hostname.bind`), and a Pi-hole answers its own name `pi.hole`. Many resolvers ignore CHAOS
//! queries silently, so waiting for them is bounded by what the resolver's first answers showed:
//! a few of its round trips ([`patience`]), never the step.
//!
//! The questions go out once per resolver and run, at the start of the first lookup (in parallel
//! with it), and every dns check of that resolver reads the same answer: the same run names the
//! same product on every check. Only verdicts that name a filter wait for it. This file sends the
//! queries (through [`super::dnswire`]) and says, in words, who is in the way ([`who`]); it is
//! not a probe and reports nothing by itself.

use super::blockpages;
use super::dnswire::{self, Ask};
use crate::iface::Resolver as Library;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{DNSClass, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The longest wait for the resolver's identity: when its round trip is not known (its first
/// lookups went unanswered), this is all the questions get.
pub const MOST: Duration = Duration::from_millis(300);
/// The shortest wait for a diagnostic query: a resolver on the same host answers in well under a
/// millisecond, but a busy machine schedules late.
pub const LEAST: Duration = Duration::from_millis(50);

/// How long a diagnostic query (identity, Extended DNS Error, DNSSEC, TCP) waits for a resolver
/// whose round trip was `rtt`: four round trips, at least [`LEAST`]. A resolver that answered a
/// lookup in `rtt` and is silent for four times as long does not answer that kind of query.
pub fn patience(rtt: Duration) -> Duration {
    (rtt * 4).max(LEAST)
}

/// What the resolver says about itself (sanitized texts; `None` where it did not answer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Its `version.bind` text.
    pub software: Option<String>,
    /// Its `id.server` text (RFC 4892), else its `hostname.bind`.
    pub server_id: Option<String>,
    /// It answers `pi.hole`: a Pi-hole.
    pub pihole: bool,
}

impl Identity {
    /// The product these answers name, in the words a user knows.
    pub fn product(&self) -> Option<&'static str> {
        if self.pihole {
            return Some("Pi-hole");
        }
        let named = |s: &Option<String>| s.as_deref().and_then(blockpages::software_product);
        named(&self.software).or_else(|| {
            // A server id names the product only where it is one's default (Pi-hole's `pi.hole`).
            let id = self.server_id.as_deref()?.to_ascii_lowercase();
            (id == "pi.hole" || id.contains("pihole") || id.contains("pi-hole"))
                .then_some("Pi-hole")
        })
    }
}

/// Asks `server` who it is: `version.bind`, `id.server`, `hostname.bind` (class CHAOS) and
/// `pi.hole`, all at once. Each waits until `limit` resolves, at most [`MOST`].
async fn ask(server: SocketAddr, limit: impl Fn() -> Limit) -> Identity {
    let chaos = |name: &'static str| {
        let mut ask = Ask::udp(RecordType::TXT);
        ask.class = DNSClass::CH;
        let limit = limit();
        async move {
            let reply = bounded(dnswire::query(server, name, ask, MOST), limit).await;
            reply
                .and_then(|r| r.ok())
                .and_then(|r| r.txt.into_iter().next())
                .filter(|s| !s.is_empty())
        }
    };
    let pihole = {
        let limit = limit();
        async move {
            let q = dnswire::query(server, "pi.hole", Ask::udp(RecordType::A), MOST);
            bounded(q, limit).await.is_some_and(|r| {
                r.is_ok_and(|r| r.rcode == ResponseCode::NoError && !r.addrs.is_empty())
            })
        }
    };
    let (software, id, hostname, pihole) = tokio::join!(
        chaos("version.bind"),
        chaos("id.server"),
        chaos("hostname.bind"),
        pihole
    );
    Identity {
        software,
        server_id: id.or(hostname),
        pihole,
    }
}

/// Resolves when a diagnostic query asked at `started` has waited long enough: [`patience`] for
/// the first round trip measured, at most [`MOST`].
type Limit = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn limit(started: Instant, mut rtt: watch::Receiver<Option<Duration>>) -> Limit {
    Box::pin(async move {
        let most = started + MOST;
        let measured = async {
            let rtt = rtt.wait_for(Option::is_some).await.ok().and_then(|r| *r);
            match rtt {
                Some(rtt) => tokio::time::sleep_until(started + patience(rtt)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = measured => {}
            () = tokio::time::sleep_until(most) => {}
        }
    })
}

async fn bounded<T>(fut: impl std::future::Future<Output = T>, limit: Limit) -> Option<T> {
    tokio::select! {
        r = fut => Some(r),
        () = limit => None,
    }
}

/// One resolver of the run: its address, the first round trip measured to it, and its identity
/// once asked.
struct Resolver {
    addr: SocketAddr,
    rtt: watch::Sender<Option<Duration>>,
    identity: OnceLock<watch::Receiver<Option<Identity>>>,
}

/// The resolvers a run's queries go to, with what the run learns about each: shared by every
/// dns check of the run (see the module's notes).
pub struct Servers {
    list: Vec<Resolver>,
}

impl Servers {
    /// The servers a run's queries go to: the one given with `--resolver`, else the system's.
    pub fn new(addrs: Vec<SocketAddr>) -> Servers {
        Servers {
            list: addrs
                .into_iter()
                .map(|addr| Resolver {
                    addr,
                    rtt: watch::channel(None).0,
                    identity: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// The server the second looks ask: the first.
    pub fn first(&self) -> Option<SocketAddr> {
        self.list.first().map(|r| r.addr)
    }

    /// Every server's address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.list.iter().map(|r| r.addr).collect()
    }

    fn get(&self, server: SocketAddr) -> Option<&Resolver> {
        self.list.iter().find(|r| r.addr == server)
    }

    /// Starts asking `server` who it is, unless the run already did: the questions go out now
    /// (on their own task), the answer waits for the first round trip measured.
    pub fn start(&self, server: SocketAddr) {
        let Some(r) = self.get(server) else { return };
        r.identity.get_or_init(|| {
            let (tx, rx) = watch::channel(None);
            let started = Instant::now();
            let rtt = r.rtt.clone();
            tokio::spawn(async move {
                let id = ask(server, || limit(started, rtt.subscribe())).await;
                let _ = tx.send(Some(id));
            });
            rx
        });
    }

    /// Records a round trip to `server` measured by a lookup; the first one counts.
    pub fn measured(&self, server: SocketAddr, rtt: Duration) {
        if let Some(r) = self.get(server) {
            r.rtt.send_if_modified(|v| {
                let first = v.is_none();
                if first {
                    *v = Some(rtt);
                }
                first
            });
        }
    }

    /// The first round trip measured to `server`, if any.
    pub fn rtt(&self, server: SocketAddr) -> Option<Duration> {
        self.get(server).and_then(|r| *r.rtt.borrow())
    }

    /// Who `server` is: the run's one answer, waiting for it (started if need be) until
    /// `deadline` at the latest.
    pub async fn identity(&self, server: SocketAddr, deadline: Instant) -> Identity {
        self.start(server);
        let Some(mut rx) = self.get(server).and_then(|r| r.identity.get()).cloned() else {
            return Identity::default();
        };
        match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
            Ok(Ok(id)) => (*id).clone().unwrap_or_default(),
            _ => Identity::default(),
        }
    }
}

/// Builds the resolver for a run: the system's configuration, or one server given by the user.
/// A system without usable DNS configuration is a finding, so the error is kept as text.
pub fn resolver(server: Option<SocketAddr>, timeout: Duration) -> Result<Library, String> {
    let mut builder = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            Library::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                crate::iface::BoundRuntime::default(),
            )
        }
        None => Library::builder(crate::iface::BoundRuntime::default())
            .map_err(|e| format!("no usable DNS configuration on this device: {e}"))?,
    };
    let opts = builder.options_mut();
    // One attempt bounded by the step timeout: retries would hide a flaky resolver, and the
    // step's bound must hold. `attempts` counts the tries after the first (the library asks
    // again at once after a REFUSED or SERVFAIL when it is 1): none.
    opts.timeout = timeout;
    opts.attempts = 0;
    opts.cache_size = 64;
    builder
        .build()
        .map_err(|e| format!("cannot set up DNS resolution: {e}"))
}

/// The servers a run's queries go to: the one given with `--resolver`, else the system's.
/// Needed for the second look ([`super::dnsfilter`]) and the resolver's identity
/// ([`super::resolverid`]), which ask a server directly.
pub fn servers(server: Option<SocketAddr>) -> Servers {
    let addrs = match server {
        Some(s) => vec![s],
        None => hickory_resolver::system_conf::read_system_conf()
            .map(|(cfg, _)| {
                cfg.name_servers()
                    .iter()
                    .map(|ns| {
                        let port = ns.connections.first().map_or(53, |c| c.port);
                        SocketAddr::new(ns.ip, port)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    Servers::new(addrs)
}

/// What [`who`] says when nothing names the product.
pub const UNKNOWN: &str = "a DNS filter (unknown product)";

/// Who is in the way, in words: the product where the evidence names it, else "a DNS filter
/// (unknown product)".
pub fn who(server: Option<&IpAddr>, id: &Identity, block_page: Option<&str>) -> String {
    if let Some(p) = block_page {
        return p.to_owned();
    }
    let product = id.product();
    if product == Some("Pi-hole") {
        return "Pi-hole".into();
    }
    if let Some(f) = server.and_then(blockpages::resolver_product) {
        return f.product.clone();
    }
    match (product, id.software.as_deref()) {
        (Some("unbound"), Some(v)) => format!("unbound ({v}) with a local-zone or RPZ rule"),
        (Some("dnsmasq"), Some(v)) => format!("dnsmasq ({v}) with an address/blocklist rule"),
        (Some(p), Some(v)) => format!("{p} ({v})"),
        (Some(p), None) => p.to_owned(),
        _ => UNKNOWN.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_names_the_product_where_it_can() {
        let none = Identity::default();
        assert_eq!(who(None, &none, None), "a DNS filter (unknown product)");
        assert_eq!(
            who(None, &none, Some("Cisco Umbrella (OpenDNS)")),
            "Cisco Umbrella (OpenDNS)"
        );
        let pihole = Identity {
            software: Some("dnsmasq-2.90".into()),
            pihole: true,
            ..Identity::default()
        };
        assert_eq!(who(None, &pihole, None), "Pi-hole");
        let by_id = Identity {
            server_id: Some("pi.hole".into()),
            ..Identity::default()
        };
        assert_eq!(who(None, &by_id, None), "Pi-hole");
        let unbound = Identity {
            software: Some("unbound 1.17.1".into()),
            ..Identity::default()
        };
        assert!(who(None, &unbound, None).starts_with("unbound (unbound 1.17.1)"));
        let bind = Identity {
            software: Some("9.18.28-1~deb12u2-Debian".into()),
            server_id: Some("ns1".into()),
            ..Identity::default()
        };
        assert_eq!(who(None, &bind, None), "BIND (9.18.28-1~deb12u2-Debian)");
        let cb: IpAddr = "185.228.168.9".parse().expect("address");
        assert_eq!(who(Some(&cb), &none, None), "CleanBrowsing");
    }

    #[test]
    fn patience_is_a_few_round_trips_and_never_below_the_floor() {
        assert_eq!(patience(Duration::from_millis(1)), LEAST);
        assert_eq!(
            patience(Duration::from_millis(40)),
            Duration::from_millis(160)
        );
    }

    #[tokio::test]
    async fn a_resolver_that_ignores_the_questions_costs_a_few_round_trips() {
        // A socket that receives and never answers: the identity waits for patience, not MOST.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = silent.local_addr().expect("address");
        let servers = Servers::new(vec![addr]);
        servers.start(addr);
        servers.measured(addr, Duration::from_millis(1));
        let far = Instant::now() + Duration::from_secs(30);
        let id = servers.identity(addr, far).await;
        assert_eq!(id, Identity::default());
        // Asked once: the second reader gets the same answer without new questions.
        assert_eq!(servers.identity(addr, far).await, id);
        let mut buf = [0u8; 512];
        let mut questions = 0;
        while silent.try_recv(&mut buf).is_ok() {
            questions += 1;
        }
        assert_eq!(
            questions, 4,
            "version.bind, id.server, hostname.bind, pi.hole"
        );
    }
}
