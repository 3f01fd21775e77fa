//! OIDC Back-Channel Logout 1.0: validate the provider's logout token, then end the sessions
//! it names.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::client::ServerClient;
use crate::discovery::{Discovery, KeySet, RefetchSource};
use crate::error::{Error, IdTokenError, LogoutTokenError, Result};
use crate::id_token::{Claims, SignatureCheck, verify_signature};
use crate::store::{LogoutKey, SessionBackend};
use crate::time::now;

/// The event a logout token must carry (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Oldest `iat` accepted: a logout token is delivered at once, so an old one is a replay.
const MAX_TOKEN_AGE: u64 = 600;

/// What a back-channel logout did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackchannelLogout {
    /// The `sid` the token named, if any.
    pub sid: Option<String>,
    /// The `sub` the token named, if any.
    pub sub: Option<String>,
    /// Stored sessions deleted (server-side stores); `None` for cookie sessions, which are
    /// refused from now on through the logout list instead.
    pub sessions_deleted: Option<usize>,
}

fn reject(e: LogoutTokenError) -> Error {
    Error::LogoutToken(e)
}

impl ServerClient {
    /// Handles a back-channel logout request's `logout_token`: validates it (§2.6: signature
    /// by JWKS, `iss`, `aud`, `iat`, `exp`, `jti` not seen before, the logout `event`, `sid`
    /// or `sub`, no `nonce`) and ends the sessions it names — by `sid` when present, else
    /// every session of `sub`.
    ///
    /// Nothing is changed unless the token is valid.
    ///
    /// # Errors
    /// [`Error::LogoutToken`] naming the failed rule (answer `400`); transport errors while
    /// fetching keys; store errors.
    pub async fn handle_backchannel_logout(&self, logout_token: &str) -> Result<BackchannelLogout> {
        let c = &self.inner.config;
        let meta = self.metadata().await?;
        let rules = LogoutTokenRules {
            signature: SignatureCheck {
                allowed_algs: &meta.id_token_signing_alg_values_supported,
                client_secret: c.symmetric_token_key(),
            },
            issuer: &meta.issuer,
            client_id: &c.client_id,
            leeway: c.clock_leeway.as_secs(),
            now: now(),
        };
        let keys = self.inner.discovery.jwks().await?;
        let AcceptedLogoutToken {
            sid,
            sub,
            key,
            replay_key,
            ..
        } = accept_logout_token(
            logout_token,
            &keys,
            Some(&self.inner.discovery),
            &rules,
            c.backend.as_ref(),
        )
        .await?;
        let deleted = match self.apply_logout(&key).await {
            Ok(deleted) => deleted,
            Err(e) => {
                if let Err(forget) = c.backend.forget_once(&replay_key).await {
                    tracing::warn!(
                        error = %forget,
                        "back-channel logout failed and its jti could not be released; \
                         the provider's retry will be refused as a replay"
                    );
                }
                return Err(e);
            }
        };
        tracing::info!(by_sid = sid.is_some(), deleted = ?deleted, "back-channel logout");
        Ok(BackchannelLogout {
            sid,
            sub,
            sessions_deleted: deleted,
        })
    }
}

impl ServerClient {
    /// Ends the sessions `key` names: deletes stored ones, or (cookie sessions, which cannot
    /// be reached) records the logout, in milliseconds, for as long as any session it covers
    /// could live. A session created after this point, even within the same second, is not
    /// affected.
    async fn apply_logout(&self, key: &LogoutKey) -> Result<Option<usize>> {
        let c = &self.inner.config;
        let deleted = self.end_sessions(key).await?;
        if deleted.is_none() {
            c.backend
                .record_logout(key, crate::client::now_ms(), c.lifetimes.absolute)
                .await?;
        }
        Ok(deleted)
    }
}

/// What a logout token is checked against.
pub(crate) struct LogoutTokenRules<'a> {
    /// The algorithms (and, for HS*, the key) the signature may use.
    pub(crate) signature: SignatureCheck<'a>,
    /// The provider's `iss`.
    pub(crate) issuer: &'a str,
    /// Our `client_id`, which `aud` must name.
    pub(crate) client_id: &'a str,
    /// Clock skew allowed on `iat` and `exp`, in seconds.
    pub(crate) leeway: u64,
    /// The time the token is checked at, seconds since the epoch.
    pub(crate) now: u64,
}

