//! The per-node settings that decide how messages are wrapped for the network.

use super::keyring::{EncryptionVersion, Keyring};
use crate::wire::msgpack::Dialect;

/// How this node wraps outgoing packets and streams and what it accepts incoming. The defaults
/// are memberlist's: compression on, no label, no encryption.
#[derive(Debug)]
pub struct WireOptions {
    /// Cluster label (memberlist 0.3+); empty for none.
    pub label: Vec<u8>,
    /// Encryption keys; `None` disables encryption.
    pub keyring: Option<Keyring>,
    /// memberlist `EnableCompression`.
    pub compression: bool,
    /// V1 unless the local memberlist protocol version is 1.
    pub encryption_version: EncryptionVersion,
    /// `GossipVerifyIncoming`: refuse what is not encrypted when a keyring is set.
    pub verify_incoming: bool,
    /// `GossipVerifyOutgoing`: encrypt when a keyring is set.
    pub verify_outgoing: bool,
    /// The msgpack dialect used for memberlist's own structs.
    pub dialect: Dialect,
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            label: Vec::new(),
            keyring: None,
            compression: true,
            encryption_version: EncryptionVersion::V1,
            verify_incoming: true,
            verify_outgoing: true,
            dialect: Dialect::GOSSIP,
        }
    }
}

impl WireOptions {
    /// The keyring to encrypt outgoing traffic with, if any.
    pub fn sealing_keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref().filter(|_| self.verify_outgoing)
    }
}
