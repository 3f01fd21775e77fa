//! OAuth/OIDC endpoints: discovery, JWKS, `/authorize`, PAR, `/oauth/token` (authorization
//! code, refresh with MRRT, Token Vault), revocation, userinfo and both logout endpoints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::keys::aud_contains;
use super::state::{AuthzRequest, CodeGrant, Mode, ParEntry, RefreshGrant, State};
use super::wire::{
    Answer, Params, Refusal, Req, check_challenge, check_verifier, form_decode, now, parse_scope,
    random_token, s256, with_params,
};
use super::{
    FEDERATED_TOKEN_TYPE, MY_ACCOUNT_SCOPES, REFRESH_TOKEN_TYPE, RecordedRequest, Shared,
    TOKEN_VAULT_GRANT_TYPE,
};

/// Lifetime of an authorization code.
const CODE_TTL: u64 = 600;
/// Lifetime of a pushed authorization request (`expires_in`).
const PAR_TTL: u64 = 60;
/// Lifetime of an ID token.
pub(crate) const ID_TOKEN_TTL: u64 = 36_000;

/// Scopes that are about the user, not an API.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

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

/// Parameters an authorization request must never carry, and why.
const AUTHORIZE_FORBIDDEN: [(&str, &str); 6] = [
    (
        "client_secret",
        "a client secret must never travel through the browser",
    ),
    (
        "code_verifier",
        "the PKCE verifier belongs to the token request, never the authorization request",
    ),
    (
        "client_assertion",
        "client authentication belongs to the token endpoint",
    ),
    (
        "client_assertion_type",
        "client authentication belongs to the token endpoint",
    ),
    ("request", "request objects (JAR) are not enabled on this tenant"),
    ("redirect_url", "the parameter is `redirect_uri`"),
];

// ---------------------------------------------------------------------------------------------
// Discovery

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

/// `GET /authorize` (direct, or `client_id` + `request_uri` after PAR).
pub(crate) fn authorize(sh: &Shared, st: &mut State, req: &Req<'_>) -> Result<Answer, Refusal> {
    const WHAT: &str = "/authorize";
    let params = req.query_params(WHAT)?;
    let request = if let Some(uri) = params.get("request_uri") {
        params.only(
            &["client_id", "request_uri"],
            "/authorize with request_uri (everything else was pushed)",
        )?;
        let client_id = params.require("client_id", WHAT)?;
        let Some(entry) = st.par.get_mut(uri) else {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: unknown request_uri {uri:?} (not issued by /oauth/par)"
            )));
        };
        if entry.used {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: request_uri {uri:?} was already used (it is single-use)"
            )));
        }
        if now() > entry.expires_at {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: request_uri {uri:?} has expired"
            )));
        }
        if entry.request.client_id != client_id {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: request_uri was pushed by client {:?}, not {client_id:?}",
                entry.request.client_id
            )));
        }
        entry.used = true;
        entry.request.clone()
    } else {
        validate_authorization(sh, &params, WHAT)?
    };
    Ok(grant_code(st, request))
}

/// `POST /oauth/par`.
pub(crate) fn par(
    sh: &Shared,
    st: &mut State,
    req: &Req<'_>,
    rec: &mut RecordedRequest,
) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/par";
    if st.par_disabled {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: Pushed Authorization Requests are not enabled for this tenant \
             (test knob `disable_par`)"
        )));
    }
    let form = req.form_params(WHAT)?;
    let client_id = authenticate_client(sh, req, &form, WHAT)?;
    rec.client_id = Some(client_id.clone());
    form.require("client_id", WHAT)?;
    if form.has("request_uri") {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: request_uri must not be pushed"
        )));
    }
    let pairs = form
        .pairs()
        .iter()
        .filter(|(k, _)| k != "client_secret")
        .cloned()
        .collect();
    let params = Params::new(pairs, WHAT)?;
    let request = validate_authorization(sh, &params, WHAT)?;
    let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token(24));
    st.par.insert(
        request_uri.clone(),
        ParEntry {
            request,
            expires_at: now() + PAR_TTL,
            used: false,
        },
    );
    Ok(Answer::token_json(
        201,
        &json!({"request_uri": request_uri, "expires_in": PAR_TTL}),
    ))
}

