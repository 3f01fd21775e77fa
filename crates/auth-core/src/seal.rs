//! Sealing of cookie values: compact JWE with `alg: dir` and `enc: A256CBC-HS512`.
//!
//! The format is byte-compatible with the Auth0 Python SDK (see the session cookie reference):
//! the 64-byte content encryption key is derived with HKDF-SHA256 from a configured secret
//! (salt = the store identifier, info = `Auth0 Generated Encryption`); per RFC 7518 §5.2.2 the
//! first 32 bytes key HMAC-SHA512 (tag = first 32 bytes of the MAC) and the last 32 bytes key
//! AES-256-CBC with PKCS#7 padding.
//!
//! Opening is total: any input that is not a well-formed, authentic token for one of the
//! configured secrets yields `None`, never a panic.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aes::Aes256;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq as _;

/// HKDF `info` string shared with the Auth0 SDKs.
const HKDF_INFO: &[u8] = b"Auth0 Generated Encryption";

/// Salt of the session store; its keys are derived once in [`Sealer::new`].
pub(crate) const SESSION_SALT: &str = "_a0_session";

/// base64url of `{"alg":"dir","enc":"A256CBC-HS512"}`, the header every token we seal carries.
const PROTECTED_HEADER: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0";

/// Inputs longer than this are rejected before any decoding work.
const MAX_SEALED_LEN: usize = 1024 * 1024;

/// Length of the CBC initialisation vector.
const IV_LEN: usize = 16;

/// Length of the truncated HMAC-SHA512 authentication tag (RFC 7518 §5.2.5).
const TAG_LEN: usize = 32;

/// AES block size; the ciphertext is always a non-empty multiple of it.
const BLOCK_LEN: usize = 16;

/// How many non-pinned salts keep their derived keys memoised (transaction salts are unique
/// per login, so this must stay small and bounded).
const MEMO_CAPACITY: usize = 8;

/// Derives the 64-byte A256CBC-HS512 key for `secret` and `salt`:
/// HKDF-SHA256(ikm = secret, salt = salt, info = `Auth0 Generated Encryption`, L = 64).
pub(crate) fn derive_key(secret: &[u8], salt: &str) -> [u8; 64] {
    let hkdf = Hkdf::<Sha256>::new(Some(salt.as_bytes()), secret);
    let mut okm = [0u8; 64];
    // 64 bytes is far below HKDF-SHA256's 255 * 32 byte limit, so this cannot fail.
    let expanded = hkdf.expand(HKDF_INFO, &mut okm);
    debug_assert!(expanded.is_ok(), "64-byte HKDF-SHA256 output is always valid");
    okm
}

/// Ready-to-use key schedules for one (secret, salt) pair.
///
/// Holding the keyed HMAC state and the AES key schedule (rather than raw key bytes) means a
/// cached open does no key setup at all beyond cheap clones.
#[derive(Clone)]
struct KeyPair {
    /// HMAC-SHA512 already keyed with the first 32 derived bytes.
    mac: Hmac<Sha512>,
    /// AES-256 key schedule for the last 32 derived bytes.
    enc: Aes256,
}

impl KeyPair {
    fn derive(secret: &[u8], salt: &str) -> Self {
        let okm = derive_key(secret, salt);
        // HMAC zero-pads keys shorter than the hash block (RFC 2104), so keying with the
        // 32-byte MAC key padded to SHA-512's 128-byte block is the same MAC, without the
        // (never failing) fallible `new_from_slice`.
        let mut mac_block = [0u8; 128];
        mac_block[..32].copy_from_slice(&okm[..32]);
        let mac = <Hmac<Sha512> as KeyInit>::new(&mac_block.into());
        let mut enc_key = [0u8; 32];
        enc_key.copy_from_slice(&okm[32..]);
        let enc = Aes256::new(&enc_key.into());
        Self { mac, enc }
    }

