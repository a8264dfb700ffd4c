//! Go's standard-library behaviour where its error texts reach the user: HashiCorp's agent and
//! CLI print `encoding/base64`, `net` and `os` errors as they are, so scripts (and people) see
//! e.g. `illegal base64 data at input byte 9` or `lookup x on 10.0.0.53:53: no such host`. The
//! functions here parse as Go parses and fail with Go's words.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// `base64.StdEncoding.DecodeString`: padding required, `\r` and `\n` skipped anywhere, and
/// (unlike the `base64` crate) non-zero trailing bits accepted. The error is Go's
/// `CorruptInputError`: the offset of the first byte that cannot be decoded.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let src = text.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let (next, done) =
            decode_quantum(src, si, &mut out).map_err(|at| corrupt_input(at as u64))?;
        si = next;
        if done {
            break;
        }
    }
    Ok(out)
}

/// Go's `CorruptInputError` text.
fn corrupt_input(at: u64) -> String {
    format!("illegal base64 data at input byte {at}")
}

fn decode_symbol(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// One quantum of Go's `decodeQuantum` (standard alphabet, `=` padding, not strict): appends
/// its bytes; returns where the next starts and whether padding ended the input. `Err` is the
/// offset Go reports.
fn decode_quantum(src: &[u8], mut si: usize, out: &mut Vec<u8>) -> Result<(usize, bool), usize> {
    let newline = |b: u8| b == b'\n' || b == b'\r';
    let mut buf = [0u8; 4];
    let mut len = 4;
    let mut padded = false;
    let mut j = 0;
    while j < 4 {
        if si == src.len() {
            if j == 0 {
                return Ok((si, true));
            }
            // Padding is required: a short final quantum is an error at its start.
            return Err(si - j);
        }
        let byte = src[si];
        si += 1;
        if let Some(v) = decode_symbol(byte) {
            buf[j] = v;
            j += 1;
            continue;
        }
        if newline(byte) {
            continue;
        }
        if byte != b'=' {
            return Err(si - 1);
        }
        // Padding: only after two or three symbols.
        match j {
            0 | 1 => return Err(si - 1),
            2 => {
                while si < src.len() && newline(src[si]) {
                    si += 1;
                }
                if si == src.len() {
                    return Err(src.len());
                }
                if src[si] != b'=' {
                    return Err(si - 1);
                }
                si += 1;
            }
            _ => {}
        }
        while si < src.len() && newline(src[si]) {
            si += 1;
        }
        if si < src.len() {
            // Something follows the padding.
            return Err(si);
        }
        len = j;
        padded = true;
        break;
    }
    let value = (u32::from(buf[0]) << 18)
        | (u32::from(buf[1]) << 12)
        | (u32::from(buf[2]) << 6)
        | u32::from(buf[3]);
    let bytes = [(value >> 16) as u8, (value >> 8) as u8, value as u8];
    out.extend_from_slice(&bytes[..len - 1]);
    Ok((si, padded))
}

/// Go's `net.AddrError` text: `address <addr>: <why>`, or just `<why>` without an address.
fn addr_error(addr: &str, why: &str) -> String {
    if addr.is_empty() {
        why.to_string()
    } else {
        format!("address {addr}: {why}")
    }
}

/// Go's `net.SplitHostPort`, failing with its `AddrError` text.
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    const MISSING_PORT: &str = "missing port in address";
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let fail = |why: &str| Err(addr_error(hostport, why));
    let Some(i) = hostport.rfind(':') else {
        return fail(MISSING_PORT);
    };
    let (host, j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return fail("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return fail(MISSING_PORT);
        } else if end + 1 != i {
            return if hostport.as_bytes()[end + 1] == b':' {
                fail(TOO_MANY_COLONS)
            } else {
                fail(MISSING_PORT)
            };
        }
        host = &hostport[1..end];
        (j, k) = (1, end + 1);
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return fail(TOO_MANY_COLONS);
        }
        (j, k) = (0, 0);
    }
    if hostport[j..].contains('[') {
        return fail("unexpected '[' in address");
    }
    if hostport[k..].contains(']') {
        return fail("unexpected ']' in address");
    }
    Ok((host, &hostport[i + 1..]))
}

