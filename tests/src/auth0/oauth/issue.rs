//! What tokens say: the token response (access token, ID token when `openid`), the user's
//! claims released by scope, organization claims, and new refresh tokens.

use serde_json::{Map, Value, json};

use crate::auth0::Shared;
use crate::auth0::state::{RefreshGrant, State};
use crate::auth0::wire::{now, random_token};

/// Lifetime of an ID token.
pub(crate) const ID_TOKEN_TTL: u64 = 36_000;

/// Scopes that are about the user, not an API.
pub(super) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Claims released with the `profile` scope.
const PROFILE_CLAIMS: [&str; 14] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];
/// Claims released with the `email` scope.
const EMAIL_CLAIMS: [&str; 2] = ["email", "email_verified"];

/// What to put in a token response.
pub(super) struct Issue<'a> {
    pub(super) client_id: &'a str,
    pub(super) sub: &'a str,
    pub(super) sid: &'a str,
    pub(super) scope: &'a [String],
    pub(super) audience: Option<&'a str>,
    pub(super) organization: Option<&'a str>,
    /// `Some` on code exchange (refreshed ID tokens carry no nonce).
    pub(super) nonce: Option<&'a str>,
    pub(super) auth_time: Option<u64>,
}

/// `{access_token, id_token?, token_type, expires_in, scope}`; an ID token when `openid` is in
/// the scope.
pub(super) fn issue_tokens(sh: &Shared, st: &State, issue: &Issue<'_>) -> Value {
    let now = now();
    let scope = issue.scope.join(" ");
    let audience = issue
        .audience
        .map_or_else(|| sh.userinfo_audience(), str::to_owned);
    let org = organization_claims(st.token_organization.as_deref().or(issue.organization));
    let mut at = json!({
        "iss": sh.issuer,
        "sub": issue.sub,
        "aud": audience,
        "azp": issue.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + sh.opts.access_token_ttl,
        "jti": random_token(12),
    });
    merge(&mut at, &org);
    let mut body = json!({
        "access_token": sh.keys.sign(&at),
        "token_type": "Bearer",
        "expires_in": sh.opts.access_token_ttl,
        "scope": scope,
    });
    if issue.scope.iter().any(|s| s == "openid") {
        let mut id = Value::Object(released_claims(&st.user_claims(issue.sub), issue.scope));
        merge(&mut id, &org);
        merge(
            &mut id,
            &json!({
                "iss": sh.issuer,
                "aud": issue.client_id,
                "sub": issue.sub,
                "sid": issue.sid,
                "iat": now,
                "exp": now + ID_TOKEN_TTL,
            }),
        );
        if let Some(nonce) = issue.nonce {
            id["nonce"] = json!(nonce);
        }
        if let Some(auth_time) = issue.auth_time {
            id["auth_time"] = json!(auth_time);
        }
        body["id_token"] = json!(sh.keys.sign(&id));
    }
    body
}

/// `org_id` (and `org_name` when the organization was given by name).
fn organization_claims(organization: Option<&str>) -> Value {
    match organization {
        Some(org) if org.starts_with("org_") => json!({ "org_id": org }),
        Some(name) => json!({
            "org_id": format!("org_{}", name.chars().filter(char::is_ascii_alphanumeric).collect::<String>()),
            "org_name": name.to_lowercase(),
        }),
        None => json!({}),
    }
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// The user's claims filtered by scope, as Auth0 releases them.
pub(crate) fn released_claims(claims: &Value, scope: &[impl AsRef<str>]) -> Map<String, Value> {
    let has = |s: &str| scope.iter().any(|t| t.as_ref() == s);
    claims
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(k, _)| {
                    if PROFILE_CLAIMS.contains(&k.as_str()) {
                        has("profile")
                    } else if EMAIL_CLAIMS.contains(&k.as_str()) {
                        has("email")
                    } else {
                        true
                    }
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A new refresh token for `grant`, kept in the state.
pub(crate) fn new_refresh_token(st: &mut State, grant: RefreshGrant) -> String {
    let token = format!("v1.emu-rt.{}", random_token(32));
    st.refresh_tokens.insert(token.clone(), grant);
    token
}

// ---------------------------------------------------------------------------------------------
// Revocation, userinfo, logout