/// Checks an authorization request (query of `/authorize` or form of PAR without client
/// credentials).
fn validate_authorization(sh: &Shared, params: &Params, what: &str) -> Result<AuthzRequest, Refusal> {
    for (name, why) in AUTHORIZE_FORBIDDEN {
        if params.has(name) {
            return Err(Refusal::invalid_request(format!(
                "{what}: parameter `{name}` is not allowed: {why}"
            )));
        }
    }
    let response_type = params.require("response_type", what)?;
    if response_type != "code" {
        return Err(Refusal::oauth_400(
            "unsupported_response_type",
            format!("{what}: response_type must be `code`, got {response_type:?}"),
        ));
    }
    let client_id = params.require("client_id", what)?;
    if sh.client(client_id).is_none() {
        return Err(Refusal::invalid_request(format!(
            "{what}: unknown client_id {client_id:?}"
        )));
    }
    let redirect_uri = params.require("redirect_uri", what)?;
    if !sh.redirect_uri_allowed(redirect_uri) {
        return Err(Refusal::invalid_request(format!(
            "{what}: redirect_uri {redirect_uri:?} is not an allowed callback URL (exact match against: {})",
            sh.redirect_uris()
        )));
    }
    let state = params.require("state", what)?;
    let nonce = params.require("nonce", what)?;
    let code_challenge = params.require("code_challenge", what)?;
    check_challenge(code_challenge).map_err(|e| Refusal::invalid_request(format!("{what}: {e}")))?;
    let method = params.require("code_challenge_method", what)?;
    if method != "S256" {
        return Err(Refusal::invalid_request(format!(
            "{what}: code_challenge_method must be S256, got {method:?}"
        )));
    }
    let scope_str = params.require("scope", what)?;
    let scope = parse_scope(scope_str, what)?;
    if !scope.iter().any(|s| s == "openid") {
        return Err(Refusal::invalid_request(format!(
            "{what}: scope {scope_str:?} lacks `openid`"
        )));
    }

    let has = |s: &str| scope.iter().any(|t| t == s);
    let mode = match (has("link_account"), has("unlink_account")) {
        (true, true) => {
            return Err(Refusal::invalid_request(format!(
                "{what}: scope {scope_str:?} has both link_account and unlink_account"
            )));
        }
        (true, false) => {
            check_link_scope(&scope, "link_account", what)?;
            let connection = requested_connection(sh, params, what)?;
            Mode::Link {
                connection,
                scope: params.get("requested_connection_scope").map(str::to_owned),
            }
        }
        (false, true) => {
            check_link_scope(&scope, "unlink_account", what)?;
            let connection = requested_connection(sh, params, what)?;
            if params.has("requested_connection_scope") {
                return Err(Refusal::invalid_request(format!(
                    "{what}: requested_connection_scope is not allowed when unlinking"
                )));
            }
            Mode::Unlink { connection }
        }
        (false, false) => {
            for name in ["requested_connection", "requested_connection_scope"] {
                if params.has(name) {
                    return Err(Refusal::invalid_request(format!(
                        "{what}: `{name}` is only valid with scope `openid link_account` or `openid \
                         unlink_account`, and the scope is {scope_str:?}"
                    )));
                }
            }
            Mode::Login
        }
    };

    let hint = match params.get("id_token_hint") {
        Some(hint) => Some(verify_id_token_hint(sh, hint, client_id, what)?),
        None if mode != Mode::Login => {
            return Err(Refusal::invalid_request(format!(
                "{what}: id_token_hint is required to link or unlink accounts (the session's ID token)"
            )));
        }
        None => None,
    };

    if params.has("invitation") && !params.has("organization") {
        return Err(Refusal::invalid_request(format!(
            "{what}: `invitation` requires `organization`"
        )));
    }
    if let Some(prompt) = params.get("prompt") {
        let values: Vec<&str> = prompt.split(' ').collect();
        let known = ["none", "login", "consent", "select_account"];
        if values.iter().any(|v| !known.contains(v)) || (values.contains(&"none") && values.len() > 1) {
            return Err(Refusal::invalid_request(format!(
                "{what}: prompt {prompt:?} is invalid (space-separated none|login|consent|select_account, \
                 `none` alone)"
            )));
        }
    }
    if let Some(hint) = params.get("screen_hint") {
        if !["signup", "login"].contains(&hint) {
            return Err(Refusal::invalid_request(format!(
                "{what}: screen_hint must be `signup` or `login`, got {hint:?}"
            )));
        }
    }
    if let Some(max_age) = params.get("max_age") {
        if max_age.parse::<u64>().is_err() {
            return Err(Refusal::invalid_request(format!(
                "{what}: max_age must be a non-negative integer, got {max_age:?}"
            )));
        }
    }
    let response_mode = params.get("response_mode");
    if let Some(mode) = response_mode {
        if !["query", "form_post"].contains(&mode) {
            return Err(Refusal::invalid_request(format!(
                "{what}: response_mode must be `query` or `form_post` for the code flow, got {mode:?}"
            )));
        }
    }
    let authorization_details = match params.get("authorization_details") {
        Some(raw) => Some(check_authorization_details(raw, what)?),
        None => None,
    };

    let acr_values = super::advanced::check_login_options(params, what)?;
    Ok(AuthzRequest {
        acr_values,
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state: state.to_owned(),
        nonce: nonce.to_owned(),
        code_challenge: code_challenge.to_owned(),
        scope,
        audience: params.get("audience").map(str::to_owned),
        organization: params.get("organization").map(str::to_owned),
        response_mode: response_mode.map(str::to_owned),
        mode,
        hint,
        authorization_details,
    })
}

