//! Microsoft's cloud password rules (8-256 characters, 3 of 4 classes, its symbol set, no
//! Unicode) and compliant generated passwords.

/// Why a password is refused, in plain words with the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordError(pub String);

pub fn check(password: &str) -> Result<(), PasswordError> {
    let _ = password;
    todo!("sync: password::check")
}

/// A random password that meets the rules (shown once, then forgotten).
pub fn generate() -> String {
    todo!("sync: password::generate")
}
