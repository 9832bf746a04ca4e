//! Binding sockets: multicast group joins (IPv4/IPv6, per interface), TCP
//! listening sockets. The only module that sets socket options.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Index of a network interface by name.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    let idx = if_nametoindex(&c);
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named '{name}'"),
        ));
    }
    Ok(idx)
}

#[allow(unsafe_code)]
fn if_nametoindex(name: &std::ffi::CStr) -> u32 {
    // SAFETY: `name` is a valid NUL-terminated string for the whole call.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

#[allow(unsafe_code)]
fn set_int_opt(sock: &Socket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the pointer and length describe a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A UDP socket bound to `group:port` that has joined `group` on
/// `interface` (by name), or on the interface the kernel routes the group
/// to when none is given. Only datagrams sent to the group arrive (unlike
/// the classic daemon, which also took unicast), and only for joins made
/// by this socket.
pub fn multicast_socket(
    group: IpAddr,
    port: u16,
    interface: Option<&str>,
) -> io::Result<std::net::UdpSocket> {
    if !group.is_multicast() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{group} is not a multicast address"),
        ));
    }
    let ifindex = interface.map(interface_index).transpose()?;
    let sock = match group {
        IpAddr::V4(g) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_reuse_address(true)?;
            s.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(g), port)))?;
            match ifindex {
                Some(i) => s.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(i))?,
                None => s.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED)?,
            }
            set_int_opt(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)?;
            s
        }
        IpAddr::V6(g) => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_only_v6(true)?;
            s.set_reuse_address(true)?;
            s.bind(&SockAddr::from(SocketAddr::new(IpAddr::V6(g), port)))?;
            s.join_multicast_v6(&g, ifindex.unwrap_or(0))?;
            set_int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL, 0)?;
            s
        }
    };
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// A listening TCP socket (IPv6 sockets are v6-only, so an IPv4 and an IPv6
/// listener may share a port).
pub fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&SockAddr::from(addr))?;
    s.listen(128)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The text used to identify a requester in `groups` and logs: IPv4-mapped
/// IPv6 addresses are shown as IPv4.
pub fn requester_id(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Whether two addresses are the same host address (mapped forms equal).
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let norm = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    norm(a) == norm(b)
}

/// The unspecified address of a family.
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}
