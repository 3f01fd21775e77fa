//! Provider metadata: `/.well-known/openid-configuration` and the JWKS.

use serde_json::json;

use crate::auth0::Shared;
use crate::auth0::wire::{Answer, Refusal, Req};

/// `GET /.well-known/openid-configuration`.
pub(crate) fn discovery(sh: &Shared, req: &Req<'_>) -> Result<Answer, Refusal> {
    req.query_params("discovery")?.only(&[], "discovery")?;
    let i = &sh.issuer;
    Ok(Answer::json(
        200,
        &json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}authorize"),
            "token_endpoint": format!("{i}oauth/token"),
            "device_authorization_endpoint": format!("{i}oauth/device/code"),
            "userinfo_endpoint": format!("{i}userinfo"),
            "mfa_challenge_endpoint": format!("{i}mfa/challenge"),
            "jwks_uri": format!("{i}.well-known/jwks.json"),
            "registration_endpoint": format!("{i}oidc/register"),
            "revocation_endpoint": format!("{i}oauth/revoke"),
            "pushed_authorization_request_endpoint": format!("{i}oauth/par"),
            "end_session_endpoint": format!("{i}oidc/logout"),
            "scopes_supported": ["openid", "profile", "offline_access", "name", "given_name",
                "family_name", "nickname", "email", "email_verified", "picture", "created_at",
                "identities", "phone", "address"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp",
                "family_name", "given_name", "iat", "identities", "iss", "name", "nickname",
                "phone_number", "picture", "sub"],
            "request_uri_parameter_supported": false,
            "request_parameter_supported": false,
            "require_pushed_authorization_requests": false,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "dpop_signing_alg_values_supported": ["ES256"],
        }),
    ))
}

/// `GET /.well-known/jwks.json`.
pub(crate) fn jwks(sh: &Shared, req: &Req<'_>) -> Result<Answer, Refusal> {
    req.query_params("jwks")?.only(&[], "jwks")?;
    Ok(Answer::json(200, sh.keys.jwks()))
}

// ---------------------------------------------------------------------------------------------
// Authorization
