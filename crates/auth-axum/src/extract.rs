//! The `Session` extractor, `Option<Session>`, and their rejection.
//!
//! The session is decoded at most once per request: the first extractor or `RequireAuth` to
//! need it stores the result in the request extensions, later ones reuse it.

use auth_core::{AccessToken, AccessTokenOptions, ConnectionTokenOptions, UserClaims};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::Extensions;
use http::request::Parts;

use crate::cookies::AxumCookieJar;
use crate::error::AuthError;
use crate::rejection::SessionRejection;
use crate::request::RequestAuth;
use crate::state::{AuthState, Unauthenticated};

/// The logged-in user's session. Extracting it fails with [`SessionRejection`] when there is
/// none; use `Option<Session>` for pages that work either way.
///
/// ```
/// use auth_axum::Session;
///
/// async fn profile(session: Session) -> String {
///     format!("hello {}", session.sub().unwrap_or("?"))
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    session: auth_core::SessionSnapshot,
    state: AuthState,
    jar: AxumCookieJar,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.session.fmt(f)
    }
}

impl Session {
    /// The user's claims as the raw JSON map. Prefer [`claims`](Self::claims) into a struct of
    /// your own: `user()["email"]` panics when the claim is missing (use
    /// `user().get("email")` for a single optional claim).
    #[must_use]
    pub fn user(&self) -> &UserClaims {
        self.session.user()
    }

    /// The user's claims as the app's own type; make claims that not every user has `Option`.
    ///
    /// # Errors
    /// `invalid_session_value` (500) naming the field that did not match and the type, never
    /// the value.
    ///
    /// ```
    /// use auth_axum::{AuthError, Session};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct User {
    ///     name: String,
    ///     email: Option<String>,
    /// }
    ///
    /// async fn hello(session: Session) -> Result<String, AuthError> {
    ///     let user: User = session.claims()?;
    ///     Ok(format!("hello {} ({})", user.name, user.email.as_deref().unwrap_or("no email")))
    /// }
    /// ```
    pub fn claims<T: serde::de::DeserializeOwned>(&self) -> Result<T, AuthError> {
        self.session.claims().map_err(AuthError::new)
    }

    /// The app's value stored in the session under `key`, or `None`. Changes made earlier in
    /// this request ([`set`](Self::set), [`remove`](Self::remove), through any `Session` of
    /// the request) are seen at once.
    ///
    /// # Errors
    /// `invalid_session_value` (500) when the value is not a `T`: the error names the key and
    /// the type, never the value (add `#[serde(default)]` or `Option` for fields that older
    /// sessions lack).
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AuthError> {
        crate::app_data::get(&self.session, key)
    }

    /// Stores `value` (as JSON) under `key` in the session's app data. The change is recorded
    /// for this request and written back once by [`AuthState::layer`] after the handler
    /// answered (whatever the response's status), for cookie and server-side sessions alike;
    /// it keeps the session's tokens as
    /// they are then (a refresh in the same request included) and never brings back a session
    /// a concurrent logout ended. App data survives refreshes and the rolling window, and ends
    /// with the session. A write-back that fails (store down) is logged at `error` and the
    /// response is sent as it is.
    ///
    /// App data travels with every request (in the session cookies, or the server-side
    /// record): keep it small, and keep large data in the app's database.
    ///
    /// # Errors
    /// `session_too_large` (413) when the session would no longer fit its store
    /// ([`auth_core::MAX_COOKIE_SESSION_CHUNKS`] cookies, or
    /// [`auth_core::MAX_SERVER_SESSION_BYTES`]): nothing is recorded and the session stays
    /// as it was. `invalid_session_value` when `value` is not representable as JSON.
    /// `configuration_error` when called outside the request that extracted the session
    /// (e.g. in a spawned task).
    ///
    /// ```
    /// use auth_axum::{AuthError, Session};
    ///
    /// async fn visit(session: Session) -> Result<String, AuthError> {
    ///     let visits = session.get::<u32>("visits")?.unwrap_or(0) + 1;
    ///     session.set("visits", &visits)?;
    ///     Ok(format!("visit number {visits}"))
    /// }
    /// ```
    pub fn set<T: serde::Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), AuthError> {
        crate::app_data::set(&self.session, &self.state, &self.jar, key, value)
    }

    /// Removes `key` from the session's app data (written back like [`set`](Self::set));
    /// removing a key that is not there changes nothing.
    ///
    /// # Errors
    /// `configuration_error` when called outside the request that extracted the session.
    pub fn remove(&self, key: &str) -> Result<(), AuthError> {
        crate::app_data::remove(&self.session, &self.state, &self.jar, key)
    }

    /// The user's `sub`.
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.session.sub()
    }

    /// The session as the core library sees it (ID token, token sets, sid), as it was read at
    /// the start of the request: its app data does not show this request's changes
    /// ([`get`](Self::get) does).
    #[must_use]
    pub fn inner(&self) -> &auth_core::SessionSnapshot {
        &self.session
    }

    /// An access token, refreshed if needed; a refreshed session is written back to the
    /// response's cookies.
    ///
    /// # Errors
    /// [`AuthError`] wrapping the core error (`missing_refresh_token`, `session_expired`, …).
    pub async fn access_token(&self, options: AccessTokenOptions) -> Result<AccessToken, AuthError> {
        let mut jar = self.jar.clone();
        self.state
            .client()
            .get_access_token(options, &mut jar)
            .await
            .map_err(AuthError::new)
    }
}

