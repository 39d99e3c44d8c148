//! AppState: plain data, no handles, no I/O. `update` is the only place it changes; `ui::draw`
//! reads it.
//!
//! Scale: a tenant may hold a million users. Everything a keystroke or a frame touches is
//! O(page), O(screen) or O(shown rows): rows arrive a page at a time with their lower-case
//! haystack built once, per-status counts are kept incrementally, a filter is a `Vec<u32>` of
//! row indices narrowed in place when the query grows, marks are a bitset.
use std::sync::Arc;

use tui_input::Input;

use crate::auth::{AuthError, DeviceCodeStart, Identity};
use crate::directory::{BindingState, DirectoryIndex, DirectoryUser, ImportStatus};
use crate::graph::User;
use crate::keymap::Keymap;

use super::explain::ErrorEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Import,
    Bindings,
    Errors,
}

impl Tab {
    pub const ALL: [Tab; 3] = [Tab::Import, Tab::Bindings, Tab::Errors];
    pub fn title(self) -> &'static str {
        match self {
            Tab::Import => "Import",
            Tab::Bindings => "Bindings",
            Tab::Errors => "Errors",
        }
    }
    pub fn index(self) -> usize {
        match self {
            Tab::Import => 0,
            Tab::Bindings => 1,
            Tab::Errors => 2,
        }
    }
    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % 3]
    }
    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + 2) % 3]
    }
}

/// Which screen is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The settings lack what is needed to reach a tenant: say what to do, do nothing else.
    Config {
        message: String,
    },
    SignIn(SignIn),
    Main,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Looking for a cached session and refreshing it.
    Resuming,
    /// Asking the identity platform for a device code.
    Requesting,
    /// The admin must open the URL and type the code before `expires_at` (unix seconds).
    Waiting {
        start: DeviceCodeStart,
        expires_at: i64,
    },
    Failed(AuthError),
}

/// Who is signed in, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub identity: Identity,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Progress of listing the tenant users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    Idle,
    /// Waiting for the directory before the first page is asked for.
    Waiting,
    Loading {
        pages: u32,
    },
    Done,
    Cancelled,
    Failed {
        message: String,
    },
}

/// A set of row indices as a bitset, with its size kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    words: Vec<u64>,
    count: usize,
}

impl Marks {
    pub fn contains(&self, i: u32) -> bool {
        let (w, b) = (i as usize / 64, i % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }
    pub fn insert(&mut self, i: u32) -> bool {
        let (w, b) = (i as usize / 64, i % 64);
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        let fresh = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        self.count += fresh as usize;
        fresh
    }
    pub fn remove(&mut self, i: u32) -> bool {
        let (w, b) = (i as usize / 64, i % 64);
        let Some(word) = self.words.get_mut(w) else {
            return false;
        };
        let was = *word & (1 << b) != 0;
        *word &= !(1 << b);
        self.count -= was as usize;
        was
    }
    pub fn toggle(&mut self, i: u32) {
        if !self.remove(i) {
            self.insert(i);
        }
    }
    pub fn clear(&mut self) {
        self.words.clear();
        self.count = 0;
    }
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Marked indices in ascending order: O(rows / 64 + marked).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let b = word.trailing_zeros();
                word &= word - 1;
                Some(w as u32 * 64 + b)
            })
        })
    }
}

/// Lower-case search text of many rows in one buffer (one allocation for all rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Haystacks {
    buf: String,
    ends: Vec<usize>,
}

impl Haystacks {
    pub fn push(&mut self, parts: &[&str]) {
        for (n, p) in parts.iter().enumerate() {
            if n > 0 {
                self.buf.push('\u{1f}');
            }
            if p.is_ascii() {
                // The common case, and the hot loop of a 1M-user listing: no per-char work.
                let start = self.buf.len();
                self.buf.push_str(p);
                self.buf[start..].make_ascii_lowercase();
            } else {
                for c in p.chars() {
                    self.buf.extend(c.to_lowercase());
                }
            }
        }
        self.ends.push(self.buf.len());
    }
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

/// The tenant users as they arrived, page by page, with what filtering and counting need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantRows {
    /// Pages as Graph sent them; `Arc` so a background reclassification can borrow them.
    pub pages: Vec<Arc<Vec<User>>>,
    /// First row index of each page.
    pub page_starts: Vec<u32>,
    pub status: Vec<ImportStatus>,
    pub hay: Haystacks,
    /// Rows per status, in `ImportStatus::ALL` order.
    pub counts: [usize; 4],
}

