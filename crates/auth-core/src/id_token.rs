//! ID-token validation, rule by rule (OIDC Core 3.1.3.7).
//!
//! Every rule has its own [`IdTokenError`] variant so that a failure says exactly what was
//! wrong. The signature is checked before any claim is trusted.

use std::collections::HashSet;
use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::discovery::{Discovery, KeySet, RefetchSource};
use crate::error::{IdTokenError, Result};
use crate::secret::SecretString;

/// Claims of a verified JWT.
pub(crate) type Claims = Map<String, Value>;

/// What the token must match.
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    /// The nonce sent at authorize; `None` only for tokens from a refresh.
    pub(crate) nonce: Option<&'a str>,
    pub(crate) max_age: Option<u64>,
    pub(crate) organization: Option<&'a str>,
    pub(crate) leeway: u64,
    pub(crate) now: u64,
    /// The provider's `id_token_signing_alg_values_supported` (empty: RS256 only).
    pub(crate) allowed_algs: &'a [String],
    /// The key for HS* tokens: the client secret, `Some` only when the app opted in to
    /// symmetric ID tokens (`ServerClientBuilder::allow_symmetric_id_tokens`). `None`: only
    /// asymmetric algorithms (RS*, PS*, ES*, EdDSA) are accepted.
    pub(crate) client_secret: Option<&'a SecretString>,
}

/// Verifies the signature with the provider's JWKS (refetching once on an unknown `kid`) and
/// then every claim rule.
pub(crate) async fn validate(discovery: &Discovery, token: &str, expected: &Expected<'_>) -> Result<Claims> {
    let (_, claims) = verified(discovery, token, &expected.signature(), RefetchSource::IdToken).await?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// What a signature must satisfy, whatever the token type.
pub(crate) struct SignatureCheck<'a> {
    /// The provider's advertised algorithms (empty: RS256 only).
    pub(crate) allowed_algs: &'a [String],
    /// The key for HS* tokens: `Some` only when the app opted in to symmetric tokens;
    /// `None` refuses every HS* token, even one the provider advertises.
    pub(crate) client_secret: Option<&'a SecretString>,
}

impl Expected<'_> {
    fn signature(&self) -> SignatureCheck<'_> {
        SignatureCheck {
            allowed_algs: self.allowed_algs,
            client_secret: self.client_secret,
        }
    }
}

/// Header and claims of a JWS whose signature verifies with the provider's JWKS, refetching
/// the JWKS once (per cooldown of `source`) on an unknown `kid`. No claim is checked.
pub(crate) async fn verified(
    discovery: &Discovery,
    token: &str,
    check: &SignatureCheck<'_>,
    source: RefetchSource,
) -> Result<(Claims, Claims)> {
    let keys = discovery.jwks().await?;
    match verify_signature(token, &keys, check) {
        Err(IdTokenError::UnknownKey) => {
            let Some(fresh) = discovery.jwks_after_unknown_kid(&keys, source).await? else {
                return Err(IdTokenError::UnknownKey.into());
            };
            Ok(verify_signature(token, &fresh, check)?)
        }
        other => Ok(other?),
    }
}

