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
    let interfaces = nix::ifaddrs::getifaddrs().ok()?;
    for entry in interfaces {
        let (Some(addr), Some(mask)) = (
            entry.address.as_ref().and_then(sockaddr_ip),
            entry.netmask.as_ref().and_then(sockaddr_ip),
        ) else {
            continue;
        };
        if addr == ip {
            return Some(match mask {
                IpAddr::V4(m) => u32::from(m).count_ones(),
                IpAddr::V6(m) => u128::from(m).count_ones(),
            });
        }
    }
    None
}

/// The IP address in an interface's socket address, if it has one.
fn sockaddr_ip(sa: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(sin) = sa.as_sockaddr_in() {
        return Some(IpAddr::V4(sin.ip()));
    }
    sa.as_sockaddr_in6().map(|sin6| IpAddr::V6(sin6.ip()))
}

/// This host's name.
pub fn hostname() -> String {
    match nix::unistd::gethostname() {
        Ok(name) => name.to_string_lossy().into_owned(),
        Err(_) => "localhost".to_string(),
    }
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