impl Session {
    /// A Token Vault access token for a third-party connection (e.g. `google-oauth2`), cached
    /// in the session until it expires.
    ///
    /// # Errors
    /// [`AuthError`] wrapping the core error (`missing_refresh_token`, …).
    pub async fn access_token_for_connection(
        &self,
        options: ConnectionTokenOptions,
    ) -> Result<AccessToken, AuthError> {
        let mut jar = self.jar.clone();
        self.state
            .client()
            .get_access_token_for_connection(options, &mut jar)
            .await
            .map_err(AuthError::new)
    }

    /// The login client, for the flows the extractor does not wrap (connected accounts, …),
    /// with this request's cookie jar.
    #[must_use]
    pub fn client_and_jar(&self) -> (&auth_core::ServerClient, AxumCookieJar) {
        (self.state.client(), self.jar.clone())
    }
}

/// Loads the session once per request, through the request's cookie jar.
pub(crate) async fn load(
    extensions: &mut Extensions,
) -> Result<(AuthState, AxumCookieJar, Option<auth_core::SessionSnapshot>), SessionRejection> {
    let Some(auth) = extensions.get::<RequestAuth>() else {
        return Err(SessionRejection::MissingAuthLayer);
    };
    let state = auth.state.clone();
    let cached = auth.session.clone();
    let Some(cookies) = extensions.get::<tower_cookies::Cookies>() else {
        return Err(SessionRejection::MissingAuthLayer);
    };
    let mut jar = AxumCookieJar::new(cookies.clone());
    if let Some(s) = cached {
        return Ok((state, jar, s));
    }
    let session = state
        .client()
        .get_session(&mut jar)
        .await
        .map_err(|e| SessionRejection::Store(AuthError::new(e)))?;
    if let Some(auth) = extensions.get_mut::<RequestAuth>() {
        auth.session = Some(session.clone());
    }
    Ok((state, jar, session))
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (state, jar, session) = load(&mut parts.extensions).await?;
        match session {
            Some(session) => Ok(Self {
                session,
                jar: jar.with_request_head(&state, parts),
                state,
            }),
            None => match state.options().unauthenticated {
                Unauthenticated::RedirectToLogin => Err(SessionRejection::LoginRequired {
                    location: state.login_location(&crate::request::original_uri(parts)),
                }),
                _ => Err(SessionRejection::Unauthenticated(Box::new(
                    crate::responses::unauthenticated(&state, parts),
                ))),
            },
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        let (state, jar, session) = match load(&mut parts.extensions).await {
            Ok(loaded) => loaded,
            // `AuthOptions::optional_session_on_store_error`: an outage reads as no session.
            Err(SessionRejection::Store(e))
                if parts
                    .extensions
                    .get::<RequestAuth>()
                    .is_some_and(|a| a.state.options().optional_session_on_store_error) =>
            {
                tracing::warn!(code = e.inner().code(), error = %e, "session store failed; Option<Session> is None (optional_session_on_store_error)");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(session.map(|session| Self {
            session,
            jar: jar.with_request_head(&state, parts),
            state,
        }))
    }
}
