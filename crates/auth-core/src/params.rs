//! Authorization request parameters, global and per call.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Parameters the library sets itself; callers cannot override them.
pub(crate) const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
];

/// The scope used when none is configured.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";

/// Parameters for the authorization endpoint (`/authorize`).
///
/// Set globally on the client and per call in [`crate::LoginOptions`]; per-call values override
/// global ones key by key, except pinned ones (a configured `organization` or `connection`, and
/// names given to [`crate::ServerClientBuilder::pin_authorization_param`]): a per-call value for
/// a pinned name that differs from the configured one is refused. Any extra parameter can be
/// added with [`AuthorizationParams::param`].
/// `client_id`, `response_type`, `state`, `nonce`, `code_challenge`, `code_challenge_method` and
/// `request_uri` are set by the library and rejected here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationParams {
    params: BTreeMap<String, String>,
}

impl AuthorizationParams {
    /// No parameters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The `redirect_uri`: an absolute URL registered with the provider.
    #[must_use]
    pub fn redirect_uri(self, uri: impl Into<String>) -> Self {
        self.param("redirect_uri", uri)
    }

    /// The `scope`. `openid` is always added when missing.
    #[must_use]
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.param("scope", scope)
    }

    /// The Auth0 `audience`: the API the access token is for.
    #[must_use]
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.param("audience", audience)
    }

    /// The Auth0 `organization` (id `org_…` or name); the ID token's `org_id`/`org_name` is
    /// then checked against it.
    #[must_use]
    pub fn organization(self, organization: impl Into<String>) -> Self {
        self.param("organization", organization)
    }

    /// `max_age` in seconds; the ID token's `auth_time` is then checked against it.
    #[must_use]
    pub fn max_age(self, seconds: u64) -> Self {
        self.param("max_age", seconds.to_string())
    }

    /// RAR `authorization_details` (RFC 9396): a JSON array of objects with a `type`.
    #[must_use]
    pub fn authorization_details(self, details: &serde_json::Value) -> Self {
        self.param("authorization_details", details.to_string())
    }

    /// Any other parameter (`prompt`, `login_hint`, `screen_hint`, `connection`, `ui_locales`, …).
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// The value of a parameter.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Iterates over all parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Rejects reserved names and malformed values we can check locally.
    pub(crate) fn validate(&self) -> Result<()> {
        for (name, value) in &self.params {
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(Error::InvalidParameter(format!(
                    "`{name}` is set by the library and cannot be overridden; remove it"
                )));
            }
            if name.is_empty() {
                return Err(Error::InvalidParameter("empty parameter name".into()));
            }
            if name == "authorization_details" {
                let ok = serde_json::from_str::<serde_json::Value>(value)
                    .is_ok_and(|v| v.as_array().is_some_and(|a| a.iter().all(is_detail)));
                if !ok {
                    return Err(Error::InvalidParameter(
                        "`authorization_details` must be a JSON array of objects with a string `type`".into(),
                    ));
                }
            }
            if name == "max_age" && value.parse::<u64>().is_err() {
                return Err(Error::InvalidParameter(
                    "`max_age` must be a number of seconds".into(),
                ));
            }
        }
        Ok(())
    }

    /// `self` (the configured parameters) with `overrides` (per call) laid over it, refusing a
    /// per-call value for a `pinned` name that differs from the configured value (or is given
    /// when none is configured): the configuration always wins.
    pub(crate) fn merged_pinned(
        &self,
        overrides: &Self,
        pinned: &std::collections::BTreeSet<String>,
    ) -> Result<Self> {
        for (name, value) in &overrides.params {
            if pinned.contains(name) && self.get(name) != Some(value.as_str()) {
                tracing::debug!(param = %name, "per-call value for a pinned parameter refused");
                return Err(Error::InvalidParameter(format!(
                    "`{name}` is pinned by the configuration and cannot be changed per call; \
                     remove it from the call's parameters"
                )));
            }
        }
        Ok(self.merged_with(overrides))
    }

    /// `self` with every parameter of `overrides` laid over it.
    pub(crate) fn merged_with(&self, overrides: &Self) -> Self {
        let mut params = self.params.clone();
        params.extend(overrides.params.clone());
        Self { params }
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<String> {
        self.params.remove(name)
    }

    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.params.insert(name.to_owned(), value);
    }
}

fn is_detail(v: &serde_json::Value) -> bool {
    v.get("type").is_some_and(serde_json::Value::is_string)
}

/// The scope with `openid` guaranteed, duplicates removed, order kept.
pub(crate) fn normalize_scope(scope: Option<&str>) -> String {
    let scope = scope.filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT_SCOPE);
    let mut out: Vec<&str> = Vec::new();
    if !scope.split_whitespace().any(|s| s == "openid") {
        out.push("openid");
    }
    for s in scope.split_whitespace() {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openid_always_present_and_default_scope() {
        assert_eq!(normalize_scope(None), DEFAULT_SCOPE);
        assert_eq!(normalize_scope(Some("  ")), DEFAULT_SCOPE);
        assert_eq!(normalize_scope(Some("profile email")), "openid profile email");
        assert_eq!(normalize_scope(Some("email openid email")), "email openid");
    }

    #[test]
    fn per_call_overrides_global() {
        let global = AuthorizationParams::new()
            .scope("openid")
            .audience("a")
            .param("x", "1");
        let call = AuthorizationParams::new().audience("b").param("y", "2");
        let m = global.merged_with(&call);
        assert_eq!(m.get("audience"), Some("b"));
        assert_eq!(m.get("scope"), Some("openid"));
        assert_eq!(m.get("x"), Some("1"));
        assert_eq!(m.get("y"), Some("2"));
    }

    #[test]
    fn pinned_parameters_cannot_be_changed_per_call() {
        let global = AuthorizationParams::new().organization("org_good").audience("a");
        let pinned: std::collections::BTreeSet<String> =
            ["organization", "connection"].map(String::from).into();
        for call in [
            AuthorizationParams::new().organization("evil"),
            AuthorizationParams::new().param("connection", "evil-idp"),
        ] {
            let e = global.merged_pinned(&call, &pinned).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter");
            assert!(e.to_string().contains("pinned"), "{e}");
        }
        // The same value, or unpinned names, pass; the configured value stays.
        let call = AuthorizationParams::new().organization("org_good").audience("b");
        let m = global.merged_pinned(&call, &pinned).unwrap();
        assert_eq!(m.get("organization"), Some("org_good"));
        assert_eq!(m.get("audience"), Some("b"));
    }

    #[test]
    fn reserved_and_malformed_rejected() {
        for name in RESERVED_PARAMS {
            let p = AuthorizationParams::new().param(*name, "x");
            assert_eq!(p.validate().unwrap_err().code(), "invalid_parameter", "{name}");
        }
        let p = AuthorizationParams::new().param("authorization_details", "{\"type\":\"x\"}");
        assert!(p.validate().is_err());
        let p = AuthorizationParams::new().param("authorization_details", "[{\"type\":\"x\"}]");
        assert!(p.validate().is_ok());
        assert!(
            AuthorizationParams::new()
                .param("max_age", "-1")
                .validate()
                .is_err()
        );
    }
}
