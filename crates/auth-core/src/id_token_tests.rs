//! One bad token per rule, each signed here with a throwaway key (`testdata/`).

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::*;
use crate::discovery::VerificationKey;

const RSA1: &str = include_str!("../testdata/rsa1.pem");
const RSA1_PUB: &str = include_str!("../testdata/rsa1.pub.pem");
const RSA2: &str = include_str!("../testdata/rsa2.pem");
const EC1: &str = include_str!("../testdata/ec1.pem");
const EC1_PUB: &str = include_str!("../testdata/ec1.pub.pem");
const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://idp.example.com/";

fn keys() -> KeySet {
    KeySet::for_tests(vec![
        VerificationKey {
            kid: Some("k1".into()),
            alg: Some("RS256".into()),
            kty: "RSA",
            key: DecodingKey::from_rsa_pem(RSA1_PUB.as_bytes()).unwrap(),
        },
        VerificationKey {
            kid: Some("e1".into()),
            alg: None,
            kty: "EC",
            key: DecodingKey::from_ec_pem(EC1_PUB.as_bytes()).unwrap(),
        },
    ])
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": "client-1", "exp": NOW + 600, "iat": NOW - 5,
        "nonce": "n-123", "auth_time": NOW - 30, "org_id": "org_abc", "org_name": "acme", "name": "U"
    })
}

fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims();
    f(c.as_object_mut().unwrap());
    c
}

fn sign_rs(kid: Option<&str>, claims: &Value, pem: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_owned);
    encode(&h, claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn good(claims: &Value) -> String {
    sign_rs(Some("k1"), claims, RSA1)
}

fn expected<'a>(algs: &'a [String], secret: Option<&'a SecretString>) -> Expected<'a> {
    Expected {
        issuer: ISS,
        client_id: "client-1",
        nonce: Some("n-123"),
        max_age: None,
        organization: None,
        leeway: 60,
        now: NOW,
        allowed_algs: algs,
        client_secret: secret,
    }
}

fn rs256() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

fn check(token: &str) -> Result<Claims, IdTokenError> {
    let algs = rs256();
    verify(token, &keys(), &expected(&algs, None))
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn a_valid_token_passes_and_returns_claims() {
    let c = check(&good(&claims())).unwrap();
    assert_eq!(c["sub"], "user-1");
}

#[test]
fn malformed_tokens() {
    for t in ["", "a.b", "a.b.c.d", "!!!.e30.sig"] {
        assert_eq!(check(t).unwrap_err().code(), "malformed", "{t}");
    }
    // The signature is checked before the payload is even decoded.
    let garbage_payload = format!("{}.{}.", b64(&json!({"alg": "RS256", "kid": "k1"})), "%%%");
    assert_eq!(
        check(&garbage_payload).unwrap_err(),
        IdTokenError::InvalidSignature
    );
    assert_eq!(check(&"a".repeat(70_000)).unwrap_err(), IdTokenError::Malformed);
}

#[test]
fn alg_none_is_refused() {
    let t = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims()));
    assert_eq!(
        check(&t).unwrap_err(),
        IdTokenError::UnsupportedAlgorithm("none".into())
    );
}

#[test]
fn hs256_needs_a_client_secret_and_must_be_advertised() {
    let secret = SecretString::new("client-secret-0123456789abcdef-xyz");
    let t = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .unwrap();
    // Advertised but no secret (public client): refused rather than verified with a public key.
    let algs = vec!["RS256".to_owned(), "HS256".to_owned()];
    assert_eq!(
        verify(&t, &keys(), &expected(&algs, None)).unwrap_err().code(),
        "unsupported_algorithm"
    );
    // Not advertised: refused.
    let rs = rs256();
    assert_eq!(
        verify(&t, &keys(), &expected(&rs, Some(&secret)))
            .unwrap_err()
            .code(),
        "unsupported_algorithm"
    );
    // Advertised and confidential client: verified with the secret.
    assert!(verify(&t, &keys(), &expected(&algs, Some(&secret))).is_ok());
    let wrong = SecretString::new("another-secret-0123456789abcdef-xyz");
    assert_eq!(
        verify(&t, &keys(), &expected(&algs, Some(&wrong))).unwrap_err(),
        IdTokenError::InvalidSignature
    );
}