impl TenantRows {
    pub fn len(&self) -> usize {
        self.status.len()
    }
    pub fn is_empty(&self) -> bool {
        self.status.is_empty()
    }
    pub fn user(&self, row: u32) -> &User {
        let p = self.page_starts.partition_point(|&s| s <= row) - 1;
        &self.pages[p][(row - self.page_starts[p]) as usize]
    }
    pub fn count(&self, s: ImportStatus) -> usize {
        self.counts[status_slot(s)]
    }
    /// Appends one page; returns the index of its first row.
    pub fn push_page(&mut self, users: Vec<User>, statuses: &[ImportStatus]) -> u32 {
        let first = self.status.len() as u32;
        for (n, u) in users.iter().enumerate() {
            // The runtime always sends one status per user; a missing one counts as New.
            let s = statuses.get(n).copied().unwrap_or(ImportStatus::New);
            let mail = u.mail.as_deref().unwrap_or("");
            // Mail is usually the UPN: searching it twice finds nothing more.
            let mail = if mail.eq_ignore_ascii_case(&u.user_principal_name) {
                ""
            } else {
                mail
            };
            self.hay.push(&[
                u.display_name.as_deref().unwrap_or(""),
                &u.user_principal_name,
                mail,
            ]);
            self.status.push(s);
            self.counts[status_slot(s)] += 1;
        }
        self.page_starts.push(first);
        self.pages.push(Arc::new(users));
        first
    }
    pub fn set_status(&mut self, row: usize, s: ImportStatus) -> bool {
        let old = self.status[row];
        if old == s {
            return false;
        }
        self.counts[status_slot(old)] -= 1;
        self.counts[status_slot(s)] += 1;
        self.status[row] = s;
        true
    }
    pub fn clear(&mut self) {
        *self = TenantRows::default();
    }
}

pub fn status_slot(s: ImportStatus) -> usize {
    match s {
        ImportStatus::New => 0,
        ImportStatus::Imported => 1,
        ImportStatus::Conflict => 2,
        ImportStatus::Failed => 3,
    }
}

/// A filtered, scrolled view over rows: what a tab's list shows.
#[derive(Debug, Clone, Default)]
pub struct ListView {
    /// The `/` filter being typed (tui-input).
    pub input: Input,
    pub editing: bool,
    /// The lower-cased query `shown` reflects.
    pub query: String,
    /// Row indices that pass the filters, ascending.
    pub shown: Vec<u32>,
    /// Index into `shown`.
    pub selected: usize,
    /// First index of `shown` on screen; kept by `update` so the selection stays visible.
    pub offset: usize,
}

impl PartialEq for ListView {
    fn eq(&self, o: &Self) -> bool {
        self.input.value() == o.input.value()
            && self.editing == o.editing
            && self.query == o.query
            && self.shown == o.shown
            && self.selected == o.selected
            && self.offset == o.offset
    }
}

