//! The ICMP error that ended a connection attempt, read from the socket's error queue.
//!
//! A refused or unreachable connect tells little through its errno alone: Linux maps an ICMP
//! "communication administratively prohibited" and a plain "host unreachable" to the same
//! `EHOSTUNREACH`, and an ICMP "port unreachable" (what a firewall's default reject sends) to the
//! same `ECONNREFUSED` as a TCP reset. With `IP_RECVERR` / `IPV6_RECVERR` set before the connect,
//! the kernel also queues the ICMP message itself (`sock_extended_err`), and reading it with
//! `MSG_ERRQUEUE` tells a firewall's rejection from a missing route.
//!
//! Linux and Android only; elsewhere [`watch`] does nothing and [`read`] finds nothing, and the
//! caller falls back to the errno.

use std::net::IpAddr;

/// One ICMP (or ICMPv6) error: its type and code, and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub v6: bool,
    pub kind: u8,
    pub code: u8,
    /// The router or host that sent it, where the kernel says.
    pub from: Option<IpAddr>,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use super::Icmp;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::os::fd::{AsRawFd, BorrowedFd};

    const SO_EE_ORIGIN_ICMP: u8 = 2;
    const SO_EE_ORIGIN_ICMP6: u8 = 3;

    fn set(fd: BorrowedFd<'_>, v6: bool, on: bool) -> bool {
        let (level, name) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
        } else {
            (libc::IPPROTO_IP, libc::IP_RECVERR)
        };
        let val: libc::c_int = on.into();
        // SAFETY: a valid descriptor, and a pointer to an int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&val as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    pub fn watch(fd: BorrowedFd<'_>, v6: bool) -> bool {
        set(fd, v6, true)
    }

    pub fn unwatch(fd: BorrowedFd<'_>, v6: bool) {
        let _ = set(fd, v6, false);
    }

    /// The sender's address, which the kernel puts right after the `sock_extended_err`.
    ///
    /// # Safety
    /// `ee` points into a control message of `len` bytes that starts with the error.
    unsafe fn offender(ee: *const libc::sock_extended_err, len: usize) -> Option<IpAddr> {
        let head = std::mem::size_of::<libc::sock_extended_err>();
        // SAFETY: the address follows the error inside the same control message (checked length).
        unsafe {
            let sa = ee.add(1).cast::<libc::sockaddr>();
            let family = libc::c_int::from((*sa).sa_family);
            if family == libc::AF_INET && len >= head + std::mem::size_of::<libc::sockaddr_in>() {
                let sin = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in>());
                return Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            }
            if family == libc::AF_INET6 && len >= head + std::mem::size_of::<libc::sockaddr_in6>() {
                let sin6 = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in6>());
                return Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        None
    }

    pub fn read(fd: BorrowedFd<'_>) -> Option<Icmp> {
        let mut data = [0u8; 256];
        let mut control = [0u64; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let flags = libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT;
        // SAFETY: a valid descriptor and a msghdr whose buffers are ours.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
        if n < 0 {
            return None;
        }
        // SAFETY: walking the control messages the kernel wrote, with the CMSG macros.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                let ours = (c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_RECVERR)
                    || (c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
                let len = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                if ours && len >= std::mem::size_of::<libc::sock_extended_err>() {
                    let ee = libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>();
                    let e = std::ptr::read_unaligned(ee);
                    if e.ee_origin == SO_EE_ORIGIN_ICMP || e.ee_origin == SO_EE_ORIGIN_ICMP6 {
                        return Some(Icmp {
                            v6: e.ee_origin == SO_EE_ORIGIN_ICMP6,
                            kind: e.ee_type,
                            code: e.ee_code,
                            from: offender(ee, len),
                        });
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        None
    }
}

/// Asks the kernel to queue the ICMP errors of this socket. False where it cannot.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn watch(socket: &socket2::Socket, v6: bool) -> bool {
    use std::os::fd::AsFd;
    imp::watch(socket.as_fd(), v6)
}

/// Stops queueing (and drops what is queued): a connected socket keeps the usual behaviour,
/// where a passing ICMP error does not end an established connection.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn unwatch(socket: &socket2::Socket, v6: bool) {
    use std::os::fd::AsFd;
    imp::unwatch(socket.as_fd(), v6)
}

/// The ICMP error queued on this socket, if any.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn read(socket: &socket2::Socket) -> Option<Icmp> {
    use std::os::fd::AsFd;
    imp::read(socket.as_fd())
}

/// Elsewhere: nothing is queued, and the errno is all there is.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn watch(_socket: &socket2::Socket, _v6: bool) -> bool {
    false
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn unwatch(_socket: &socket2::Socket, _v6: bool) {}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn read(_socket: &socket2::Socket) -> Option<Icmp> {
    None
}
