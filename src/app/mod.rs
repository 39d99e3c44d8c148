//! The async state store: AppState / Action / Effect / update / runtime.
