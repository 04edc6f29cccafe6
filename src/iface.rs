//! Which uplink: binding a run's sockets to one network interface, and finding the uplinks.
//!
//! "It works on cellular but not on Wi-Fi" is the question a run on the default route cannot
//! answer. With `--interface IFACE` every socket of the run — DNS (UDP and TCP), the tcp stage,
//! latency samples, TLS and HTTP (which reuse the tcp stage's socket), the captive-portal check,
//! and the proxied http stage — is bound to that interface before it connects, so its traffic
//! leaves through that link whatever the routing table prefers.
//!
//! One process, one uplink: the binding is set once, before the run starts, and every socket
//! factory here reads it. `--via all` and a repeated `--interface` run one child process per
//! uplink, at once, and merge their reports (see `crate::uplinks`). That keeps the probes free of
//! plumbing: they call [`connect`] instead of `TcpStream::connect`.
//!
//! Platform code lives in [`bind_socket`] only. Linux uses `SO_BINDTODEVICE`; macOS
//! (`IP_BOUND_IF` / `IPV6_BOUND_IF` by interface index) and Windows (`IP_UNICAST_IF`) slot in
//! there; until then they refuse `--interface` up front with one line.

use hickory_resolver::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_resolver::net::runtime::{
    RuntimeProvider, TokioHandle, TokioRuntimeProvider, TokioTime,
};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

static BOUND: OnceLock<String> = OnceLock::new();

/// The run's DNS resolver: hickory's, with sockets made here (bound when the run is) and one
/// connection attempt at a time to an encrypted server ([`crate::sharedconn`]).
pub type Resolver = hickory_resolver::Resolver<Connections>;

/// The resolver's connections: see [`Resolver`].
pub type Connections = crate::sharedconn::SharedConnections<BoundRuntime>;

/// The connections of a new resolver.
pub fn connections() -> Connections {
    crate::sharedconn::SharedConnections::new(BoundRuntime::default())
}

/// Binds every socket this process opens from now on to `name`. Set once, before the run.
pub fn bind_process(name: &str) {
    let _ = BOUND.set(name.to_owned());
}

/// The interface this process's sockets are bound to, if any.
pub fn bound() -> Option<&'static str> {
    BOUND.get().map(String::as_str)
}

/// Can this platform bind sockets to an interface?
pub const SUPPORTED: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Binds a socket to the interface: the one platform-specific step.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_socket(socket: &socket2::Socket, name: &str) -> io::Result<()> {
    socket.bind_device(Some(name.as_bytes()))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_socket(_socket: &socket2::Socket, _name: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "binding to an interface is not supported on this platform",
    ))
}

pub(crate) fn new_socket(addr: &SocketAddr, kind: socket2::Type) -> io::Result<socket2::Socket> {
    let domain = socket2::Domain::for_address(*addr);
    let protocol = if kind == socket2::Type::DGRAM {
        socket2::Protocol::UDP
    } else {
        socket2::Protocol::TCP
    };
    let socket = socket2::Socket::new(domain, kind, Some(protocol))?;
    if let Some(name) = bound() {
        bind_socket(&socket, name).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind to interface {name}: {e}"))
        })?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A TCP connection to `addr` over the bound interface (or the system's routing).
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    if bound().is_none() {
        return TcpStream::connect(addr).await;
    }
    let socket = new_socket(&addr, socket2::Type::STREAM)?;
    let std_stream: std::net::TcpStream = socket.into();
    TcpSocket::from_std_stream(std_stream).connect(addr).await
}

/// As [`connect`], with the largest segment this side announces and sends set to `mss` before
/// the SYN goes out (`TCP_MAXSEG`): the server then sends segments small enough for any path.
pub async fn connect_with_mss(addr: SocketAddr, mss: u32) -> io::Result<TcpStream> {
    let socket = new_socket(&addr, socket2::Type::STREAM)?;
    #[cfg(unix)]
    socket.set_tcp_mss(mss)?;
    #[cfg(not(unix))]
    let _ = mss;
    let std_stream: std::net::TcpStream = socket.into();
    TcpSocket::from_std_stream(std_stream).connect(addr).await
}

/// An HTTP client (the proxied http stage) bound like every other socket of the run.
pub fn bind_client(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = bound() {
        return builder.interface(name);
    }
    builder
}

