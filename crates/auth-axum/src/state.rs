//! [`AuthState`]: the client plus the integration's options, shared by routes, extractors and
//! layers; and [`AuthLayer`], which makes it and the cookie jar available to every request.

use std::sync::Arc;
use std::task::{Context, Poll};

use auth_core::ServerClient;

use crate::cookies::ResponseCookies;
use axum::extract::Request;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use tower::{Layer, Service};
use url::Url;

/// What an unauthenticated request to a `Session` handler gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unauthenticated {
    /// `401` with a JSON body (default; suits APIs).
    #[default]
    Json,
    /// `302` to the login route with `returnTo` set to the requested path (suits pages).
    RedirectToLogin,
}

/// Options of the Axum integration.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthOptions {
    pub(crate) base_path: String,
    pub(crate) default_return_to: String,
    pub(crate) trust_proxy_headers: bool,
    pub(crate) unauthenticated: Unauthenticated,
    pub(crate) access_token_route: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            base_path: "/auth".into(),
            default_return_to: "/".into(),
            trust_proxy_headers: false,
            unauthenticated: Unauthenticated::Json,
            access_token_route: false,
        }
    }
}

impl AuthOptions {
    /// Defaults: routes under `/auth`, return to `/`, proxy headers ignored, 401 JSON for
    /// unauthenticated `Session` extraction, no `/auth/access-token` route.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the routes are mounted (default `/auth`).
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        let p = path.into();
        self.base_path = format!("/{}", p.trim_matches('/'));
        if self.base_path == "/" {
            self.base_path.clear();
        }
        self
    }

    /// Where users land after login or logout when no valid `returnTo` is given (default `/`).
    /// Must be a relative path.
    pub fn default_return_to(mut self, path: impl Into<String>) -> Self {
        self.default_return_to = crate::return_to::sanitize(&path.into()).unwrap_or_else(|| "/".into());
        self
    }

    /// Honour `X-Forwarded-Proto` / `X-Forwarded-Host` when building absolute URLs. Turn on only
    /// behind a proxy that sets (and strips client-sent) forwarded headers.
    pub fn trust_proxy_headers(mut self, trust: bool) -> Self {
        self.trust_proxy_headers = trust;
        self
    }

    /// What the `Session` extractor answers when there is no session.
    pub fn unauthenticated(mut self, behaviour: Unauthenticated) -> Self {
        self.unauthenticated = behaviour;
        self
    }

    /// Mount `GET {base}/access-token` returning the session's access token as JSON. Off by
    /// default: it hands a bearer token to any script running in the page's origin.
    pub fn access_token_route(mut self, enabled: bool) -> Self {
        self.access_token_route = enabled;
        self
    }
}

/// The login client and integration options; cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    pub(crate) inner: Arc<StateInner>,
}

pub(crate) struct StateInner {
    pub(crate) client: ServerClient,
    pub(crate) options: AuthOptions,
    pub(crate) base_url: Url,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("client", &self.inner.client)
            .field("options", &self.inner.options)
            .field("base_url", &self.inner.base_url.as_str())
            .finish()
    }
}

impl AuthState {
    /// Builds the client from the Auth0 environment variables (see
    /// [`auth_core::ServerClientBuilder::from_env`]) with default options.
    ///
    /// # Errors
    /// Configuration errors naming the variable to fix.
    pub fn from_env() -> Result<Self, auth_core::Error> {
        Self::new(ServerClient::from_env()?, AuthOptions::default())
    }

    /// Wraps a client.
    ///
    /// # Errors
    /// [`auth_core::ConfigError`] when the client has neither an app base URL nor an absolute
    /// redirect URI to derive the public origin from.
    pub fn new(client: ServerClient, options: AuthOptions) -> Result<Self, auth_core::Error> {
        let base_url = client
            .app_base_url()
            .cloned()
            .or_else(|| {
                client
                    .redirect_uri()
                    .and_then(|r| Url::parse(r).ok())
                    .map(|mut u| {
                        u.set_path("/");
                        u.set_query(None);
                        u
                    })
            })
            .ok_or(auth_core::ConfigError::Missing("app_base_url (APP_BASE_URL)"))?;
        Ok(Self {
            inner: Arc::new(StateInner {
                client,
                options,
                base_url,
            }),
        })
    }

    /// The login client.
    #[must_use]
    pub fn client(&self) -> &ServerClient {
        &self.inner.client
    }

    /// The options.
    pub fn options(&self) -> &AuthOptions {
        &self.inner.options
    }

    /// The layer that every route using `Session` or `RequireAuth` must sit under: it parses
    /// cookies once, writes cookie changes to the response, makes this state available, and
    /// marks `Cookie`/`Set-Cookie` headers sensitive so traces never print them.
    #[must_use]
    pub fn layer(&self) -> AuthLayer {
        AuthLayer { state: self.clone() }
    }

    /// The login path, e.g. `/auth/login`.
    pub(crate) fn path(&self, route: &str) -> String {
        format!("{}/{route}", self.inner.options.base_path)
    }

