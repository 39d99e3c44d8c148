//! Making the tenant match the directory: the plan (a pure diff), password rules, and the
//! apply engine (JSON batching, throttling, a crash-safe journal, the audit log).
pub mod apply;
pub mod attributes;
pub mod causes;
pub mod deprovision;
pub mod groups;
pub mod licences;
pub mod ops;
pub mod password;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod reconcile;
