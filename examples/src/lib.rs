//! The example apps as libraries, so the end-to-end suites can run exactly the code the
//! binaries in `src/bin/` serve.
#![deny(missing_docs)]

pub mod app;
pub mod connected_accounts;
#[cfg(feature = "load")]
pub mod load;
pub mod quickstart;
pub mod serve;
