//! The HTTP seam: every back-channel call goes through here, so timeouts, size limits and
//! error mapping are applied once.

use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{Error, OAuthError, Result, TransportError};

/// Largest response body we read from the provider (metadata, JWKS, tokens).
const MAX_BODY: usize = 1024 * 1024;

/// A response we have read in full.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The `DPoP-Nonce` header (RFC 9449 §8), whatever the status.
    pub(crate) dpop_nonce: Option<String>,
}

/// The URL without query or fragment, for errors and logs.
pub(crate) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

pub(crate) async fn send(req: reqwest::RequestBuilder, url: &Url) -> Result<Response> {
    let shown = redact(url);
    let map = |source: reqwest::Error| -> Error {
        if source.is_timeout() {
            TransportError::Timeout { url: shown.clone() }.into()
        } else {
            TransportError::Request {
                url: shown.clone(),
                source,
            }
            .into()
        }
    };
    let mut resp = req.send().await.map_err(map)?;
    let status = resp.status().as_u16();
    let dpop_nonce = resp
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(|v| truncate(v, 512));
    if resp.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(TransportError::TooLarge {
            url: shown,
            limit: MAX_BODY,
        }
        .into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(TransportError::TooLarge {
                url: shown,
                limit: MAX_BODY,
            }
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        body,
        dpop_nonce,
    })
}

pub(crate) async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
) -> Result<(u16, std::result::Result<T, serde_json::Error>)> {
    let req = http.get(url.clone()).header("accept", "application/json");
    let resp = send(req, url).await?;
    if !(200..300).contains(&resp.status) {
        return Err(TransportError::Status {
            url: redact(url),
            status: resp.status,
        }
        .into());
    }
    Ok((resp.status, serde_json::from_slice(&resp.body)))
}

/// POSTs a form to an OAuth endpoint and decodes a success body, or maps an OAuth error body.
pub(crate) async fn post_form<T: DeserializeOwned>(
    http: &reqwest::Client,
    endpoint: &'static str,
    url: &Url,
    form: &[(String, String)],
    authorization: Option<&str>,
    extra_headers: &[(&str, String)],
    accepted: &[u16],
) -> Result<T> {
    post_form_nonce(http, endpoint, url, form, authorization, extra_headers, accepted)
        .await
        .0
}

/// [`post_form`], also returning the answer's `DPoP-Nonce` header (RFC 9449 §8), success or
/// error, for the DPoP retry.
pub(crate) async fn post_form_nonce<T: DeserializeOwned>(
    http: &reqwest::Client,
    endpoint: &'static str,
    url: &Url,
    form: &[(String, String)],
    authorization: Option<&str>,
    extra_headers: &[(&str, String)],
    accepted: &[u16],
) -> (Result<T>, Option<String>) {
    let mut nonce = None;
    let result: Result<T> = async {
        let body = serde_urlencoded::to_string(form)
            .map_err(|_| Error::InvalidParameter("a parameter could not be form-encoded".into()))?;
        let mut req = http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        for (k, v) in extra_headers {
            req = req.header(*k, v);
        }
        let resp = send(req, url).await?;
        nonce.clone_from(&resp.dpop_nonce);
        if accepted.contains(&resp.status) {
            return serde_json::from_slice(&resp.body).map_err(|e| Error::InvalidResponse {
                endpoint,
                reason: format!("the body is not the expected JSON ({})", e.classify_name()),
            });
        }
        if let Some(mfa) = crate::flows::mfa::from_body(&resp.body, resp.status) {
            tracing::debug!(endpoint, status = resp.status, "provider requires multi-factor authentication");
            return Err(Error::MfaRequired(Box::new(mfa)));
        }
        if let Some(error) = parse_oauth_error(&resp.body, resp.status) {
            tracing::debug!(endpoint, status = resp.status, error = %error.error, "provider returned an OAuth error");
            return Err(Error::Endpoint { endpoint, error });
        }
        Err(TransportError::Status {
            url: redact(url),
            status: resp.status,
        }
        .into())
    }
    .await;
    (result, nonce)
}

fn parse_oauth_error(body: &[u8], status: u16) -> Option<OAuthError> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: String,
        error_description: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    Some(OAuthError {
        error: truncate(&b.error, 128),
        error_description: b.error_description.map(|d| truncate(&d, 512)),
        status: Some(status),
    })
}

/// Keeps provider-supplied strings at a sane size in errors and logs.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "missing or mistyped field",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// Calls a JSON API with a bearer token: `200`/`201`/`204` bodies are returned; problem+json
/// errors become [`crate::Error::MyAccount`]; anything else a transport status error.
pub(crate) async fn bearer_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &Url,
    token: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response> {
    let mut req = http
        .request(method, url.clone())
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = send(req, url).await?;
    if (200..300).contains(&resp.status) {
        return Ok(resp);
    }
    if let Ok(mut problem) = serde_json::from_slice::<crate::error::MyAccountError>(&resp.body) {
        if problem.status == 0 {
            problem.status = resp.status;
        }
        problem.title = problem.title.map(|t| truncate(&t, 256));
        problem.detail = problem.detail.map(|d| truncate(&d, 1024));
        return Err(Error::MyAccount(problem));
    }
    Err(TransportError::Status {
        url: redact(url),
        status: resp.status,
    }
    .into())
}
