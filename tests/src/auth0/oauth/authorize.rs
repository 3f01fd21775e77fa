//! The front channel: `GET /authorize` and `POST /oauth/par` (RFC 9126), the checks on an
//! authorization request (login, link and unlink, RAR, PKCE, `response_mode`), and the
//! auto-consent that issues a code and sends the browser back (query or `form_post`).

use serde_json::{Value, json};

use super::client_auth::authenticate_client;
use crate::auth0::keys::aud_contains;
use crate::auth0::state::{AuthzRequest, CodeGrant, Mode, ParEntry, State};
use crate::auth0::wire::{
    Answer, Params, Refusal, Req, check_challenge, now, parse_scope, random_token, with_params,
};
use crate::auth0::{RecordedRequest, Shared};

/// Lifetime of an authorization code.
const CODE_TTL: u64 = 600;
/// Lifetime of a pushed authorization request (`expires_in`).
const PAR_TTL: u64 = 60;

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
    if let Some(hint) = params.get("screen_hint")
        && !["signup", "login"].contains(&hint)
    {
        return Err(Refusal::invalid_request(format!(
            "{what}: screen_hint must be `signup` or `login`, got {hint:?}"
        )));
    }
    if let Some(max_age) = params.get("max_age")
        && max_age.parse::<u64>().is_err()
    {
        return Err(Refusal::invalid_request(format!(
            "{what}: max_age must be a non-negative integer, got {max_age:?}"
        )));
    }
    let response_mode = params.get("response_mode");
    if let Some(mode) = response_mode
        && !["query", "form_post"].contains(&mode)
    {
        return Err(Refusal::invalid_request(format!(
            "{what}: response_mode must be `query` or `form_post` for the code flow, got {mode:?}"
        )));
    }
    let authorization_details = match params.get("authorization_details") {
        Some(raw) => Some(check_authorization_details(raw, what)?),
        None => None,
    };

    let acr_values = crate::auth0::advanced::check_login_options(params, what)?;
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
