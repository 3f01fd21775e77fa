//! `GET /userinfo`.

use serde_json::{Value, json};

use super::issue::released_claims;
use crate::auth0::Shared;
use crate::auth0::state::State;
use crate::auth0::wire::{Answer, Refusal, Req};

/// `GET /userinfo` with an access token whose scope has `openid`.
pub(crate) fn userinfo(sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Answer, Refusal> {
    const WHAT: &str = "/userinfo";
    req.query_params(WHAT)?.only(&[], WHAT)?;
    let Some((scheme, token)) = req.authorization() else {
        return Err(Refusal::oauth_400(
            "invalid_token",
            format!("{WHAT}: no Authorization header"),
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::oauth_400(
            "invalid_token",
            format!("{WHAT}: Authorization scheme {scheme:?} (Bearer expected)"),
        ));
    }
    let claims = sh
        .keys
        .verify(token, &sh.issuer, true)
        .map_err(|e| Refusal::oauth_400("invalid_token", format!("{WHAT}: {e}")))?;
    let scope: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or("")
        .split(' ')
        .map(str::to_owned)
        .collect();
    if !scope.iter().any(|s| s == "openid") {
        return Err(Refusal::oauth_400(
            "insufficient_scope",
            format!("{WHAT}: the access token's scope lacks openid"),
        ));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    let mut body = Value::Object(released_claims(&st.user_claims(sub), &scope));
    body["sub"] = json!(sub);
    Ok(Answer::json(200, &body))
}
