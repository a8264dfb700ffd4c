//! TCP stream framing: one request (and for ping and push/pull one reply) per connection.
//!
//! Outgoing: message → compression (always, when enabled) → encryption as
//! `0a | len:u32be | version | nonce | ct+tag` with AAD = those 5 header bytes + label → label
//! header (only the dialer writes it). Plaintext streams carry no length: msgpack values delimit
//! themselves, so reading one means parsing it.

use super::bodies::{Ack, ErrResp, Ping, UserMsgHeader};
use super::keyring::NONCE_LEN;
use super::options::WireOptions;
use super::push_pull::PushPull;
use super::{compress, label, MessageType};
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{Decoder, Dialect, Encoder, Field};

/// Largest encrypted stream accepted (memberlist's `maxPushStateBytes`).
pub const MAX_ENCRYPTED_LEN: usize = 20 << 20;
/// Largest user message accepted on a stream (memberlist 0.6's limit).
pub const MAX_USER_MSG: usize = 20 << 20;
const ENCRYPT_HEADER_LEN: usize = 5;

/// A message read from a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// The TCP fallback probe.
    Ping(Ping),
    /// The reply to a TCP ping.
    Ack(Ack),
    PushPull(PushPull),
    /// A reliable user message (`SendReliable`): the payload.
    User(Vec<u8>),
    /// The acceptor could not read the request.
    Err(ErrResp),
}

/// `08 | userMsgHeader | payload`: a user message as sent on a stream.
pub fn user_message(payload: &[u8], dialect: Dialect) -> Vec<u8> {
    let mut out = vec![MessageType::User as u8];
    let mut enc = Encoder::new(&mut out, dialect);
    UserMsgHeader {
        user_msg_len: payload.len() as i64,
    }
    .encode(&mut enc);
    enc.raw(payload);
    out
}

/// Frames `message` (type byte first) for a stream. `dialer` says whether we opened the
/// connection: only the dialer writes the label header, but both sides authenticate the label.
pub fn encode(
    opts: &WireOptions,
    message: &[u8],
    dialer: bool,
    nonce: impl FnOnce() -> [u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = if dialer {
        label::header(&opts.label)
    } else {
        Vec::new()
    };
    let compressed;
    let body = if opts.compression {
        compressed = compress::wrap(message, opts.dialect);
        &compressed
    } else {
        message
    };
    match opts.sealing_keyring() {
        Some(keyring) => {
            let len = opts.encryption_version.encrypted_len(body.len()) as u32;
            let mut aad = vec![MessageType::Encrypt as u8];
            aad.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&aad);
            aad.extend_from_slice(&opts.label);
            out.extend_from_slice(&keyring.encrypt(opts.encryption_version, &nonce(), body, &aad));
        }
        None => out.extend_from_slice(body),
    }
    out
}

/// Reads one framed message from the start of `buf`, returning it and the bytes consumed.
/// `dialer` is false when we accepted the connection (the request carries the label header).
/// An incomplete stream gives [`ErrorKind::Truncated`]: read more and try again.
pub fn decode(
    opts: &WireOptions,
    buf: &[u8],
    dialer: bool,
) -> DecodeResult<(StreamMessage, usize)> {
    if buf.is_empty() {
        return Err(DecodeError::new(ErrorKind::Truncated { needed: 1 }, 0));
    }
    // On a stream, a declared length running past what arrived so far means "read more".
    decode_frame(opts, buf, dialer).map_err(|e| match e.kind {
        ErrorKind::LengthExceedsInput { len, available } => DecodeError {
            kind: ErrorKind::Truncated {
                needed: len.saturating_sub(available).max(1),
            },
            ..e
        },
        _ => e,
    })
}

fn decode_frame(
    opts: &WireOptions,
    buf: &[u8],
    dialer: bool,
) -> DecodeResult<(StreamMessage, usize)> {
    let body = if dialer {
        buf
    } else {
        label::strip(buf, &opts.label)?
    };
    let base = buf.len() - body.len();
    let first = *body
        .first()
        .ok_or(DecodeError::new(ErrorKind::Truncated { needed: 1 }, base))?;
    let (msg, used) = if first == MessageType::Encrypt as u8 {
        decode_encrypted(opts, body).map_err(|e| e.at_base(base))?
    } else if opts.keyring.is_some() && opts.verify_incoming {
        return Err(DecodeError::new(ErrorKind::NotEncrypted, base));
    } else {
        let mut dec = Decoder::new(body);
        let msg = decode_plain(&mut dec).map_err(|e| e.at_base(base))?;
        (msg, dec.position())
    };
    Ok((msg, base + used))
}