/// Go's `net.LookupPort("tcp", service)`: a number (sign allowed) in range, else a service name
/// from the system's services database.
pub fn lookup_port(service: &str) -> Result<u16, String> {
    let port = match parse_port(service) {
        Some(port) => port,
        None => return service_port(service),
    };
    u16::try_from(port).map_err(|_| addr_error(service, "invalid port"))
}

/// Go's `parsePort`: `None` when the text is not a number (a service name to look up); numbers
/// saturate, as Go's do, so that any out-of-range value is rejected by the range check.
fn parse_port(service: &str) -> Option<i64> {
    if service.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match service.as_bytes()[0] {
        b'+' => (false, &service[1..]),
        b'-' => (true, &service[1..]),
        _ => (false, service),
    };
    let mut n: i64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(10)?;
        n = n
            .saturating_mul(10)
            .saturating_add(i64::from(d))
            .min(1 << 30);
    }
    Some(if negative { -n } else { n })
}

/// A named TCP service from the services database, or Go's `unknown port` error.
fn service_port(service: &str) -> Result<u16, String> {
    let unknown = || format!("lookup tcp/{service}: unknown port");
    let name = std::ffi::CString::new(service.to_ascii_lowercase()).map_err(|_| unknown())?;
    // SAFETY: both arguments are NUL-terminated strings; the entry returned (static storage of
    // the C library) is read at once, before any other call could reuse it.
    let port = unsafe {
        let entry = libc::getservbyname(name.as_ptr(), c"tcp".as_ptr());
        if entry.is_null() {
            return Err(unknown());
        }
        (*entry).s_port
    };
    Ok(u16::from_be(port as u16))
}

/// Go's `net.LookupIP` for the agent's purposes: literals as they are, then the system resolver
/// (hosts file, DNS). Failures read as Go's `DNSError`, naming the name server Go's resolver
/// would have asked when DNS was consulted.
pub fn lookup_host(host: &str) -> Result<Vec<IpAddr>, String> {
    if host.is_empty() {
        return Err("lookup : no such host".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    // Go never asks the system about a name that is not a domain name (the C library would
    // read `1234` or `127.1` as an IPv4 address).
    if !is_domain_name(host) {
        return Err(dns_error(host, "no such host"));
    }
    let found = (host, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>());
    match found {
        Ok(ips) if !ips.is_empty() => Ok(ips),
        Ok(_) => Err(dns_error(host, "no such host")),
        Err(e) => {
            let temporary = e.to_string().contains("Temporary failure");
            Err(dns_error(
                host,
                if temporary {
                    "server misbehaving"
                } else {
                    "no such host"
                },
            ))
        }
    }
}

/// Go's `DNSError` text. Go does not send a name that is not a valid domain name to a server,
/// so those errors name none.
fn dns_error(host: &str, why: &str) -> String {
    if is_domain_name(host) {
        format!("lookup {host} on {}: {why}", name_server())
    } else {
        format!("lookup {host}: {why}")
    }
}

/// The first name server of `/etc/resolv.conf` as `ip:53`, or Go's default (`127.0.0.1:53`).
fn name_server() -> String {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    conf.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .find_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53).to_string())
        .unwrap_or_else(|| "127.0.0.1:53".to_string())
}

/// Go's `isDomainName`: what its resolver is willing to look up.
fn is_domain_name(s: &str) -> bool {
    if s == "." {
        return true;
    }
    if s.is_empty() || s.len() > 254 || (s.len() == 254 && !s.ends_with('.')) {
        return false;
    }
    let mut last = b'.';
    let mut non_numeric = false;
    let mut part_len = 0;
    for &c in s.as_bytes() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                non_numeric = true;
                part_len += 1;
            }
            b'0'..=b'9' => part_len += 1,
            b'-' => {
                if last == b'.' {
                    return false;
                }
                part_len += 1;
                non_numeric = true;
            }
            b'.' => {
                if last == b'.' || last == b'-' || part_len > 63 {
                    return false;
                }
                part_len = 0;
            }
            _ => return false,
        }
        last = c;
    }
    !(last == b'-' || part_len > 63) && non_numeric
}

