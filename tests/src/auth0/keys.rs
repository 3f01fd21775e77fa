//! The emulator's RS256 signing key (a committed throwaway key, `tests/auth0/signing-key.pem`),
//! its JWKS, and signing/verification of the JWTs it issues.

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

/// `kid` of the one signing key.
pub(crate) const KID: &str = "auth0-emulator-rs256-1";

/// PKCS#8 PEM of the throwaway RSA 2048 key (test-only; never use it elsewhere).
const SIGNING_KEY_PEM: &str = include_str!("../../auth0/signing-key.pem");

/// Signing and verification keys plus the published JWKS.
pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks: Value,
}

impl Keys {
    /// Loads the committed key and derives its public JWK.
    pub(crate) fn load() -> Keys {
        let encoding =
            EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes()).expect("auth0 emulator: signing key PEM");
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("auth0 emulator: public JWK");
        jwk.common.key_id = Some(KID.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).expect("auth0 emulator: decoding key");
        let jwks = json!({ "keys": [jwk] });
        Keys {
            encoding,
            decoding,
            jwks,
        }
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// An RS256 JWS of `claims` with header `{alg, typ: "JWT", kid}`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("auth0 emulator: sign JWT")
    }

    /// Verifies a JWT this emulator issued: RS256, our `kid`, our signature and `iss`;
    /// `exp` when `check_exp` (no leeway). Audience is left to the caller.
    pub(crate) fn verify(&self, token: &str, issuer: &str, check_exp: bool) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWS: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("alg is {:?}, the emulator signs RS256", header.alg));
        }
        if header.kid.as_deref() != Some(KID) {
            return Err(format!("kid {:?} is not the emulator's key {KID:?}", header.kid));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        validation.validate_exp = check_exp;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        if check_exp {
            validation.set_required_spec_claims(&["exp"]);
        }
        validation.set_issuer(&[issuer]);
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .map_err(|e| format!("verification failed: {e}"))?;
        Ok(data.claims)
    }
}

/// Whether the `aud` claim (string or array) contains `wanted`.
pub(crate) fn aud_contains(claims: &Value, wanted: &str) -> bool {
    match &claims["aud"] {
        Value::String(aud) => aud == wanted,
        Value::Array(auds) => auds.iter().any(|a| a == wanted),
        _ => false,
    }
}
