//! A DNS server over UDP with a per-name behaviour table, to play every resolver the tool meets:
//! a working one, one that says NXDOMAIN, SERVFAIL or REFUSED, a blocklist answering `0.0.0.0`,
//! one that never answers, one that ignores CHAOS queries (`version.bind`) or a repeated question.
//! It listens on UDP only: a query over TCP to its port is refused.
//!
//! Use names under `netcheck.lan`: the resolver answers `.localhost`, `.invalid` and `.local`
//! itself, and those tests must see this server's answer. Unknown names get NXDOMAIN.

use super::Task;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// How the server answers one name.
#[derive(Debug, Clone, PartialEq)]
pub enum DnsAnswer {
    /// NOERROR with these addresses: A queries get the IPv4 ones, AAAA queries the IPv6 ones.
    /// A family with none gets NOERROR with no records (NODATA).
    Addrs(Vec<IpAddr>),
    /// The name does not exist.
    NxDomain,
    /// The server failed.
    ServFail,
    /// The server refuses to answer.
    Refused,
    /// No answer at all.
    Silent,
    /// A blocklist's answer: `0.0.0.0` for A, `::` for AAAA.
    Sinkhole,
    /// NOERROR with no records for either family.
    NoRecords,
    /// The inner answer, sent after a delay.
    Delayed(Duration, Box<DnsAnswer>),
    /// NOERROR with this text as a TXT record, in the query's class: `version.bind` (class
    /// CHAOS) answered the way BIND answers it.
    Txt(String),
    /// The inner answer to the first query of each type for the name; silence for the ones that
    /// follow, as a resolver that drops a repeated question does.
    FirstOnly(Box<DnsAnswer>),
}

impl DnsAnswer {
    /// `Addrs` from address literals, e.g. `DnsAnswer::addrs(["127.0.0.1", "::1"])`.
    pub fn addrs<'a>(list: impl IntoIterator<Item = &'a str>) -> DnsAnswer {
        DnsAnswer::Addrs(
            list.into_iter()
                .map(|s| s.parse().unwrap_or_else(|_| panic!("bad address {s}")))
                .collect(),
        )
    }

    /// The usual loopback answer: `127.0.0.1` only.
    pub fn localhost() -> DnsAnswer {
        DnsAnswer::Addrs(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
    }
}

type Table = Arc<Mutex<HashMap<String, DnsAnswer>>>;

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    table: Table,
    queries: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<(String, RecordType)>>>,
    _task: Task,
}

