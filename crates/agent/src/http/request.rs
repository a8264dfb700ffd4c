//! One HTTP/1.1 exchange as the view needs it: the request head parsed by `httparse` (a
//! request has no body we read), and an answer written whole with `Connection: close`.

use super::{MAX_BODY, MAX_HEAD, MAX_URL};

/// The most header lines a request may carry.
const MAX_HEADERS: usize = 64;

/// A request head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path and query, as sent.
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the bytes received so far make of a request.
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    Complete(Request),
    /// The request is refused with this status (400 malformed, 413 too large).
    Refused(u16),
}

/// Parses the head of the request in `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Parsed::Refused(413),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Refused(413),
        Err(_) => Parsed::Refused(400),
        Ok(httparse::Status::Complete(_)) => {
            let url = req.path.unwrap_or("/").to_string();
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let body = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if url.len() > MAX_URL || body > MAX_BODY {
                return Parsed::Refused(413);
            }
            Parsed::Complete(Request {
                method: req.method.unwrap_or("").to_string(),
                url,
                headers,
            })
        }
    }
}

/// A whole answer: status line, headers, body; the connection closes after it.
pub fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = head(status, headers);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// The head of an answer whose body runs until the connection closes (an event stream).
pub fn open_ended(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = head(200, headers);
    out.extend_from_slice(b"\r\n");
    out
}

fn head(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n");
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_arrives_in_pieces_and_its_sizes_are_bounded() {
        let full =
            b"GET /v1/members?status=alive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n";
        assert!(matches!(parse(&full[..20]), Parsed::Partial));
        let Parsed::Complete(r) = parse(full) else {
            panic!("a whole head")
        };
        assert_eq!(
            (r.method.as_str(), r.url.as_str()),
            ("GET", "/v1/members?status=alive")
        );
        assert_eq!(r.header("authorization"), Some("Bearer t"));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URL));
        assert!(matches!(parse(long.as_bytes()), Parsed::Refused(413)));
        let body = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(parse(body.as_bytes()), Parsed::Refused(413)));
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(MAX_HEAD));
        assert!(matches!(parse(endless.as_bytes()), Parsed::Refused(413)));
        assert!(matches!(
            parse(b"\x00\x01garbage\r\n\r\n"),
            Parsed::Refused(400)
        ));
    }

    #[test]
    fn answers_carry_their_length_and_close() {
        let a = answer(404, &[("Content-Type", "text/plain")], b"no\n");
        assert_eq!(
            String::from_utf8(a).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\
             Content-Length: 3\r\n\r\nno\n"
        );
    }
}