fn decode_encrypted(opts: &WireOptions, body: &[u8]) -> DecodeResult<(StreamMessage, usize)> {
    let mut dec = Decoder::new(body);
    let header = dec.take(ENCRYPT_HEADER_LEN)?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_ENCRYPTED_LEN {
        return Err(DecodeError::new(
            ErrorKind::TooLarge {
                len,
                limit: MAX_ENCRYPTED_LEN,
            },
            1,
        ));
    }
    let sealed = dec.take(len)?;
    let keyring = opts.keyring.as_ref().ok_or(DecodeError::new(
        ErrorKind::Malformed("stream is encrypted but no keyring is configured"),
        0,
    ))?;
    let mut aad = header.to_vec();
    aad.extend_from_slice(&opts.label);
    let plain = keyring.decrypt(sealed, &aad).map_err(|e| match e.kind {
        // The frame is whole (its length was declared): shorter than a nonce and a tag, it
        // is malformed, not a read to wait on until the connection's deadline.
        ErrorKind::Truncated { .. } => DecodeError::new(
            ErrorKind::Malformed("encrypted frame shorter than its nonce and tag"),
            1,
        ),
        _ => e.at_base(ENCRYPT_HEADER_LEN),
    })?;
    let msg = decode_plain(&mut Decoder::new(&plain)).map_err(|e| {
        e.in_complete_buffer()
            .at_base(ENCRYPT_HEADER_LEN)
            .in_field("decrypted stream")
    })?;
    Ok((msg, ENCRYPT_HEADER_LEN + len))
}

/// A plaintext message, possibly compressed (compression sits inside encryption, at most once).
fn decode_plain(dec: &mut Decoder<'_>) -> DecodeResult<StreamMessage> {
    if dec.peek()? == MessageType::Compress as u8 {
        dec.take(1)?;
        let at = dec.position();
        let inner = compress::decode_body(dec, compress::MAX_STREAM_DECOMPRESSED)?;
        return decode_message(&mut Decoder::new(&inner)).map_err(|e| {
            DecodeError::new(e.in_complete_buffer().kind, at).in_field("decompressed stream")
        });
    }
    decode_message(dec)
}

fn decode_message(dec: &mut Decoder<'_>) -> DecodeResult<StreamMessage> {
    let at = dec.position();
    let ty = dec.take(1)?[0];
    Ok(match MessageType::try_from(ty) {
        Ok(MessageType::Ping) => StreamMessage::Ping(Ping::decode(dec)?),
        Ok(MessageType::Ack) => StreamMessage::Ack(Ack::decode(dec)?),
        Ok(MessageType::Err) => StreamMessage::Err(ErrResp::decode(dec)?),
        Ok(MessageType::PushPull) => StreamMessage::PushPull(PushPull::decode_body(dec)?),
        Ok(MessageType::User) => {
            let header = UserMsgHeader::decode(dec)?;
            let len = usize::try_from(header.user_msg_len)
                .ok()
                .filter(|n| *n <= MAX_USER_MSG)
                .ok_or(dec.error(ErrorKind::InvalidValue {
                    what: "user message length",
                    value: header.user_msg_len as i128,
                }))?;
            StreamMessage::User(dec.take(len)?.to_vec())
        }
        _ => {
            return Err(DecodeError::new(
                ErrorKind::UnknownType {
                    what: "stream message type",
                    value: ty,
                },
                at,
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::memberlist::keyring::Keyring;

    #[test]
    fn an_encrypted_frame_too_short_to_open_is_malformed_not_awaited() {
        let opts = WireOptions {
            keyring: Some(Keyring::new(&[7; 16], &[] as &[&[u8]]).expect("valid key")),
            ..WireOptions::default()
        };
        for len in [0u32, 1, 20, 28] {
            let mut frame = vec![MessageType::Encrypt as u8];
            frame.extend_from_slice(&len.to_be_bytes());
            frame.push(1); // encryption version 1
            frame.resize(ENCRYPT_HEADER_LEN + len as usize, 0);
            let err = decode(&opts, &frame, true).expect_err("cannot decrypt");
            assert!(
                !matches!(err.kind, ErrorKind::Truncated { .. }),
                "len {len}: {err:?}"
            );
        }
        // A frame whose declared bytes have not all arrived is still a read to wait on.
        let mut partial = vec![MessageType::Encrypt as u8];
        partial.extend_from_slice(&40u32.to_be_bytes());
        partial.extend_from_slice(&[1; 10]);
        let err = decode(&opts, &partial, true).expect_err("incomplete");
        assert!(matches!(err.kind, ErrorKind::Truncated { .. }), "{err:?}");
    }
}