    /// First 32 bytes of HMAC-SHA512(AAD || IV || ciphertext || AL).
    fn tag(&self, aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(aad);
        mac.update(iv);
        mac.update(ciphertext);
        let aad_bits = (aad.len() as u64).wrapping_mul(8);
        mac.update(&aad_bits.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

/// Keys for one salt, one entry per configured secret, in configuration order.
type KeySet = Arc<[KeyPair]>;

/// Seals and opens cookie values with a list of secrets.
///
/// The first secret seals; every secret is tried, in order, to open, which allows rotation:
/// prepend the new secret and keep the old ones until their cookies have expired.
///
/// Derived keys for the session salt (and any salts given to [`Sealer::with_pinned_salts`]) are
/// computed once up front; other salts share a small bounded memo. The type is `Send + Sync`
/// and cheap to share behind an `Arc`.
pub(crate) struct Sealer {
    /// Raw secrets, needed to derive keys for salts that are not pinned.
    secrets: Vec<Vec<u8>>,
    /// Salts whose keys were derived at construction and are looked up without locking.
    pinned: Vec<(String, KeySet)>,
    /// Recently used other salts, oldest first; never more than [`MEMO_CAPACITY`] entries.
    memo: Mutex<VecDeque<(String, KeySet)>>,
}

impl Sealer {
    /// Creates a sealer for `secrets` (first seals, all open), pre-deriving the keys for the
    /// default session salt `_a0_session`.
    ///
    /// The caller guarantees at least one secret. With none, `seal` still produces a value
    /// (sealed with an empty secret) but nothing ever opens; it never panics.
    #[cfg(test)]
    pub(crate) fn new(secrets: &[impl AsRef<str>]) -> Self {
        Self::with_pinned_salts(secrets, &[SESSION_SALT])
    }

    /// Like [`Sealer::new`], but pre-derives keys for exactly the given salts (for example a
    /// custom session cookie name) so that opening with them never derives or locks.
    pub(crate) fn with_pinned_salts(secrets: &[impl AsRef<str>], salts: &[&str]) -> Self {
        let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_ref().as_bytes().to_vec()).collect();
        let mut pinned: Vec<(String, KeySet)> = Vec::with_capacity(salts.len());
        for salt in salts {
            if !pinned.iter().any(|(s, _)| s == salt) {
                pinned.push(((*salt).to_owned(), derive_set(&secrets, salt)));
            }
        }
        Self {
            secrets,
            pinned,
            memo: Mutex::new(VecDeque::with_capacity(MEMO_CAPACITY)),
        }
    }

    /// Seals `payload` for the store identified by `salt` with the first secret, returning a
    /// compact JWE (`header..iv.ciphertext.tag`) with a fresh random IV.
    pub(crate) fn seal(&self, salt: &str, payload: &[u8]) -> String {
        let keys = self.keys(salt);
        let fallback;
        let key = match keys.first() {
            Some(key) => key,
            None => {
                // No secrets configured (a caller bug): seal with an empty secret rather than
                // panic. Nothing opens such a value, because `open` has no secret to try.
                fallback = KeyPair::derive(&[], salt);
                &fallback
            }
        };

        let mut iv = [0u8; IV_LEN];
        rand::thread_rng().fill_bytes(&mut iv);
        let ciphertext = cbc::Encryptor::<Aes256>::inner_iv_init(key.enc.clone(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(payload);
        let tag = key.tag(PROTECTED_HEADER.as_bytes(), &iv, &ciphertext);

        let mut out = String::with_capacity(
            PROTECTED_HEADER.len() + 4 + (IV_LEN + ciphertext.len() + TAG_LEN) * 4 / 3 + 4,
        );
        out.push_str(PROTECTED_HEADER);
        out.push_str("..");
        URL_SAFE_NO_PAD.encode_string(iv, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&ciphertext, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut out);
        out
    }

    /// The length of what [`Sealer::seal`] returns for a payload of `payload_len` bytes: the
    /// header, the empty key part, the IV, the PKCS#7-padded ciphertext and the tag, each
    /// base64url without padding, joined by dots. It depends on the length only (not on the
    /// secret, salt or IV), so a store can check a size limit before sealing.
    pub(crate) const fn sealed_len(payload_len: usize) -> usize {
        let ciphertext = (payload_len / BLOCK_LEN + 1) * BLOCK_LEN;
        PROTECTED_HEADER.len() + 2 + b64_len(IV_LEN) + 1 + b64_len(ciphertext) + 1 + b64_len(TAG_LEN)
    }

    /// Opens a value sealed for the store identified by `salt` with any configured secret.
    ///
    /// Returns `None` for anything that is not an authentic token: wrong structure, header,
    /// lengths, encoding, tag, padding, salt or secret. The tag is checked in constant time
    /// before anything is decrypted.
    pub(crate) fn open(&self, salt: &str, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_SEALED_LEN {
            return None;
        }
        let mut segments = sealed.split('.');
        let header = segments.next()?;
        let encrypted_key = segments.next()?;
        let iv_b64 = segments.next()?;
        let ciphertext_b64 = segments.next()?;
        let tag_b64 = segments.next()?;
        if segments.next().is_some() || !encrypted_key.is_empty() {
            return None;
        }
        if header != PROTECTED_HEADER && !header_is_supported(header) {
            return None;
        }

        let iv: [u8; IV_LEN] = decode_exact(iv_b64)?;
        let tag: [u8; TAG_LEN] = decode_exact(tag_b64)?;
        let mut buf = URL_SAFE_NO_PAD.decode(ciphertext_b64).ok()?;
        if buf.is_empty() || buf.len() % BLOCK_LEN != 0 {
            return None;
        }

        let keys = self.keys(salt);
        let key = keys
            .iter()
            .find(|key| bool::from(key.tag(header.as_bytes(), &iv, &buf).ct_eq(&tag)))?;
        let plain_len = cbc::Decryptor::<Aes256>::inner_iv_init(key.enc.clone(), &iv.into())
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }

    /// Keys for `salt`, one per secret: pinned, memoised, or freshly derived (and memoised).
    fn keys(&self, salt: &str) -> KeySet {
        if let Some((_, keys)) = self.pinned.iter().find(|(s, _)| s == salt) {
            return Arc::clone(keys);
        }
        let memoised = self
            .lock_memo()
            .iter()
            .find(|(s, _)| s == salt)
            .map(|(_, keys)| Arc::clone(keys));
        if let Some(keys) = memoised {
            return keys;
        }
        // Derive outside the lock so concurrent requests never wait on HKDF.
        let keys = derive_set(&self.secrets, salt);
        let mut memo = self.lock_memo();
        if !memo.iter().any(|(s, _)| s == salt) {
            if memo.len() >= MEMO_CAPACITY {
                memo.pop_front();
            }
            memo.push_back((salt.to_owned(), Arc::clone(&keys)));
        }
        keys
    }

    /// Locks the memo. Nothing panics while holding it, but a poisoned lock is recovered
    /// anyway: the memo is only a cache of deterministic values.
    fn lock_memo(&self) -> MutexGuard<'_, VecDeque<(String, KeySet)>> {
        self.memo.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clone for Sealer {
    fn clone(&self) -> Self {
        Self {
            secrets: self.secrets.clone(),
            pinned: self.pinned.clone(),
            memo: Mutex::new(VecDeque::with_capacity(MEMO_CAPACITY)),
        }
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer {{ secrets: [redacted; {}] }}", self.secrets.len())
    }
}

/// Derives the keys for `salt` under every secret, in order.
fn derive_set(secrets: &[Vec<u8>], salt: &str) -> KeySet {
    secrets
        .iter()
        .map(|secret| KeyPair::derive(secret, salt))
        .collect()
}

/// Decodes a base64url segment that must be exactly `N` bytes long.
fn decode_exact<const N: usize>(segment: &str) -> Option<[u8; N]> {
    // Unpadded base64 of N bytes is exactly ceil(4N / 3) characters.
    if segment.len() != (N * 4).div_ceil(3) {
        return None;
    }
    // Room for the decoder's conservative length estimate.
    let mut buf = [0u8; 64];
    let len = URL_SAFE_NO_PAD.decode_slice(segment, &mut buf).ok()?;
    if len != N {
        return None;
    }
    let mut out = [0u8; N];
    out.copy_from_slice(buf.get(..N)?);
    Some(out)
}

/// Whether a non-canonical protected header still means `dir` + `A256CBC-HS512`.
///
/// Headers asking for compression (`zip`) or critical extensions (`crit`) are rejected: this
/// implementation supports neither.
fn header_is_supported(header: &str) -> bool {
    let Ok(json) = URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    let Ok(fields) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json) else {
        return false;
    };
    fields.get("alg").and_then(serde_json::Value::as_str) == Some("dir")
        && fields.get("enc").and_then(serde_json::Value::as_str) == Some("A256CBC-HS512")
        && !fields.contains_key("zip")
        && !fields.contains_key("crit")
}

/// Length of `n` bytes in base64url without padding.
const fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_len_is_the_length_of_a_sealed_value() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        for n in (0..100).chain([255, 256, 257, 4000, 9999, 65_536]) {
            let sealed = sealer.seal("_a0_session", &vec![b'x'; n]);
            assert_eq!(Sealer::sealed_len(n), sealed.len(), "{n} bytes");
        }
        assert_eq!(Sealer::sealed_len(VECTOR_PLAIN.len()), VECTOR_SEALED.len());
    }

    const VECTOR_SECRET: &str = "0123456789abcdef0123456789abcdef";
    const VECTOR_KEY_HEX: &str = "131fe8581a4ac214782c4f16d64282ea023a37d932655e7e7af4b52173e3dc2dbab258ad01aba615f136529da66ba1c6e443d9bd64ecf4618563d0261ba767bd";
    const VECTOR_SEALED: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0..iEB0BhmzqazDtwK7y7xdiw.OWdw33f_3QrZbeD37OYfsJJPWa4YmBzjrldsThB7Sh3KxNNJF-lZgEtP-7k4bhFCw7QBV61A-GsV69Fwciq3d3sxBNi9d1bhizrqZ6brK6Vhu_8zth_vU_HzX0LWp6Mw.9aPoDaiCqZyLIjlSUtAeCilR9Aitb15JlZovk2OZffA";
    /// The JSON as given in the reference document.
    const VECTOR_JSON: &str =
        r#"{"user":{"sub":"auth0|123"},"internal":{"sid":"abc","created_at":1700000000}}"#;
    /// The exact decrypted bytes: Python's `json.dumps` default separators (`", "`, `": "`).
    const VECTOR_PLAIN: &str =
        r#"{"user": {"sub": "auth0|123"}, "internal": {"sid": "abc", "created_at": 1700000000}}"#;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Builds a token with an arbitrary header but a correct tag for `secret`/`salt`.
    fn seal_with_header(secret: &str, salt: &str, header_json: &str, payload: &[u8]) -> String {
        let key = KeyPair::derive(secret.as_bytes(), salt);
        let header = URL_SAFE_NO_PAD.encode(header_json);
        let iv = [7u8; IV_LEN];
        let ct = cbc::Encryptor::<Aes256>::inner_iv_init(key.enc.clone(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(payload);
        let tag = key.tag(header.as_bytes(), &iv, &ct);
        format!(
            "{header}..{}.{}.{}",
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(&ct),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    #[test]
    fn test_vector_key_derivation() {
        assert_eq!(
            hex(&derive_key(VECTOR_SECRET.as_bytes(), SESSION_SALT)),
            VECTOR_KEY_HEX
        );
    }

    #[test]
    fn test_vector_opens_to_exact_json() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        let opened = sealer.open(SESSION_SALT, VECTOR_SEALED).expect("vector opens");
        assert_eq!(String::from_utf8(opened.clone()).unwrap(), VECTOR_PLAIN);
        // Same document as the reference's compact rendering.
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&opened).unwrap(),
            serde_json::from_str::<serde_json::Value>(VECTOR_JSON).unwrap()
        );
        // Same result through the non-pinned (memo) path.
        let unpinned = Sealer::with_pinned_salts(&[VECTOR_SECRET], &[]);
        assert_eq!(
            unpinned.open(SESSION_SALT, VECTOR_SEALED).unwrap(),
            VECTOR_PLAIN.as_bytes()
        );
        assert_eq!(
            unpinned.open(SESSION_SALT, VECTOR_SEALED).unwrap(),
            VECTOR_PLAIN.as_bytes()
        );
    }

    #[test]
    fn seal_uses_the_canonical_header_and_shape() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        let sealed = sealer.seal(SESSION_SALT, b"hello");
        let parts: Vec<&str> = sealed.split('.').collect();
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0], PROTECTED_HEADER);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"dir","enc":"A256CBC-HS512"}"#
        );
        assert!(parts[1].is_empty());
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), IV_LEN);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len(), BLOCK_LEN);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[4]).unwrap().len(), TAG_LEN);
        assert!(sealed.is_ascii());
    }

    #[test]
    fn round_trip_various_sizes_with_fresh_ivs() {
        let sealer = Sealer::new(&["s3cret-s3cret-s3cret-s3cret-s3cret"]);
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 3000, 10_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for salt in [SESSION_SALT, "_a0_tx:abc", ""] {
                let a = sealer.seal(salt, &payload);
                let b = sealer.seal(salt, &payload);
                assert_ne!(a, b, "IV must be random");
                assert_eq!(sealer.open(salt, &a).unwrap(), payload);
                assert_eq!(sealer.open(salt, &b).unwrap(), payload);
            }
        }
    }

    #[test]
    fn rotation() {
        let a = Sealer::new(&["secret-A"]);
        let b_a = Sealer::new(&["secret-B", "secret-A"]);
        let b = Sealer::new(&["secret-B"]);

        let old = a.seal(SESSION_SALT, b"old");
        assert_eq!(b_a.open(SESSION_SALT, &old).unwrap(), b"old");
        assert_eq!(b.open(SESSION_SALT, &old), None);

        let new = b_a.seal(SESSION_SALT, b"new");
        assert_eq!(b.open(SESSION_SALT, &new).unwrap(), b"new");
        assert_eq!(b_a.open(SESSION_SALT, &new).unwrap(), b"new");
        assert_eq!(a.open(SESSION_SALT, &new), None);

        // Rotation also works for salts that are not pinned.
        let tx = a.seal("_a0_tx:state1", b"tx");
        assert_eq!(b_a.open("_a0_tx:state1", &tx).unwrap(), b"tx");
        assert_eq!(b.open("_a0_tx:state1", &tx), None);
    }

    #[test]
    fn different_salt_does_not_open() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        assert_eq!(sealer.open("_a0_tx:xyz", VECTOR_SEALED), None);
        let tx = sealer.seal("_a0_tx:one", b"payload");
        assert_eq!(sealer.open("_a0_tx:two", &tx), None);
        assert_eq!(sealer.open(SESSION_SALT, &tx), None);
        assert_eq!(sealer.open("_a0_tx:one", &tx).unwrap(), b"payload");
    }

    #[test]
    fn wrong_secret_does_not_open() {
        let sealer = Sealer::new(&["0123456789abcdef0123456789abcdeF"]);
        assert_eq!(sealer.open(SESSION_SALT, VECTOR_SEALED), None);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        for end in 0..VECTOR_SEALED.len() {
            assert_eq!(sealer.open(SESSION_SALT, &VECTOR_SEALED[..end]), None, "{end}");
            assert_eq!(
                sealer.open(SESSION_SALT, &VECTOR_SEALED[end + 1..]),
                None,
                "{end}"
            );
        }
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        let bytes = VECTOR_SEALED.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut tampered = bytes.to_vec();
                tampered[i] ^= 1 << bit;
                // Flips can produce invalid UTF-8; those can never reach `open` as a `&str`.
                if let Ok(s) = std::str::from_utf8(&tampered) {
                    assert_eq!(sealer.open(SESSION_SALT, s), None, "byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn garbage_and_structural_variants_are_rejected() {
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        let parts: Vec<&str> = VECTOR_SEALED.split('.').collect();
        let join = |p: &[&str]| p.join(".");
        let huge = "A".repeat(MAX_SEALED_LEN + 1);
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let mut cases: Vec<String> = vec![
            String::new(),
            ".".into(),
            "....".into(),
            ".....".into(),
            "not a token".into(),
            "a.b.c.d.e".into(),
            "\u{0}\u{ff}\u{10ffff}".into(),
            "é.é.é.é.é".into(),
            huge,
            format!("{VECTOR_SEALED}."),
            format!("{VECTOR_SEALED}.x"),
            format!(".{VECTOR_SEALED}"),
            format!("{VECTOR_SEALED}A"),
            format!("{VECTOR_SEALED}=="),
            // Non-empty encrypted key.
            join(&[parts[0], "AAAA", parts[2], parts[3], parts[4]]),
            // alg none / other header.
            join(&[&none_header, "", parts[2], parts[3], parts[4]]),
            join(&[&none_header, "", parts[2], parts[3], ""]),
            join(&["", "", parts[2], parts[3], parts[4]]),
            // Empty segments.
            join(&[parts[0], "", "", parts[3], parts[4]]),
            join(&[parts[0], "", parts[2], "", parts[4]]),
            join(&[parts[0], "", parts[2], parts[3], ""]),
            // Wrong IV / tag lengths.
            join(&[parts[0], "", "AAAA", parts[3], parts[4]]),
            join(&[parts[0], "", &format!("{}AA", parts[2]), parts[3], parts[4]]),
            join(&[parts[0], "", parts[2], parts[3], &parts[4][..40]]),
            join(&[parts[0], "", parts[2], parts[3], &format!("{}AAAA", parts[4])]),
            // Padded base64.
            join(&[parts[0], "", &format!("{}==", parts[2]), parts[3], parts[4]]),
            // Standard-alphabet base64 in place of base64url.
            VECTOR_SEALED.replace('_', "/").replace('-', "+"),
            // Ciphertext not a multiple of the block size.
            join(&[parts[0], "", parts[2], &parts[3][..parts[3].len() - 4], parts[4]]),
            // Segments swapped.
            join(&[parts[0], "", parts[4], parts[3], parts[2]]),
        ];
        for len in 0..200 {
            cases.push("A".repeat(len));
            cases.push(".".repeat(len));
        }
        for case in &cases {
            assert_eq!(sealer.open(SESSION_SALT, case), None, "{case:.80}");
        }
    }

    #[test]
    fn header_policy() {
        let salt = SESSION_SALT;
        let sealer = Sealer::new(&[VECTOR_SECRET]);
        // Authentic tokens whose header differs from ours but still means dir + A256CBC-HS512.
        let reordered = seal_with_header(
            VECTOR_SECRET,
            salt,
            r#"{"enc":"A256CBC-HS512","alg":"dir"}"#,
            b"x",
        );
        assert_eq!(sealer.open(salt, &reordered).unwrap(), b"x");
        let with_kid = seal_with_header(
            VECTOR_SECRET,
            salt,
            r#"{"alg":"dir","enc":"A256CBC-HS512","kid":"1"}"#,
            b"y",
        );
        assert_eq!(sealer.open(salt, &with_kid).unwrap(), b"y");
        // Authentic (correct tag) but unsupported headers are rejected.
        for header in [
            r#"{"alg":"none","enc":"A256CBC-HS512"}"#,
            r#"{"alg":"dir","enc":"A128CBC-HS256"}"#,
            r#"{"alg":"dir","enc":"A256GCM"}"#,
            r#"{"alg":"dir"}"#,
            r#"{"enc":"A256CBC-HS512"}"#,
            r#"{"alg":"dir","enc":"A256CBC-HS512","zip":"DEF"}"#,
            r#"{"alg":"dir","enc":"A256CBC-HS512","crit":["exp"]}"#,
            r#"{"alg":["dir"],"enc":"A256CBC-HS512"}"#,
            r#"["dir","A256CBC-HS512"]"#,
            "not json",
            "",
        ] {
            let token = seal_with_header(VECTOR_SECRET, salt, header, b"z");
            assert_eq!(sealer.open(salt, &token), None, "{header}");
        }
    }

    #[test]
    fn bad_padding_under_valid_tag_is_rejected() {
        // A correctly authenticated ciphertext whose plaintext padding is invalid.
        let key = KeyPair::derive(VECTOR_SECRET.as_bytes(), SESSION_SALT);
        let iv = [1u8; IV_LEN];
        let mut block = [0u8; BLOCK_LEN]; // plaintext ending in 0x00: invalid PKCS#7
        cbc::Encryptor::<Aes256>::inner_iv_init(key.enc.clone(), &iv.into())
            .encrypt_block_mut((&mut block).into());
        let tag = key.tag(PROTECTED_HEADER.as_bytes(), &iv, &block);
        let token = format!(
            "{PROTECTED_HEADER}..{}.{}.{}",
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(block),
            URL_SAFE_NO_PAD.encode(tag)
        );
        assert_eq!(Sealer::new(&[VECTOR_SECRET]).open(SESSION_SALT, &token), None);
    }

    #[test]
    fn memo_stays_bounded_and_pinned_salts_work() {
        let sealer = Sealer::new(&["k1", "k2"]);
        for i in 0..100 {
            let salt = format!("_a0_tx:{i}");
            let sealed = sealer.seal(&salt, b"tx");
            assert_eq!(sealer.open(&salt, &sealed).unwrap(), b"tx");
        }
        assert!(sealer.lock_memo().len() <= MEMO_CAPACITY);
        assert_eq!(sealer.pinned.len(), 1);

        let custom = Sealer::with_pinned_salts(&["k1"], &["my_session", "my_session"]);
        assert_eq!(custom.pinned.len(), 1);
        let sealed = custom.seal("my_session", b"v");
        assert_eq!(custom.open("my_session", &sealed).unwrap(), b"v");
        assert!(custom.lock_memo().is_empty());
        assert_eq!(custom.clone().open("my_session", &sealed).unwrap(), b"v");
    }

    #[test]
    fn no_secrets_never_panics_and_never_opens() {
        let empty: [&str; 0] = [];
        let sealer = Sealer::new(&empty);
        let sealed = sealer.seal(SESSION_SALT, b"x");
        assert_eq!(sealer.open(SESSION_SALT, &sealed), None);
        assert_eq!(sealer.open(SESSION_SALT, VECTOR_SEALED), None);
    }

    #[test]
    fn debug_redacts_secrets() {
        let sealer = Sealer::new(&["super-secret-value", "other-secret"]);
        let debug = format!("{sealer:?}");
        assert_eq!(debug, "Sealer { secrets: [redacted; 2] }");
        let pretty = format!("{sealer:#?}");
        assert!(!pretty.contains("super-secret"));
    }

    #[test]
    fn sealer_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Sealer>();
    }
}
