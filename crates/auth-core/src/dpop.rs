//! DPoP (RFC 9449): sender-constrained tokens.
//!
//! With DPoP on ([`ServerClientBuilder::dpop`], `AUTH0_DPOP=true`), the client holds one ES256
//! (P-256) key for its whole life, generated at start or read from a PKCS#8 / SEC1 PEM, and:
//!
//! - every token-endpoint request carries a `DPoP` proof (the one place those requests are sent,
//!   `flows/token.rs`, calls [`ServerClient::dpop_token_request`]), whatever the grant;
//! - a `400 use_dpop_nonce` answer with a `DPoP-Nonce` header is retried once, with a fresh
//!   proof (new `jti`) carrying that nonce and fresh client authentication; the latest
//!   `DPoP-Nonce` of any answer is kept per origin for the next proofs (RFC 9449 §8);
//! - tokens remember the `token_type` they came back with (`DPoP` or `Bearer`), in the session
//!   too, and [`ServerClient::resource_authorization`] builds the headers an API call needs:
//!   `Authorization: DPoP <token>` plus a proof with `ath` for a DPoP-bound token,
//!   `Authorization: Bearer <token>` otherwise.
//!
//! Guarantees: the private key never leaves this module and is never printed (`Debug` shows the
//! key's RFC 7638 thumbprint only); a proof's header carries the public key only (no `d`); every
//! proof has a fresh random `jti`; `htu` never carries a query or fragment. Without the setting
//! nothing changes: no proof is sent and `token_type: DPoP` answers are refused.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::client::ServerClient;
use crate::config::ServerClientBuilder;
use crate::discovery::ProviderMetadata;
use crate::error::{ConfigError, Error, Result};
use crate::flows::access_token::AccessToken;
use crate::http;
use crate::protocol::token::TokenResponse;
use crate::secret::SecretString;
use crate::session::{ConnectionTokenSet, TokenSet};

/// The `token_type` of a DPoP-bound token (RFC 9449 §5).
pub const DPOP_TOKEN_TYPE: &str = "DPoP";
/// The `token_type` of a bearer token (RFC 6750).
pub const BEARER_TOKEN_TYPE: &str = "Bearer";

/// The session-document field (in a token set's extra fields) remembering a token's type. Absent
/// means `Bearer`, so sessions written without DPoP are unchanged.
const TOKEN_TYPE_FIELD: &str = "token_type";
/// At most this many origins' nonces are remembered (the tenant and a few APIs in practice).
const MAX_NONCE_ORIGINS: usize = 64;
/// Longest `DPoP-Nonce` value kept.
const MAX_NONCE_LEN: usize = 512;

/// What the builder was told about DPoP.
#[derive(Debug, Clone, Default)]
pub(crate) enum DpopSetting {
    /// No DPoP (the default).
    #[default]
    Off,
    /// DPoP with a key pair generated when the client is built.
    Generate,
    /// DPoP with this ES256 private key (PKCS#8 or SEC1 PEM).
    Pem(SecretString),
}

impl ServerClientBuilder {
    /// Sender-constrains tokens with DPoP (RFC 9449; default `false`). When on, every
    /// token-endpoint request carries a DPoP proof signed with one ES256 key, generated when
    /// the client is built unless [`ServerClientBuilder::dpop_private_key_pem`] gives one; a
    /// `use_dpop_nonce` answer is retried once with the server's nonce. Tokens keep the
    /// `token_type` they came back with; call APIs with
    /// [`ServerClient::resource_authorization`]. `from_env()` reads `AUTH0_DPOP`.
    ///
    /// The application (or the API) must accept DPoP at the provider: with Auth0, enable it
    /// for the API and, to require it, turn on sender constraining for the application.
    ///
    /// A generated key lives as long as the process: access tokens bound to it that sessions
    /// keep across a restart, or that another instance serves, no longer match the key. Give
    /// every instance the same key with [`ServerClientBuilder::dpop_private_key_pem`].
    pub fn dpop(mut self, enabled: bool) -> Self {
        self.dpop = match (enabled, self.dpop) {
            (false, _) => DpopSetting::Off,
            (true, DpopSetting::Pem(pem)) => DpopSetting::Pem(pem),
            (true, _) => DpopSetting::Generate,
        };
        self
    }