impl DnsServer {
    /// Binds `127.0.0.1:0` and serves `table`.
    pub fn start<'a>(table: impl IntoIterator<Item = (&'a str, DnsAnswer)>) -> DnsServer {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port on loopback");
        DnsServer::from_socket(socket, table)
    }

    /// Serves `table` on a socket the caller bound (any address, any network namespace).
    pub fn from_socket<'a>(
        socket: std::net::UdpSocket,
        table: impl IntoIterator<Item = (&'a str, DnsAnswer)>,
    ) -> DnsServer {
        let addr = socket
            .local_addr()
            .expect("local address of the DNS socket");
        socket
            .set_nonblocking(true)
            .expect("make the DNS socket non-blocking");
        let table: Table = Arc::new(Mutex::new(
            table
                .into_iter()
                .map(|(name, answer)| (normalize(name), answer))
                .collect(),
        ));
        let queries = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let task = Task::spawn(serve(socket, table.clone(), queries.clone(), log.clone()));
        DnsServer {
            addr,
            table,
            queries,
            log,
            _task: task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes (or adds) the behaviour for a name while the server runs.
    pub fn set(&self, name: &str, answer: DnsAnswer) {
        lock(&self.table).insert(normalize(name), answer);
    }

    /// Datagrams received so far, decodable or not.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// Queries received for one name, of any type.
    pub fn queries_for(&self, name: &str) -> usize {
        let name = normalize(name);
        lock(&self.log).iter().filter(|(n, _)| *n == name).count()
    }

    /// Every decoded query so far: name and record type.
    pub fn log(&self) -> Vec<(String, RecordType)> {
        lock(&self.log).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn serve(
    socket: std::net::UdpSocket,
    table: Table,
    queries: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<(String, RecordType)>>>,
) {
    let socket = Arc::new(UdpSocket::from_std(socket).expect("register the DNS socket"));
    let mut delayed = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let Some(query) = request.queries.first().cloned() else {
            continue;
        };
        let name = normalize(&query.name().to_ascii());
        let asked_before = {
            let mut log = lock(&log);
            let before = log
                .iter()
                .any(|(n, t)| *n == name && *t == query.query_type());
            log.push((name.clone(), query.query_type()));
            before
        };
        let answer = lock(&table)
            .get(&name)
            .cloned()
            .unwrap_or(DnsAnswer::NxDomain);
        let answer = match answer {
            DnsAnswer::FirstOnly(_) if asked_before => DnsAnswer::Silent,
            DnsAnswer::FirstOnly(inner) => *inner,
            other => other,
        };
        let (delay, answer) = match answer {
            DnsAnswer::Delayed(d, inner) => (Some(d), *inner),
            other => (None, other),
        };
        let Some(bytes) = respond(&request, &query, &answer) else {
            continue;
        };
        match delay {
            None => {
                let _ = socket.send_to(&bytes, peer).await;
            }
            Some(d) => {
                let socket = socket.clone();
                delayed.spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = socket.send_to(&bytes, peer).await;
                });
            }
        }
    }
}

/// Encodes the answer to `query`, or `None` to stay silent.
fn respond(request: &Message, query: &Query, answer: &DnsAnswer) -> Option<Vec<u8>> {
    let mut m = Message::new(request.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = request.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.authoritative = true;
    m.add_query(query.clone());
    let name = query.name().clone();
    let addrs: Vec<IpAddr> = match answer {
        DnsAnswer::Silent => return None,
        DnsAnswer::Delayed(..) | DnsAnswer::FirstOnly(..) => {
            unreachable!("unwrapped by the caller")
        }
        DnsAnswer::Txt(text) => {
            let mut rec = Record::from_rdata(name, 0, RData::TXT(TXT::new(vec![text.clone()])));
            rec.dns_class = query.query_class();
            m.add_answer(rec);
            return m.to_vec().ok();
        }
        DnsAnswer::Addrs(list) => list.clone(),
        DnsAnswer::Sinkhole => vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ],
        DnsAnswer::NoRecords => Vec::new(),
        DnsAnswer::NxDomain => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa(&name));
            Vec::new()
        }
        DnsAnswer::ServFail => {
            m.metadata.response_code = ResponseCode::ServFail;
            Vec::new()
        }
        DnsAnswer::Refused => {
            m.metadata.response_code = ResponseCode::Refused;
            Vec::new()
        }
    };
    for ip in addrs {
        let rdata = match (query.query_type(), ip) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        m.add_answer(Record::from_rdata(name.clone(), 60, rdata));
    }
    if m.metadata.response_code == ResponseCode::NoError && m.answers.is_empty() {
        // NODATA: the SOA in the authority section is what negative caching reads.
        m.add_authority(soa(&name));
    }
    m.to_vec().ok()
}

fn soa(owner: &Name) -> Record {
    let zone = Name::from_ascii("netcheck.lan.").expect("zone name");
    let rdata = SOA::new(
        Name::from_ascii("ns.netcheck.lan.").expect("mname"),
        Name::from_ascii("hostmaster.netcheck.lan.").expect("rname"),
        1,
        3600,
        600,
        86_400,
        60,
    );
    let owner = if zone.zone_of(owner) {
        zone
    } else {
        owner.clone()
    };
    Record::from_rdata(owner, 60, RData::SOA(rdata))
}
