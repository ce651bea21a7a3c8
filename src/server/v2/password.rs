//! Password hashes: PBKDF2-HMAC-SHA256 with a random salt, from `ring`
//! (already compiled in for TLS), written as
//! `pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`.
//!
//! PBKDF2 was chosen over bcrypt or Argon2 because it needs no crate beyond
//! the one TLS brings, `ring` verifies in constant time, and the stored form
//! can be produced with nothing but Python's standard library (see the
//! README), so a site can keep hashes rather than passwords in its file.

use std::fmt;
use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const PREFIX: &str = "pbkdf2-sha256";

/// Iterations for hashes made here. The server hashes configured passwords
/// once at start and checks one per login; this keeps a check in the tens
/// of milliseconds on a slow machine while making guessing from a stolen
/// hash expensive.
pub(crate) const DEFAULT_ITERATIONS: u32 = 60_000;

/// A stored password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: [u8; 32],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(password: &str, rng: &SystemRandom, iterations: u32) -> Option<PasswordHash> {
        let iterations = NonZeroU32::new(iterations)?;
        let mut salt = vec![0u8; 16];
        rng.fill(&mut salt).ok()?;
        let mut hash = [0u8; 32];
        pbkdf2::derive(ALGORITHM, iterations, &salt, password.as_bytes(), &mut hash);
        Some(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` is the one hashed, in constant time.
    pub fn verify(&self, password: &str) -> bool {
        pbkdf2::verify(
            ALGORITHM,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }

    /// Reads the stored form; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let format =
            || format!("must look like {PREFIX}$ITERATIONS$SALT_HEX$HASH_HEX (a 32-byte hash)");
        let mut parts = text.split('$');
        let (Some(PREFIX), Some(iterations), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(format());
        };
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(format)?;
        let salt = from_hex(salt)
            .filter(|s| !s.is_empty())
            .ok_or_else(format)?;
        let hash: [u8; 32] = from_hex(hash)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(format)?;
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}${}${}${}",
            self.iterations,
            to_hex(&self.salt),
            to_hex(&self.hash)
        )
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_verify() {
        let rng = SystemRandom::new();
        let Some(h) = PasswordHash::new("s3cret", &rng, 1000) else {
            panic!("hashing failed");
        };
        assert!(h.verify("s3cret"));
        assert!(!h.verify("s3cret "));
        assert!(!h.verify(""));
        let text = h.to_string();
        assert!(text.starts_with("pbkdf2-sha256$1000$"), "{text}");
        assert_eq!(PasswordHash::parse(&text), Ok(h.clone()));
        // Salts differ, so equal passwords give different hashes.
        let again = PasswordHash::new("s3cret", &rng, 1000).map(|h| h.to_string());
        assert_ne!(again.as_deref(), Some(text.as_str()));
        assert_eq!(format!("{h:?}"), "PasswordHash(..)");
    }

    #[test]
    fn matches_python_hashlib() {
        // python3 -c "import hashlib;print(hashlib.pbkdf2_hmac('sha256',
        //   b'password', bytes.fromhex('73616c74'), 2).hex())"
        let h = PasswordHash::parse(
            "pbkdf2-sha256$2$73616c74$ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
        );
        assert!(h.is_ok_and(|h| h.verify("password")));
    }

    #[test]
    fn malformed_stored_forms() {
        for bad in [
            "",
            "pbkdf2-sha256$0$00$00",
            "pbkdf2-sha256$10$$ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            "pbkdf2-sha256$10$0$ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            "pbkdf2-sha256$10$00$ae4d",
            "bcrypt$10$00$ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            "pbkdf2-sha256$10$00$ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43$x",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
    }
}
