//! The simulated tenant: an independent implementation of Microsoft's side (axum).
