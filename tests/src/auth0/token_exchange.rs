//! Custom Token Exchange (RFC 8693, Auth0 flavour) at the emulated token endpoint.
//!
//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` with `subject_token`,
//! `subject_token_type`, optional `audience`, `scope`, `organization`, `actor_token` +
//! `actor_token_type`, client authentication, and any extra parameter (Auth0 hands them to the
//! profile's Action as `event.request.body`; they are recorded). Strict checks (genuine
//! refusals): both subject fields present, a `subject_token_type` that is an absolute URI outside
//! Auth0's reserved namespaces, a Token Exchange Profile registered for it
//! ([`Auth0Emulator::token_exchange_profile`]; none → `400 invalid_request`), actor fields in
//! pairs, a well-formed scope.
//!
//! The profile's Action is scripted per `subject_token_type` ([`ExchangeAction`]); its refusals
//! are recorded as injected (they are the scenario, not a client defect): an unknown subject
//! token → `400 invalid_request` (`api.access.rejectInvalidSubjectToken`), `Deny` → `403` with
//! the given code (`api.access.deny`; the wire fixes the code, not the status),
//! `TooManyAttempts` → `429 too_many_attempts`.
//!
//! Success: `{access_token, issued_token_type, token_type: "Bearer", expires_in, scope}`, an
//! `id_token` (no nonce) with `openid`, a `refresh_token` with `offline_access` unless an actor
//! is set. With a DPoP proof the tokens are then bound (see `dpop.rs`).

use std::collections::HashMap;

use serde_json::json;

use super::state::{RefreshGrant, State};
use super::wire::{Answer, Params, Refusal, now, parse_scope, random_token};
use super::{Auth0Emulator, Shared};

/// The RFC 8693 grant type.
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The `issued_token_type` of the access token.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Lifetime of an ID token.
const ID_TOKEN_TTL: u64 = 36_000;
/// Parameters that belong to other grants or to client authentication, never here.
const FOREIGN: [&str; 7] = [
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "requested_token_type",
    "connection",
    "auth_req_id",
];

/// What a Token Exchange Profile's Action does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeAction {
    /// Accepts exactly `subject_token` and sets the user `sub` (profile claims from
    /// [`Auth0Emulator::set_user`]); any other subject token is rejected with
    /// `400 invalid_request` (`api.access.rejectInvalidSubjectToken`).
    SetUser {
        /// The one valid subject token.
        subject_token: String,
        /// The user it stands for.
        sub: String,
    },
    /// `api.access.deny(code, reason)`: `403 {"error": code}`.
    Deny {
        /// The error code.
        code: String,
        /// The reason (`error_description`).
        description: String,
    },
    /// Too many invalid subject tokens from this IP: `429 too_many_attempts`.
    TooManyAttempts,
}

/// Token Exchange Profiles by `subject_token_type`.
#[derive(Debug, Default)]
pub(crate) struct ExchangeState {
    profiles: HashMap<String, ExchangeAction>,
}

impl Auth0Emulator {
    /// Registers (or replaces) the Token Exchange Profile for `subject_token_type`, whose
    /// Action does `action`.
    pub fn token_exchange_profile(&self, subject_token_type: &str, action: ExchangeAction) {
        self.shared
            .lock()
            .token_exchange
            .profiles
            .insert(subject_token_type.to_owned(), action);
    }
}

/// Whether `value` is in a namespace Auth0 reserves.
fn reserved(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["urn:ietf:", "urn:auth0:", "urn:okta:"]
        .iter()
        .any(|p| lower.starts_with(p))
        || ["auth0.com", "okta.com"].iter().any(|d| {
            ["http://", "https://"].iter().any(|s| {
                lower
                    .strip_prefix(s)
                    .and_then(|rest| rest.split(['/', ':', '?', '#']).next())
                    .is_some_and(|host| host == *d || host.ends_with(&format!(".{d}")))
            })
        })
}

fn scripted(status: u16, error: &str, description: String) -> Answer {
    let mut answer = Answer::token_json(status, &json!({"error": error, "error_description": description}));
    answer.error = Some(error.to_owned());
    answer.reason = Some(format!("scripted by the Token Exchange Profile: {description}"));
    answer.injected = true;
    answer
}

