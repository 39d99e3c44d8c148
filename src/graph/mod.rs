//! Microsoft Graph v1.0 client over reqwest.
//!
//! Graph URLs are written only here: [`paths`] builds the relative paths (ids and UPNs
//! percent-encoded), [`requests`] the `$batch` items, and [`GraphClient`] the reads and the
//! deleted-item writes.
pub mod batch;
pub mod client;
pub mod delta;
pub mod error;
pub mod licences;
pub mod listing;
pub mod model;
pub mod paths;
mod reads;
pub mod requests;

pub use batch::BatchRequest;
pub use client::{
    normalize_base, parse_retry_after, GraphClient, GraphResponse, RetryPolicy, StaticToken,
    TokenSource,
};
pub use delta::{DeltaChange, DeltaError, DeltaRound, StartOver, UserDelta};
pub use error::{GraphError, UNKNOWN_ENDPOINT};
pub use listing::{CaseRule, ColdListing, ColdListingOptions, ListingEvent, ListingMode};
pub use model::{DeletedUser, DirectoryObject, Domain, Group, Page, User, UserAttr};
