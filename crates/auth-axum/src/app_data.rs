//! App data in the session: changes made through [`crate::Session::set`] and
//! [`crate::Session::remove`] are recorded for the request and written back once, after the
//! handler produced its response, by [`WriteBack`] (part of [`crate::AuthState::layer`]).
//!
//! The record lives in a task-local slot that [`WriteBack`] opens around the rest of the
//! request: nothing is allocated or boxed for a request that changes nothing, and the layer
//! finds the changes after the request itself was consumed by the handler. Reads through any
//! `Session` of the request see the changes at once (read-your-writes).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use auth_core::{Error, SessionSnapshot, SessionValueError, SessionValueKind};
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::task::futures::TaskLocalFuture;
use tower::Service;

use crate::cookies::AxumCookieJar;
use crate::error::AuthError;
use crate::state::AuthState;

tokio::task_local! {
    /// The app-data changes of the request being handled (see the module docs).
    static PENDING: RefCell<Pending>;
}

/// App-data changes of one request, and where to write them.
#[derive(Default)]
pub(crate) struct Pending {
    /// One entry per key, in the order first changed: the value to store, or `None` to remove.
    changes: Vec<(String, Option<Value>)>,
    /// The client and the cookie jar of the session that was changed.
    target: Option<(AuthState, AxumCookieJar)>,
}

impl Pending {
    fn record(&mut self, key: &str, value: Option<Value>) {
        match self.changes.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.changes.push((key.to_owned(), value)),
        }
    }

    /// The pending change of `key`: `Some(Some(v))` set, `Some(None)` removed.
    fn change(&self, key: &str) -> Option<Option<&Value>> {
        self.changes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// `app_data` with the changes applied.
    fn apply(changes: Vec<(String, Option<Value>)>, app_data: &mut Map<String, Value>) {
        for (key, value) in changes {
            match value {
                Some(v) => {
                    app_data.insert(key, v);
                }
                None => {
                    app_data.remove(&key);
                }
            }
        }
    }
}

/// The error of a change made outside the request that extracted the session.
fn outside_request() -> AuthError {
    AuthError::new(Error::Config(auth_core::ConfigError::Invalid {
        name: "Session::set / Session::remove",
        reason: "called outside the request that extracted the session (in a spawned task?); \
                 change app data while handling the request, whose layer writes it back"
            .into(),
    }))
}

/// [`crate::Session::get`]: the pending change of `key` if any, else the stored value.
pub(crate) fn get<T: DeserializeOwned>(session: &SessionSnapshot, key: &str) -> Result<Option<T>, AuthError> {
    let pending = PENDING
        .try_with(|p| {
            p.borrow()
                .change(key)
                .map(|v| v.map(|v| T::deserialize(v)).transpose())
        })
        .ok()
        .flatten();
    match pending {
        Some(read) => read.map_err(|e| value_error::<T>(SessionValueKind::Read { key: key.to_owned() }, &e)),
        None => session.get(key).map_err(AuthError::new),
    }
}

/// The typed error for a value of `key` that is not a `T` (core keeps the value out of it).
fn value_error<T: ?Sized>(kind: SessionValueKind, e: &serde_json::Error) -> AuthError {
    AuthError::new(Error::SessionValue(SessionValueError::from_serde_error::<T>(
        kind, e,
    )))
}

/// [`crate::Session::set`]: serializes `value`, checks that the session still fits its store
/// with it, and records the change.
pub(crate) fn set<T: Serialize + ?Sized>(
    session: &SessionSnapshot,
    state: &AuthState,
    jar: &AxumCookieJar,
    key: &str,
    value: &T,
) -> Result<(), AuthError> {
    let value = serde_json::to_value(value)
        .map_err(|e| value_error::<T>(SessionValueKind::Write { key: key.to_owned() }, &e))?;
    change(session, state, jar, key, Some(value))
}

