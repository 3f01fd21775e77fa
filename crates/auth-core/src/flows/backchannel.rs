//! OIDC Back-Channel Logout 1.0: validate the provider's logout token, then end the sessions
//! it names.

use std::time::Duration;

use serde_json::Value;

use crate::client::ServerClient;
use crate::discovery::RefetchSource;
use crate::error::{Error, LogoutTokenError, Result};
use crate::id_token::{Claims, SignatureCheck, verified};
use crate::store::LogoutKey;
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
        let check = SignatureCheck {
            allowed_algs: &meta.id_token_signing_alg_values_supported,
            client_secret: c.symmetric_token_key(),
        };
        // Own refetch slot: anyone can post here, so junk must not spend a login's refetch.
        let source = RefetchSource::LogoutToken;
        let (header, claims) = match verified(&self.inner.discovery, logout_token, &check, source).await {
            Ok(v) => v,
            Err(Error::IdToken(e)) => return Err(reject(LogoutTokenError::Jws(e))),
            Err(e) => return Err(e),
        };
        let (sid, sub, jti, ttl) = check_logout_claims(
            &header,
            &claims,
            &meta.issuer,
            &c.client_id,
            c.clock_leeway.as_secs(),
            now(),
        )?;

        let key = match (&sid, &sub) {
            (Some(sid), _) => LogoutKey::Sid(sid.clone()),
            (None, Some(sub)) => LogoutKey::Sub(sub.clone()),
            (None, None) => return Err(reject(LogoutTokenError::MissingSidAndSub)),
        };
        // Only a fully valid token may consume its jti, and only a logout that took effect
        // keeps it consumed: when ending the sessions fails (the provider gets a 503 and
        // retries), the jti is forgotten so the retry is not refused as a replay.
        let replay_key = format!("bcl:{}:{jti}", meta.issuer);
        if !c.backend.remember_once(&replay_key, ttl).await? {
            return Err(reject(LogoutTokenError::Replayed));
        }
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
