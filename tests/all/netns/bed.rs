//! A test bed: a client namespace and a server namespace joined only by a [`DelayLine`].
//!
//! ```text
//!  client ns "nc-<pid>-<n>-c"              server ns "nc-<pid>-<n>-s"
//!  tun0 10.213.0.1/24, fd00:213::1/64       tun0 10.213.0.2/24, fd00:213::2/64
//!        └──────────── delay line (this process) ────────────┘
//! ```
//!
//! The client namespace has loopback and its TUN device and no other interface or route, so
//! nothing the client sends can leave it except through the line, and the line only delivers
//! to the server namespace. The addresses exist only inside these two namespaces.
//!
//! This file depends on nothing of the test harness, so a benchmark can reuse it.

use super::delayline::{DelayLine, Shaping, Stats, Tun};
use super::ns::Netns;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 1);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 2);

/// Two namespaces and the line between them; dropping it stops the line (removing both TUN
/// devices) and then removes the namespaces.
pub struct Testbed {
    // Field order is drop order: the line first, then the namespaces.
    line: DelayLine,
    pub client: Netns,
    pub server: Netns,
}

impl Testbed {
    pub fn new(shaping: Shaping) -> io::Result<Testbed> {
        let client = Netns::create("c")?;
        let server = Netns::create("s")?;
        let ctun = client.enter(|| Tun::create("tun0"))??;
        let stun = server.enter(|| Tun::create("tun0"))??;
        configure(&client, ctun.name(), CLIENT_V4, CLIENT_V6)?;
        configure(&server, stun.name(), SERVER_V4, SERVER_V6)?;
        let line = DelayLine::start(ctun, stun, shaping)?;
        Ok(Testbed {
            line,
            client,
            server,
        })
    }

    /// Checks that the client namespace can reach nothing but the line: its only interfaces
    /// are loopback and the TUN device, and every route goes through one of them.
    pub fn check_isolated(&self) -> io::Result<()> {
        let links = self.client.ip(&["-o", "link", "show"])?;
        for line in links.lines() {
            let dev = line.split(':').nth(1).map(str::trim).unwrap_or("");
            if dev != "lo" && dev != "tun0" {
                return Err(io::Error::other(format!(
                    "client namespace has an interface {dev:?}"
                )));
            }
        }
        for family in ["-4", "-6"] {
            let routes = self.client.ip(&[family, "route", "show", "table", "all"])?;
            for route in routes.lines() {
                let dev = route
                    .split_whitespace()
                    .skip_while(|w| *w != "dev")
                    .nth(1)
                    .unwrap_or("");
                if dev != "lo" && dev != "tun0" {
                    return Err(io::Error::other(format!(
                        "client namespace has a route not via the line: {route}"
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn line(&self) -> &DelayLine {
        &self.line
    }

    pub fn set(&self, shaping: Shaping) {
        self.line.set(shaping);
    }

    pub fn stats(&self) -> Stats {
        self.line.stats()
    }

    /// The server's address of this family.
    pub fn server_ip(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(SERVER_V6)
        } else {
            IpAddr::V4(SERVER_V4)
        }
    }
}

fn configure(ns: &Netns, dev: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> io::Result<()> {
    // No router solicitations or autoconfiguration noise on the line.
    ns.ip(&["link", "set", dev, "addrgenmode", "none"])?;
    ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev])?;
    ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"])?;
    ns.ip(&["link", "set", dev, "up"])?;
    Ok(())
}
