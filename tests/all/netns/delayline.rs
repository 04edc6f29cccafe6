//! A userspace delay line between two TUN devices: every IP packet read from one is held for the
//! configured one-way delay, then written to the other — or dropped, by a blackhole rule or by
//! seeded random loss. This is netem done by hand, for kernels without `sch_netem`.
//!
//! One thread does all the work: it waits in `ppoll(2)` (nanosecond timeout, timer slack 1 ns)
//! on both devices and an eventfd, stamps each packet with a monotonic due time, and keeps the
//! held packets in a min-heap ordered by (due time, arrival), so order is kept per direction and
//! the delay is exact up to the wake-up latency, which [`Stats`] reports.
//!
//! Loss draws come from a seeded generator and are drawn only for packets the loss filter
//! matches, so a run that sends the same matching packets in the same order sees the same drops.
//!
//! This file depends on nothing of the test harness, so a benchmark can reuse it.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A TUN device (layer 3, no packet-information header), open for reading and writing.
/// Not persistent: the device disappears when this is dropped.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl Tun {
    /// Creates the device `name` in the calling thread's network namespace (see
    /// `Netns::enter`), so it never exists anywhere else.
    pub fn create(name: &str) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name '{name}' must have 1 to 15 bytes"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq; IfReq has its layout (40 bytes).
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = req
            .name
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..len]).into_owned();
        Ok(Tun { file, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Which way a packet travels: from the client's device to the server's, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer = 0,
    ToClient = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Which packets a rule applies to; every field left `None`/`false` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub dir: Option<Dir>,
    pub family: Option<Family>,
    pub proto: Option<Proto>,
    /// Only TCP segments opening a connection (SYN without ACK).
    pub syn_only: bool,
    pub dst_port: Option<u16>,
}

impl Filter {
    /// Every packet, both ways.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Connection attempts (SYN without ACK) from the client to `port`, any port when `None`.
    pub fn syn_to(port: Option<u16>) -> Filter {
        Filter {
            dir: Some(Dir::ToServer),
            proto: Some(Proto::Tcp),
            syn_only: true,
            dst_port: port,
            ..Filter::default()
        }
    }

    /// Every IPv6 packet, both ways.
    pub fn ipv6() -> Filter {
        Filter {
            family: Some(Family::V6),
            ..Filter::default()
        }
    }

    /// UDP datagrams from the client to `port`.
    pub fn udp_to(port: u16) -> Filter {
        Filter {
            dir: Some(Dir::ToServer),
            proto: Some(Proto::Udp),
            dst_port: Some(port),
            ..Filter::default()
        }
    }

    fn matches(&self, dir: Dir, p: &Packet) -> bool {
        self.dir.is_none_or(|d| d == dir)
            && self.family.is_none_or(|f| f == p.family)
            && self.proto.is_none_or(|x| Some(x) == p.proto)
            && (!self.syn_only || p.syn)
            && self.dst_port.is_none_or(|port| Some(port) == p.dst_port)
    }
}

/// What the line does to packets. Changing it with [`DelayLine::set`] affects packets read after.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaping {
    pub delay_to_server: Duration,
    pub delay_to_client: Duration,
    /// Probability (0..=1) that a packet matching `loss_filter` is dropped.
    pub loss: f64,
    pub loss_filter: Filter,
    /// Seed of the loss generator (re-seeded on every [`DelayLine::set`]).
    pub seed: u64,
    /// Packets matching any of these are always dropped.
    pub blackhole: Vec<Filter>,
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping {
            delay_to_server: Duration::ZERO,
            delay_to_client: Duration::ZERO,
            loss: 0.0,
            loss_filter: Filter::all(),
            seed: 0x6e65_7463_6865_636b,
            blackhole: Vec::new(),
        }
    }
}

impl Shaping {
    /// A round-trip time split evenly between the two directions.
    pub fn rtt(rtt: Duration) -> Shaping {
        Shaping {
            delay_to_server: rtt / 2,
            delay_to_client: rtt - rtt / 2,
            ..Shaping::default()
        }
    }

    /// Adds seeded random loss of the packets matching `filter`.
    pub fn with_loss(mut self, rate: f64, filter: Filter, seed: u64) -> Shaping {
        self.loss = rate;
        self.loss_filter = filter;
        self.seed = seed;
        self
    }

