//! Both logout endpoints: `GET /v2/logout` and `GET /oidc/logout` (RP-initiated logout).

use crate::auth0::Shared;
use crate::auth0::keys::aud_contains;
use crate::auth0::wire::{Answer, Params, Refusal, Req, with_params};

/// `GET /v2/logout?client_id&returnTo[&federated]`.
pub(crate) fn v2_logout(sh: &Shared, req: &Req<'_>) -> Result<Answer, Refusal> {
    const WHAT: &str = "/v2/logout";
    if !req.body.is_empty() {
        return Err(Refusal::invalid_request(format!("{WHAT}: GET with a body")));
    }
    let (pairs, _federated) = crate::auth0::advanced::federated_flag(req.query, WHAT)?;
    let params = Params::new(pairs, WHAT)?;
    params.only(&["client_id", "returnTo"], WHAT)?;
    if let Some(client_id) = params.get("client_id")
        && sh.client(client_id).is_none()
    {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: unknown client_id {client_id:?}"
        )));
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
    let (pairs, _federated) = crate::auth0::advanced::federated_flag(req.query, WHAT)?;
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
    if let Some(id) = client_id
        && sh.client(id).is_none()
    {
        return Err(Refusal::invalid_request(format!(
            "{WHAT}: unknown client_id {id:?}"
        )));
    }
    if let Some(hint) = params.get("id_token_hint") {
        let claims = sh.keys.verify(hint, &sh.issuer, false).map_err(|e| {
            Refusal::invalid_request(format!(
                "{WHAT}: id_token_hint is not an ID token issued by this tenant: {e}"
            ))
        })?;
        if let Some(id) = client_id
            && !aud_contains(&claims, id)
        {
            return Err(Refusal::invalid_request(format!(
                "{WHAT}: id_token_hint audience {} does not match client_id {id:?}",
                claims["aud"]
            )));
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
