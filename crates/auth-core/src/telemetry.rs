//! Auth0 telemetry: the `Auth0-Client` header on every back-channel request to the tenant and,
//! for Auth0 domains, the `auth0Client` authorization parameter.
//!
//! The value is base64url without padding of `{"name": "<crate name>", "version": "<semver>"}`
//! (Auth0 reads both base64 alphabets). It says which library and version made the call, and
//! nothing about the app, the user or the machine. It is on by default, like in every Auth0
//! SDK; [`crate::ServerClientBuilder::telemetry`] (`AUTH0_TELEMETRY=false`) turns both off.
//!
//! The header is set once, as a default header of the HTTP client the builder makes for the
//! tenant (never on the Token Vault or other upstream calls an app makes with its own client).
//! A client given with [`crate::ServerClientBuilder::http_client`] is used as it is: add
//! [`header_value`] as its default `Auth0-Client` header if you want the telemetry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The request header carrying the telemetry value.
pub const HEADER_NAME: &str = "Auth0-Client";

/// The authorization parameter carrying the telemetry value (Auth0 domains only).
pub const AUTHORIZE_PARAM: &str = "auth0Client";

/// This library's name, as sent in the telemetry.
pub const NAME: &str = env!("CARGO_PKG_NAME");

/// This library's version (semver), as sent in the telemetry.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The telemetry value: base64url (no padding) of `{"name": NAME, "version": VERSION}`.
#[must_use]
pub fn header_value() -> String {
    let json = serde_json::json!({ "name": NAME, "version": VERSION });
    URL_SAFE_NO_PAD.encode(json.to_string())
}

impl crate::client::ServerClient {
    /// Adds `auth0Client` to an authorization request when telemetry is on and the provider is
    /// an Auth0 domain (never for a generic issuer; never twice). With PAR the request is the
    /// pushed body, so the browser's URL keeps only `client_id` and `request_uri`.
    pub(crate) fn add_authorize_telemetry(&self, query: &mut Vec<(String, String)>) {
        let c = &self.inner.config;
        if c.telemetry && c.auth0_domain.is_some() && !query.iter().any(|(k, _)| k == AUTHORIZE_PARAM) {
            query.push((AUTHORIZE_PARAM.to_owned(), header_value()));
        }
    }
}

/// The default headers of the HTTP client the builder makes: `Auth0-Client` when on.
pub(crate) fn default_headers(enabled: bool) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if enabled && let Ok(v) = reqwest::header::HeaderValue::from_str(&header_value()) {
        headers.insert(reqwest::header::HeaderName::from_static("auth0-client"), v);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_base64url_json_with_name_and_version() {
        let v = header_value();
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{v}"
        );
        let decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&v).expect("base64url")).expect("JSON");
        assert_eq!(decoded["name"], "auth-core");
        assert_eq!(decoded["version"], env!("CARGO_PKG_VERSION"));
        assert!(reqwest::header::HeaderValue::from_str(&v).is_ok());
    }

    #[test]
    fn switch_from_env_and_builder() {
        fn env(t: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
            move |n: &str| match n {
                "OIDC_ISSUER" => Some("http://127.0.0.1:9/".to_owned()),
                "AUTH0_CLIENT_ID" => Some("client".to_owned()),
                "AUTH0_SECRET" => Some("x".repeat(32)),
                "APP_BASE_URL" => Some("http://localhost:3000".to_owned()),
                "AUTH0_TELEMETRY" => t.map(str::to_owned),
                _ => None,
            }
        }
        let on = |t| {
            crate::ServerClientBuilder::from_env_with(env(t))
                .and_then(crate::ServerClientBuilder::into_config)
                .map(|(c, _)| c.telemetry)
        };
        assert!(on(None).unwrap(), "on by default");
        assert!(!on(Some("false")).unwrap());
        assert!(!on(Some("0")).unwrap());
        assert!(on(Some("TRUE")).unwrap());
        let err = on(Some("sometimes")).unwrap_err().to_string();
        assert!(err.contains("AUTH0_TELEMETRY"), "{err}");
        let (c, _) = crate::ServerClientBuilder::from_env_with(env(None))
            .unwrap()
            .telemetry(false)
            .into_config()
            .unwrap();
        assert!(!c.telemetry);
        assert!(default_headers(false).is_empty());
        assert_eq!(
            default_headers(true)
                .get("auth0-client")
                .and_then(|v| v.to_str().ok()),
            Some(header_value().as_str())
        );
    }
}
