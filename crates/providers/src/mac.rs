//! Shared MAC helpers: HMAC-SHA256/384 and constant-time comparison.
//!
//! The HMAC functions are infallible: the key is brought to the hash's block size exactly as
//! RFC 2104 prescribes (hashed when longer than a block, zero-padded otherwise), so the
//! fixed-size `KeyInit::new` constructor can be used and no error path (and no `unwrap`) exists.

use hmac::Hmac;
use hmac::digest::{Digest, KeyInit, Mac};
use sha2::{Sha256, Sha384};
use subtle::ConstantTimeEq;

/// Block size of SHA-256 in bytes.
const SHA256_BLOCK: usize = 64;
/// Block size of SHA-384 in bytes.
const SHA384_BLOCK: usize = 128;

/// HMAC-SHA256 of `msg` under `key` (any key length).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; SHA256_BLOCK];
    if key.len() > SHA256_BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA384 of `msg` under `key` (any key length).
pub fn hmac_sha384(key: &[u8], msg: &[u8]) -> [u8; 48] {
    let mut block = [0u8; SHA384_BLOCK];
    if key.len() > SHA384_BLOCK {
        block[..48].copy_from_slice(&Sha384::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha384> as KeyInit>::new(&block.into());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two byte strings. Only the lengths leak (they are public anyway:
/// every MAC here has a fixed, documented length).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (short key) for both hashes.
    #[test]
    fn rfc4231_case2() {
        let key = b"Jefe";
        let msg = b"what do ya want for nothing?";
        assert_eq!(
            hex::encode(hmac_sha256(key, msg)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha384(key, msg)),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
        );
    }

    /// RFC 4231 test case 6: a 131-byte key, longer than either block, exercises the hashing path.
    #[test]
    fn rfc4231_case6_long_key() {
        let key = [0xaau8; 131];
        let msg = b"Test Using Larger Than Block-Size Key - Hash Key First";
        assert_eq!(
            hex::encode(hmac_sha256(&key, msg)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            hex::encode(hmac_sha384(&key, msg)),
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"
        );
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
