//! Pure rendering of AppState.