#[test]
fn alg_not_advertised_by_the_provider_is_refused() {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("e1".into());
    let t = encode(&h, &claims(), &EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap()).unwrap();
    assert!(check(&t).is_ok());
    let only_rs = vec!["RS256".to_owned()];
    assert_eq!(
        verify(&t, &keys(), &expected(&only_rs, None)).unwrap_err().code(),
        "unsupported_algorithm"
    );
    // Empty metadata list means RS256 only (OIDC Discovery default).
    assert_eq!(
        verify(&t, &keys(), &expected(&[], None)).unwrap_err().code(),
        "unsupported_algorithm"
    );
}

#[test]
fn unknown_kid_and_key_confusion() {
    assert_eq!(
        check(&sign_rs(Some("nope"), &claims(), RSA1)).unwrap_err(),
        IdTokenError::UnknownKey
    );
    // A JWK that declares another alg is not used for this one.
    let mut h = Header::new(Algorithm::PS256);
    h.kid = Some("k1".into());
    let t = encode(
        &h,
        &claims(),
        &EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap(),
    )
    .unwrap();
    let algs = vec!["PS256".to_owned()];
    assert_eq!(
        verify(&t, &keys(), &expected(&algs, None)).unwrap_err(),
        IdTokenError::UnknownKey
    );
}

#[test]
fn token_without_kid_uses_the_only_matching_key() {
    assert!(check(&sign_rs(None, &claims(), RSA1)).is_ok());
}

#[test]
fn bad_signature() {
    assert_eq!(
        check(&sign_rs(Some("k1"), &claims(), RSA2)).unwrap_err(),
        IdTokenError::InvalidSignature
    );
    // Claims swapped after signing.
    let t = good(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with(|c| {
            c.insert("sub".into(), json!("admin"));
        })),
        parts[2]
    );
    assert_eq!(check(&forged).unwrap_err(), IdTokenError::InvalidSignature);
}

#[test]
fn issuer_must_match_exactly() {
    for iss in [
        json!("https://idp.example.com"),
        json!("https://evil.example.com/"),
        json!(null),
        json!(1),
    ] {
        let t = good(&with(|c| {
            c.insert("iss".into(), iss.clone());
        }));
        assert_eq!(check(&t).unwrap_err(), IdTokenError::IssuerMismatch, "{iss}");
    }
}