/// A logout token that passed every rule and whose `jti` is now consumed.
#[derive(Debug)]
pub(crate) struct AcceptedLogoutToken {
    pub(crate) sid: Option<String>,
    pub(crate) sub: Option<String>,
    /// The sessions to end: by `sid` when the token names one, else by `sub`.
    pub(crate) key: LogoutKey,
    #[cfg_attr(not(any(test, feature = "internal")), allow(dead_code))]
    pub(crate) jti: String,
    /// The backend key that holds the consumed `jti`; released when the logout fails.
    pub(crate) replay_key: String,
    /// How long the `jti` is remembered.
    #[cfg_attr(not(any(test, feature = "internal")), allow(dead_code))]
    pub(crate) remember_for: Duration,
}

/// The one validation of a back-channel logout token, used by
/// [`ServerClient::handle_backchannel_logout`] and (through `crate::internal`) the
/// `logout_token` fuzz target: the compact JWS verified with `keys` (refetched once from
/// `refetch` on an unknown `kid`), the §2.6 claim rules ([`check_logout_claims`]), then the
/// `jti` consumed in `backend`. Only a fully valid token consumes its `jti`.
///
/// # Errors
/// [`Error::LogoutToken`] naming the failed rule ([`LogoutTokenError::Replayed`] for a `jti`
/// already consumed); transport errors of the refetch; store errors.
pub(crate) async fn accept_logout_token(
    token: &str,
    keys: &Arc<KeySet>,
    refetch: Option<&Discovery>,
    rules: &LogoutTokenRules<'_>,
    backend: &dyn SessionBackend,
) -> Result<AcceptedLogoutToken> {
    let jws = |e: IdTokenError| reject(LogoutTokenError::Jws(e));
    let (header, claims) = match verify_signature(token, keys, &rules.signature) {
        Err(IdTokenError::UnknownKey) => {
            // Own refetch slot: anyone can post here, so junk must not spend a login's refetch.
            let fresh = match refetch {
                Some(discovery) => {
                    discovery
                        .jwks_after_unknown_kid(keys, RefetchSource::LogoutToken)
                        .await?
                }
                None => None,
            };
            let fresh = fresh.ok_or(jws(IdTokenError::UnknownKey))?;
            verify_signature(token, &fresh, &rules.signature).map_err(jws)?
        }
        other => other.map_err(jws)?,
    };
    let (sid, sub, jti, remember_for) = check_logout_claims(
        &header,
        &claims,
        rules.issuer,
        rules.client_id,
        rules.leeway,
        rules.now,
    )?;
    let key = match (&sid, &sub) {
        (Some(sid), _) => LogoutKey::Sid(sid.clone()),
        (None, Some(sub)) => LogoutKey::Sub(sub.clone()),
        (None, None) => return Err(reject(LogoutTokenError::MissingSidAndSub)),
    };
    // Only a fully valid token may consume its jti (the caller releases it again when ending
    // the sessions fails, so the provider's retry is not refused as a replay).
    let replay_key = format!("bcl:{}:{jti}", rules.issuer);
    if !backend.remember_once(&replay_key, remember_for).await? {
        return Err(reject(LogoutTokenError::Replayed));
    }
    Ok(AcceptedLogoutToken {
        sid,
        sub,
        key,
        jti,
        replay_key,
        remember_for,
    })
}

type Checked = (Option<String>, Option<String>, String, Duration);

