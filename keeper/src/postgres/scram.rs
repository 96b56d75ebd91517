//! SCRAM-SHA-256 password verifiers, computed here so that `ALTER ROLE ... PASSWORD` never
//! carries the password itself: Postgres stores a verifier it is given as it is, and a
//! statement with a verifier in it can be logged (`log_statement`, errors,
//! `pg_stat_statements`) without giving the password away. This is what `psql`'s `\password`
//! does.
//!
//! The format is Postgres's: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
//! base64, with SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations),
//! StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")) and
//! ServerKey = HMAC(SaltedPassword, "Server Key") (RFC 5802, RFC 7677).
//!
//! Postgres prepares passwords with SASLprep first; for ASCII passwords that is the identity,
//! so [`verifier`] only answers for those. Other passwords are set as they are (see
//! `LocalPg::set_role_password`).

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// Postgres's default iteration count (`scram_iterations`).
const ITERATIONS: u32 = 4096;

/// The verifier of `password` with a fresh random salt, or None when SASLprep could change
/// the password (non-ASCII) or no randomness is available.
pub fn verifier(password: &str) -> Option<String> {
    if !password.is_ascii() {
        return None;
    }
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).ok()?;
    Some(verifier_with_salt(password, &salt))
}

fn verifier_with_salt(password: &str, salt: &[u8]) -> String {
    let mut salted = [0u8; 32];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

/// A random password of 32 hexadecimal characters (128 bits), or None without randomness.
pub fn random_password() -> Option<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_matches_postgres() {
        // what Postgres 15 stored for CREATE ROLE ... PASSWORD 's3cret' with
        // password_encryption = 'scram-sha-256' (pg_authid.rolpassword)
        let stored = "SCRAM-SHA-256$4096:NUGZiReutEh6e1fHGHx3sQ==$\
                      Ce49Zfu8yyaqo03TKf+WhL/A++OAQsGCjSogTgm7qZI=:\
                      dN1IzBFTR01u5DXrY+4CussV7Iv4/zE7CjJ/mCQabNg=";
        let salt = STANDARD.decode("NUGZiReutEh6e1fHGHx3sQ==").expect("salt");
        assert_eq!(verifier_with_salt("s3cret", &salt), stored);
        assert_ne!(verifier_with_salt("s3cret!", &salt), stored);
        let fresh = verifier("s3cret").expect("verifier");
        assert!(fresh.starts_with("SCRAM-SHA-256$4096:"));
        assert_ne!(fresh, stored, "a fresh salt each time");
    }

    #[test]
    fn non_ascii_passwords_get_no_verifier() {
        assert!(verifier("pässword").is_none());
        assert!(verifier("password").is_some());
        let p = random_password().expect("random");
        assert_eq!(p.len(), 32);
        assert_ne!(Some(p), random_password());
    }
}