/// A link/unlink scope must be exactly `openid <action>` plus optionally `offline_access`.
fn check_link_scope(scope: &[String], action: &str, what: &str) -> Result<(), Refusal> {
    let allowed = ["openid", action, "offline_access"];
    if scope.iter().all(|s| allowed.contains(&s.as_str())) {
        Ok(())
    } else {
        Err(Refusal::invalid_request(format!(
            "{what}: with {action} the scope must be exactly `openid {action}` (optionally plus \
             `offline_access`), got {:?}",
            scope.join(" ")
        )))
    }
}

fn requested_connection(sh: &Shared, params: &Params, what: &str) -> Result<String, Refusal> {
    let connection = params.require("requested_connection", what)?;
    if sh.connection(connection).is_none() {
        return Err(Refusal::invalid_request(format!(
            "{what}: requested_connection {connection:?} is not a connection of this tenant ({})",
            sh.opts
                .connections
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(connection.to_owned())
}

fn verify_id_token_hint(sh: &Shared, hint: &str, client_id: &str, what: &str) -> Result<Value, Refusal> {
    let claims = sh.keys.verify(hint, &sh.issuer, false).map_err(|e| {
        Refusal::invalid_request(format!(
            "{what}: id_token_hint is not an ID token issued by this tenant: {e}"
        ))
    })?;
    if !aud_contains(&claims, client_id) {
        return Err(Refusal::invalid_request(format!(
            "{what}: id_token_hint audience {} is not the client {client_id:?}",
            claims["aud"]
        )));
    }
    if claims["sub"].as_str().is_none() {
        return Err(Refusal::invalid_request(format!(
            "{what}: id_token_hint has no sub"
        )));
    }
    Ok(claims)
}

fn check_authorization_details(raw: &str, what: &str) -> Result<Value, Refusal> {
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        Refusal::oauth_400(
            "invalid_authorization_details",
            format!("{what}: authorization_details is not JSON: {e}"),
        )
    })?;
    let ok = value.as_array().is_some_and(|items| {
        items
            .iter()
            .all(|i| i["type"].as_str().is_some_and(|t| !t.is_empty()))
    });
    if !ok {
        return Err(Refusal::oauth_400(
            "invalid_authorization_details",
            format!("{what}: authorization_details must be a JSON array of objects with a `type`, got {raw}"),
        ));
    }
    Ok(value)
}

/// Auto-consent: issue a code and send the browser back.
fn grant_code(st: &mut State, request: AuthzRequest) -> Answer {
    let (sub, sid) = match &request.hint {
        Some(hint) if request.mode != Mode::Login => (
            st.account_flow_sub
                .clone()
                .unwrap_or_else(|| hint["sub"].as_str().unwrap_or_default().to_owned()),
            hint["sid"]
                .as_str()
                .map_or_else(|| random_token(16), str::to_owned),
        ),
        _ => (st.current_sub.clone(), random_token(16)),
    };
    if let Mode::Unlink { connection } = &request.mode {
        // The identity is unlinked from the hinted user, even when the code is then issued
        // for another one (`account_flow_sub`).
        let owner = request
            .hint
            .as_ref()
            .and_then(|h| h["sub"].as_str())
            .map_or_else(|| sub.clone(), str::to_owned);
        let linked = st
            .linked
            .get(&owner)
            .is_some_and(|ids| ids.iter().any(|(c, _)| c == connection));
        if !linked {
            let description = format!("{sub} has no linked {connection} identity to unlink");
            let location = with_params(
                &request.redirect_uri,
                &[
                    ("error", "invalid_request"),
                    ("error_description", &description),
                    ("state", &request.state),
                ],
            );
            let mut answer = Answer::redirect(&location);
            answer.error = Some("invalid_request".to_owned());
            answer.reason = Some(description);
            return answer;
        }
    }
    let code = random_token(24);
    let redirect_uri = request.redirect_uri.clone();
    let state = request.state.clone();
    let form_post = request.response_mode.as_deref() == Some("form_post");
    st.codes.insert(
        code.clone(),
        CodeGrant {
            request,
            sub,
            sid,
            auth_time: now(),
            expires_at: now() + CODE_TTL,
            used: false,
        },
    );
    let fields = [("code", code.as_str()), ("state", state.as_str())];
    if form_post {
        Answer::html(200, form_post_page(&redirect_uri, &fields))
    } else {
        Answer::redirect(&with_params(&redirect_uri, &fields))
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn form_post_page(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\"/>",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><head><title>Submit</title></head><body onload=\"document.forms[0].submit()\">\
         <form method=\"post\" action=\"{}\">{inputs}<noscript><button type=\"submit\">Continue</button>\
         </noscript></form></body></html>",
        html_escape(action)
    )
}

// ---------------------------------------------------------------------------------------------
// Client authentication

/// Authenticates the client of a token/PAR/revocation request exactly as it is registered.
pub(crate) fn authenticate_client(
    sh: &Shared,
    req: &Req<'_>,
    form: &Params,
    what: &str,
) -> Result<String, Refusal> {
    if form.has("client_assertion") || form.has("client_assertion_type") {
        return Err(Refusal::invalid_client(format!(
            "{what}: private_key_jwt is not configured for any emulated client"
        )));
    }
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match req.authorization() {
        Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => {
            if form_secret.is_some() {
                return Err(Refusal::invalid_request(format!(
                    "{what}: the client authenticated with both HTTP Basic and client_secret in the form \
                     (RFC 6749 §2.3: use exactly one method)"
                )));
            }
            let (id, secret) = decode_basic(credentials).ok_or_else(|| {
                Refusal::invalid_client(format!(
                    "{what}: malformed Basic credentials (expected base64(urlencode(id):urlencode(secret)))"
                ))
            })?;
            if let Some(form_id) = form_id {
                if form_id != id {
                    return Err(Refusal::invalid_request(format!(
                        "{what}: client_id {form_id:?} in the form differs from {id:?} in the Basic credentials"
                    )));
                }
            }
            let client = known_client(sh, &id, what)?;
            if client.auth_method != "client_secret_basic" {
                return Err(Refusal::invalid_client(format!(
                    "{what}: client {id:?} is registered for {} but authenticated with client_secret_basic",
                    client.auth_method
                )));
            }
            if client.client_secret.as_deref() != Some(secret.as_str()) {
                return Err(Refusal::invalid_client(format!(
                    "{what}: wrong client secret for {id:?} (Basic credentials are \
                     base64(form-urlencoded id \":\" form-urlencoded secret), RFC 6749 §2.3.1)"
                )));
            }
            Ok(id)
        }
        Some((scheme, _)) => Err(Refusal::invalid_client(format!(
            "{what}: Authorization scheme {scheme:?} is not a client authentication method here"
        ))),
        None => {
            let Some(id) = form_id else {
                return Err(Refusal::invalid_client(format!(
                    "{what}: no client authentication (no Basic header, no client_id in the form)"
                )));
            };
            let client = known_client(sh, id, what)?;
            match (form_secret, client.auth_method) {
                (Some(secret), "client_secret_post") => {
                    if client.client_secret.as_deref() == Some(secret) {
                        Ok(id.to_owned())
                    } else {
                        Err(Refusal::invalid_client(format!(
                            "{what}: wrong client_secret for {id:?}"
                        )))
                    }
                }
                (Some(_), method) => Err(Refusal::invalid_client(format!(
                    "{what}: client {id:?} is registered for {method} but sent client_secret in the form \
                     (client_secret_post)"
                ))),
                (None, "none") => Ok(id.to_owned()),
                (None, method) => Err(Refusal::invalid_client(format!(
                    "{what}: client {id:?} is registered for {method} but sent no credentials"
                ))),
            }
        }
    }
}

fn known_client<'a>(sh: &'a Shared, id: &str, what: &str) -> Result<&'a super::EmulatedClient, Refusal> {
    sh.client(id)
        .ok_or_else(|| Refusal::invalid_client(format!("{what}: unknown client {id:?}")))
}

/// Decodes `base64(urlencode(id) ":" urlencode(secret))`.
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(credentials.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

/// `POST /oauth/token`.
pub(crate) fn token(
    sh: &Shared,
    st: &mut State,
    req: &Req<'_>,
    rec: &mut RecordedRequest,
) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token";
    let form = req.form_params(WHAT)?;
    let client_id = authenticate_client(sh, req, &form, WHAT)?;
    rec.client_id = Some(client_id.clone());
    let grant_type = form.require("grant_type", WHAT)?;
    let dpop = match super::dpop::check_token_request(sh, st, req)? {
        super::dpop::Checked::Challenge(answer) => return Ok(answer),
        checked => checked,
    };
    let answer = match grant_type {
        "authorization_code" => code_grant(sh, st, &form, &client_id),
        "refresh_token" => refresh_grant(sh, st, &form, &client_id),
        TOKEN_VAULT_GRANT_TYPE => token_vault(sh, st, &form, &client_id),
        super::token_exchange::TOKEN_EXCHANGE_GRANT_TYPE => {
            super::token_exchange::grant(sh, st, &form, &client_id)
        }
        super::ciba::CIBA_GRANT_TYPE => super::ciba::grant(sh, st, &form, &client_id),
        other => Err(Refusal::oauth_400(
            "unsupported_grant_type",
            format!(
                "{WHAT}: grant_type {other:?} is not supported (authorization_code, refresh_token, \
                 {TOKEN_VAULT_GRANT_TYPE})"
            ),
        )),
    }?;
    Ok(super::dpop::finish(sh, st, answer, &dpop, grant_type))
}

fn code_grant(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (authorization_code)";
    form.only(
        &[
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;
    let code = form.require("code", WHAT)?;
    let redirect_uri = form.require("redirect_uri", WHAT)?;
    let verifier = form.get("code_verifier").ok_or_else(|| {
        Refusal::invalid_request(format!(
            "{WHAT}: code_verifier is required (the code was issued for a PKCE code_challenge)"
        ))
    })?;
    check_verifier(verifier).map_err(|e| Refusal::invalid_request(format!("{WHAT}: {e}")))?;
    let Some(grant) = st.codes.get_mut(code) else {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: unknown authorization code"
        )));
    };
    if grant.used {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: authorization code already used (codes are single-use)"
        )));
    }
    grant.used = true;
    let grant = grant.clone();
    if now() > grant.expires_at {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: authorization code expired"
        )));
    }
    if grant.request.client_id != client_id {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: the code was issued to client {:?}, not {client_id:?}",
            grant.request.client_id
        )));
    }
    if grant.request.redirect_uri != redirect_uri {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: redirect_uri {redirect_uri:?} differs from the one sent at /authorize {:?}",
            grant.request.redirect_uri
        )));
    }
    if s256(verifier) != grant.request.code_challenge {
        return Err(Refusal::invalid_grant(format!(
            "{WHAT}: code_verifier does not match the code_challenge (S256) sent at /authorize"
        )));
    }

    match &grant.request.mode {
        Mode::Link { connection, scope } => {
            let ids = st.linked.entry(grant.sub.clone()).or_default();
            ids.retain(|(c, _)| c != connection);
            ids.push((connection.clone(), scope.clone().unwrap_or_default()));
        }
        Mode::Unlink { connection } => {
            if let Some(ids) = st.linked.get_mut(&grant.sub) {
                ids.retain(|(c, _)| c != connection);
            }
        }
        Mode::Login => {}
    }

    let request = &grant.request;
    let mut body = issue_tokens(
        sh,
        st,
        &Issue {
            client_id,
            sub: &grant.sub,
            sid: &grant.sid,
            scope: &request.scope,
            audience: request.audience.as_deref(),
            organization: request.organization.as_deref(),
            nonce: Some(&request.nonce),
            auth_time: Some(grant.auth_time),
        },
    );
    if request.scope.iter().any(|s| s == "offline_access") {
        let rt = new_refresh_token(
            st,
            RefreshGrant {
                client_id: client_id.to_owned(),
                sub: grant.sub.clone(),
                sid: grant.sid.clone(),
                scope: request.scope.clone(),
                audience: request.audience.clone(),
                organization: request.organization.clone(),
                revoked: None,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    if let Some(details) = &request.authorization_details {
        body["authorization_details"] = details.clone();
    }
    super::advanced::after_code_grant(sh, st, &grant, &mut body);
    Ok(Answer::token_json(200, &body))
}

fn refresh_grant(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (refresh_token)";
    form.only(
        &[
            "grant_type",
            "refresh_token",
            "audience",
            "scope",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;
    let token = form.require("refresh_token", WHAT)?;
    let grant = live_refresh_token(st, token, client_id, WHAT)?;
    let requested_scope = form.get("scope").map(|s| parse_scope(s, WHAT)).transpose()?;
    let original_aud = grant.audience.clone().unwrap_or_else(|| sh.userinfo_audience());
    let audience = form.get("audience").unwrap_or(&original_aud).to_owned();
    let my_account = sh.my_account_audience();

    let scope: Vec<String> = if audience == original_aud {
        let scope = requested_scope.unwrap_or_else(|| grant.scope.clone());
        if let Some(extra) = scope.iter().find(|s| !grant.scope.contains(s)) {
            return Err(Refusal::invalid_scope(format!(
                "{WHAT}: scope `{extra}` was not granted to this refresh token (granted: {})",
                grant.scope.join(" ")
            )));
        }
        scope
    } else if audience == my_account {
        let scope =
            requested_scope.unwrap_or_else(|| MY_ACCOUNT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
        for s in &scope {
            let oidc_granted = OIDC_SCOPES.contains(&s.as_str()) && grant.scope.contains(s);
            if !oidc_granted && !MY_ACCOUNT_SCOPES.contains(&s.as_str()) {
                return Err(Refusal::invalid_scope(format!(
                    "{WHAT}: scope `{s}` is not allowed for the My Account API {my_account} by the MRRT policy \
                     (allowed: {})",
                    MY_ACCOUNT_SCOPES.join(" ")
                )));
            }
        }
        scope
    } else {
        requested_scope.unwrap_or_else(|| grant.scope.clone())
    };
    if let Some(answer) = super::advanced::mfa_required(st, token, &grant.sub, &audience) {
        return Ok(answer);
    }

    let mut body = issue_tokens(
        sh,
        st,
        &Issue {
            client_id,
            sub: &grant.sub,
            sid: &grant.sid,
            scope: &scope,
            audience: Some(&audience),
            organization: grant.organization.as_deref(),
            nonce: None,
            auth_time: None,
        },
    );
    if sh.opts.rotate_refresh_tokens {
        if let Some(old) = st.refresh_tokens.get_mut(token) {
            old.revoked = Some("rotated: a newer refresh token replaced it");
        }
        let mut next = grant.clone();
        next.revoked = None;
        let rotated = new_refresh_token(st, next);
        super::advanced::on_rotation(st, token, &rotated);
        body["refresh_token"] = json!(rotated);
    }
    Ok(Answer::token_json(200, &body))
}

fn live_refresh_token(st: &State, token: &str, client_id: &str, what: &str) -> Result<RefreshGrant, Refusal> {
    let Some(grant) = st.refresh_tokens.get(token) else {
        return Err(Refusal::invalid_grant(format!(
            "{what}: Unknown or invalid refresh token."
        )));
    };
    if let Some(why) = grant.revoked {
        return Err(Refusal::invalid_grant(format!(
            "{what}: Unknown or invalid refresh token ({why})."
        )));
    }
    if grant.client_id != client_id {
        return Err(Refusal::invalid_grant(format!(
            "{what}: the refresh token was issued to client {:?}, not {client_id:?}",
            grant.client_id
        )));
    }
    Ok(grant.clone())
}

fn token_vault(sh: &Shared, st: &mut State, form: &Params, client_id: &str) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/token (Token Vault)";
    for name in ["scope", "audience"] {
        if form.has(name) {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: `{name}` must not be sent with the federated connection access token exchange"
            )));
        }
    }
    form.only(
        &[
            "grant_type",
            "subject_token_type",
            "subject_token",
            "requested_token_type",
            "connection",
            "login_hint",
            "client_id",
            "client_secret",
        ],
        WHAT,
    )?;
    let subject_token_type = form.require("subject_token_type", WHAT)?;
    if subject_token_type != REFRESH_TOKEN_TYPE {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: subject_token_type must be {REFRESH_TOKEN_TYPE}, got {subject_token_type:?}"
        )));
    }
    let requested_token_type = form.require("requested_token_type", WHAT)?;
    if requested_token_type != FEDERATED_TOKEN_TYPE {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: requested_token_type must be {FEDERATED_TOKEN_TYPE}, got {requested_token_type:?}"
        )));
    }
    let subject_token = form.require("subject_token", WHAT)?;
    let connection = form.require("connection", WHAT)?;
    let grant = live_refresh_token(st, subject_token, client_id, WHAT)?;
    if sh.connection(connection).is_none() {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: connection {connection:?} is not a connection of this tenant"
        )));
    }
    let account_scopes: Option<Vec<String>> = st
        .accounts
        .get(&grant.sub)
        .and_then(|accounts| accounts.iter().rev().find(|a| a["connection"] == connection))
        .map(|a| {
            a["scopes"]
                .as_array()
                .map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        })
        .or_else(|| {
            st.linked.get(&grant.sub).and_then(|ids| {
                ids.iter().find(|(c, _)| c == connection).map(|(_, scope)| {
                    scope
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
            })
        });
    let Some(scopes) = account_scopes else {
        return Err(Refusal::oauth_400(
            "federated_connection_refresh_token_not_found",
            format!(
                "{WHAT}: Federated connection Refresh Token not found: {} has no connected account (nor linked \
                 identity) for {connection:?}",
                grant.sub
            ),
        ));
    };
    let n = st.next_seq();
    Ok(Answer::token_json(
        200,
        &json!({
            "access_token": format!("emu-federated-{connection}-{n}-{}", random_token(16)),
            "expires_in": sh.opts.access_token_ttl,
            "scope": scopes.join(" "),
            "issued_token_type": FEDERATED_TOKEN_TYPE,
            "token_type": "Bearer",
        }),
    ))
}

/// What to put in a token response.
struct Issue<'a> {
    client_id: &'a str,
    sub: &'a str,
    sid: &'a str,
    scope: &'a [String],
    audience: Option<&'a str>,
    organization: Option<&'a str>,
    /// `Some` on code exchange (refreshed ID tokens carry no nonce).
    nonce: Option<&'a str>,
    auth_time: Option<u64>,
}