    /// Adds a blackhole: packets matching `filter` are always dropped.
    pub fn with_blackhole(mut self, filter: Filter) -> Shaping {
        self.blackhole.push(filter);
        self
    }
}

/// Counters since the line started, per direction (`[to server, to client]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub read: [u64; 2],
    pub forwarded: [u64; 2],
    pub blackholed: [u64; 2],
    pub lost: [u64; 2],
    /// Packets the loss filter matched (each one drew from the generator).
    pub loss_draws: u64,
    pub write_errors: u64,
    /// How late packets were written compared with their due time (mean and worst).
    pub late_mean: Duration,
    pub late_max: Duration,
}

/// The header fields the filters look at.
struct Packet {
    family: Family,
    proto: Option<Proto>,
    dst_port: Option<u16>,
    syn: bool,
}

impl Packet {
    /// Parses the IP header (IPv6 extension headers are not followed: the test traffic has none).
    fn parse(b: &[u8]) -> Option<Packet> {
        let (family, proto_num, l4) = match b.first()? >> 4 {
            4 => {
                let ihl = usize::from(b.first()? & 0x0f) * 4;
                (Family::V4, *b.get(9)?, b.get(ihl..)?)
            }
            6 => (Family::V6, *b.get(6)?, b.get(40..)?),
            _ => return None,
        };
        let proto = match proto_num {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        };
        let dst_port = proto
            .and_then(|_| l4.get(2..4))
            .map(|p| u16::from_be_bytes([p[0], p[1]]));
        let syn = proto == Some(Proto::Tcp) && l4.get(13).is_some_and(|f| f & 0x12 == 0x02);
        Some(Packet {
            family,
            proto,
            dst_port,
            syn,
        })
    }
}

struct Held {
    due: Instant,
    seq: u64,
    dir: Dir,
    data: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    // Reversed: BinaryHeap is a max-heap and the earliest due packet must come out first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct State {
    shaping: Shaping,
    rng: fastrand::Rng,
    stats: Stats,
    late_total: Duration,
    late_count: u64,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running line; stops (and closes both devices) when dropped.
pub struct DelayLine {
    shared: Arc<Shared>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl DelayLine {
    /// Starts forwarding between the client's and the server's device.
    pub fn start(client: Tun, server: Tun, shaping: Shaping) -> io::Result<DelayLine> {
        // SAFETY: eventfd has no memory preconditions; the result is checked.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: efd is a fresh descriptor owned by nobody else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rng: fastrand::Rng::with_seed(shaping.seed),
                shaping,
                stats: Stats::default(),
                late_total: Duration::ZERO,
                late_count: 0,
            }),
            stop: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("delay-line".into())
            .spawn({
                let shared = shared.clone();
                let wake = wake.clone();
                move || forward(&shared, [client.file, server.file], wake.as_raw_fd())
            })?;
        Ok(DelayLine {
            shared,
            wake,
            thread: Some(thread),
        })
    }

    /// Replaces the shaping (and re-seeds the loss generator). Packets already held keep the due
    /// time they were given.
    pub fn set(&self, shaping: Shaping) {
        let mut st = self.shared.lock();
        st.rng = fastrand::Rng::with_seed(shaping.seed);
        st.shaping = shaping;
    }

    pub fn shaping(&self) -> Shaping {
        self.shared.lock().shaping.clone()
    }

    pub fn stats(&self) -> Stats {
        let st = self.shared.lock();
        let mut s = st.stats.clone();
        if st.late_count > 0 {
            s.late_mean = st.late_total / u32::try_from(st.late_count).unwrap_or(u32::MAX);
        }
        s
    }

    /// Stops the line and returns the final counters.
    pub fn stop(mut self) -> Stats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our eventfd.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.halt();
    }
}

