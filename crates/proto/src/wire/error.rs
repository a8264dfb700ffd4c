//! Typed decode errors shared by every decoder in the wire layer.
//!
//! A decode error says what went wrong and where (a byte offset into the buffer being decoded), and,
//! when it happened inside a struct, which Go field was being read. Decoders never panic: every
//! malformed input ends here.

use thiserror::Error;

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    #[error("input ended early ({needed} more bytes needed)")]
    Truncated { needed: usize },
    #[error("unexpected msgpack marker 0x{marker:02x}, expected {expected}")]
    UnexpectedMarker { marker: u8, expected: &'static str },
    #[error("integer {value} does not fit in {target}")]
    IntegerOverflow { value: i128, target: &'static str },
    #[error("msgpack values nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("declared length {len} exceeds the {available} bytes available")]
    LengthExceedsInput { len: usize, available: usize },
    #[error("length {len} exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("unknown {what} {value}")]
    UnknownType { what: &'static str, value: u8 },
    #[error("invalid value for {what}: {value}")]
    InvalidValue { what: &'static str, value: i128 },
    #[error("empty message")]
    Empty,
    #[error("CRC mismatch: header says {expected:08x}, payload has {actual:08x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("packet label {got:?} does not match the configured label {want:?}")]
    LabelMismatch { got: String, want: String },
    #[error("label header with zero length")]
    EmptyLabel,
    #[error("unsupported encryption version {0}")]
    EncryptionVersion(u8),
    #[error("no installed keys could decrypt the message")]
    NoKeyDecrypts,
    #[error("encryption is configured but the message is not encrypted")]
    NotEncrypted,
    #[error("invalid PKCS#7 padding")]
    BadPadding,
    #[error("unknown compression algorithm {0}")]
    CompressionAlgo(u8),
    #[error("LZW: {0}")]
    Lzw(#[from] crate::wire::memberlist::lzw::LzwError),
    #[error("{0}")]
    Malformed(&'static str),
}

impl ErrorKind {
    /// Whether the input was refused for its label or its encryption (memberlist's label check
    /// and `GossipVerifyIncoming`: wrong or missing label, not encrypted, no installed key opens
    /// it) rather than for being damaged.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ErrorKind::LabelMismatch { .. }
                | ErrorKind::EmptyLabel
                | ErrorKind::EncryptionVersion(_)
                | ErrorKind::NoKeyDecrypts
                | ErrorKind::NotEncrypted
                | ErrorKind::BadPadding
        )
    }
}

/// A decode failure: the kind, the byte offset in the buffer being decoded, and the Go field (if
/// any) that was being read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct DecodeError {
    pub kind: ErrorKind,
    pub offset: usize,
    pub field: Option<&'static str>,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if let Some(field) = self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl DecodeError {
    pub fn new(kind: ErrorKind, offset: usize) -> Self {
        DecodeError {
            kind,
            offset,
            field: None,
        }
    }

    /// Records the innermost Go field being decoded, keeping one set deeper down.
    pub fn in_field(mut self, field: &'static str) -> Self {
        self.field.get_or_insert(field);
        self
    }

    /// Whether more input could complete the value (the buffer simply ended too early).
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Truncated { .. } | ErrorKind::LengthExceedsInput { .. }
        )
    }

    /// For a buffer known to be complete (decrypted or decompressed): running out of input
    /// there is corruption, not a reason to wait for more.
    pub fn in_complete_buffer(self) -> Self {
        if self.is_incomplete() {
            DecodeError {
                kind: ErrorKind::Malformed("inner payload ends early"),
                ..self
            }
        } else {
            self
        }
    }

    /// Shifts the offset when an inner buffer was decoded at `base` within an outer one.
    pub fn at_base(mut self, base: usize) -> Self {
        self.offset += base;
        self
    }
}

pub type DecodeResult<T> = Result<T, DecodeError>;