    /// Turns DPoP on with this ES256 (P-256) private key, as PKCS#8 (`BEGIN PRIVATE KEY`) or
    /// SEC1 (`BEGIN EC PRIVATE KEY`) PEM, so every instance of the app proves the same key.
    /// `from_env()` reads it from `AUTH0_DPOP_PRIVATE_KEY` (literal `\n` sequences allowed).
    /// `build` fails with [`ConfigError`] when it is not such a key.
    pub fn dpop_private_key_pem(mut self, pem: impl Into<SecretString>) -> Self {
        self.dpop = DpopSetting::Pem(pem.into());
        self
    }
}

/// Applies `AUTH0_DPOP` and `AUTH0_DPOP_PRIVATE_KEY` to a builder (for `from_env`).
///
/// `AUTH0_DPOP` is `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`); a key alone turns DPoP
/// on, `AUTH0_DPOP=false` turns it off whatever the key.
pub(crate) fn apply_env(
    b: ServerClientBuilder,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerClientBuilder> {
    let enabled = match get("AUTH0_DPOP") {
        None => None,
        Some(v) => Some(match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "AUTH0_DPOP",
                    reason: "use `true` or `false`".into(),
                }
                .into());
            }
        }),
    };
    let key = get("AUTH0_DPOP_PRIVATE_KEY").map(|k| k.replace("\\n", "\n"));
    Ok(match (enabled, key) {
        (Some(false), _) => b.dpop(false),
        (_, Some(pem)) => b.dpop_private_key_pem(pem),
        (Some(true), None) => b.dpop(true),
        (None, None) => b,
    })
}

/// The DPoP key and the nonces servers gave us.
pub(crate) struct Dpop {
    key: EcdsaKeyPair,
    /// The public JWK (`kty`, `crv`, `x`, `y`).
    jwk: Value,
    /// RFC 7638 SHA-256 thumbprint of `jwk`, base64url (the tokens' `cnf.jkt`).
    thumbprint: String,
    /// The latest `DPoP-Nonce` per origin.
    nonces: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("alg", &"ES256")
            .field("jkt", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl Dpop {
    /// The key the setting asks for, or `None` when DPoP is off.
    pub(crate) fn from_setting(setting: DpopSetting) -> Result<Option<Arc<Dpop>>> {
        let key = match setting {
            DpopSetting::Off => return Ok(None),
            DpopSetting::Generate => {
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| {
                    ConfigError::Invalid {
                        name: "dpop (AUTH0_DPOP)",
                        reason: "an ES256 key pair could not be generated".into(),
                    }
                })?
            }
            DpopSetting::Pem(pem) => key_from_pem(pem.expose())?,
        };
        Ok(Some(Arc::new(Dpop::new(key)?)))
    }

    fn new(key: EcdsaKeyPair) -> Result<Dpop> {
        let point = key.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(ConfigError::Invalid {
                name: "dpop private key (AUTH0_DPOP_PRIVATE_KEY)",
                reason: "not a P-256 key".into(),
            }
            .into());
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Dpop {
            key,
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            thumbprint,
            nonces: Mutex::new(HashMap::new()),
        })
    }

    /// The key's RFC 7638 thumbprint (`jkt`).
    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A fresh proof for `method` on `url` (query and fragment dropped), with the origin's
    /// latest nonce, and `ath` when `access_token` is given (resource requests).
    pub(crate) fn proof(&self, method: &str, url: &Url, access_token: Option<&str>) -> Result<String> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut jti = [0u8; 18];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| proof_error("no randomness for jti"))?;
        let mut claims = Map::new();
        claims.insert("jti".into(), URL_SAFE_NO_PAD.encode(jti).into());
        claims.insert("htm".into(), method.to_ascii_uppercase().into());
        claims.insert("htu".into(), htu.as_str().into());
        claims.insert("iat".into(), crate::time::now().into());
        if let Some(nonce) = self.nonce_for(url) {
            claims.insert("nonce".into(), nonce.into());
        }
        if let Some(token) = access_token {
            claims.insert(
                "ath".into(),
                URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())).into(),
            );
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| proof_error("signing failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    /// Keeps `nonce` as the latest of `url`'s origin (ignored when it is not a valid nonce:
    /// RFC 9449 §8.1, `1*NQCHAR`).
    pub(crate) fn remember_nonce(&self, url: &Url, nonce: &str) {
        let valid = !nonce.is_empty()
            && nonce.len() <= MAX_NONCE_LEN
            && nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
        if !valid {
            tracing::debug!("ignoring a malformed DPoP-Nonce");
            return;
        }
        let Ok(mut nonces) = self.nonces.lock() else {
            return;
        };
        let origin = url.origin().ascii_serialization();
        if nonces.len() >= MAX_NONCE_ORIGINS && !nonces.contains_key(&origin) {
            nonces.clear();
        }
        nonces.insert(origin, nonce.to_owned());
    }

    fn nonce_for(&self, url: &Url) -> Option<String> {
        self.nonces
            .lock()
            .ok()?
            .get(&url.origin().ascii_serialization())
            .cloned()
    }
}