/// `POST /oauth/token` with the token-exchange grant.
pub(crate) fn grant(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (token-exchange)";
    if let Some(name) = FOREIGN.iter().find(|n| form.has(n)) {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: `{name}` does not belong to the token exchange grant"
        )));
    }
    let subject_token = form.require("subject_token", WHAT)?;
    let subject_token_type = form.require("subject_token_type", WHAT)?;
    for name in ["subject_token_type", "actor_token_type"] {
        let Some(value) = form.get(name) else { continue };
        if reserved(value) {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: {name} {value:?} is in a namespace Auth0 reserves (urn:ietf, urn:auth0, urn:okta, \
                 auth0.com, okta.com)"
            )));
        }
        let uri = url::Url::parse(value).ok();
        if !uri.is_some_and(|u| {
            u.scheme() == "urn" || (matches!(u.scheme(), "http" | "https") && u.host().is_some())
        }) {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: {name} {value:?} is not an absolute URI"
            )));
        }
    }
    if form.has("actor_token") != form.has("actor_token_type") {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: actor_token and actor_token_type go together"
        )));
    }
    let scope = match form.get("scope") {
        Some(s) => parse_scope(s, WHAT)?,
        None => Vec::new(),
    };
    let Some(action) = st.token_exchange.profiles.get(subject_token_type).cloned() else {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: no Token Exchange Profile for subject_token_type {subject_token_type:?} (registered: {})",
            st.token_exchange
                .profiles
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let sub = match action {
        ExchangeAction::SetUser {
            subject_token: valid,
            sub,
        } => {
            if subject_token != valid {
                return Ok(scripted(
                    400,
                    "invalid_request",
                    "Invalid subject token (rejectInvalidSubjectToken)".to_owned(),
                ));
            }
            sub
        }
        ExchangeAction::Deny { code, description } => return Ok(scripted(403, &code, description)),
        ExchangeAction::TooManyAttempts => {
            return Ok(scripted(
                429,
                "too_many_attempts",
                "Too many invalid subject tokens from this IP".to_owned(),
            ));
        }
    };

    let now = now();
    let audience = form
        .get("audience")
        .map_or_else(|| sh.userinfo_audience(), str::to_owned);
    let scope_str = scope.join(" ");
    let org = form.get("organization").map(|o| {
        if o.starts_with("org_") {
            o.to_owned()
        } else {
            format!(
                "org_{}",
                o.chars().filter(char::is_ascii_alphanumeric).collect::<String>()
            )
        }
    });
    let mut at = json!({
        "iss": sh.issuer, "sub": sub, "aud": audience, "azp": client_id, "scope": scope_str,
        "iat": now, "exp": now + sh.opts.access_token_ttl, "jti": random_token(12),
    });
    if let Some(o) = &org {
        at["org_id"] = json!(o);
    }
    if form.has("actor_token") {
        at["act"] = json!({ "sub": "actor" });
    }
    let mut body = json!({
        "access_token": sh.keys.sign(&at),
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": sh.opts.access_token_ttl,
        "scope": scope_str,
    });
    let has = |s: &str| scope.iter().any(|t| t == s);
    if has("openid") {
        let profile = st.user_claims(&sub);
        let mut id = json!({
            "iss": sh.issuer, "aud": client_id, "sub": sub, "iat": now, "exp": now + ID_TOKEN_TTL,
        });
        if let Some(map) = profile.as_object() {
            for (k, v) in map {
                let released = match k.as_str() {
                    "email" | "email_verified" => has("email"),
                    "name" | "nickname" | "picture" | "given_name" | "family_name" => has("profile"),
                    _ => true,
                };
                if released {
                    id[k] = v.clone();
                }
            }
        }
        if let Some(o) = &org {
            id["org_id"] = json!(o);
        }
        body["id_token"] = json!(sh.keys.sign(&id));
    }
    if has("offline_access") && !form.has("actor_token") {
        let token = format!("v1.emu-rt.{}", random_token(32));
        st.refresh_tokens.insert(
            token.clone(),
            RefreshGrant {
                client_id: client_id.to_owned(),
                sub: sub.clone(),
                sid: random_token(16),
                scope: scope.clone(),
                audience: form.get("audience").map(str::to_owned),
                organization: org.clone(),
                revoked: None,
            },
        );
        body["refresh_token"] = json!(token);
    }
    Ok(Answer::token_json(200, &body))
}

#[cfg(test)]
mod tests {
    use super::reserved;

    #[test]
    fn reserved_namespaces() {
        assert!(reserved("urn:ietf:params:oauth:token-type:jwt"));
        assert!(reserved("https://auth0.com/x"));
        assert!(reserved("http://tenant.okta.com/x"));
        assert!(!reserved("urn:acme:legacy-token"));
        assert!(!reserved("https://acme.com/token-type/v1"));
    }
}
