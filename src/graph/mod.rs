//! Microsoft Graph v1.0 client over reqwest.
pub mod batch;
pub mod client;
pub mod error;
pub mod model;

pub use client::{
    parse_retry_after, GraphClient, GraphResponse, RetryPolicy, StaticToken, TokenSource,
};
pub use error::{GraphError, UNKNOWN_ENDPOINT};
pub use model::{DeletedUser, DirectoryObject, Domain, Group, Page, User};