/// A UDP socket bound to `local` (and to the interface).
pub async fn udp(local: SocketAddr) -> io::Result<UdpSocket> {
    if bound().is_none() {
        return UdpSocket::bind(local).await;
    }
    let socket = new_socket(&local, socket2::Type::DGRAM)?;
    socket.bind(&local.into())?;
    UdpSocket::from_std(socket.into())
}

/// The DNS resolver's sockets, bound like every other socket of the run: the queries go to a
/// resolver reached over the chosen uplink. A resolver on loopback (a local stub such as
/// systemd-resolved's 127.0.0.53) cannot be reached through another interface; it is asked
/// unbound, and it resolves over its own routing — `--resolver` names the uplink's own.
#[derive(Clone, Default)]
pub struct BoundRuntime(TokioRuntimeProvider);

impl RuntimeProvider for BoundRuntime {
    type Handle = TokioHandle;
    type Timer = TokioTime;
    type Udp = UdpSocket;
    type Tcp = AsyncIoTokioAsStd<TcpStream>;

    fn create_handle(&self) -> Self::Handle {
        self.0.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        if bound().is_none() || server_addr.ip().is_loopback() {
            return self.0.connect_tcp(server_addr, bind_addr, timeout);
        }
        Box::pin(async move {
            let socket = new_socket(&server_addr, socket2::Type::STREAM)?;
            if let Some(b) = bind_addr {
                socket.bind(&b.into())?;
            }
            let std_stream: std::net::TcpStream = socket.into();
            let connecting = TcpSocket::from_std_stream(std_stream).connect(server_addr);
            let stream =
                tokio::time::timeout(timeout.unwrap_or(Duration::from_secs(5)), connecting)
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out")
                    })??;
            let _ = stream.set_nodelay(true);
            Ok(AsyncIoTokioAsStd(stream))
        })
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        if bound().is_none() || server_addr.ip().is_loopback() {
            return self.0.bind_udp(local_addr, server_addr);
        }
        Box::pin(udp(local_addr))
    }
}

/// What kind of link an interface is, from what the OS reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wifi,
    Cellular,
    Ethernet,
    Tunnel,
    Other,
}

impl Kind {
    /// The word in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Wifi => "wifi",
            Kind::Cellular => "cellular",
            Kind::Ethernet => "ethernet",
            Kind::Tunnel => "tunnel",
            Kind::Other => "other",
        }
    }
}

/// An interface as the OS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub kind: Kind,
    pub up: bool,
    pub loopback: bool,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Classifies `/sys/class/net/<name>` (any directory laid out like it, for tests):
/// `wireless/` or `phy80211` → Wi-Fi; `DEVTYPE=wwan` in `uevent`, or a raw-IP link
/// (ARPHRD_RAWIP 519, the modems' qmi/rmnet/mhi devices) → cellular; `tun_flags`, a
/// WireGuard/tunnel DEVTYPE or a tunnel ARP type (none, PPP, IPIP, IPv6-in-IPv6, SIT, GRE) →
/// tunnel; Ethernet ARP type → Ethernet.
pub fn describe(dir: &Path, name: &str) -> Interface {
    let arp: Option<u32> = read(dir, "type").and_then(|t| t.parse().ok());
    let uevent = read(dir, "uevent").unwrap_or_default();
    let devtype = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE="))
        .unwrap_or("")
        .to_owned();
    let kind =
        if dir.join("wireless").exists() || dir.join("phy80211").exists() || devtype == "wlan" {
            Kind::Wifi
        } else if devtype == "wwan" || arp == Some(519) {
            Kind::Cellular
        } else if dir.join("tun_flags").exists()
            || matches!(devtype.as_str(), "wireguard" | "vxlan" | "ipip" | "gre")
            || matches!(arp, Some(65534 | 512 | 768 | 769 | 776 | 778 | 823))
        {
            Kind::Tunnel
        } else if arp == Some(1) {
            Kind::Ethernet
        } else {
            Kind::Other
        };
    let loopback = arp == Some(772) || name == "lo";
    // "unknown" is what tun and some drivers report while they carry traffic.
    let oper = read(dir, "operstate").unwrap_or_default();
    let flags = read(dir, "flags")
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let up = oper == "up" || (oper == "unknown" && flags & 0x1 != 0);
    Interface {
        name: name.to_owned(),
        kind,
        up,
        loopback,
    }
}