#[test]
fn audience_must_contain_the_client() {
    let t = good(&with(|c| {
        c.insert("aud".into(), json!("other"));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::AudienceMismatch);
    let t = good(&with(|c| {
        c.insert("aud".into(), json!(["a", "b"]));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::AudienceMismatch);
    let t = good(&with(|c| {
        c.remove("aud");
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::MissingClaim("aud"));
}

#[test]
fn azp_rules() {
    let multi = with(|c| {
        c.insert("aud".into(), json!(["client-1", "https://api/"]));
    });
    assert_eq!(
        check(&good(&multi)).unwrap_err(),
        IdTokenError::AuthorizedPartyMismatch
    );
    let mut ok = multi.clone();
    ok["azp"] = json!("client-1");
    assert!(check(&good(&ok)).is_ok());
    let t = good(&with(|c| {
        c.insert("azp".into(), json!("someone-else"));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::AuthorizedPartyMismatch);
}

#[test]
fn expiry_with_leeway() {
    let t = good(&with(|c| {
        c.insert("exp".into(), json!(NOW - 30));
    }));
    assert!(check(&t).is_ok(), "inside the 60 s leeway");
    let t = good(&with(|c| {
        c.insert("exp".into(), json!(NOW - 61));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::Expired);
    let t = good(&with(|c| {
        c.remove("exp");
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::MissingClaim("exp"));
    let t = good(&with(|c| {
        c.insert("exp".into(), json!("soon"));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::MissingClaim("exp"));
}

#[test]
fn iat_must_be_present_and_not_in_the_future() {
    let t = good(&with(|c| {
        c.insert("iat".into(), json!(NOW + 120));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::IssuedInFuture);
    let t = good(&with(|c| {
        c.remove("iat");
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::MissingClaim("iat"));
    let t = good(&with(|c| {
        c.insert("nbf".into(), json!(NOW + 120));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::NotYetValid);
}

#[test]
fn nonce_must_match() {
    let t = good(&with(|c| {
        c.insert("nonce".into(), json!("other"));
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::NonceMismatch);
    let t = good(&with(|c| {
        c.remove("nonce");
    }));
    assert_eq!(check(&t).unwrap_err(), IdTokenError::NonceMismatch);
}

#[test]
fn sub_is_required() {
    for sub in [None, Some(json!("")), Some(json!(5))] {
        let t = good(&with(|c| match &sub {
            Some(v) => {
                c.insert("sub".into(), v.clone());
            }
            None => {
                c.remove("sub");
            }
        }));
        assert_eq!(check(&t).unwrap_err(), IdTokenError::MissingClaim("sub"));
    }
}

#[test]
fn max_age_checks_auth_time() {
    let algs = rs256();
    let mut e = expected(&algs, None);
    e.max_age = Some(10);
    // auth_time NOW-30, max_age 10, leeway 60 → ok; NOW-100 → too old.
    assert!(verify(&good(&claims()), &keys(), &e).is_ok());
    let t = good(&with(|c| {
        c.insert("auth_time".into(), json!(NOW - 100));
    }));
    assert_eq!(verify(&t, &keys(), &e).unwrap_err(), IdTokenError::AuthTimeTooOld);
    let t = good(&with(|c| {
        c.remove("auth_time");
    }));
    assert_eq!(verify(&t, &keys(), &e).unwrap_err(), IdTokenError::AuthTimeTooOld);
}

#[test]
fn organization_checks() {
    let algs = rs256();
    let mut e = expected(&algs, None);
    e.organization = Some("org_abc");
    assert!(verify(&good(&claims()), &keys(), &e).is_ok());
    e.organization = Some("org_other");
    assert_eq!(
        verify(&good(&claims()), &keys(), &e).unwrap_err(),
        IdTokenError::OrganizationMismatch
    );
    e.organization = Some("ACME");
    assert!(
        verify(&good(&claims()), &keys(), &e).is_ok(),
        "org_name compares case-insensitively"
    );
    e.organization = Some("globex");
    assert_eq!(
        verify(&good(&claims()), &keys(), &e).unwrap_err().code(),
        "organization_mismatch"
    );
}

#[test]
fn at_hash_must_match_the_access_token() {
    use crate::protocol::token::check_at_hash;
    // at_hash = base64url(left half of SHA-256(access_token))
    let at = "access-token-value";
    let digest = <sha2::Sha256 as sha2::Digest>::digest(at.as_bytes());
    let good_hash = URL_SAFE_NO_PAD.encode(&digest[..16]);
    let c = with(|c| {
        c.insert("at_hash".into(), json!(good_hash));
    });
    assert!(check_at_hash(c.as_object().unwrap(), "RS256", at).is_ok());
    assert_eq!(
        check_at_hash(c.as_object().unwrap(), "RS256", "other")
            .unwrap_err()
            .code(),
        "at_hash_mismatch"
    );
    assert!(
        check_at_hash(claims().as_object().unwrap(), "RS256", at).is_ok(),
        "absent at_hash is fine"
    );
}

/// Found while seeding the `logout_token` fuzz target: a validly signed token whose header
/// lists critical extensions (`crit`, RFC 7515 §4.1.11) was accepted.
#[test]
fn critical_header_extensions_are_refused() {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("k1".into());
    h.crit = Some(vec!["b64".into()]);
    let token = encode(
        &h,
        &claims(),
        &EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(check(&token).unwrap_err(), IdTokenError::Malformed);
    assert!(check(&good(&claims())).is_ok());
}

/// Issue 10 item 8: the algorithm family is pinned at the client. HS* tokens keyed with the
/// client secret used to be accepted whenever the provider advertised HS256 and the client
/// had a secret; now only when the app opts in.
mod symmetric {
    use std::time::Duration;

    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    use crate::discovery::tests::{Server, serve};
    use crate::error::{Error, IdTokenError, LogoutTokenError};
    use crate::flows::backchannel::BACKCHANNEL_LOGOUT_EVENT;
    use crate::time::now;
    use crate::{ClientAuth, ServerClient};

    const CLIENT_SECRET: &str = "client-secret-0123456789abcdef-xyz";

    async fn provider() -> Server {
        let s = serve(None, Duration::ZERO).await;
        *s.metadata_extra.lock().unwrap() =
            json!({"id_token_signing_alg_values_supported": ["RS256", "HS256"]});
        s
    }

    fn client(s: &Server, allow: bool) -> ServerClient {
        ServerClient::builder()
            .issuer(s.base.clone())
            .client_id("client-1")
            .client_auth(ClientAuth::secret(CLIENT_SECRET))
            .secret("0123456789abcdef0123456789abcdef-secret")
            .app_base_url("http://localhost:3000")
            .allow_symmetric_id_tokens(allow)
            .build()
            .unwrap()
    }

    fn hs256(header: Header, claims: &serde_json::Value) -> String {
        encode(
            &header,
            claims,
            &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn id_token(issuer: &str) -> String {
        let n = now();
        hs256(
            Header::new(Algorithm::HS256),
            &json!({"iss": issuer, "sub": "user-1", "aud": "client-1", "iat": n, "exp": n + 600}),
        )
    }

    fn logout_token(issuer: &str, jti: &str) -> String {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("logout+jwt".into());
        let n = now();
        hs256(
            h,
            &json!({"iss": issuer, "aud": "client-1", "iat": n, "exp": n + 120, "jti": jti,
                    "sid": "sid-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}),
        )
    }

    #[tokio::test]
    async fn hs256_id_token_is_refused_by_default_even_if_advertised() {
        let s = provider().await;
        let c = client(&s, false);
        let meta = c.metadata().await.unwrap();
        assert!(
            meta.id_token_signing_alg_values_supported
                .contains(&"HS256".to_owned())
        );
        let e = c
            .validate_id_token(&meta, &id_token(&meta.issuer), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::IdToken(IdTokenError::UnsupportedAlgorithm(a)) if a == "HS256"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn hs256_id_token_is_accepted_with_the_opt_in() {
        let s = provider().await;
        let c = client(&s, true);
        let meta = c.metadata().await.unwrap();
        let claims = c
            .validate_id_token(&meta, &id_token(&meta.issuer), None)
            .await
            .unwrap();
        assert_eq!(claims["sub"], "user-1");
        // Still only when advertised.
        *s.metadata_extra.lock().unwrap() = json!({"id_token_signing_alg_values_supported": ["RS256"]});
        let c = ServerClient::builder()
            .issuer(s.base.clone())
            .client_id("client-1")
            .client_auth(ClientAuth::secret(CLIENT_SECRET))
            .secret("0123456789abcdef0123456789abcdef-secret")
            .app_base_url("http://localhost:3000")
            .allow_symmetric_id_tokens(true)
            .build()
            .unwrap();
        let meta = c.metadata().await.unwrap();
        assert_eq!(
            c.validate_id_token(&meta, &id_token(&meta.issuer), None)
                .await
                .unwrap_err()
                .code(),
            "id_token_invalid"
        );
    }

    #[tokio::test]
    async fn hs256_logout_token_needs_the_same_opt_in() {
        let s = provider().await;
        let c = client(&s, false);
        let meta = c.metadata().await.unwrap();
        let e = c
            .handle_backchannel_logout(&logout_token(&meta.issuer, "jti-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::LogoutToken(LogoutTokenError::Jws(IdTokenError::UnsupportedAlgorithm(a))) if a == "HS256"
            ),
            "{e:?}"
        );
        let c = client(&s, true);
        let done = c
            .handle_backchannel_logout(&logout_token(&meta.issuer, "jti-2"))
            .await
            .unwrap();
        assert_eq!(done.sid.as_deref(), Some("sid-1"));
    }

    #[test]
    fn the_opt_in_needs_a_client_secret() {
        let e = ServerClient::builder()
            .issuer("https://idp.example.com/")
            .client_id("client-1")
            .client_auth(ClientAuth::none())
            .secret("0123456789abcdef0123456789abcdef-secret")
            .app_base_url("http://localhost:3000")
            .allow_symmetric_id_tokens(true)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Config(crate::ConfigError::Invalid {
                    name: "allow_symmetric_id_tokens",
                    ..
                })
            ),
            "{e:?}"
        );
    }
}
