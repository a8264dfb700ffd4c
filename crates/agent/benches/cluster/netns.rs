//! The network namespace of a run (loopback only) and the thread that counts, with an
//! `AF_PACKET` socket, the gossip packets and bytes every agent address sends from port 7946.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::GOSSIP_PORT;

#[derive(Default, Clone, Copy)]
pub(crate) struct Counter {
    pub(crate) udp_pkts: u64,
    pub(crate) udp_bytes: u64,
    pub(crate) tcp_bytes: u64,
}

type Counters = Arc<Mutex<HashMap<[u8; 4], Counter>>>;

/// A private network namespace (only `lo`, brought up) and a thread counting the gossip packets
/// sent inside it. Dropping it stops the thread; the namespace disappears with its last process.
pub(crate) struct NetNs {
    fd: RawFd,
    stop: Arc<AtomicBool>,
    counters: Counters,
    pub(crate) drops: Arc<Mutex<u64>>,
    thread: Option<thread::JoinHandle<()>>,
}

const SOL_PACKET: libc::c_int = 263;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_OUTGOING: u8 = 4;

impl NetNs {
    pub(crate) fn create() -> Result<NetNs, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters: Counters = Arc::default();
        let drops = Arc::new(Mutex::new(0u64));
        let (tx, rx) = std::sync::mpsc::channel::<Result<RawFd, String>>();
        let (s2, c2, d2) = (stop.clone(), counters.clone(), drops.clone());
        let thread = thread::spawn(move || capture_thread(tx, s2, c2, d2));
        let fd = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err("namespace thread did not answer".into()),
        };
        let ns = NetNs {
            fd,
            stop,
            counters,
            drops,
            thread: Some(thread),
        };
        let st = ns
            .command(Path::new("ip"))
            .args(["link", "set", "lo", "up"])
            .status()
            .map_err(|e| format!("ip link: {e}"))?;
        if !st.success() {
            return Err("ip link set lo up failed".into());
        }
        Ok(ns)
    }

    /// A command that runs inside the namespace.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        let fd = self.fd;
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    pub(crate) fn snapshot(&self) -> HashMap<[u8; 4], Counter> {
        self.counters.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        unsafe {
            libc::close(self.fd);
        }
    }
}

fn capture_thread(
    tx: std::sync::mpsc::Sender<Result<RawFd, String>>,
    stop: Arc<AtomicBool>,
    counters: Counters,
    drops: Arc<Mutex<u64>>,
) {
    // SAFETY: plain syscalls on this thread; unshare(CLONE_NEWNET) moves only this thread.
    let sock = unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            let _ = tx.send(Err(format!(
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            )));
            return;
        }
        let path = format!("/proc/self/task/{}/ns/net\0", libc::gettid());
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            let _ = tx.send(Err(format!(
                "open netns: {}",
                std::io::Error::last_os_error()
            )));
            return;
        }
        let sock = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        );
        if sock < 0 {
            let _ = tx.send(Err(format!(
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            )));
            libc::close(fd);
            return;
        }
        let buf: libc::c_int = 16 << 20;
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&buf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let _ = tx.send(Ok(fd));
        sock
    };
    let mut buf = [0u8; 128];
    while !stop.load(Ordering::Relaxed) {
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut alen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let n = unsafe {
            libc::recvfrom(
                sock,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut addr as *mut libc::sockaddr_ll).cast(),
                &mut alen,
            )
        };
        // Only ETH_P_ALL taps see transmitted packets; keep the outgoing IPv4 ones.
        if n < 20
            || addr.sll_pkttype != PACKET_OUTGOING
            || addr.sll_protocol != (libc::ETH_P_IP as u16).to_be()
        {
            continue;
        }
        let got = std::cmp::min(n as usize, buf.len());
        let p = &buf[..got];
        if p[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let proto = p[9];
        let src = [p[12], p[13], p[14], p[15]];
        if got < ihl + 14 {
            continue;
        }
        let sport = u16::from_be_bytes([p[ihl], p[ihl + 1]]);
        if sport != GOSSIP_PORT {
            continue;
        }
        let mut m = match counters.lock() {
            Ok(m) => m,
            Err(_) => break,
        };
        let c = m.entry(src).or_default();
        if proto == 17 {
            let ulen = usize::from(u16::from_be_bytes([p[ihl + 4], p[ihl + 5]]));
            c.udp_pkts += 1;
            c.udp_bytes += ulen.saturating_sub(8) as u64;
        } else if proto == 6 {
            let doff = usize::from(p[ihl + 12] >> 4) * 4;
            c.tcp_bytes += total.saturating_sub(ihl + doff) as u64;
        }
    }
    let mut st = [0u32; 2];
    let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
    unsafe {
        if libc::getsockopt(
            sock,
            SOL_PACKET,
            PACKET_STATISTICS,
            st.as_mut_ptr().cast(),
            &mut len,
        ) == 0
        {
            if let Ok(mut d) = drops.lock() {
                *d += u64::from(st[1]);
            }
        }
        libc::close(sock);
    }
}