    /// The app's public origin for absolute URLs: configuration, or forwarded headers when
    /// explicitly trusted.
    pub(crate) fn public_base(&self, headers: &HeaderMap) -> Url {
        let base = &self.inner.base_url;
        if !self.inner.options.trust_proxy_headers {
            return base.clone();
        }
        let first = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let Some(host) = first("x-forwarded-host") else {
            return base.clone();
        };
        let proto = match first("x-forwarded-proto") {
            Some(p @ ("http" | "https")) => p,
            _ => base.scheme(),
        };
        Url::parse(&format!("{proto}://{host}/"))
            .ok()
            .filter(|u| u.path() == "/" && u.username().is_empty() && u.query().is_none())
            .unwrap_or_else(|| base.clone())
    }
}

/// See [`AuthState::layer`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    state: AuthState,
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    state: AuthState,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = axum::response::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = future::SensitiveResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        mark_sensitive(req.headers_mut(), &COOKIE);
        let writes = ResponseCookies::default();
        req.extensions_mut().insert(crate::extract::RequestAuth::new(
            self.state.clone(),
            writes.clone(),
        ));
        future::SensitiveResponse {
            inner: self.inner.call(req),
            writes,
        }
    }
}

fn mark_sensitive(headers: &mut HeaderMap, name: &http::HeaderName) {
    // One value (HTTP/1.1, where browsers send one Cookie header) is marked without `entry`,
    // which may grow the map.
    let mut values = headers.get_all(name).iter();
    if values.next().is_none() {
        return;
    }
    if values.next().is_none() {
        if let Some(v) = headers.get_mut(name) {
            v.set_sensitive(true);
        }
        return;
    }
    if let http::header::Entry::Occupied(mut e) = headers.entry(name) {
        for v in e.iter_mut() {
            v.set_sensitive(true);
        }
    }
}

mod future {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pin_project_lite::pin_project! {
        /// Puts the request's cookie writes on the response as `Set-Cookie` headers, and
        /// marks every `Set-Cookie` header sensitive.
        pub struct SensitiveResponse<F> {
            #[pin]
            pub(super) inner: F,
            pub(super) writes: crate::cookies::ResponseCookies,
        }
    }

    impl<F, E> Future for SensitiveResponse<F>
    where
        F: Future<Output = Result<axum::response::Response, E>>,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let mut out = std::task::ready!(this.inner.poll(cx));
            if let Ok(resp) = &mut out {
                let headers = resp.headers_mut();
                for value in this.writes.take_headers() {
                    headers.append(super::SET_COOKIE, value);
                }
                super::mark_sensitive(headers, &super::SET_COOKIE);
            }
            Poll::Ready(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use auth_core::{ClientAuth, ServerClient};
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::{HeaderValue, Request};
    use tower::ServiceExt as _;

    use super::*;

    fn state(trust: bool) -> AuthState {
        let client = ServerClient::builder()
            .issuer("https://idp.example.com/")
            .client_id("c")
            .client_auth(ClientAuth::none())
            .secret("0123456789abcdef0123456789abcdef")
            .app_base_url("https://app.example.com")
            .build()
            .unwrap();
        AuthState::new(client, AuthOptions::new().trust_proxy_headers(trust)).unwrap()
    }

    #[test]
    fn forwarded_headers_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert_eq!(state(false).public_base(&h).as_str(), "https://app.example.com/");
        assert_eq!(state(true).public_base(&h).as_str(), "http://evil.example/");
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-host", HeaderValue::from_static("a.example/path?x"));
        assert_eq!(state(true).public_base(&bad).as_str(), "https://app.example.com/");
        assert_eq!(
            state(true).public_base(&HeaderMap::new()).as_str(),
            "https://app.example.com/"
        );
    }

    #[tokio::test]
    async fn cookie_headers_are_marked_sensitive() {
        let auth = state(false);
        let app: Router = Router::new()
            .route(
                "/",
                get(|req: Request<Body>| async move {
                    let sensitive = req.headers().get(COOKIE).is_some_and(HeaderValue::is_sensitive);
                    let (parts, _) = req.into_parts();
                    let mut jar =
                        <crate::AxumCookieJar as axum::extract::FromRequestParts<()>>::from_request_parts(
                            &mut { parts },
                            &(),
                        )
                        .await
                        .unwrap();
                    auth_core::cookies::CookieJar::set(&mut jar, "x", "1", &Default::default());
                    sensitive.to_string()
                }),
            )
            .layer(auth.layer());
        let resp = app
            .oneshot(
                Request::get("/")
                    .header(COOKIE, "a=b")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let set_cookie = resp.headers().get(SET_COOKIE).unwrap();
        assert!(set_cookie.is_sensitive());
        let body = axum::body::to_bytes(resp.into_body(), 64).await.unwrap();
        assert_eq!(
            &body[..],
            b"true",
            "the request's Cookie header was marked sensitive"
        );
    }
}