/// The synchronous core of [`validate`]: signature with the given keys, then claims.
#[cfg(any(test, feature = "internal"))]
pub(crate) fn verify(token: &str, keys: &KeySet, expected: &Expected<'_>) -> Result<Claims, IdTokenError> {
    let (_, claims) = verify_signature(token, keys, &expected.signature())?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// Header and claims after the signature verified with `keys`.
pub(crate) fn verify_signature(
    token: &str,
    keys: &KeySet,
    check: &SignatureCheck<'_>,
) -> Result<(Claims, Claims), IdTokenError> {
    let header = parse_header(token)?;
    // RFC 7515 §4.1.11: a JWS naming critical extensions we do not implement (we implement
    // none) is invalid; jsonwebtoken parses `crit` but does not enforce it.
    if header.contains_key("crit") {
        return Err(IdTokenError::Malformed);
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::Malformed)?;
    let alg = check_algorithm(alg_name, check.allowed_algs, check.client_secret.is_some())?;
    let kid = header.get("kid").and_then(Value::as_str);

    let claims = if is_symmetric(alg) {
        let secret = check
            .client_secret
            .ok_or_else(|| IdTokenError::UnsupportedAlgorithm(alg_name.to_owned()))?;
        check_signature(token, alg, &DecodingKey::from_secret(secret.expose().as_bytes()))?
    } else {
        let family = family_kty(alg);
        let candidates: Vec<_> = keys
            .find(kid)
            .into_iter()
            .filter(|k| k.kty == family && k.alg.as_deref().is_none_or(|a| a == alg_name))
            .collect();
        match candidates.as_slice() {
            [] => return Err(IdTokenError::UnknownKey),
            // Without a kid we only accept an unambiguous key.
            [_, _, ..] if kid.is_none() => return Err(IdTokenError::UnknownKey),
            [first, ..] => check_signature(token, alg, &first.key)?,
        }
    };
    Ok((header, claims))
}

fn parse_header(token: &str) -> Result<Map<String, Value>, IdTokenError> {
    if token.len() > 64 * 1024 || token.split('.').count() != 3 {
        return Err(IdTokenError::Malformed);
    }
    let head = token.split('.').next().ok_or(IdTokenError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| IdTokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)
}

/// HS256/384/512: keyed with the client secret, which the client itself also knows.
fn is_symmetric(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The algorithm family is pinned before the provider's list is consulted: asymmetric
/// (RS*, PS*, ES*, EdDSA) always; HS* only when `symmetric_ok` (the app opted in and gave
/// the client secret). Then the algorithm must be advertised (empty list: RS256 only).
fn check_algorithm(
    name: &str,
    allowed_algs: &[String],
    symmetric_ok: bool,
) -> Result<Algorithm, IdTokenError> {
    let unsupported = || IdTokenError::UnsupportedAlgorithm(crate::http::truncate(name, 16));
    let alg = Algorithm::from_str(name).map_err(|_| unsupported())?;
    if is_symmetric(alg) && !symmetric_ok {
        return Err(unsupported());
    }
    let advertised = if allowed_algs.is_empty() {
        name == "RS256"
    } else {
        allowed_algs.iter().any(|a| a == name)
    };
    if !advertised {
        return Err(unsupported());
    }
    Ok(alg)
}

fn family_kty(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => "EC",
        Algorithm::EdDSA => "OKP",
        _ => "RSA",
    }
}

fn check_signature(token: &str, alg: Algorithm, key: &DecodingKey) -> Result<Claims, IdTokenError> {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims = HashSet::new();
    jsonwebtoken::decode::<Claims>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::InvalidSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                IdTokenError::UnsupportedAlgorithm(format!("{alg:?}"))
            }
            jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidEddsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => IdTokenError::InvalidSignature,
            _ => IdTokenError::Malformed,
        })
}

fn num(claims: &Claims, name: &'static str) -> Result<Option<u64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or(IdTokenError::MissingClaim(name)),
    }
}

pub(crate) fn check_claims(claims: &Claims, e: &Expected<'_>) -> Result<(), IdTokenError> {
    // 2. iss exact match
    if claims.get("iss").and_then(Value::as_str) != Some(e.issuer) {
        return Err(IdTokenError::IssuerMismatch);
    }
    // sub is required and must be a non-empty string (OIDC Core 2)
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(IdTokenError::MissingClaim("sub"));
    }
    // 3. aud contains client_id
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !auds.contains(&e.client_id) {
        return Err(IdTokenError::AudienceMismatch);
    }
    // 4./5. azp required with several audiences, and must be us when present
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == e.client_id => {}
        None if auds.len() == 1 => {}
        _ => return Err(IdTokenError::AuthorizedPartyMismatch),
    }
    // 9. exp
    let exp = num(claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if e.now > exp.saturating_add(e.leeway) {
        return Err(IdTokenError::Expired);
    }
    // 10. iat present and not in the future
    let iat = num(claims, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > e.now.saturating_add(e.leeway) {
        return Err(IdTokenError::IssuedInFuture);
    }
    if let Some(nbf) = num(claims, "nbf")?
        && nbf > e.now.saturating_add(e.leeway)
    {
        return Err(IdTokenError::NotYetValid);
    }
    // 11. nonce
    if let Some(nonce) = e.nonce {
        let got = claims.get("nonce").and_then(Value::as_str);
        let same = got.is_some_and(|g| subtle::ConstantTimeEq::ct_eq(g.as_bytes(), nonce.as_bytes()).into());
        if !same {
            return Err(IdTokenError::NonceMismatch);
        }
    }
    // 13. max_age → auth_time
    if let Some(max_age) = e.max_age {
        let auth_time = num(claims, "auth_time")?.ok_or(IdTokenError::AuthTimeTooOld)?;
        if e.now > auth_time.saturating_add(max_age).saturating_add(e.leeway) {
            return Err(IdTokenError::AuthTimeTooOld);
        }
    }
    // Auth0 Organizations: org_id for ids, org_name (case-insensitive) for names.
    if let Some(org) = e.organization {
        let ok = if org.starts_with("org_") {
            claims.get("org_id").and_then(Value::as_str) == Some(org)
        } else {
            claims
                .get("org_name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(org))
        };
        if !ok {
            return Err(IdTokenError::OrganizationMismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