impl ListView {
    pub fn selected_row(&self) -> Option<u32> {
        self.shown.get(self.selected).copied()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportTab {
    pub view: ListView,
    /// None = All.
    pub status: Option<ImportStatus>,
    pub marks: Marks,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindingsTab {
    pub view: ListView,
    pub state: Option<BindingState>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorsTab {
    pub view: ListView,
}

/// The local directory as last loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryRows {
    pub users: Vec<DirectoryUser>,
    pub hay: Haystacks,
    /// Bound, Unbound, Blocked.
    pub counts: [usize; 3],
}

pub fn binding_slot(b: BindingState) -> usize {
    match b {
        BindingState::Bound => 0,
        BindingState::Unbound => 1,
        BindingState::Blocked => 2,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    pub phase: Phase,
    pub tab: Tab,
    pub help: bool,
    /// Unix seconds, from the last tick: times on screen are relative to it.
    pub now: i64,
    /// Terminal size from the last Resize.
    pub width: u16,
    pub height: u16,
    pub tenant: String,
    pub session: Option<SessionInfo>,
    /// e.g. "DEMO — simulated tenant", shown in the header.
    pub banner: Option<String>,
    /// NO_COLOR: no colour, selection still shown by reverse video and bold.
    pub no_color: bool,
    pub keymap: Arc<Keymap>,

    pub signin_gen: u64,
    /// Why the device-code screen is up (e.g. the cached sign-in could not be refreshed).
    pub signin_note: Option<String>,
    /// Generation of the tenant-user load whose pages are kept; older ones are dropped.
    pub load_gen: u64,
    pub load: Load,
    /// Rows loaded by the last completed load (an estimate for the gauge of the next one).
    pub expected: Option<usize>,
    pub rows: TenantRows,
    pub index: Arc<DirectoryIndex>,
    /// Bumped whenever `index` changes; classifications made with an older one are redone.
    pub index_version: u64,
    pub directory_loaded: bool,
    pub directory: DirectoryRows,
    /// Number of users an import in flight covers.
    pub importing: Option<usize>,
    pub errors: Vec<ErrorEntry>,
    /// One-line news for the admin (last import result, ...).
    pub message: Option<String>,

    pub import: ImportTab,
    pub bindings: BindingsTab,
    pub errors_tab: ErrorsTab,

    pub quit: bool,
    /// Set by `update` when something on screen changed; the runtime draws and clears it.
    pub dirty: bool,
}

impl Default for AppState {
    fn default() -> Self {
        AppState {
            phase: Phase::SignIn(SignIn::Resuming),
            tab: Tab::Import,
            help: false,
            now: 0,
            width: 80,
            height: 24,
            tenant: String::new(),
            session: None,
            banner: None,
            no_color: false,
            keymap: Arc::new(Keymap::default()),
            signin_gen: 0,
            signin_note: None,
            load_gen: 0,
            load: Load::Idle,
            expected: None,
            rows: TenantRows::default(),
            index: Arc::new(DirectoryIndex::default()),
            index_version: 0,
            directory_loaded: false,
            directory: DirectoryRows::default(),
            importing: None,
            errors: Vec::new(),
            message: None,
            import: ImportTab::default(),
            bindings: BindingsTab::default(),
            errors_tab: ErrorsTab::default(),
            quit: false,
            dirty: true,
        }
    }
}

impl AppState {
    pub fn new(tenant: &str) -> AppState {
        AppState {
            tenant: tenant.to_string(),
            ..AppState::default()
        }
    }

    /// A signed-in state on the Import tab holding `users` already classified, with no I/O:
    /// for tests and benchmarks. `AppState::with_tenant_users` classifies with a real index.
    pub fn with_classified_users(users: Vec<(User, ImportStatus)>) -> AppState {
        let mut s = AppState::new("contoso.onmicrosoft.com");
        s.phase = Phase::Main;
        s.directory_loaded = true;
        s.session = Some(SessionInfo {
            identity: Identity {
                name: "admin@contoso.onmicrosoft.com".into(),
                tenant_id: None,
            },
            expires_at: 3600,
        });
        s.load_gen = 1;
        let (users, statuses): (Vec<User>, Vec<ImportStatus>) = users.into_iter().unzip();
        for (chunk, st) in users.chunks(999).zip(statuses.chunks(999)) {
            super::update::apply_page(&mut s, chunk.to_vec(), st);
        }
        s.load = Load::Done;
        s.expected = Some(s.rows.len());
        s
    }

    /// A signed-in state on the Import tab holding `users`, classified with `index`
    /// (`DirectoryIndex::classify`), with no I/O. The benchmark's way to a 100k-row state:
    /// `AppState::with_tenant_users(users, DirectoryIndex::default())`, then time
    /// `ui::draw` on a `TestBackend` terminal and `update(&mut s, Action::FilterInput(..))`.
    pub fn with_tenant_users(users: Vec<User>, index: DirectoryIndex) -> AppState {
        let classified = users
            .into_iter()
            .map(|u| {
                let s = index.classify(&u);
                (u, s)
            })
            .collect();
        let mut s = AppState::with_classified_users(classified);
        s.index = Arc::new(index);
        s
    }

    /// Error count for the tab title.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }
}