fn read_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn write_packet(fd: RawFd, data: &[u8]) -> io::Result<()> {
    // SAFETY: data is valid for data.len() bytes.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// How long before a due time the line stops sleeping and polls instead.
const SPIN: Duration = Duration::from_micros(300);

/// The line's thread: wait, read, judge, hold, write when due.
fn forward(shared: &Shared, devices: [File; 2], wake: RawFd) {
    // Exact wake-ups: the default timer slack would add up to 50 µs to every timeout.
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
    // Real-time priority, where allowed, so a busy machine (the tool, curl and cargo starting up
    // on two cores) does not make packets late. The sleeps between packets keep it harmless.
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: pid 0 is the calling thread; param is a valid sched_param. Failure is fine.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
    let fds = [devices[0].as_raw_fd(), devices[1].as_raw_fd()];
    let trace = std::env::var_os("NETNS_TRACE").is_some_and(|v| v == "1");
    let born = Instant::now();
    let mut heap: BinaryHeap<Held> = BinaryHeap::new();
    let mut seq: u64 = 0;
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::SeqCst) {
        // Write what is due.
        let now = Instant::now();
        let mut late = Vec::new();
        while heap.peek().is_some_and(|h| h.due <= now) {
            let Some(h) = heap.pop() else { break };
            let out = fds[1 - h.dir as usize];
            let ok = write_packet(out, &h.data).is_ok();
            late.push((h.dir, ok, Instant::now().saturating_duration_since(h.due)));
        }
        if !late.is_empty() {
            let mut st = shared.lock();
            for (dir, ok, by) in late {
                if ok {
                    st.stats.forwarded[dir as usize] += 1;
                } else {
                    st.stats.write_errors += 1;
                }
                st.late_total += by;
                st.late_count += 1;
                st.stats.late_max = st.stats.late_max.max(by);
            }
        }

        // Wait for a packet, the next due time or a wake-up. A timed sleep wakes up late by the
        // timer's latency (about 0.2 ms on a VM), so the last stretch before a due time is
        // spent polling without sleeping.
        let timeout = heap.peek().map(|h| {
            let d = h
                .due
                .saturating_duration_since(Instant::now())
                .saturating_sub(SPIN);
            libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        });
        let mut pfds = [
            libc::pollfd {
                fd: fds[0],
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: fds[1],
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let tp = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: pfds is a valid array of 3 pollfd; tp is null or points to a live timespec.
        let rc = unsafe { libc::ppoll(pfds.as_mut_ptr(), 3, tp, std::ptr::null()) };
        if rc == 0 && timeout.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0) {
            std::thread::yield_now();
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("delay line: ppoll failed: {e}");
            return;
        }
        for (i, fd) in fds.iter().enumerate() {
            if pfds[i].revents == 0 {
                continue;
            }
            if pfds[i].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                // The device went away (its namespace was deleted under the line): stop rather
                // than spin on an error that will not clear.
                eprintln!("delay line: device {i} reports an error; the line stops");
                return;
            }
            let dir = if i == 0 { Dir::ToServer } else { Dir::ToClient };
            loop {
                let n = match read_packet(*fd, &mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break, // WouldBlock: drained
                };
                let arrived = Instant::now();
                let data = &buf[..n];
                if trace {
                    eprintln!("{}", describe(arrived.duration_since(born), dir, data));
                }
                let mut st = shared.lock();
                st.stats.read[dir as usize] += 1;
                let pkt = Packet::parse(data);
                let verdict = match &pkt {
                    None => Some(judge_unparsed(&st.shaping, dir)),
                    Some(p) => judge(&mut st, dir, p),
                };
                if let Some(delay) = verdict {
                    heap.push(Held {
                        due: arrived + delay,
                        seq,
                        dir,
                        data: data.to_vec(),
                    });
                    seq += 1;
                }
            }
        }
    }
}

/// One line per packet for `NETNS_TRACE=1`: time since the line started, direction, protocol,
/// ports, TCP flags and length.
fn describe(at: Duration, dir: Dir, b: &[u8]) -> String {
    let arrow = match dir {
        Dir::ToServer => "c->s",
        Dir::ToClient => "s->c",
    };
    let (ver, proto, l4) = match b.first().map(|v| v >> 4) {
        Some(4) => {
            let ihl = usize::from(b[0] & 0x0f) * 4;
            ("v4", b.get(9).copied(), b.get(ihl..).unwrap_or(&[]))
        }
        Some(6) => ("v6", b.get(6).copied(), b.get(40..).unwrap_or(&[])),
        _ => ("?", None, &[][..]),
    };
    let ports = |l4: &[u8]| match (l4.get(0..2), l4.get(2..4)) {
        (Some(s), Some(d)) => format!(
            "{}>{}",
            u16::from_be_bytes([s[0], s[1]]),
            u16::from_be_bytes([d[0], d[1]])
        ),
        _ => String::new(),
    };
    let what = match proto {
        Some(6) => {
            let flags = l4.get(13).copied().unwrap_or(0);
            let names: String = [
                (0x02, 'S'),
                (0x10, '.'),
                (0x08, 'P'),
                (0x01, 'F'),
                (0x04, 'R'),
            ]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, c)| *c)
            .collect();
            let hlen = usize::from(l4.get(12).copied().unwrap_or(0) >> 4) * 4;
            format!(
                "tcp {} [{names}] data {}",
                ports(l4),
                l4.len().saturating_sub(hlen)
            )
        }
        Some(17) => format!("udp {} data {}", ports(l4), l4.len().saturating_sub(8)),
        Some(p) => format!("proto {p}"),
        None => String::new(),
    };
    format!(
        "line {:>10.3} ms {arrow} {ver} {what} len {}",
        at.as_secs_f64() * 1000.0,
        b.len()
    )
}