/// Every interface the OS lists, sorted by name (Linux: /sys/class/net).
pub fn interfaces() -> Vec<Interface> {
    let root = Path::new("/sys/class/net");
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut all: Vec<Interface> = dir
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            describe(&root.join(&name), &name)
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// Interfaces carrying a default route, from the kernel's tables (/proc/net/route and
/// /proc/net/ipv6_route).
pub fn default_route_interfaces(v4: &str, v6: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in v4.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000" && !out.contains(&f[0].into()) {
            out.push(f[0].to_owned());
        }
    }
    for l in v6.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 10
            && f[0].chars().all(|c| c == '0')
            && f[1] == "00"
            && f[9] != "lo"
            && !out.contains(&f[9].into())
        {
            out.push(f[9].to_owned());
        }
    }
    out
}

/// The uplinks `--via all` runs over: interfaces that are up, not loopback, not a tunnel, and
/// carry a default route (a link the device could reach BMW through).
pub fn uplinks() -> Vec<Interface> {
    let tables = crate::platform::routes::tables();
    let routed = default_route_interfaces(&tables.v4, &tables.v6);
    interfaces()
        .into_iter()
        .filter(|i| i.up && !i.loopback && i.kind != Kind::Tunnel && routed.contains(&i.name))
        // A name is shown in every report: one that is not plain visible text is left out
        // (it can still be named, as `--interface` accepts only visible names anyway).
        .filter(|i| i.name.chars().all(|c| c.is_ascii_graphic()))
        .collect()
}

/// The interface named `name`, if the OS has one.
pub fn find(name: &str) -> Option<Interface> {
    interfaces().into_iter().find(|i| i.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(files: &[(&str, &str)], dirs: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (f, content) in files {
            std::fs::write(d.path().join(f), content).unwrap();
        }
        for sub in dirs {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        d
    }

    #[test]
    fn kinds_from_what_the_kernel_reports() {
        let wifi = fake(
            &[
                ("type", "1\n"),
                ("operstate", "up\n"),
                ("uevent", "DEVTYPE=wlan\n"),
            ],
            &["wireless"],
        );
        let i = describe(wifi.path(), "wlp2s0");
        assert_eq!((i.kind, i.up), (Kind::Wifi, true));

        let wwan = fake(
            &[
                ("type", "519\n"),
                ("operstate", "unknown\n"),
                ("flags", "0x1091\n"),
            ],
            &[],
        );
        let i = describe(wwan.path(), "wwan0");
        assert_eq!((i.kind, i.up), (Kind::Cellular, true));
        let modem = fake(
            &[
                ("type", "1\n"),
                ("uevent", "DEVTYPE=wwan\nINTERFACE=wwp0s20\n"),
            ],
            &[],
        );
        assert_eq!(describe(modem.path(), "wwp0s20").kind, Kind::Cellular);

        let eth = fake(&[("type", "1\n"), ("operstate", "down\n")], &[]);
        let i = describe(eth.path(), "eth0");
        assert_eq!((i.kind, i.up), (Kind::Ethernet, false));

        let tun = fake(&[("type", "65534\n"), ("tun_flags", "0x1001\n")], &[]);
        assert_eq!(describe(tun.path(), "tun0").kind, Kind::Tunnel);
        let wg = fake(
            &[("type", "65534\n"), ("uevent", "DEVTYPE=wireguard\n")],
            &[],
        );
        assert_eq!(describe(wg.path(), "wg0").kind, Kind::Tunnel);

        let lo = fake(
            &[
                ("type", "772\n"),
                ("operstate", "unknown\n"),
                ("flags", "0x9\n"),
            ],
            &[],
        );
        assert!(describe(lo.path(), "lo").loopback);
    }

    #[test]
    fn every_interface_with_a_default_route() {
        let v4 = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                  wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\n\
                  wwan0\t00000000\t01020A0A\t0003\t0\t0\t700\t00000000\n\
                  wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\n";
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 eth1\n";
        assert_eq!(default_route_interfaces(v4, v6), ["wlan0", "wwan0", "eth1"]);
    }
}
