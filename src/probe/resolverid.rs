//! resolverid: who the resolver is, asked once per resolver per run.
//!
//! When a filter answers for the resolver, the product in the way tells the user whose settings
//! to change. Resolvers say who they are when asked in class CHAOS (`version.bind`, `id.server`,
//! `hostname.bind`), and a Pi-hole answers its own name `pi.hole`. Many resolvers ignore CHAOS
//! queries silently, so a lookup's wait for them is bounded by what the resolver's first answers
//! showed: a few of its round trips ([`patience`]), never the step.
//!
//! The questions go out once per resolver and run, at the start of the first lookup (in parallel
//! with it), and every dns check of that resolver reads the same answer: the same run names the
//! same product on every check. Only verdicts that name a filter wait for it. After a run that
//! found a filter, the run-wide reader names the filter on every check from one answer: it waits
//! for every answer (up to [`MOST`]) from a resolver that answered any of the questions, so a
//! busy machine does not decide the name, and not at all past [`patience`] for one that
//! answered none of them. This file sends the
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

/// The longest wait for the resolver's identity: a lookup whose round trip is not known (its
/// first lookups went unanswered) reads what came by then; the run-wide reader of a run that
/// found a filter waits for every answer up to this.
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
    /// The product its behaviour names where it says nothing about itself: the texts of its
    /// Extended DNS Errors ([`product_of_ede`]).
    pub behaviour: Option<&'static str>,
    /// The response-policy zone its rewritten answers name (see
    /// [`super::dnsfilter::policy_zone`]).
    pub policy_zone: Option<String>,
}

impl Identity {
    /// The product these answers name, in the words a user knows.
    pub fn product(&self) -> Option<&'static str> {
        if self.pihole {
            return Some("Pi-hole");
        }
        let named = |s: &Option<String>| s.as_deref().and_then(blockpages::software_product);
        named(&self.software)
            .or_else(|| {
                // A server id names the product only where it is one's default (Pi-hole's
                // `pi.hole`).
                let id = self.server_id.as_deref()?.to_ascii_lowercase();
                (id == "pi.hole" || id.contains("pihole") || id.contains("pi-hole"))
                    .then_some("Pi-hole")
            })
            .or(self.behaviour)
    }
}

/// The product an Extended DNS Error's text names. Knot Resolver marks every EDE it sets with a
/// four-character identifier of its own (`CR36` for `policy.DENY`, `EIM4` for `policy.REFUSE`,
/// `5DO5` for `policy.ANSWER`, as Knot Resolver 5.6 answers), which no other resolver sends;
/// Pi-hole, AdGuard Home and Technitium name themselves in theirs.
pub fn product_of_ede(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("pi-hole") || lower.contains("pihole") {
        return Some("Pi-hole");
    }
    if lower.contains("adguard") {
        return Some("AdGuard Home");
    }
    if lower.contains("technitium") {
        return Some("Technitium DNS Server");
    }
    let id = text
        .split([':', ' '])
        .next()
        .unwrap_or_default()
        .trim_matches(['(', ')']);
    let knot = id.len() == 4
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && id.chars().any(|c| c.is_ascii_digit())
        && id.chars().any(|c| c.is_ascii_uppercase());
    knot.then_some("Knot Resolver")
}

/// What the questions have found so far, and which readers may take it.
#[derive(Debug, Clone, Default)]
struct Answers {
    id: Identity,
    /// The few round trips a lookup waits are over, or every question is answered.
    quick: bool,
    /// Every question is answered or has waited [`MOST`].
    full: bool,
    /// Some CHAOS question got a response: the resolver answers them (late answers are worth a
    /// wait).
    heard: bool,
}

/// Asks `server` who it is: `version.bind`, `id.server`, `hostname.bind` (class CHAOS) and
/// `pi.hole`, all at once, each for at most [`MOST`]; every answer is published as it comes.
async fn ask(server: SocketAddr, tx: &watch::Sender<Answers>) {
    // Any response at all (an empty or refused one too) says the resolver does answer CHAOS
    // questions; `pi.hole` is an ordinary lookup, answered by every resolver.
    let chaos = |name: &'static str| {
        let mut ask = Ask::udp(RecordType::TXT);
        ask.class = DNSClass::CH;
        async move {
            let r = dnswire::query(server, name, ask, MOST).await.ok()?;
            tx.send_modify(|a| a.heard = true);
            r.txt.into_iter().next().filter(|s| !s.is_empty())
        }
    };
    let software = async {
        if let Some(v) = chaos("version.bind").await {
            tx.send_modify(|a| a.id.software = Some(v));
        }
    };
    // `id.server` (RFC 4892) is preferred to `hostname.bind`, whichever comes first.
    let id = async {
        if let Some(v) = chaos("id.server").await {
            tx.send_modify(|a| a.id.server_id = Some(v));
        }
    };
    let hostname = async {
        if let Some(v) = chaos("hostname.bind").await {
            tx.send_modify(|a| {
                a.id.server_id.get_or_insert(v);
            });
        }
    };
    let pihole = async {
        let q = dnswire::query(server, "pi.hole", Ask::udp(RecordType::A), MOST).await;
        if q.is_ok_and(|r| r.rcode == ResponseCode::NoError && !r.addrs.is_empty()) {
            tx.send_modify(|a| a.id.pihole = true);
        }
    };
    tokio::join!(software, id, hostname, pihole);
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

