//! What only the operating system can tell, one module per concern, each with the Linux
//! implementation behind `cfg` and a portable fallback, so a macOS, Windows or Android build
//! needs no change elsewhere: the probes and commands call these and never read `/proc`, `/sys`
//! or call a system-specific API themselves.
//!
//! - [`routes`]: the kernel's routing tables (which interfaces carry a default route);
//! - [`route`]: the interface the kernel routes traffic to one address through;
//! - [`processes`]: the program driving a tunnel interface, and the programs running;
//! - [`links`]: the network interfaces that are up, with their link type;
//! - [`icmp`]: the ICMP error that ended a connection attempt (the socket's error queue);
//! - [`fs`]: free and total space of the filesystem holding a path (statvfs);
//! - [`limits`]: this process's limit on open files (getrlimit/setrlimit);
//! - [`memory`]: this process's resident memory;
//! - [`proxy`]: the system's proxy settings on macOS and Windows.
//!
//! The interface binding of `--interface` (`SO_BINDTODEVICE`, in `iface.rs`) and the sysfs
//! description of an interface's kind stay with `iface.rs`, which already refuses them off Linux.

pub mod fs;
pub mod icmp;
pub mod limits;
pub mod links;
pub mod memory;
pub mod processes;
pub mod proxy;
pub mod route;
pub mod routes;
