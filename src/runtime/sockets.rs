//! Opening the UDP socket and TCP listener that memberlist serves on one shared address.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// memberlist's `udpRecvBufSize`: gossip bursts must not overflow the kernel's default buffer.
const UDP_RECV_BUFFER: usize = 2 * 1024 * 1024;
/// How many free UDP ports to try when the matching TCP port turns out to be taken.
const BIND_ATTEMPTS: usize = 10;
/// Pending connections the kernel may queue; Go listens with the system maximum.
const LISTEN_BACKLOG: i32 = 1024;

/// A bound UDP socket and TCP listener on the same IP and port, both non-blocking, ready for
/// [`Runtime::spawn`](super::Runtime::spawn).
#[derive(Debug)]
pub struct Sockets {
    pub(crate) udp: UdpSocket,
    pub(crate) tcp: TcpListener,
    local_addr: SocketAddr,
}

impl Sockets {
    /// The address both sockets are bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// Binds UDP and TCP on `addr`. Port 0 picks a port free for both: the OS chooses a UDP port
/// and TCP takes the same one; if another process holds that TCP port, a new UDP port is tried
/// (a bounded number of times).
pub fn bind(addr: SocketAddr) -> io::Result<Sockets> {
    if addr.port() != 0 {
        let udp = bind_udp(addr)?;
        let tcp = bind_tcp(addr)?;
        let local_addr = udp.local_addr()?;
        return Ok(Sockets {
            udp,
            tcp,
            local_addr,
        });
    }
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = bind_udp(addr)?;
        let local_addr = udp.local_addr()?;
        match bind_tcp(local_addr) {
            Ok(tcp) => {
                return Ok(Sockets {
                    udp,
                    tcp,
                    local_addr,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

fn new_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // An IPv6 address means IPv6 only, as Go binds it; dual-stack would also answer IPv4
        // peers on a socket that advertises an IPv6 address.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    set_recv_buffer(&socket);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Best effort, halving on refusal as memberlist's `setUDPRecvBuf` does (Linux silently caps
/// the size at `net.core.rmem_max` instead of refusing).
fn set_recv_buffer(socket: &Socket) {
    let mut size = UDP_RECV_BUFFER;
    while size > 0 && socket.set_recv_buffer_size(size).is_err() {
        size /= 2;
    }
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    // Restarting a node must not wait for its old connections' TIME_WAIT to expire.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn port_zero_binds_udp_and_tcp_to_the_same_port() {
        let s = bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).unwrap();
        let addr = s.local_addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(s.udp.local_addr().unwrap(), addr);
        assert_eq!(s.tcp.local_addr().unwrap(), addr);
    }

    #[test]
    fn a_taken_explicit_port_is_an_error() {
        let s = bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).unwrap();
        let err = bind(s.local_addr()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