fn one_way(s: &Shaping, dir: Dir) -> Duration {
    match dir {
        Dir::ToServer => s.delay_to_server,
        Dir::ToClient => s.delay_to_client,
    }
}

/// Not IPv4 or IPv6: just delayed.
fn judge_unparsed(s: &Shaping, dir: Dir) -> Duration {
    one_way(s, dir)
}

/// The delay to hold the packet for, or `None` to drop it.
fn judge(st: &mut State, dir: Dir, p: &Packet) -> Option<Duration> {
    if st.shaping.blackhole.iter().any(|f| f.matches(dir, p)) {
        st.stats.blackholed[dir as usize] += 1;
        return None;
    }
    if st.shaping.loss > 0.0 && st.shaping.loss_filter.matches(dir, p) {
        st.stats.loss_draws += 1;
        if st.rng.f64() < st.shaping.loss {
            st.stats.lost[dir as usize] += 1;
            return None;
        }
    }
    Some(one_way(&st.shaping, dir))
}

/// The drops the line's loss generator makes for the first `n` matching packets with this seed
/// and rate (`true` = dropped): what a test can expect before it runs.
pub fn predicted_losses(seed: u64, rate: f64, n: usize) -> Vec<bool> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| rng.f64() < rate).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP segment to `port` with these flags (20-byte IP header, 20-byte TCP header).
    fn tcp4(port: u16, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[22..24].copy_from_slice(&port.to_be_bytes());
        p[33] = flags;
        p
    }

    fn udp6(port: u16) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = 17;
        p[42..44].copy_from_slice(&port.to_be_bytes());
        p
    }

    fn hits(f: &Filter, dir: Dir, bytes: &[u8]) -> bool {
        f.matches(dir, &Packet::parse(bytes).expect("parses"))
    }

    #[test]
    fn filters_pick_the_right_packets() {
        let syn = tcp4(443, 0x02);
        let syn_ack = tcp4(443, 0x12);
        let syn443 = Filter::syn_to(Some(443));
        assert!(hits(&syn443, Dir::ToServer, &syn));
        assert!(!hits(&syn443, Dir::ToClient, &syn));
        assert!(!hits(&syn443, Dir::ToServer, &syn_ack));
        assert!(!hits(&syn443, Dir::ToServer, &tcp4(80, 0x02)));
        assert!(!hits(&syn443, Dir::ToServer, &tcp4(443, 0x10)));
        assert!(hits(&Filter::ipv6(), Dir::ToClient, &udp6(53)));
        assert!(!hits(&Filter::ipv6(), Dir::ToServer, &syn));
        assert!(hits(&Filter::udp_to(53), Dir::ToServer, &udp6(53)));
        assert!(!hits(&Filter::udp_to(53), Dir::ToServer, &tcp4(53, 0x02)));
        assert!(hits(&Filter::all(), Dir::ToClient, &syn_ack));
        assert!(Packet::parse(&[0x45, 0, 0]).is_none(), "truncated header");
        assert!(Packet::parse(&[]).is_none());
    }

    #[test]
    fn loss_is_reproducible() {
        let a = predicted_losses(7, 0.3, 1000);
        assert_eq!(a, predicted_losses(7, 0.3, 1000));
        let lost = a.iter().filter(|l| **l).count();
        assert!((250..350).contains(&lost), "{lost} of 1000 at 30 %");
        assert!(predicted_losses(7, 0.0, 100).iter().all(|l| !l));
        assert!(predicted_losses(7, 1.0, 100).iter().all(|l| *l));
    }
}