/// [`crate::Session::remove`].
pub(crate) fn remove(
    session: &SessionSnapshot,
    state: &AuthState,
    jar: &AxumCookieJar,
    key: &str,
) -> Result<(), AuthError> {
    change(session, state, jar, key, None)
}

fn change(
    session: &SessionSnapshot,
    state: &AuthState,
    jar: &AxumCookieJar,
    key: &str,
    value: Option<Value>,
) -> Result<(), AuthError> {
    PENDING
        .try_with(|p| {
            let mut p = p.borrow_mut();
            if value.is_some() {
                // The session as it will be written: the stored app data, the changes so far
                // and this one. Checked now so that the handler sees the error.
                let mut app_data = session.app_data().clone();
                let mut changes = p.changes.clone();
                changes.push((key.to_owned(), value.clone()));
                Pending::apply(changes, &mut app_data);
                state
                    .client()
                    .check_session_size(session, &app_data)
                    .map_err(AuthError::new)?;
            }
            p.record(key, value);
            if p.target.is_none() {
                p.target = Some((state.clone(), jar.clone()));
            }
            Ok(())
        })
        .unwrap_or_else(|_| Err(outside_request()))
}

/// Runs the rest of the request with an app-data record and writes recorded changes back
/// once the response is ready (before the cookie manager turns the jar's changes into
/// `Set-Cookie` headers).
#[derive(Clone, Debug)]
pub(crate) struct WriteBack<S> {
    inner: S,
}

impl<S> WriteBack<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, R> Service<R> for WriteBack<S>
where
    S: Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = WriteBackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        WriteBackFuture::Handling {
            future: PENDING.scope(RefCell::default(), self.inner.call(req)),
        }
    }
}

/// A write-back in progress: the response, once the session is written.
type Writing = Pin<Box<dyn Future<Output = Response> + Send>>;

pin_project_lite::pin_project! {
    /// The response of [`WriteBack`].
    #[project = WriteBackProj]
    pub enum WriteBackFuture<F> {
        /// The request is being handled, with its app-data record.
        Handling { #[pin] future: TaskLocalFuture<RefCell<Pending>, F> },
        /// The handler changed app data: writing it back (boxed: only such requests pay).
        Writing { future: Writing },
        /// The response was handed out.
        Done,
    }
}

impl<F> std::fmt::Debug for WriteBackFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteBackFuture")
    }
}

impl<F, E> Future for WriteBackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let writing = match self.as_mut().project() {
                WriteBackProj::Handling { mut future } => {
                    let response = match std::task::ready!(future.as_mut().poll(cx)) {
                        Ok(response) => response,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    match future.take_value().map(RefCell::into_inner) {
                        Some(Pending {
                            changes,
                            target: Some((state, jar)),
                        }) if !changes.is_empty() => write_back(state, jar, changes, response),
                        // Nothing changed: the fast path, nothing allocated.
                        _ => return Poll::Ready(Ok(response)),
                    }
                }
                WriteBackProj::Writing { future } => {
                    let response = std::task::ready!(future.as_mut().poll(cx));
                    self.set(Self::Done);
                    return Poll::Ready(Ok(response));
                }
                WriteBackProj::Done => panic!("WriteBackFuture polled after completion"),
            };
            self.set(Self::Writing { future: writing });
        }
    }
}