fn proof_error(reason: &str) -> Error {
    Error::InvalidParameter(format!("a DPoP proof could not be made: {reason}"))
}

/// Reads an ES256 private key from PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM;
/// other blocks (`EC PARAMETERS`) are skipped.
fn key_from_pem(pem: &str) -> Result<EcdsaKeyPair> {
    let bad = |reason: &str| -> Error {
        ConfigError::Invalid {
            name: "dpop private key (AUTH0_DPOP_PRIVATE_KEY)",
            reason: format!(
                "{reason}; give an unencrypted ES256 (P-256) key as PKCS#8 (`openssl genpkey -algorithm EC \
                 -pkeyopt ec_paramgen_curve:P-256`) or SEC1 PEM"
            ),
        }
        .into()
    };
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_owned());
            body.clear();
        } else if let Some(l) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            match label.as_deref() {
                Some(open) if open == l && (l == "PRIVATE KEY" || l == "EC PRIVATE KEY") => {
                    let der = STANDARD
                        .decode(body.as_bytes())
                        .map_err(|_| bad("the PEM body is not base64"))?;
                    return EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .map_err(|_| bad("the key is not a P-256 private key"));
                }
                Some("ENCRYPTED PRIVATE KEY") => return Err(bad("encrypted keys are not supported")),
                _ => label = None,
            }
        } else if label.is_some() && !line.contains(':') {
            body.push_str(line);
        }
    }
    Err(bad("no `PRIVATE KEY` or `EC PRIVATE KEY` PEM block found"))
}

/// The normalised token type of a token response: `DPoP` or `Bearer`.
pub(crate) fn normalized_token_type(token_type: Option<&str>) -> &'static str {
    match token_type {
        Some(t) if t.eq_ignore_ascii_case(DPOP_TOKEN_TYPE) => DPOP_TOKEN_TYPE,
        _ => BEARER_TOKEN_TYPE,
    }
}

/// The extra session fields recording a token's type: `{"token_type": "DPoP"}` for a DPoP-bound
/// token, nothing for a bearer token (so sessions without DPoP are unchanged).
pub(crate) fn token_type_fields(token_type: Option<&str>) -> Map<String, Value> {
    let mut extra = Map::new();
    if normalized_token_type(token_type) == DPOP_TOKEN_TYPE {
        extra.insert(TOKEN_TYPE_FIELD.into(), DPOP_TOKEN_TYPE.into());
    }
    extra
}

fn stored_token_type(extra: &Map<String, Value>) -> &'static str {
    normalized_token_type(extra.get(TOKEN_TYPE_FIELD).and_then(Value::as_str))
}

impl TokenSet {
    /// How the token must be presented: `"DPoP"` for a DPoP-bound token, else `"Bearer"`.
    #[must_use]
    pub fn token_type(&self) -> &'static str {
        stored_token_type(&self.extra)
    }
}

impl ConnectionTokenSet {
    /// How the token must be presented: `"DPoP"` for a DPoP-bound token, else `"Bearer"` (Token
    /// Vault tokens are the upstream provider's bearer tokens).
    #[must_use]
    pub fn token_type(&self) -> &'static str {
        stored_token_type(&self.extra)
    }
}

impl TokenResponse {
    /// RFC 6749 §7.1: a type we can use. `DPoP` only when we sent a proof (RFC 9449 §5).
    pub(crate) fn check_token_type_with(&self, dpop: bool) -> Result<()> {
        match self.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case(BEARER_TOKEN_TYPE) => Ok(()),
            Some(t) if dpop && t.eq_ignore_ascii_case(DPOP_TOKEN_TYPE) => Ok(()),
            Some(t) if t.eq_ignore_ascii_case(DPOP_TOKEN_TYPE) => Err(Error::InvalidResponse {
                endpoint: "token",
                reason: "token_type is DPoP but DPoP is not enabled (ServerClientBuilder::dpop / AUTH0_DPOP)"
                    .into(),
            }),
            _ => Err(Error::InvalidResponse {
                endpoint: "token",
                reason: "token_type is neither Bearer nor DPoP".into(),
            }),
        }
    }
}

