//! Encryption: the keyring with both encryption versions and every AES key size, and the padding
//! check of version 0.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use serf_proto::wire::memberlist::keyring::{EncryptionVersion, Keyring, NONCE_LEN};
use serf_proto::wire::ErrorKind;

use crate::strategies::{blob, small_blob};
use crate::support::{config, ok, prefixes_fail};

pub(crate) fn aes_key() -> BoxedStrategy<Vec<u8>> {
    select(vec![16usize, 24, 32])
        .prop_flat_map(|n| vec(any::<u8>(), n))
        .boxed()
}

pub(crate) fn encryption_version() -> impl Strategy<Value = EncryptionVersion> {
    prop_oneof![Just(EncryptionVersion::V0), Just(EncryptionVersion::V1)]
}

proptest! {
    #![proptest_config(config(256))]

    /// Keyring: both versions, all key sizes, with AAD; the decrypting ring may have another
    /// primary. Wrong AAD, a flipped bit after the version byte, a missing key and every strict
    /// prefix are refused.
    #[test]
    fn keyring_round_trip(
        keys in vec(aes_key(), 1..4),
        primary in any::<usize>(),
        version in encryption_version(),
        nonce in any::<[u8; NONCE_LEN]>(),
        plaintext in blob(),
        aad in small_blob(),
        flip in any::<usize>(),
        stranger in aes_key(),
    ) {
        let sender = Keyring::new(&keys[0], &keys[..]).expect("valid keys");
        let receiver = Keyring::new(&keys[primary % keys.len()], &keys[..]).expect("valid keys");
        prop_assert_eq!(sender.keys().count(), keys.len());
        let sealed = sender.encrypt(version, &nonce, &plaintext, &aad);
        prop_assert_eq!(sealed.len(), version.encrypted_len(plaintext.len()));
        prop_assert!(sealed.len() <= plaintext.len() + version.overhead());
        prop_assert_eq!(sealed[0], version as u8);
        prop_assert_eq!(&sealed[1..1 + NONCE_LEN], &nonce[..]);
        let opened = ok(receiver.decrypt(&sealed, &aad), "decrypt", &sealed)?;
        prop_assert_eq!(opened, plaintext.clone());
        let mut wrong_aad = aad.clone();
        wrong_aad.push(0);
        prop_assert!(receiver.decrypt(&sealed, &wrong_aad).is_err());
        let mut corrupted = sealed.clone();
        let bit = flip % ((corrupted.len() - 1) * 8);
        corrupted[1 + bit / 8] ^= 1 << (bit % 8);
        prop_assert!(receiver.decrypt(&corrupted, &aad).is_err());
        if !keys.contains(&stranger) {
            let other = Keyring::new(&stranger, &[] as &[&[u8]]).expect("valid key");
            prop_assert!(matches!(
                other.decrypt(&sealed, &aad),
                Err(e) if e.kind == ErrorKind::NoKeyDecrypts
            ));
        }
        prefixes_fail(&sealed, "encrypted", |b| receiver.decrypt(b, &aad))?;
    }

    /// The version byte is not authenticated (as in Go): a v1 message relabelled v0 decrypts and
    /// then goes through padding removal, which must fail cleanly or strip a valid pad.
    #[test]
    fn keyring_padding_checked(
        key in aes_key(),
        plaintext in vec(any::<u8>(), 16..64),
        nonce in any::<[u8; NONCE_LEN]>(),
    ) {
        let ring = Keyring::new(&key, &[] as &[&[u8]]).expect("valid key");
        let mut sealed = ring.encrypt(EncryptionVersion::V1, &nonce, &plaintext, b"");
        sealed[0] = EncryptionVersion::V0 as u8;
        let pad = usize::from(*plaintext.last().expect("non-empty"));
        match ring.decrypt(&sealed, b"") {
            Ok(plain) => {
                prop_assert!((1..=16).contains(&pad));
                prop_assert_eq!(&plain[..], &plaintext[..plaintext.len() - pad]);
            }
            Err(e) => prop_assert_eq!(e.kind, ErrorKind::BadPadding),
        }
    }
}
