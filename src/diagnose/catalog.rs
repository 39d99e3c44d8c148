//! The error catalog (`assets/errors.toml`): per kind a title, plain explanation, numbered fix
//! steps and the one-key fix actions. Embedded in the binary, parsed and validated once.
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The catalog's text, as shipped.
pub const CATALOG_TOML: &str = include_str!("../../assets/errors.toml");

/// The placeholders a catalog text may use; anything else in braces is a typo.
pub const PLACEHOLDERS: &[&str] = &[
    "subject",
    "value",
    "permission",
    "domain",
    "holder",
    "status",
    "code",
    "message",
    "retry_after",
];

/// A one-key fix the Errors tab can offer (previewed before it is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixAction {
    /// Edit the directory user's email in place, then re-run preflight.
    EditEmail,
    /// Provision with the integration's default domain (UPN rewritten, email kept).
    UseDefaultDomain,
    /// Use a sanitized mailNickname (`Sales (EU)` -> `SalesEU`), accept or edit.
    SanitizeNickname,
    /// Trim leading/trailing spaces and collapse double spaces in a group name.
    TrimGroupName,
    /// Restore the soft-deleted user that holds the address.
    RestoreDeleted,
    /// Permanently delete the soft-deleted user to free the address now (confirmation).
    PurgeDeleted,
    /// Link the import conflict to the existing directory user / account.
    LinkConflict,
    /// Send the failed operation again.
    Retry,
    /// Start a new sign-in.
    SignInAgain,
    /// Type the user's usage location (a country code), saved in the directory; the next
    /// sync sends it to the account.
    SetUsageLocation,
}

impl FixAction {
    pub const ALL: [FixAction; 10] = [
        FixAction::EditEmail,
        FixAction::UseDefaultDomain,
        FixAction::SanitizeNickname,
        FixAction::TrimGroupName,
        FixAction::RestoreDeleted,
        FixAction::PurgeDeleted,
        FixAction::LinkConflict,
        FixAction::Retry,
        FixAction::SignInAgain,
        FixAction::SetUsageLocation,
    ];

    /// The id used in `errors.toml` and exports.
    pub fn id(self) -> &'static str {
        match self {
            FixAction::EditEmail => "edit-email",
            FixAction::UseDefaultDomain => "use-default-domain",
            FixAction::SanitizeNickname => "sanitize-nickname",
            FixAction::TrimGroupName => "trim-group-name",
            FixAction::RestoreDeleted => "restore-deleted",
            FixAction::PurgeDeleted => "purge-deleted",
            FixAction::LinkConflict => "link-conflict",
            FixAction::Retry => "retry",
            FixAction::SignInAgain => "sign-in-again",
            FixAction::SetUsageLocation => "set-usage-location",
        }
    }

    /// `Ok(None)` for `none`; `Err` for an id that is not a fix action.
    pub fn from_id(id: &str) -> Result<Option<FixAction>, String> {
        if id == "none" {
            return Ok(None);
        }
        FixAction::ALL
            .into_iter()
            .find(|f| f.id() == id)
            .map(Some)
            .ok_or_else(|| format!("unknown fix action `{id}`"))
    }
}

/// One kind as written in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub title: String,
    /// What happened.
    pub what: String,
    /// Why.
    pub why: String,
    /// Fix steps, in order (numbered when shown).
    pub steps: Vec<String>,
    pub fix: Option<FixAction>,
    /// Further one-key fixes offered next to `fix`.
    pub also: Vec<FixAction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    title: String,
    what: String,
    why: String,
    steps: Vec<String>,
    #[serde(default)]
    fix: Option<String>,
    #[serde(default)]
    also: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    kind: Vec<RawEntry>,
}

/// Why the catalog text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("errors catalog: {0}")]
pub struct CatalogError(pub String);

#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// The shipped catalog, parsed and validated.
    pub fn load() -> Result<Catalog, CatalogError> {
        Catalog::parse(CATALOG_TOML)
    }

    /// The shipped catalog, parsed once. The test suite guarantees it is valid.
    pub fn builtin() -> &'static Catalog {
        static C: OnceLock<Catalog> = OnceLock::new();
        C.get_or_init(|| Catalog::load().expect("assets/errors.toml is validated by the tests"))
    }

    /// Parses and validates: unique kebab-case ids, non-empty texts and steps, known fix
    /// actions and placeholders, and an `unknown` kind.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
        let mut entries = Vec::with_capacity(raw.kind.len());
        let mut index = HashMap::new();
        for r in raw.kind {
            let bad = |m: String| CatalogError(format!("kind `{}`: {m}", r.id));
            if r.id.is_empty()
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(bad("id must be kebab-case".into()));
            }
            for (name, t) in [("title", &r.title), ("what", &r.what), ("why", &r.why)] {
                if t.trim().is_empty() {
                    return Err(bad(format!("{name} is empty")));
                }
            }
            if r.steps.is_empty() || r.steps.iter().any(|s| s.trim().is_empty()) {
                return Err(bad("needs at least one non-empty step".into()));
            }
            for t in [&r.title, &r.what, &r.why]
                .into_iter()
                .chain(r.steps.iter())
            {
                if let Some(p) = unknown_placeholder(t) {
                    return Err(bad(format!("unknown placeholder {{{p}}}")));
                }
            }
            let fix = match &r.fix {
                None => None,
                Some(f) => FixAction::from_id(f).map_err(bad)?,
            };
            let mut also = Vec::new();
            for a in &r.also {
                match FixAction::from_id(a).map_err(bad)? {
                    Some(f) => also.push(f),
                    None => return Err(bad("`none` in also".into())),
                }
            }
            if index.insert(r.id.clone(), entries.len()).is_some() {
                return Err(bad("duplicate id".into()));
            }
            entries.push(Entry {
                id: r.id,
                title: r.title,
                what: r.what,
                why: r.why,
                steps: r.steps,
                fix,
                also,
            });
        }
        if !index.contains_key("unknown") {
            return Err(CatalogError("the `unknown` kind is missing".into()));
        }
        Ok(Catalog { entries, index })
    }

    pub fn get(&self, kind: &str) -> Option<&Entry> {
        self.index.get(kind).map(|&i| &self.entries[i])
    }

    /// `get`, falling back to the `unknown` kind.
    pub fn get_or_unknown(&self, kind: &str) -> &Entry {
        self.get(kind)
            .or_else(|| self.get("unknown"))
            .expect("validated: `unknown` exists")
    }

    /// Every kind id, in catalog order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.id.as_str())
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

fn unknown_placeholder(t: &str) -> Option<&str> {
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let j = after.find('}')?;
        let name = &after[..j];
        let looks_like =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if looks_like && !PLACEHOLDERS.contains(&name) {
            return Some(name);
        }
        rest = &after[j + 1..];
    }
    None
}

/// Fills `{name}` placeholders from `vars`; unknown or missing ones get `default(name)`.
pub fn fill(t: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(t.len() + 16);
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) if PLACEHOLDERS.contains(&&after[..j]) => {
                let name = &after[..j];
                out.push_str(&vars(name).unwrap_or_else(|| default_fill(name).to_string()));
                rest = &after[j + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn default_fill(name: &str) -> &'static str {
    match name {
        "subject" => "this object",
        "value" => "the value",
        "permission" => "the permission this operation needs",
        "domain" => "this domain",
        "holder" => "",
        "status" => "5xx",
        "code" => "an unknown code",
        "message" => "(no message)",
        "retry_after" => "not given",
        _ => "",
    }
}
