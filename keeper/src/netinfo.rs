//! Host and network facts: the address this host uses to reach another, the network (CIDR)
//! that address belongs to, and the host name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};

use fsm::vocab::Cidr;

/// The local IP address the kernel would use to reach `host`:`port` (no packet is sent).
pub fn local_ip_towards(host: &str, port: u16) -> Option<IpAddr> {
    let target: SocketAddr = (host, port).to_socket_addrs().ok()?.next()?;
    let bind: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// The network of the interface holding `ip`, as a CIDR (`10.0.0.0/24`); a host mask when no
/// interface has it.
pub fn network_of(ip: IpAddr) -> Cidr {
    let host_mask = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix = interface_prefix(ip).unwrap_or(host_mask);
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            Cidr {
                addr: IpAddr::V4(Ipv4Addr::from(bits & mask)),
                prefix: prefix as u8,
            }
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            Cidr {
                addr: IpAddr::V6(Ipv6Addr::from(bits & mask)),
                prefix: prefix as u8,
            }
        }
    }
}

/// The prefix length of the interface address equal to `ip`.
fn interface_prefix(ip: IpAddr) -> Option<u32> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, released by freeifaddrs below
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list getifaddrs returned
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_addr.is_null() || entry.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: non-null sockaddr pointers from getifaddrs, read by their family
        let (addr, mask) = unsafe { (sockaddr_ip(entry.ifa_addr), sockaddr_ip(entry.ifa_netmask)) };
        if let (Some(addr), Some(mask)) = (addr, mask)
            && addr == ip
        {
            found = Some(match mask {
                IpAddr::V4(m) => u32::from(m).count_ones(),
                IpAddr::V6(m) => u128::from(m).count_ones(),
            });
            break;
        }
    }
    // SAFETY: the list from getifaddrs, freed once
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The IP address in a sockaddr.
///
/// # Safety
/// `sa` must point to a valid sockaddr of the family it declares.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller guarantees sa is valid
    let family = i32::from(unsafe { (*sa).sa_family });
    match family {
        libc::AF_INET => {
            // SAFETY: family says this is a sockaddr_in
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: family says this is a sockaddr_in6
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// This host's name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A default host name for a node: the address used to reach `monitor_host` when known,
/// else the host name.
pub fn default_node_hostname(monitor_host: Option<(&str, u16)>) -> String {
    monitor_host
        .and_then(|(h, p)| local_ip_towards(h, p))
        .map(|ip| ip.to_string())
        .unwrap_or_else(hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_reached_from_loopback_and_its_network_is_found() {
        let ip = local_ip_towards("127.0.0.1", 5432).expect("route to loopback");
        assert!(ip.is_loopback());
        assert_eq!(
            network_of("127.0.0.1".parse().expect("ip")).to_string(),
            "127.0.0.0/8"
        );
    }

    #[test]
    fn an_address_of_no_interface_gets_a_host_mask() {
        assert_eq!(
            network_of("192.0.2.77".parse().expect("ip")).to_string(),
            "192.0.2.77/32"
        );
    }

    #[test]
    fn the_host_name_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