/// Go's `net.ResolveTCPAddr("tcp", addr)`: an IPv4 address preferred unless the host is a
/// bracketed literal. An empty host gives no IP (`None`).
pub fn resolve_tcp_addr(addr: &str) -> Result<(Option<IpAddr>, u16), String> {
    let (host, port) = split_host_port(addr)?;
    let port = lookup_port(port)?;
    if host.is_empty() {
        return Ok((None, port));
    }
    let ips = lookup_host(host)?;
    let ip = if addr.contains('[') {
        ips.iter().find(|ip| ip.is_ipv6())
    } else {
        ips.iter().find(|ip| ip.is_ipv4())
    }
    .or(ips.first())
    .copied();
    Ok((ip, port))
}

/// A `TCPAddr` as Go prints it: `ip:port`, `[ipv6]:port`, or `:port` without an IP.
pub fn tcp_addr_string(ip: Option<IpAddr>, port: u16) -> String {
    match ip {
        Some(ip) => SocketAddr::new(ip, port).to_string(),
        None => format!(":{port}"),
    }
}

/// Go's `net.Listen("tcp", addr)`, failing with its `OpError` text.
pub fn listen_tcp(addr: &str) -> Result<std::net::TcpListener, String> {
    let (ip, port) = resolve_tcp_addr(addr).map_err(|e| format!("listen tcp: {e}"))?;
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    std::net::TcpListener::bind(SocketAddr::new(ip, port)).map_err(|e| {
        format!(
            "listen tcp {}: bind: {}",
            tcp_addr_string(Some(ip), port),
            errno_text(&e)
        )
    })
}

/// memberlist's `resolveAddr`, for a join: an optional `name/` prefix, the port defaulting to
/// the local bind port, then an IP literal or every address the name resolves to.
pub fn resolve_join_addr(
    addr: &str,
    default_port: u16,
) -> Result<(Option<&str>, Vec<SocketAddr>), String> {
    let (name, host_port) = match addr.find('/') {
        Some(0) => return Err("empty node name provided".into()),
        Some(i) => (Some(&addr[..i]), &addr[i + 1..]),
        None => (None, addr),
    };
    let with_port = if has_port(host_port) {
        host_port.to_string()
    } else {
        join_host_port(
            host_port.trim_matches(|c| c == '[' || c == ']'),
            default_port,
        )
    };
    let (host, port) = split_host_port(&with_port)?;
    let port = parse_uint16(port)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((name, vec![SocketAddr::new(ip, port)]));
    }
    let ips = lookup_host(host)?;
    Ok((
        name,
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    ))
}

/// memberlist's `hasPort`.
fn has_port(s: &str) -> bool {
    if s.rfind('[') == Some(0) {
        return s.rfind(':') > s.rfind(']');
    }
    s.matches(':').count() == 1
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `strconv.ParseUint(s, 10, 16)` with its `NumError` text.
fn parse_uint16(s: &str) -> Result<u16, String> {
    let fail = |why: &str| Err(format!("strconv.ParseUint: parsing {s:?}: {why}"));
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return fail("invalid syntax");
    }
    match s.parse::<u16>() {
        Ok(port) => Ok(port),
        Err(_) => fail("value out of range"),
    }
}

/// An OS error as Go's `syscall.Errno` words it: lower-case, no error number.
pub fn errno_text(e: &io::Error) -> String {
    errno_words(&e.to_string())
}

/// [`errno_text`] for an `io::Error` already turned into text (`Connection refused (os error
/// 111)` becomes `connection refused`).
pub fn errno_words(text: &str) -> String {
    let text = text.rfind(" (os error ").map_or(text, |i| &text[..i]);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A failed file operation as Go's `os.PathError` prints it: `<op> <path>: <errno text>`.
pub fn path_error(op: &str, path: &str, e: &io::Error) -> String {
    format!("{op} {path}: {}", errno_text(e))
}

/// Go's `os.ReadFile`: an error names the step that failed (`open <path>: …` or
/// `read <path>: is a directory`).
pub fn read_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| path_error("open", path, &e))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| path_error("read", path, &e))?;
    Ok(data)
}