/// Applies `changes` to the stored session (update-if-exists, `ServerClient::update_app_data`)
/// and then hands out `response` as it is, whatever the outcome: a failure is logged (without
/// values), never turned into another response.
fn write_back(
    state: AuthState,
    mut jar: AxumCookieJar,
    changes: Vec<(String, Option<Value>)>,
    response: Response,
) -> Writing {
    Box::pin(async move {
        let edit = move |app_data: &mut Map<String, Value>| Pending::apply(changes, app_data);
        match state.client().update_app_data(edit, &mut jar).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::debug!("the session ended before its app data was written back; not written");
            }
            Err(e) => tracing::error!(
                code = e.code(),
                error = %e,
                "writing the session's app data back failed; the response is sent without it"
            ),
        }
        response
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use auth_core::StoreError;
    use auth_core::store::{LogoutKey, MemoryBackend, SessionBackend, SessionKeys};
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::header::{COOKIE, SET_COOKIE};
    use http::{HeaderValue, Request, StatusCode};
    use serde_json::json;
    use tower::ServiceExt as _;

    use crate::test_util::TestSession;
    use crate::{AuthError, AuthOptions, AuthState, Session};

    fn state(backend: Option<Arc<dyn SessionBackend>>) -> AuthState {
        let builder = auth_core::ServerClient::builder()
            .issuer("https://idp.example.invalid/")
            .client_id("c")
            .client_auth(auth_core::ClientAuth::none())
            .secret("0123456789abcdef0123456789abcdef")
            .app_base_url("http://app.example.com");
        let builder = match backend {
            Some(b) => builder.session_backend_arc(b).server_side_sessions(true),
            None => builder,
        };
        AuthState::new(builder.build().unwrap(), AuthOptions::new()).unwrap()
    }

    async fn count(session: Session) -> Result<String, AuthError> {
        let n = session.get::<u32>("n")?.unwrap_or(0) + 1;
        session.set("n", &n)?;
        // Read-your-writes.
        Ok(format!("{:?}", session.get::<u32>("n")?))
    }

    async fn read(session: Session) -> Result<String, AuthError> {
        Ok(format!("{:?}", session.get::<u32>("n")?))
    }

    /// `name=value` of each `Set-Cookie` that sets (not removes) a cookie.
    fn cookie_header(resp: &axum::response::Response) -> Option<HeaderValue> {
        let pairs: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .filter(|v| !v.contains("Max-Age=0"))
            .map(|v| v.split(';').next().unwrap().to_owned())
            .collect();
        (!pairs.is_empty()).then(|| HeaderValue::from_str(&pairs.join("; ")).unwrap())
    }

    async fn call(
        app: &Router,
        path: &str,
        cookie: &HeaderValue,
    ) -> (StatusCode, String, Option<HeaderValue>) {
        let resp = app
            .clone()
            .oneshot(
                Request::get(path)
                    .header(COOKIE, cookie.clone())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let set = cookie_header(&resp);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), set)
    }

    #[tokio::test]
    async fn changes_are_written_back_on_both_cookie_manager_paths() {
        for server_side in [false, true] {
            let backend: Option<Arc<dyn SessionBackend>> =
                server_side.then(|| Arc::new(MemoryBackend::new()) as Arc<dyn SessionBackend>);
            let auth = state(backend);
            let routes = || {
                Router::new()
                    .route("/count", get(count))
                    .route("/read", get(read))
            };
            let own = routes().layer(auth.layer());
            let outer = routes()
                .layer(auth.layer())
                .layer(tower_cookies::CookieManagerLayer::new());
            for app in [own, outer] {
                let cookie = TestSession::new().cookie_header(&auth).await.unwrap();
                let (status, body, set) = call(&app, "/count", &cookie).await;
                assert_eq!((status, body.as_str()), (StatusCode::OK, "Some(1)"));
                // Cookie sessions send the new cookie; server-side ones keep their id cookie.
                let next = match set {
                    Some(set) => set,
                    None if server_side => cookie.clone(),
                    None => panic!("the cookie session was not written back"),
                };
                let (_, body, set) = call(&app, "/read", &next).await;
                assert_eq!(body, "Some(1)", "server_side={server_side}");
                assert!(set.is_none(), "a request that changes nothing writes nothing");
                let (_, body, _) = call(&app, "/count", &next).await;
                assert_eq!(body, "Some(2)");
            }
        }
    }

    /// A backend that is down for updates (the write-back) but serves reads.
    #[derive(Debug, Default)]
    struct UpdatesFail(MemoryBackend);

    #[async_trait]
    impl SessionBackend for UpdatesFail {
        async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(id).await
        }
        async fn set(&self, id: &str, v: &[u8], k: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
            self.0.set(id, v, k, ttl).await
        }
        async fn update(&self, _: &str, _: &[u8], _: &SessionKeys, _: Duration) -> Result<bool, StoreError> {
            Err(StoreError::new("backend down"))
        }
        async fn delete(&self, id: &str) -> Result<(), StoreError> {
            self.0.delete(id).await
        }
        async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
            self.0.delete_by(key).await
        }
        async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
            self.0.record_logout(key, at, ttl).await
        }
        async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
            self.0.logout_time(keys).await
        }
        async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
            self.0.remember_once(key, ttl).await
        }
    }

    #[tokio::test]
    async fn a_failed_write_back_leaves_the_response_as_it_is() {
        let auth = state(Some(Arc::new(UpdatesFail::default())));
        let app = Router::new()
            .route("/count", get(count))
            .route("/read", get(read))
            .layer(auth.layer());
        let cookie = TestSession::new().cookie_header(&auth).await.unwrap();
        let (status, body, set) = call(&app, "/count", &cookie).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "Some(1)"));
        assert!(set.is_none());
        let (status, body, _) = call(&app, "/read", &cookie).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "None"), "not written");
    }

    #[tokio::test]
    async fn a_value_too_large_is_refused_at_set_and_nothing_is_recorded() {
        let auth = state(None);
        let app =
            Router::new()
                .route(
                    "/big",
                    get(|session: Session| async move {
                        session.set("small", &1)?;
                        let big = session.set("big", &"x".repeat(200 * 1024)).unwrap_err();
                        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
                        assert_eq!(big.inner().code(), "session_too_large");
                        Ok::<_, AuthError>(format!("{:?}", session.get::<String>("big")?))
                    }),
                )
                .route(
                    "/keys",
                    get(|s: Session| async move {
                        format!("{:?}", s.inner().app_data().keys().collect::<Vec<_>>())
                    }),
                )
                .layer(auth.layer());
        let cookie = TestSession::new().cookie_header(&auth).await.unwrap();
        let (status, body, set) = call(&app, "/big", &cookie).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "None"));
        let (_, keys, _) = call(&app, "/keys", &set.unwrap()).await;
        assert_eq!(keys, r#"["small"]"#, "the earlier change was still written");
    }

    #[tokio::test]
    async fn a_change_outside_the_request_is_a_typed_error() {
        let auth = state(None);
        let app = Router::new()
            .route(
                "/spawn",
                get(|session: Session| async move {
                    let err = tokio::spawn(async move { session.set("k", &1).unwrap_err() })
                        .await
                        .unwrap();
                    err.inner().code().to_owned()
                }),
            )
            .layer(auth.layer());
        let cookie = TestSession::new().cookie_header(&auth).await.unwrap();
        let (_, body, set) = call(&app, "/spawn", &cookie).await;
        assert_eq!(body, "configuration_error");
        assert!(set.is_none());
    }

    #[tokio::test]
    async fn app_data_values_that_are_not_json_are_typed_errors() {
        let auth = state(None);
        let app = Router::new()
            .route(
                "/bad",
                get(|session: Session| async move {
                    let map = std::collections::HashMap::from([((1, 2), "x")]);
                    let e = session.set("bad", &map).unwrap_err();
                    format!("{} {}", e.inner().code(), e.status().as_u16())
                }),
            )
            .layer(auth.layer());
        let cookie = TestSession::new()
            .claims(json!({"sub": "u"}))
            .cookie_header(&auth)
            .await
            .unwrap();
        let (_, body, _) = call(&app, "/bad", &cookie).await;
        assert_eq!(body, "invalid_session_value 500");
    }
}