/// `{access_token, id_token?, token_type, expires_in, scope}`; an ID token when `openid` is in
/// the scope.
fn issue_tokens(sh: &Shared, st: &State, issue: &Issue<'_>) -> Value {
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

/// `POST /oauth/revoke` (RFC 7009): revokes a refresh token; unknown tokens are fine.
pub(crate) fn revoke(
    sh: &Shared,
    st: &mut State,
    req: &Req<'_>,
    rec: &mut RecordedRequest,
) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oauth/revoke";
    let form = req.form_params(WHAT)?;
    let client_id = authenticate_client(sh, req, &form, WHAT)?;
    rec.client_id = Some(client_id.clone());
    form.only(&["token", "token_type_hint", "client_id", "client_secret"], WHAT)?;
    let token = form.require("token", WHAT)?;
    if let Some(grant) = st.refresh_tokens.get_mut(token) {
        if grant.client_id == client_id {
            grant.revoked = Some("revoked at /oauth/revoke");
        }
    }
    Ok(Answer::empty(200))
}

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

/// `GET /v2/logout?client_id&returnTo[&federated]`.
pub(crate) fn v2_logout(sh: &Shared, req: &Req<'_>) -> Result<Answer, Refusal> {
    const WHAT: &str = "/v2/logout";
    if !req.body.is_empty() {
        return Err(Refusal::invalid_request(format!("{WHAT}: GET with a body")));
    }
    let (pairs, _federated) = super::advanced::federated_flag(req.query, WHAT)?;
    let params = Params::new(pairs, WHAT)?;
    params.only(&["client_id", "returnTo"], WHAT)?;
    if let Some(client_id) = params.get("client_id") {
        if sh.client(client_id).is_none() {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: unknown client_id {client_id:?}"
            )));
        }
    }
    match params.get("returnTo") {
        Some(return_to) if sh.logout_uri_allowed(return_to) => Ok(Answer::redirect(return_to)),
        Some(return_to) => Err(Refusal::invalid_request(format!(
            "{WHAT}: returnTo {return_to:?} is not an allowed logout URL"
        ))),
        None => Ok(Answer::html(200, "<p>You are logged out.</p>".to_owned())),
    }
}