/// The headers for calling an API with an access token (from
/// [`ServerClient::resource_authorization`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct ResourceAuthorization {
    /// The `Authorization` header value: `DPoP <token>` or `Bearer <token>`.
    pub authorization: SecretString,
    /// The `DPoP` header value (a proof with `ath`), for a DPoP-bound token only.
    pub dpop: Option<String>,
}

impl fmt::Debug for ResourceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceAuthorization")
            .field("authorization", &"[redacted]")
            .field("dpop", &self.dpop.as_ref().map(|_| "[proof]"))
            .finish()
    }
}

impl ServerClient {
    /// Whether DPoP is on ([`ServerClientBuilder::dpop`]).
    #[must_use]
    pub fn dpop_enabled(&self) -> bool {
        self.inner.config.dpop.is_some()
    }

    /// The RFC 7638 thumbprint of the DPoP key (what DPoP-bound tokens carry as `cnf.jkt`),
    /// `None` without DPoP.
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.inner.config.dpop.as_deref().map(Dpop::thumbprint)
    }

    /// The headers to call an API at `url` with `method` using `token`, as its `token_type`
    /// says: `Authorization: DPoP <token>` plus a `DPoP` proof with `ath` (and the API's latest
    /// nonce, see [`ServerClient::remember_dpop_nonce`]) for a DPoP-bound token;
    /// `Authorization: Bearer <token>` otherwise. Make a new one for every request: proofs are
    /// single-use.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `url` is not an absolute URL, or for a DPoP-bound token
    /// while DPoP is off (the token cannot be used without its key).
    pub fn resource_authorization(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
    ) -> Result<ResourceAuthorization> {
        if token.token_type != DPOP_TOKEN_TYPE {
            return Ok(ResourceAuthorization {
                authorization: SecretString::new(format!("Bearer {}", token.token.expose())),
                dpop: None,
            });
        }
        let Some(dpop) = self.inner.config.dpop.as_deref() else {
            // A session from a run with DPoP on: the token cannot be used without its key.
            return Err(Error::InvalidParameter(
                "the access token is DPoP-bound but DPoP is off: turn DPoP on (AUTH0_DPOP=true) or log in again"
                    .into(),
            ));
        };
        let url = Url::parse(url)
            .map_err(|_| Error::InvalidParameter("the API URL must be an absolute URL".into()))?;
        Ok(ResourceAuthorization {
            authorization: SecretString::new(format!("DPoP {}", token.token.expose())),
            dpop: Some(dpop.proof(method, &url, Some(token.token.expose()))?),
        })
    }

    /// Keeps an API's `DPoP-Nonce` (RFC 9449 §9: a `401` with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"`) for the next proofs to its origin; retry the call once with a
    /// new [`ServerClient::resource_authorization`]. Does nothing without DPoP or for a
    /// malformed nonce.
    pub fn remember_dpop_nonce(&self, url: &str, nonce: &str) {
        if let (Some(dpop), Ok(url)) = (self.inner.config.dpop.as_deref(), Url::parse(url)) {
            dpop.remember_nonce(&url, nonce);
        }
    }

    /// A token-endpoint request with a DPoP proof: client authentication and a fresh proof on
    /// each attempt; one retry on `use_dpop_nonce` with the nonce the server sent.
    pub(crate) async fn dpop_token_request(
        &self,
        dpop: &Dpop,
        meta: &ProviderMetadata,
        form: Vec<(String, String)>,
    ) -> Result<TokenResponse> {
        let c = &self.inner.config;
        let endpoint = &meta.token_endpoint;
        let mut retried = false;
        loop {
            let mut attempt = form.clone();
            let auth = c.client_auth.apply(&c.client_id, &meta.issuer, &mut attempt)?;
            let proof = dpop.proof("POST", endpoint, None)?;
            let (result, nonce) = http::post_form_nonce::<TokenResponse>(
                &self.inner.http,
                "token",
                endpoint,
                &attempt,
                auth.as_deref(),
                &[("dpop", proof)],
                &[200],
            )
            .await;
            if let Some(n) = &nonce {
                dpop.remember_nonce(endpoint, n);
            }
            match result {
                Err(Error::Endpoint { error, .. })
                    if error.error == "use_dpop_nonce" && nonce.is_some() && !retried =>
                {
                    tracing::debug!("token endpoint asked for a DPoP nonce; retrying once with it");
                    retried = true;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC1: &str = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
    /// `testdata/ec1.pem` as SEC1 (`openssl ec -in ec1.pem`).
    const EC1_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIHSfRpYya+mpSFBBeZkweq518UdPRyHJ7BhKSKI7PNuNoAoGCCqGSM49
AwEHoUQDQgAEc7jNblrpYqivSnHJB1eYLc3ETkAZixpKER1i2q1IFWmxwYP6U3Zg
Nr8o/tc127+5aqtfzK6gMHvvnijpwGGDwA==
-----END EC PRIVATE KEY-----
";

    fn claims(jwt: &str, part: usize) -> Value {
        let seg = jwt.split('.').nth(part).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
    }

    #[test]
    fn proofs_are_fresh_signed_and_carry_only_the_public_key() {
        let d = Dpop::from_setting(DpopSetting::Generate).unwrap().unwrap();
        let url = Url::parse("https://t.example/oauth/token?x=1#f").unwrap();
        let a = d.proof("post", &url, None).unwrap();
        let b = d.proof("POST", &url, None).unwrap();
        let (ha, ca, cb) = (claims(&a, 0), claims(&a, 1), claims(&b, 1));
        assert_eq!(ha["typ"], "dpop+jwt");
        assert_eq!(ha["alg"], "ES256");
        assert!(ha["jwk"].get("d").is_none());
        assert_eq!(ca["htm"], "POST");
        assert_eq!(ca["htu"], "https://t.example/oauth/token");
        assert_ne!(ca["jti"], cb["jti"]);
        assert!(ca.get("ath").is_none() && ca.get("nonce").is_none());
        // The signature verifies with the embedded key.
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            ha["jwk"]["x"].as_str().unwrap(),
            ha["jwk"]["y"].as_str().unwrap(),
        )
        .unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<Value>(&a, &key, &v).unwrap();
        // Nonces are per origin; ath is the token's hash.
        d.remember_nonce(&url, "n-1");
        d.remember_nonce(&url, "bad nonce");
        let c = claims(&d.proof("GET", &url, Some("tok")).unwrap(), 1);
        assert_eq!(c["nonce"], "n-1");
        assert_eq!(c["ath"], URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok")));
        let other = Url::parse("https://api.example/x").unwrap();
        assert!(
            claims(&d.proof("GET", &other, None).unwrap(), 1)
                .get("nonce")
                .is_none()
        );
        assert!(!format!("{d:?}").contains(ha["jwk"]["x"].as_str().unwrap()));
    }

    #[test]
    fn keys_load_from_pkcs8_and_sec1_pem_with_a_stable_thumbprint() {
        let pkcs8 = include_str!("../testdata/ec1.pem");
        let a = Dpop::from_setting(DpopSetting::Pem(pkcs8.into()))
            .unwrap()
            .unwrap();
        let sec1 = format!("{SEC1}{EC1_SEC1}");
        let b = Dpop::from_setting(DpopSetting::Pem(sec1.into()))
            .unwrap()
            .unwrap();
        assert_eq!(a.thumbprint(), b.thumbprint());
        assert_eq!(a.thumbprint().len(), 43);
        let junk = format!("{SEC1}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let e = Dpop::from_setting(DpopSetting::Pem(junk.into())).unwrap_err();
        assert!(e.to_string().contains("AUTH0_DPOP_PRIVATE_KEY"), "{e}");
        let e = Dpop::from_setting(DpopSetting::Pem("nothing".into())).unwrap_err();
        assert!(e.to_string().contains("no `PRIVATE KEY`"), "{e}");
    }

    #[test]
    fn token_types_are_normalised_and_recorded_only_for_dpop() {
        assert_eq!(normalized_token_type(Some("dpop")), "DPoP");
        assert_eq!(normalized_token_type(Some("bearer")), "Bearer");
        assert_eq!(normalized_token_type(None), "Bearer");
        assert!(token_type_fields(Some("Bearer")).is_empty());
        assert_eq!(token_type_fields(Some("DPoP"))["token_type"], "DPoP");
    }
}
