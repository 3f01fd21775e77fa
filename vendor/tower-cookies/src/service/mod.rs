//! Middleware to use [`Cookies`].

use self::future::ResponseFuture;
use crate::Cookies;
use http::{header, Request, Response};
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

pub mod future;

/// Middleware to use [`Cookies`].
#[derive(Clone, Debug)]
pub struct CookieManager<S> {
    inner: S,
    max_parts: Option<usize>,
}

impl<S> CookieManager<S> {
    /// Create a new cookie manager.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            max_parts: None,
        }
    }

    /// Reads at most `max` `;`-separated parts of each request's `Cookie` header(s), in all,
    /// and ignores the rest (a header whose parts run over the limit is read up to the
    /// separator that ends its last part read; later headers are not read). This bounds the
    /// work and the memory a hostile header can cause, however long it is. Browsers send at
    /// most about 180 cookies per site. The request's headers are left as they are. Default:
    /// no limit.
    ///
    /// # Example:
    /// ```
    /// use tower_cookies::CookieManager;
    ///
    /// # let service = tower::service_fn(|_: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
    /// # });
    /// let service = CookieManager::new(service).max_cookie_parts(256);
    /// # let _ = service;
    /// ```
    pub fn max_cookie_parts(mut self, max: usize) -> Self {
        self.max_parts = Some(max);
        self
    }

    /// Gets a reference to the underlying service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gets a mutable reference to the underlying service (e.g. to call it without a jar for
    /// a request that already has one).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the underlying service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<ReqBody, ResBody, S> Service<Request<ReqBody>> for CookieManager<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let value = req.headers().get_all(header::COOKIE).iter().cloned().collect();
        let cookies = Cookies::bounded(value, self.max_parts);
        req.extensions_mut().insert(cookies.clone());

        ResponseFuture {
            future: self.inner.call(req),
            cookies,
        }
    }
}

/// Layer to apply [`CookieManager`] middleware.
#[derive(Clone, Debug, Default)]
pub struct CookieManagerLayer {
    max_parts: Option<usize>,
}

impl CookieManagerLayer {
    /// Create a new cookie manager layer.
    pub fn new() -> Self {
        Self { max_parts: None }
    }

    /// See [`CookieManager::max_cookie_parts`].
    pub fn max_cookie_parts(mut self, max: usize) -> Self {
        self.max_parts = Some(max);
        self
    }
}

impl<S> Layer<S> for CookieManagerLayer {
    type Service = CookieManager<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CookieManager {
            inner,
            max_parts: self.max_parts,
        }
    }
}