/// The claim rules of §2.6 after the signature verified. Returns (sid, sub, jti, how long to
/// remember the jti).
pub(crate) fn check_logout_claims(
    header: &Claims,
    claims: &Claims,
    issuer: &str,
    client_id: &str,
    leeway: u64,
    now: u64,
) -> Result<Checked> {
    match header.get("typ").and_then(Value::as_str) {
        None => {}
        Some(t)
            if ["logout+jwt", "application/logout+jwt", "jwt"].contains(&t.to_ascii_lowercase().as_str()) => {
        }
        Some(_) => return Err(reject(LogoutTokenError::WrongType)),
    }
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(reject(LogoutTokenError::IssuerMismatch));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(reject(LogoutTokenError::AudienceMismatch));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(reject(LogoutTokenError::BadIssuedAt))?;
    if iat > now.saturating_add(leeway) || iat.saturating_add(MAX_TOKEN_AGE + leeway) < now {
        return Err(reject(LogoutTokenError::BadIssuedAt));
    }
    let exp = match claims.get("exp") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(reject(LogoutTokenError::Expired))?),
    };
    if exp.is_some_and(|e| now > e.saturating_add(leeway)) {
        return Err(reject(LogoutTokenError::Expired));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(reject(LogoutTokenError::MissingJti))?;
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(Value::is_object);
    if !has_event {
        return Err(reject(LogoutTokenError::MissingEvent));
    }
    if claims.contains_key("nonce") {
        return Err(reject(LogoutTokenError::NoncePresent));
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .map(str::to_owned)
    };
    let (sid, sub) = (text("sid"), text("sub"));
    if sid.is_none() && sub.is_none() {
        return Err(reject(LogoutTokenError::MissingSidAndSub));
    }
    // Remember the jti until no copy of the token can pass the iat/exp checks any more: the
    // iat check alone refuses it after `iat + MAX_TOKEN_AGE + leeway`, whatever `exp` says (a
    // far-future `exp` must neither overflow nor stretch the window).
    let until = iat.saturating_add(MAX_TOKEN_AGE).saturating_add(leeway);
    let ttl = Duration::from_secs(until.saturating_sub(now).max(1));
    Ok((sid, sub, jti.to_owned(), ttl))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Value {
        json!({
            "iss": "https://idp/", "aud": "client", "iat": NOW - 5, "exp": NOW + 120, "jti": "j1",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}}, "sid": "s1", "sub": "u1"
        })
    }

    fn run(header: Value, claims: Value) -> std::result::Result<Checked, String> {
        check_logout_claims(
            header.as_object().unwrap(),
            claims.as_object().unwrap(),
            "https://idp/",
            "client",
            60,
            NOW,
        )
        .map_err(|e| match e {
            Error::LogoutToken(l) => l.code().to_owned(),
            other => other.code().to_owned(),
        })
    }

    fn without(field: &str) -> Value {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(field);
        c
    }

    fn with(field: &str, v: Value) -> Value {
        let mut c = claims();
        c[field] = v;
        c
    }

    #[test]
    fn every_rule_has_its_code() {
        let h = json!({"alg": "RS256", "typ": "logout+jwt"});
        let (sid, sub, jti, ttl) = run(h.clone(), claims()).unwrap();
        assert_eq!(
            (sid.as_deref(), sub.as_deref(), jti.as_str()),
            (Some("s1"), Some("u1"), "j1")
        );
        assert!(ttl.as_secs() >= MAX_TOKEN_AGE);
        assert!(run(json!({"alg": "RS256"}), claims()).is_ok(), "typ is optional");
        assert_eq!(run(json!({"typ": "at+jwt"}), claims()).unwrap_err(), "wrong_type");
        assert_eq!(
            run(h.clone(), with("iss", json!("https://other/"))).unwrap_err(),
            "issuer_mismatch"
        );
        assert_eq!(
            run(h.clone(), with("aud", json!(["x", "y"]))).unwrap_err(),
            "audience_mismatch"
        );
        assert!(run(h.clone(), with("aud", json!(["x", "client"]))).is_ok());
        assert_eq!(run(h.clone(), without("iat")).unwrap_err(), "bad_iat");
        assert_eq!(
            run(h.clone(), with("iat", json!(NOW + 600))).unwrap_err(),
            "bad_iat"
        );
        assert_eq!(
            run(h.clone(), with("iat", json!(NOW - 3600))).unwrap_err(),
            "bad_iat"
        );
        assert_eq!(
            run(h.clone(), with("exp", json!(NOW - 120))).unwrap_err(),
            "expired"
        );
        assert!(run(h.clone(), without("exp")).is_ok(), "exp is optional");
        assert_eq!(run(h.clone(), without("jti")).unwrap_err(), "missing_jti");
        assert_eq!(run(h.clone(), without("events")).unwrap_err(), "missing_event");
        assert_eq!(
            run(h.clone(), with("events", json!({"other": {}}))).unwrap_err(),
            "missing_event"
        );
        assert_eq!(
            run(h.clone(), with("events", json!({BACKCHANNEL_LOGOUT_EVENT: "x"}))).unwrap_err(),
            "missing_event"
        );
        assert_eq!(
            run(h.clone(), with("nonce", json!("n"))).unwrap_err(),
            "nonce_present"
        );
        let mut neither = without("sid");
        neither.as_object_mut().unwrap().remove("sub");
        assert_eq!(run(h.clone(), neither).unwrap_err(), "missing_sid_and_sub");
        assert!(run(h.clone(), without("sid")).is_ok(), "sub alone is enough");
        assert!(run(h, without("sub")).is_ok(), "sid alone is enough");
    }

    /// The one validation the handler and the fuzz target share: signature, claims, then the
    /// jti, which only a fully valid token consumes.
    #[tokio::test]
    async fn accept_checks_signature_then_claims_then_consumes_the_jti() {
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, encode};

        use crate::discovery::VerificationKey;
        use crate::store::MemoryBackend;

        const EC1: &str = include_str!("../../testdata/ec1.pem");
        const EC1_PUB: &str = include_str!("../../testdata/ec1.pub.pem");
        const RSA1: &str = include_str!("../../testdata/rsa1.pem");
        let keys = Arc::new(KeySet::for_tests(vec![VerificationKey {
            kid: Some("e1".into()),
            alg: None,
            kty: "EC",
            key: DecodingKey::from_ec_pem(EC1_PUB.as_bytes()).unwrap(),
        }]));
        let sign = |kid: &str, claims: &Value| {
            let mut h = Header::new(Algorithm::ES256);
            h.kid = Some(kid.to_owned());
            h.typ = Some("logout+jwt".into());
            encode(&h, claims, &EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap()).unwrap()
        };
        let algs = vec!["ES256".to_owned(), "RS256".to_owned()];
        let rules = LogoutTokenRules {
            signature: SignatureCheck {
                allowed_algs: &algs,
                client_secret: None,
            },
            issuer: "https://idp/",
            client_id: "client",
            leeway: 60,
            now: NOW,
        };
        let backend = MemoryBackend::new();
        let code = |r: Result<AcceptedLogoutToken>| match r.unwrap_err() {
            Error::LogoutToken(l) => l.code().to_owned(),
            other => panic!("not a logout token error: {other:?}"),
        };

        // Refused claims consume nothing: the same jti is accepted once the token is right.
        let wrong_aud = sign("e1", &with("aud", json!("other")));
        let r = accept_logout_token(&wrong_aud, &keys, None, &rules, &backend).await;
        assert_eq!(code(r), "audience_mismatch");
        let token = sign("e1", &claims());
        let ok = accept_logout_token(&token, &keys, None, &rules, &backend)
            .await
            .unwrap();
        assert_eq!(ok.key, LogoutKey::Sid("s1".into()));
        assert_eq!(
            (ok.jti.as_str(), ok.replay_key.as_str()),
            ("j1", "bcl:https://idp/:j1")
        );
        assert!(ok.remember_for.as_secs() >= MAX_TOKEN_AGE);
        let again = accept_logout_token(&token, &keys, None, &rules, &backend).await;
        assert_eq!(code(again), "replayed");

        // Signature failures: an unknown kid (nothing to refetch from), a key of another type.
        let unknown = sign("e2", &with("jti", json!("j2")));
        let r = accept_logout_token(&unknown, &keys, None, &rules, &backend).await;
        assert!(matches!(
            r,
            Err(Error::LogoutToken(LogoutTokenError::Jws(
                IdTokenError::UnknownKey
            )))
        ));
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("e1".into());
        let rsa = encode(
            &h,
            &with("jti", json!("j3")),
            &EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap(),
        )
        .unwrap();
        let r = accept_logout_token(&rsa, &keys, None, &rules, &backend).await;
        assert!(matches!(r, Err(Error::LogoutToken(LogoutTokenError::Jws(_)))));
        assert!(
            backend
                .remember_once("bcl:https://idp/:j2", Duration::from_secs(1))
                .await
                .unwrap()
                && backend
                    .remember_once("bcl:https://idp/:j3", Duration::from_secs(1))
                    .await
                    .unwrap(),
            "a refused signature consumed its jti"
        );
    }

    /// Found by the `logout_token` fuzz target: `exp` near `u64::MAX` overflowed the replay
    /// window (a panic with overflow checks, a 1-second window without them).
    #[test]
    fn far_future_exp_keeps_a_bounded_replay_window() {
        let h = json!({"alg": "ES256", "typ": "logout+jwt"});
        for exp in [u64::MAX, u64::MAX - 60, NOW + 100_000] {
            let (_, _, _, ttl) = run(h.clone(), with("exp", json!(exp))).unwrap();
            let ttl = ttl.as_secs();
            assert!(ttl <= MAX_TOKEN_AGE + 60, "exp {exp}: {ttl} s");
            // Once the jti is forgotten, the same token no longer passes.
            let later = check_logout_claims(
                h.as_object().unwrap(),
                with("exp", json!(exp)).as_object().unwrap(),
                "https://idp/",
                "client",
                60,
                NOW + ttl + 1,
            );
            assert!(later.is_err(), "exp {exp}: still valid after {ttl} s");
        }
    }
}
