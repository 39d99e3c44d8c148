//! Microsoft Graph v1.0 client over reqwest.
pub mod client;
pub mod error;
pub mod model;

pub use client::{GraphClient, RetryPolicy, TokenSource};
pub use error::GraphError;
pub use model::{Domain, User};