/// HashiCorp's `go-multierror` list: `1 error occurred:\n\t* …\n\n`.
pub fn multierror(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    if errors.len() == 1 {
        format!("1 error occurred:\n\t{}\n\n", points[0])
    } else {
        format!(
            "{} errors occurred:\n\t{}\n\n",
            errors.len(),
            points.join("\n\t")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_as_go_does() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YW\nJj\r\n").unwrap(), b"abc");
        // Non-zero trailing bits are accepted (Go's encodings are not strict).
        assert_eq!(base64_decode("YR==").unwrap(), b"a");
        assert_eq!(base64_decode("ab==").unwrap().len(), 1);
    }

    #[test]
    fn base64_errors_name_the_byte_go_names() {
        for (given, byte) in [
            ("abcdefghi!jkl", 9),
            ("abc", 0),
            ("abcde", 4),
            ("abcdef", 4),
            ("abcd=", 4),
            ("a===", 1),
            ("ab=", 3),
            ("ab=x", 2),
            ("abc=d", 4),
            ("=abc", 0),
        ] {
            let error = format!("illegal base64 data at input byte {byte}");
            assert_eq!(base64_decode(given).unwrap_err(), error, "{given:?}");
        }
    }

    #[test]
    fn host_port_splitting_follows_go() {
        assert_eq!(split_host_port("127.0.0.1:7373"), Ok(("127.0.0.1", "7373")));
        assert_eq!(split_host_port("[::1]:7373"), Ok(("::1", "7373")));
        assert_eq!(split_host_port(":7373"), Ok(("", "7373")));
        assert_eq!(split_host_port(":"), Ok(("", "")));
        let err = |s: &str| split_host_port(s).unwrap_err();
        for (given, error) in [
            ("127.0.0.1", "address 127.0.0.1: missing port in address"),
            ("::1:7373", "address ::1:7373: too many colons in address"),
            ("[::1]", "address [::1]: missing port in address"),
            ("[::1", "address [::1: missing ']' in address"),
            ("[::1]:1:2", "address [::1]:1:2: too many colons in address"),
            ("a[b:1", "address a[b:1: unexpected '[' in address"),
            ("", "missing port in address"),
        ] {
            assert_eq!(err(given), error, "{given:?}");
        }
    }

    #[test]
    fn ports_parse_as_go_parses_them() {
        assert_eq!(lookup_port("7946"), Ok(7946));
        assert_eq!(lookup_port("+80"), Ok(80));
        assert_eq!(lookup_port(""), Ok(0));
        for (given, error) in [
            ("99999", "address 99999: invalid port"),
            ("-1", "address -1: invalid port"),
            (
                "99999999999999999999999",
                "address 99999999999999999999999: invalid port",
            ),
            (
                "no-such-service",
                "lookup tcp/no-such-service: unknown port",
            ),
        ] {
            assert_eq!(lookup_port(given).unwrap_err(), error, "{given:?}");
        }
    }

    #[test]
    fn names_go_will_not_look_up_name_no_server() {
        assert!(is_domain_name("example.com"));
        assert!(is_domain_name("under_score"));
        assert!(!is_domain_name("bad!host"));
        assert!(!is_domain_name("-x"));
        assert!(!is_domain_name("1234"));
        assert_eq!(
            lookup_host("bad!host").unwrap_err(),
            "lookup bad!host: no such host"
        );
        assert_eq!(lookup_host("").unwrap_err(), "lookup : no such host");
        assert_eq!(
            resolve_tcp_addr("127.0.0.1:x").unwrap_err(),
            "lookup tcp/x: unknown port"
        );
        assert_eq!(
            resolve_tcp_addr("[::1]:5").unwrap(),
            (Some("::1".parse().unwrap()), 5)
        );
        assert_eq!(resolve_tcp_addr(":5").unwrap(), (None, 5));
    }

    #[test]
    fn multierror_lists_like_hashicorps() {
        assert_eq!(multierror(&["a".into()]), "1 error occurred:\n\t* a\n\n");
        assert_eq!(
            multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }
}
