//! Framing of the agent RPC protocol: a TCP stream carries msgpack objects back to back, with no
//! length prefix, so a reader must decode to know where an object ends. Shared by the RPC server
//! and the CLI's client.

use std::io::{self, Read, Write};

use thiserror::Error;

use serf::api::wire::msgpack::GoString;
use serf::api::wire::msgpack::{self, Decoder, Dialect, Encoder, Field};
use serf::api::wire::rpc::{RequestHeader, ResponseHeader};
use serf::api::wire::DecodeError;

/// The largest single object accepted. The biggest legitimate ones are member lists of large
/// clusters (a few hundred bytes per member); anything beyond this is hostile or corrupt.
pub const MAX_OBJECT: usize = 16 << 20;

/// Why an object could not be read.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("malformed msgpack: {0}")]
    Malformed(DecodeError),
    #[error("object larger than {MAX_OBJECT} bytes")]
    TooLarge,
}

/// Reads whole msgpack objects from a byte stream, buffering partial ones.
pub struct ObjectReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
}

impl<R: Read> ObjectReader<R> {
    pub fn new(inner: R) -> Self {
        ObjectReader {
            inner,
            buf: Vec::with_capacity(4096),
            start: 0,
        }
    }

    /// The underlying stream (to set timeouts or shut it down).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads the next object as `T`. Unknown map keys are skipped, as Go's decoder does.
    pub fn read<T: Field>(&mut self) -> Result<T, FrameError> {
        self.next_with(T::decode)
    }

    /// Reads and discards the next object, whatever its shape.
    pub fn skip(&mut self) -> Result<(), FrameError> {
        self.next_with(|dec| dec.skip())
    }

    fn next_with<T>(
        &mut self,
        mut decode: impl FnMut(&mut Decoder<'_>) -> serf::api::wire::DecodeResult<T>,
    ) -> Result<T, FrameError> {
        loop {
            if let Some((value, _)) = self.buffered(&mut decode)? {
                return Ok(value);
            }
            self.fill()?;
        }
    }

    /// Decodes the next object from what is already buffered, without reading: `None` while
    /// it has not all arrived. On success the object's bytes are consumed and returned too.
    pub fn buffered<T>(
        &mut self,
        decode: impl FnOnce(&mut Decoder<'_>) -> serf::api::wire::DecodeResult<T>,
    ) -> Result<Option<(T, &[u8])>, FrameError> {
        if self.start == self.buf.len() {
            return Ok(None);
        }
        let mut dec = Decoder::new(&self.buf[self.start..]);
        match decode(&mut dec) {
            Ok(value) => {
                let from = self.start;
                self.start += dec.position();
                Ok(Some((value, &self.buf[from..self.start])))
            }
            Err(e) if e.is_incomplete() => Ok(None),
            Err(e) => Err(FrameError::Malformed(e)),
        }
    }

    /// Bytes buffered and not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The underlying stream, mutably (to register it with a poller).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Appends what the stream has to the buffer (one read), dropping the consumed prefix
    /// first. A non-blocking stream with nothing to give fails with `WouldBlock`.
    pub fn fill(&mut self) -> Result<(), FrameError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() >= MAX_OBJECT {
            return Err(FrameError::TooLarge);
        }
        let mut chunk = [0u8; 8192];
        loop {
            match self.inner.read(&mut chunk) {
                Ok(0) => return Err(FrameError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
    }
}

/// A response header. Append its body with [`push_body`] and write the frame in one call, so
/// records written by different threads never interleave.
pub fn response(seq: u64, error: &str) -> Vec<u8> {
    let header = ResponseHeader {
        error: GoString(error.as_bytes().to_vec()),
        seq,
    };
    msgpack::to_vec(&header, Dialect::RPC)
}

/// A request header; append its body, if the command takes one, with [`push_body`].
pub fn request(command: &str, seq: u64) -> Vec<u8> {
    let header = RequestHeader {
        command: GoString(command.as_bytes().to_vec()),
        seq,
    };
    msgpack::to_vec(&header, Dialect::RPC)
}

/// Appends a body object to a frame.
pub fn push_body<B: Field>(frame: &mut Vec<u8>, body: &B) {
    body.encode(&mut Encoder::new(frame, Dialect::RPC));
}

/// A frame of a header and one body.
pub fn with_body<B: Field>(mut frame: Vec<u8>, body: &B) -> Vec<u8> {
    push_body(&mut frame, body);
    frame
}

/// Writes an encoded frame in one call.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf::api::wire::rpc::{HandshakeRequest, JoinResponse};

    /// Hands out its bytes a few at a time, as a slow TCP peer would.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = (self.0.len() - self.1).min(3).min(out.len());
            out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn objects_split_across_reads_are_reassembled_in_order() {
        let mut bytes = with_body(request("handshake", 1), &HandshakeRequest { version: 1 });
        bytes.extend(with_body(response(7, ""), &JoinResponse { num: 3 }));
        let mut r = ObjectReader::new(Trickle(bytes, 0));
        let h: RequestHeader = r.read().unwrap();
        assert_eq!((h.command.as_bytes(), h.seq), (&b"handshake"[..], 1));
        assert_eq!(r.read::<HandshakeRequest>().unwrap().version, 1);
        let h: ResponseHeader = r.read().unwrap();
        assert_eq!(h.seq, 7);
        assert_eq!(r.read::<JoinResponse>().unwrap().num, 3);
        assert!(matches!(r.read::<RequestHeader>(), Err(FrameError::Closed)));
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        let mut r = ObjectReader::new(&[0xc1u8, 0, 0][..]);
        assert!(matches!(
            r.read::<RequestHeader>(),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn an_endless_object_is_refused_at_the_cap() {
        // A bin32 header claiming 1 GiB, then an endless supply of bytes.
        let head = [0xc6u8, 0x40, 0, 0, 0];
        let endless = head.iter().copied().chain(std::iter::repeat(0u8));
        struct Endless<I>(I);
        impl<I: Iterator<Item = u8>> Read for Endless<I> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                for b in out.iter_mut() {
                    *b = self.0.next().unwrap_or(0);
                }
                Ok(out.len())
            }
        }
        let mut r = ObjectReader::new(Endless(endless));
        assert!(matches!(r.skip(), Err(FrameError::TooLarge)));
    }
}
