//! Axum integration for [`auth_core`]: the `/auth/*` routes, a `Session` extractor and a
//! `RequireAuth` layer. The router and extractor arrive with the next milestone; today this
//! crate re-exports the core so applications can depend on one name.
#![deny(missing_docs)]

pub use auth_core as core;