/// One resolver of the run: its address, the first round trip measured to it, and its identity
/// once asked.
struct Resolver {
    addr: SocketAddr,
    rtt: watch::Sender<Option<Duration>>,
    identity: OnceLock<watch::Receiver<Answers>>,
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
            let (tx, rx) = watch::channel(Answers::default());
            let started = Instant::now();
            let rtt = r.rtt.clone();
            tokio::spawn(async move {
                let all = ask(server, &tx);
                tokio::pin!(all);
                tokio::select! {
                    () = &mut all => {}
                    () = limit(started, rtt.subscribe()) => {
                        tx.send_modify(|a| a.quick = true);
                        all.await;
                    }
                }
                tx.send_modify(|a| {
                    a.quick = true;
                    a.full = true;
                });
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

    /// The first server and its identity, for the run-wide judgements of a run that found a
    /// filter (after every pipeline has finished). The questions are the ones asked at the
    /// start, once per run; a lookup's reader takes what came within a few round trips. This
    /// one, once the resolver has answered any of them, waits for every answer, up to [`MOST`]
    /// — so a busy machine or resolver does not decide whether the product is named; a
    /// resolver silent for those few round trips is not waited for. `None` when the run found
    /// no filter (`wanted` is false: nothing waits) or no lookup asked.
    pub async fn run_identity(&self, wanted: bool) -> Option<(IpAddr, Identity)> {
        let server = self.first().filter(|_| wanted)?;
        let mut rx = self.get(server)?.identity.get()?.clone();
        let most = Instant::now() + MOST + LEAST;
        // A resolver that answered none of the CHAOS questions within a few of its round trips
        // ([`patience`], counted from when they were asked) ignores them: waiting longer would
        // only cost the run time.
        let _ = tokio::time::timeout_at(most, rx.wait_for(|a| a.quick)).await;
        if !rx.borrow().heard {
            return Some((server.ip(), rx.borrow().id.clone()));
        }
        // Done when every answer is in, or when the product is named by what no later answer
        // changes (dnsmasq's may still turn out to be a Pi-hole's).
        let done = |a: &Answers| a.full || a.id.product().is_some_and(|p| p != "dnsmasq");
        let full = tokio::time::timeout_at(most, rx.wait_for(done))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|a| a.id.clone());
        Some((server.ip(), full.unwrap_or_else(|| rx.borrow().id.clone())))
    }

    /// Who `server` is: the run's one answer, waiting for it (started if need be) until
    /// `deadline` at the latest.
    pub async fn identity(&self, server: SocketAddr, deadline: Instant) -> Identity {
        self.start(server);
        let Some(mut rx) = self.get(server).and_then(|r| r.identity.get()).cloned() else {
            return Identity::default();
        };
        match tokio::time::timeout_at(deadline, rx.wait_for(|a| a.quick)).await {
            Ok(Ok(a)) => a.id.clone(),
            _ => Identity::default(),
        }
    }
}

/// The options of every resolver a run builds (its own, an encrypted `--resolver`, the
/// control): one attempt bounded by the step timeout — retries would hide a flaky resolver, and
/// the step's bound must hold. `attempts` counts the tries after the first (the library asks
/// again at once after a REFUSED or SERVFAIL when it is 1): none.
pub fn tune(opts: &mut hickory_resolver::config::ResolverOpts, timeout: Duration) {
    opts.timeout = timeout;
    opts.attempts = 0;
    opts.cache_size = 64;
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
                crate::iface::connections(),
            )
        }
        None => Library::builder(crate::iface::connections())
            .map_err(|e| format!("no usable DNS configuration on this device: {e}"))?,
    };
    tune(builder.options_mut(), timeout);
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
        _ => match &id.policy_zone {
            Some(zone) => format!("a DNS filter with the response-policy zone {zone} (RPZ)"),
            None => UNKNOWN.into(),
        },
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
        let knot = Identity {
            behaviour: product_of_ede("CR36"),
            ..Identity::default()
        };
        assert_eq!(who(None, &knot, None), "Knot Resolver");
        let rpz = Identity {
            policy_zone: Some("rpz.example".into()),
            ..Identity::default()
        };
        assert_eq!(
            who(None, &rpz, None),
            "a DNS filter with the response-policy zone rpz.example (RPZ)"
        );
        let cb: IpAddr = "185.228.168.9".parse().expect("address");
        assert_eq!(who(Some(&cb), &none, None), "CleanBrowsing");
    }

    #[test]
    fn extended_error_texts_name_the_resolver() {
        for id in ["CR36", "EIM4", "5DO5", "(CR36)"] {
            assert_eq!(product_of_ede(id), Some("Knot Resolver"), "{id}");
        }
        assert_eq!(product_of_ede("Blocked by Pi-hole"), Some("Pi-hole"));
        assert_eq!(
            product_of_ede("AdGuard Home: filtered"),
            Some("AdGuard Home")
        );
        for other in ["DENY", "1234", "blocked by policy", "", "CR366"] {
            assert_eq!(product_of_ede(other), None, "{other}");
        }
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
        // After a run with a filter finding, the run-wide reader reads the same questions'
        // answers without asking again; none came within patience, so it does not wait for more.
        assert_eq!(
            servers.run_identity(false).await,
            None,
            "no filter, no wait"
        );
        let (ip, id) = servers.run_identity(true).await.expect("asked");
        assert_eq!((ip, id), (addr.ip(), Identity::default()));
        // It did not wait for the questions to run out (MOST): silent for a few round trips,
        // the resolver is taken as one that does not answer them.
        let answers = servers
            .get(addr)
            .and_then(|r| r.identity.get())
            .expect("asked");
        assert!(
            !answers.borrow().full,
            "the run-wide reader waited for MOST"
        );
        assert!(silent.try_recv(&mut buf).is_err(), "asked once per run");
    }
}
