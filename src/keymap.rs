//! Key -> intent.
