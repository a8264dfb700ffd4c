//! The AES-GCM keyring and memberlist's encrypted-message layout (`security.go`).
//!
//! Layout: `version:u8 | nonce[12] | ciphertext || tag[16]`. Version 1 encrypts the plaintext as
//! is; version 0 (memberlist protocol 1 only) PKCS#7-pads it to 16 bytes first. The primary key
//! (the first) encrypts; decryption tries every key in order.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use thiserror::Error;

use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};

type Aes192Gcm = AesGcm<Aes192, U12>;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
const BLOCK_LEN: usize = 16;

/// The encryption versions memberlist knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionVersion {
    /// PKCS#7-padded; only sent at memberlist protocol version 1.
    V0 = 0,
    /// Unpadded; what every peer at protocol 2+ (every serf agent) sends.
    #[default]
    V1 = 1,
}

impl EncryptionVersion {
    /// Bytes encryption adds in the worst case: memberlist budgets this when it packs a packet.
    pub fn overhead(self) -> usize {
        match self {
            EncryptionVersion::V0 => 1 + NONCE_LEN + TAG_LEN + BLOCK_LEN,
            EncryptionVersion::V1 => 1 + NONCE_LEN + TAG_LEN,
        }
    }

    /// The exact size of an encrypted message with `plaintext_len` bytes of plaintext.
    pub fn encrypted_len(self, plaintext_len: usize) -> usize {
        match self {
            EncryptionVersion::V0 => {
                1 + NONCE_LEN + plaintext_len + (BLOCK_LEN - plaintext_len % BLOCK_LEN) + TAG_LEN
            }
            EncryptionVersion::V1 => 1 + NONCE_LEN + plaintext_len + TAG_LEN,
        }
    }
}

/// Why a key could not be added, used or removed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("key size must be 16, 24 or 32 bytes")]
    InvalidLength(usize),
    #[error("requested key is not in the keyring")]
    NotFound,
    #[error("removing the primary key is not allowed")]
    RemovePrimary,
    #[error("the keyring needs at least one key")]
    Empty,
}

enum Cipher {
    Aes128(Aes128Gcm),
    Aes192(Aes192Gcm),
    Aes256(Aes256Gcm),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Cipher, KeyError> {
        let invalid = |_| KeyError::InvalidLength(key.len());
        Ok(match key.len() {
            16 => Cipher::Aes128(Aes128Gcm::new_from_slice(key).map_err(invalid)?),
            24 => Cipher::Aes192(Aes192Gcm::new_from_slice(key).map_err(invalid)?),
            32 => Cipher::Aes256(Aes256Gcm::new_from_slice(key).map_err(invalid)?),
            n => return Err(KeyError::InvalidLength(n)),
        })
    }

    fn seal(&self, nonce: &[u8; NONCE_LEN], payload: Payload<'_, '_>) -> Vec<u8> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.encrypt(nonce, payload),
            Cipher::Aes192(c) => c.encrypt(nonce, payload),
            Cipher::Aes256(c) => c.encrypt(nonce, payload),
        }
        .expect("AES-GCM encryption of an in-memory buffer cannot fail")
    }

    fn open(&self, nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce, payload),
            Cipher::Aes192(c) => c.decrypt(nonce, payload),
            Cipher::Aes256(c) => c.decrypt(nonce, payload),
        }
        .ok()
    }
}

struct Key {
    bytes: Vec<u8>,
    cipher: Cipher,
}

/// An ordered set of AES keys; the first is the primary, used to encrypt.
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

impl Keyring {
    /// A keyring with `primary` as its primary key and `others` after it (duplicates ignored).
    pub fn new<K: AsRef<[u8]>>(primary: &[u8], others: &[K]) -> Result<Keyring, KeyError> {
        let mut ring = Keyring { keys: Vec::new() };
        ring.add_key(primary)?;
        for key in others {
            ring.add_key(key.as_ref())?;
        }
        Ok(ring)
    }

    /// Adds a key after the existing ones; a key already present is left where it is.
    pub fn add_key(&mut self, key: &[u8]) -> Result<(), KeyError> {
        let cipher = Cipher::new(key)?;
        if !self.keys.iter().any(|k| k.bytes == key) {
            self.keys.push(Key {
                bytes: key.to_vec(),
                cipher,
            });
        }
        Ok(())
    }

    /// Makes an installed key the primary.
    pub fn use_key(&mut self, key: &[u8]) -> Result<(), KeyError> {
        let at = self.position(key)?;
        let k = self.keys.remove(at);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Removes an installed key other than the primary.
    pub fn remove_key(&mut self, key: &[u8]) -> Result<(), KeyError> {
        match self.position(key)? {
            0 => Err(KeyError::RemovePrimary),
            at => {
                self.keys.remove(at);
                Ok(())
            }
        }
    }

    fn position(&self, key: &[u8]) -> Result<usize, KeyError> {
        self.keys
            .iter()
            .position(|k| k.bytes == key)
            .ok_or(KeyError::NotFound)
    }

    /// The keys, primary first.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().map(|k| k.bytes.as_slice())
    }

    pub fn primary_key(&self) -> &[u8] {
        &self.keys[0].bytes
    }

    /// Encrypts with the primary key: `version | nonce | ciphertext || tag`.
    pub fn encrypt(
        &self,
        version: EncryptionVersion,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Vec<u8> {
        let padded;
        let msg = match version {
            EncryptionVersion::V1 => plaintext,
            EncryptionVersion::V0 => {
                let pad = BLOCK_LEN - plaintext.len() % BLOCK_LEN;
                let mut p = Vec::with_capacity(plaintext.len() + pad);
                p.extend_from_slice(plaintext);
                p.resize(plaintext.len() + pad, pad as u8);
                padded = p;
                &padded
            }
        };
        let sealed = self.keys[0].cipher.seal(nonce, Payload { msg, aad });
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(version as u8);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts with the first key that authenticates the message.
    pub fn decrypt(&self, buf: &[u8], aad: &[u8]) -> DecodeResult<Vec<u8>> {
        let version = match buf.first() {
            Some(0) => EncryptionVersion::V0,
            Some(1) => EncryptionVersion::V1,
            Some(&v) => return Err(DecodeError::new(ErrorKind::EncryptionVersion(v), 0)),
            None => return Err(DecodeError::new(ErrorKind::Empty, 0)),
        };
        let min = version.encrypted_len(0);
        if buf.len() < min {
            return Err(DecodeError::new(
                ErrorKind::Truncated {
                    needed: min - buf.len(),
                },
                buf.len(),
            ));
        }
        let (nonce, sealed) = buf[1..].split_at(NONCE_LEN);
        let mut plain = self
            .keys
            .iter()
            .find_map(|k| k.cipher.open(nonce, Payload { msg: sealed, aad }))
            .ok_or(DecodeError::new(ErrorKind::NoKeyDecrypts, 0))?;
        if version == EncryptionVersion::V0 {
            // Go trusts the last byte; we also check it is a valid pad length.
            let pad = *plain
                .last()
                .ok_or(DecodeError::new(ErrorKind::BadPadding, 0))? as usize;
            if pad == 0 || pad > BLOCK_LEN || pad > plain.len() {
                return Err(DecodeError::new(ErrorKind::BadPadding, 0));
            }
            plain.truncate(plain.len() - pad);
        }
        Ok(plain)
    }
}