/// `GET /oidc/logout?id_token_hint&post_logout_redirect_uri[&client_id][&state]…`.
pub(crate) fn oidc_logout(sh: &Shared, req: &Req<'_>) -> Result<Answer, Refusal> {
    const WHAT: &str = "/oidc/logout";
    if !req.body.is_empty() {
        return Err(Refusal::invalid_request(format!("{WHAT}: GET with a body")));
    }
    let (pairs, _federated) = super::advanced::federated_flag(req.query, WHAT)?;
    let params = Params::new(pairs, WHAT)?;
    params.only(
        &[
            "id_token_hint",
            "post_logout_redirect_uri",
            "client_id",
            "state",
            "logout_hint",
            "ui_locales",
        ],
        WHAT,
    )?;
    let client_id = params.get("client_id");
    if let Some(id) = client_id {
        if sh.client(id).is_none() {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: unknown client_id {id:?}"
            )));
        }
    }
    if let Some(hint) = params.get("id_token_hint") {
        let claims = sh.keys.verify(hint, &sh.issuer, false).map_err(|e| {
            Refusal::invalid_request(format!(
                "{WHAT}: id_token_hint is not an ID token issued by this tenant: {e}"
            ))
        })?;
        if let Some(id) = client_id {
            if !aud_contains(&claims, id) {
                return Err(Refusal::invalid_request(format!(
                    "{WHAT}: id_token_hint audience {} does not match client_id {id:?}",
                    claims["aud"]
                )));
            }
        }
    }
    match params.get("post_logout_redirect_uri") {
        Some(_) if client_id.is_none() && !params.has("id_token_hint") => Err(Refusal::invalid_request(
            format!("{WHAT}: post_logout_redirect_uri requires id_token_hint or client_id"),
        )),
        Some(uri) if sh.logout_uri_allowed(uri) => Ok(Answer::redirect(&match params.get("state") {
            Some(state) => with_params(uri, &[("state", state)]),
            None => uri.to_owned(),
        })),
        Some(uri) => Err(Refusal::invalid_request(format!(
            "{WHAT}: post_logout_redirect_uri {uri:?} is not an allowed logout URL"
        ))),
        None => Ok(Answer::html(200, "<p>You are logged out.</p>".to_owned())),
    }
}
