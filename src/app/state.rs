//! AppState: plain data, no handles, no I/O. `update` is the only place it changes; the view
//! reads it.
//!
//! `AppState` is the shared data (`Data`: the session, the tenant users, the directory, the
//! errors, what runs) plus the components: the tabs (`tabs::Tabs`, one registry), the dialog
//! over them (`dialogs::Modal`), a question over that (`dialogs::Question`) and the help. Each
//! component owns its state; the data is what several of them read.
//!
//! Scale: a tenant may hold a million users. Everything a keystroke or a frame touches is
//! O(page), O(screen) or O(shown rows): rows arrive a page at a time with their lower-case
//! haystack built once, per-status counts are kept incrementally, a filter is a `Vec<u32>` of
//! row indices narrowed in place when the query grows, marks are a bitset.
use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::{AuthError, DeviceCodeStart, Identity};
use crate::directory::DomainSettings;
use crate::directory::{BindingState, DirectoryIndex, DirectoryUser, ImportStatus};
use crate::graph::User;
use crate::keymap::{Command, Keymap};
use crate::sync::password::PasswordError;
use crate::sync::plan::OpKind;

use super::explain::ErrorEntry;

// The components' types, where tests and fixtures have always found them.
pub use super::dialogs::detail::Detail;
pub use super::dialogs::domains::DomainsView;
pub use super::dialogs::fix::FixDialog;
pub use super::dialogs::help::Help;
pub use super::dialogs::password::PasswordInput;
pub use super::dialogs::preview::{Planning, Preview};
pub use super::dialogs::question::Question;
pub use super::dialogs::run::{Run, RunEnd, RunError};
pub use super::dialogs::Modal;
pub use super::list::ListView;
pub use super::tabs::bindings::BindingsTab;
pub use super::tabs::errors::ErrorsTab;
pub use super::tabs::import::ImportTab;
pub use super::tabs::{Tab, Tabs};

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

/// What the tenant's users are as of: the moment the rows shown were current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// Unix seconds.
    pub at: i64,
    /// The local time zone's offset from UTC then, seconds (the runtime reads it).
    pub offset: i32,
}

impl AsOf {
    /// "as of 14:02" (local time).
    pub fn label(&self) -> String {
        format!("as of {}", crate::format::clock(self.at, self.offset))
    }
}

/// The rest of the tenant snapshot the rows come from: what a plan needs beside the users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantExtras {
    pub deleted: Vec<User>,
    pub domains: Vec<crate::graph::Domain>,
}

/// A refresh of the tenant's users running in the background (for the status line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshing {
    /// `None`: a delta round; else a full listing, and why.
    pub full: Option<String>,
    /// Users listed so far (a full listing).
    pub listed: u64,
    /// Users the tenant counts, when known.
    pub expected: Option<u64>,
}

impl Refreshing {
    /// "delta round…", "full listing 12,345 of 100,000 users…".
    pub fn label(&self) -> String {
        use crate::format::thousands;
        match (&self.full, self.expected) {
            (None, _) => "delta round…".into(),
            (Some(_), Some(e)) => format!(
                "full listing {} of {} users…",
                thousands(self.listed as usize),
                thousands(e as usize)
            ),
            (Some(_), None) => format!("full listing {} users…", thousands(self.listed as usize)),
        }
    }
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
    pub counts: [usize; 5],
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
        self.push_shared(Arc::new(users), statuses)
    }
    /// Appends one page shared with its holder (the tenant snapshot): no user is copied.
    pub fn push_shared(&mut self, users: Arc<Vec<User>>, statuses: &[ImportStatus]) -> u32 {
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
        self.pages.push(users);
        first
    }
    /// The rows of whole pages classified with `index`, and the UPN of each imported
    /// account: O(users), built off the UI thread and swapped in at once.
    pub fn classified(
        pages: &[Arc<Vec<User>>],
        index: &DirectoryIndex,
    ) -> (TenantRows, HashMap<String, String>) {
        let mut rows = TenantRows::default();
        let mut upns = HashMap::new();
        for p in pages {
            let statuses: Vec<ImportStatus> = p.iter().map(|u| index.classify(u)).collect();
            for (u, s) in p.iter().zip(&statuses) {
                if *s == ImportStatus::Imported {
                    upns.insert(u.id.clone(), u.user_principal_name.clone());
                }
            }
            rows.push_shared(p.clone(), &statuses);
        }
        (rows, upns)
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
        ImportStatus::Guest => 4,
    }
}

/// What a change of the desired binding will do at the next apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PendingOp {
    /// Bind of a user with no account (the preview may turn it into a takeover or restore).
    Create,
    /// Bind of a blocked account.
    ReEnable,
    /// Unbind of a bound account: sign-in blocked, nothing deleted.
    Block,
}

impl PendingOp {
    pub const ALL: [PendingOp; 3] = [PendingOp::Create, PendingOp::ReEnable, PendingOp::Block];
    pub fn label(self) -> &'static str {
        match self {
            PendingOp::Create => "→ create",
            PendingOp::ReEnable => "→ re-enable",
            PendingOp::Block => "→ block",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            PendingOp::Create => "create",
            PendingOp::ReEnable => "re-enable",
            PendingOp::Block => "block",
        }
    }
    pub fn slot(self) -> usize {
        match self {
            PendingOp::Create => 0,
            PendingOp::ReEnable => 1,
            PendingOp::Block => 2,
        }
    }
    /// The op a user's wish asks for, if it differs from what the account is.
    pub fn of(u: &DirectoryUser) -> Option<PendingOp> {
        match (u.wanted(), u.binding) {
            (true, BindingState::Unbound) => Some(PendingOp::Create),
            (true, BindingState::Blocked) => Some(PendingOp::ReEnable),
            (false, BindingState::Bound) => Some(PendingOp::Block),
            _ => None,
        }
    }
}

/// A row of the Bindings tab as shown: the last failure first, then a pending change, then
/// the binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    Unbound,
    Bound,
    Blocked,
    Pending(PendingOp),
    Error,
}

impl RowState {
    pub fn of(u: &DirectoryUser, failures: &HashMap<i64, RowFailure>) -> RowState {
        let failed = !failures.is_empty() && failures.contains_key(&u.id);
        RowState::from_parts(u.wanted(), u.binding, failed)
    }
    /// The state of row `r` of `d` from its packed flags (no touch of the user itself: a
    /// state filter over a million users reads a byte each).
    pub fn of_row(d: &DirectoryRows, r: usize, failures: &HashMap<i64, RowFailure>) -> RowState {
        let failed = !failures.is_empty() && failures.contains_key(&d.users[r].id);
        let (want, binding) = unpack(d.flags[r]);
        RowState::from_parts(want, binding, failed)
    }
    fn from_parts(want: bool, binding: BindingState, failed: bool) -> RowState {
        if failed {
            return RowState::Error;
        }
        match (want, binding) {
            (true, BindingState::Unbound) => RowState::Pending(PendingOp::Create),
            (true, BindingState::Blocked) => RowState::Pending(PendingOp::ReEnable),
            (false, BindingState::Bound) => RowState::Pending(PendingOp::Block),
            (_, BindingState::Unbound) => RowState::Unbound,
            (_, BindingState::Bound) => RowState::Bound,
            (_, BindingState::Blocked) => RowState::Blocked,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            RowState::Unbound => "Unbound",
            RowState::Bound => "Bound",
            RowState::Blocked => "Blocked",
            RowState::Pending(p) => p.label(),
            RowState::Error => "Error",
        }
    }
    pub fn filter(self) -> StateFilter {
        match self {
            RowState::Unbound => StateFilter::Unbound,
            RowState::Bound => StateFilter::Bound,
            RowState::Blocked => StateFilter::Blocked,
            RowState::Pending(_) => StateFilter::Pending,
            RowState::Error => StateFilter::Error,
        }
    }
}

/// The Bindings tab's state filter (`s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateFilter {
    Unbound,
    Bound,
    Blocked,
    Pending,
    Error,
}

impl StateFilter {
    pub fn label(self) -> &'static str {
        match self {
            StateFilter::Unbound => "Unbound",
            StateFilter::Bound => "Bound",
            StateFilter::Blocked => "Blocked",
            StateFilter::Pending => "Pending",
            StateFilter::Error => "Error",
        }
    }
    /// All -> Bound -> Unbound -> Blocked -> Pending -> Error -> All.
    pub fn cycle(f: Option<StateFilter>) -> Option<StateFilter> {
        match f {
            None => Some(StateFilter::Bound),
            Some(StateFilter::Bound) => Some(StateFilter::Unbound),
            Some(StateFilter::Unbound) => Some(StateFilter::Blocked),
            Some(StateFilter::Blocked) => Some(StateFilter::Pending),
            Some(StateFilter::Pending) => Some(StateFilter::Error),
            Some(StateFilter::Error) => None,
        }
    }
}

/// The password rule the input checks as the admin types: `sync::password::check`, or a
/// stand-in in tests. Compared as equal always (it is configuration, not state).
#[derive(Clone, Copy)]
pub struct PasswordRule(pub fn(&str) -> Result<(), PasswordError>);

impl Default for PasswordRule {
    fn default() -> Self {
        PasswordRule(crate::sync::password::check)
    }
}

impl PartialEq for PasswordRule {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PasswordRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordRule")
    }
}

/// What the preview shows, computed off the UI thread (the plan and what it implies).
pub use crate::sync::pipeline::PlanView;

/// The local directory as last loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryRows {
    pub users: Vec<DirectoryUser>,
    /// Directory groups, ordered by name.
    pub groups: Vec<crate::directory::DirectoryGroup>,
    pub hay: Haystacks,
    /// Bound, Unbound, Blocked.
    pub counts: [usize; 3],
    /// Users whose wish differs from their account, per `PendingOp::slot`; kept as wishes
    /// change, so the status bar costs nothing.
    pub pending: [usize; 3],
    /// The UPN a directory user's account is created with when it is not its email (the
    /// default-domain fix), by directory id.
    pub upn_overrides: HashMap<i64, String>,
    /// Each user's wish and binding packed in a byte (`pack`), kept as wishes change.
    pub flags: Vec<u8>,
}

/// A user's wish and binding in a byte.
pub fn pack(want: bool, b: BindingState) -> u8 {
    binding_slot(b) as u8 | (u8::from(want) << 2)
}

fn unpack(f: u8) -> (bool, BindingState) {
    let b = match f & 3 {
        0 => BindingState::Bound,
        1 => BindingState::Unbound,
        _ => BindingState::Blocked,
    };
    (f & 4 != 0, b)
}

impl DirectoryRows {
    pub fn pending_total(&self) -> usize {
        self.pending.iter().sum()
    }
    pub fn user(&self, id: i64) -> Option<&DirectoryUser> {
        self.users.iter().find(|u| u.id == id)
    }
    /// The UPN the account of `u` is created with: its override, else its email.
    pub fn planned_upn<'a>(&'a self, u: &'a DirectoryUser) -> &'a str {
        self.upn_overrides
            .get(&u.id)
            .map_or(u.email.as_str(), String::as_str)
    }
}

pub fn binding_slot(b: BindingState) -> usize {
    match b {
        BindingState::Bound => 0,
        BindingState::Unbound => 1,
        BindingState::Blocked => 2,
    }
}

/// Why the last op of a directory user failed (from `ApplyEvent::OpFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    pub kind: OpKind,
    /// Graph's code, e.g. `Request_BadRequest`.
    pub code: String,
    pub message: String,
}

/// What a one-line message is about: a newer message about the same thing replaces it, and
/// a change of that thing clears it (a new listing clears "stopped loading").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Load,
    Import,
    Wish,
    Plan,
    Apply,
    Password,
    Fix,
    Export,
    Domains,
    Journal,
    Disconnect,
    /// A key that could not act here ("no row is selected").
    Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Warn,
    Bad,
}

/// One line of news for the admin, on its own line above the hint bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub topic: Topic,
    pub tone: Tone,
}

/// What several components read: the session, the tenant users, the directory, the errors,
/// what is running. Components change it through their narrow methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub phase: Phase,
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
    /// A reload keeps the rows of the last listing on screen until its first page arrives.
    pub reloading: bool,
    /// The rows are a whole copy of the tenant (the tenant snapshot, perhaps being brought
    /// up to date in the background): a plan may be previewed on them.
    pub complete_copy: bool,
    /// When the rows were current (the snapshot's time), shown in the status bar.
    pub as_of: Option<AsOf>,
    /// The soft-deleted users and domains of the snapshot the rows come from.
    pub tenant_extras: Arc<TenantExtras>,
    /// A delta round or full listing running in the background.
    pub refreshing: Option<Refreshing>,
    pub index: Arc<DirectoryIndex>,
    /// Bumped whenever `index` changes; classifications made with an older one are redone.
    pub index_version: u64,
    /// The UPN of each linked account (tenant id -> UPN), learnt from the listing: the
    /// Bindings tab names accounts, not ids.
    pub account_upns: HashMap<String, String>,
    pub directory_loaded: bool,
    pub directory: DirectoryRows,
    /// Bumped whenever `directory` is read again: the Bindings tab follows its users.
    pub directory_gen: u64,
    /// The last failed op of a directory user (by directory id), until one succeeds.
    pub row_failures: HashMap<i64, RowFailure>,
    /// Number of users an import in flight covers.
    pub importing: Option<usize>,
    pub errors: Vec<ErrorEntry>,
    /// Bumped whenever `errors` changes: the Errors tab and a fix dialog follow it.
    pub errors_gen: u64,
    pub message: Option<Message>,

    /// Generation of the plan asked for; a result for an older one is dropped.
    pub plan_gen: u64,
    /// `p` was pressed while the tenant users were listed: the preview opens when they are.
    pub preview_after_listing: bool,
    /// `SetWant` effects not yet answered: the directory is read again when the last one is
    /// (an earlier read would show the later toggles undone for a moment).
    pub wants_in_flight: u32,
    /// An apply is running (its view may be closed while it finishes).
    pub applying: bool,
    /// Ops per second the last run achieved: the next preview's ETA uses it.
    pub measured_rate: Option<f64>,
    /// A quit was confirmed during an apply: the console ends when the run has stopped.
    pub quitting: bool,
    /// The journal of an interrupted run is being checked against the tenant (after sign-in);
    /// plans wait for it.
    pub checking_journal: bool,
    /// What the Licences tab shows (read when it is first shown, after an apply, on `r`).
    pub licences: super::tabs::licences::LicencesData,
    pub password_rule: PasswordRule,
    /// Generation of a re-check (a plan computed only for its preflight findings, after a
    /// fix); its result updates Errors and opens nothing.
    pub check_gen: Option<u64>,
    /// A fix was applied: re-check the plan once the directory is read again.
    pub recheck_after_load: bool,
    /// The domain settings of this tenant as last loaded (preflight reads them in the
    /// runtime; shown in the domain view).
    pub domain_settings: DomainSettings,

    pub quit: bool,
    /// Set by `update` when something on screen changed; the runtime draws and clears it.
    pub dirty: bool,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            phase: Phase::SignIn(SignIn::Resuming),
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
            reloading: false,
            complete_copy: false,
            as_of: None,
            tenant_extras: Arc::new(TenantExtras::default()),
            refreshing: None,
            index: Arc::new(DirectoryIndex::default()),
            index_version: 0,
            account_upns: HashMap::new(),
            directory_loaded: false,
            directory: DirectoryRows::default(),
            directory_gen: 0,
            row_failures: HashMap::new(),
            importing: None,
            errors: Vec::new(),
            errors_gen: 0,
            message: None,
            plan_gen: 0,
            preview_after_listing: false,
            wants_in_flight: 0,
            applying: false,
            measured_rate: None,
            quitting: false,
            checking_journal: false,
            licences: Default::default(),
            password_rule: PasswordRule::default(),
            check_gen: None,
            recheck_after_load: false,
            domain_settings: DomainSettings::default(),
            quit: false,
            dirty: true,
        }
    }
}

impl Data {
    /// A message about `topic`, replacing any other.
    pub fn say(&mut self, topic: Topic, text: impl Into<String>) {
        self.tell(topic, Tone::Info, text);
    }
    pub fn tell(&mut self, topic: Topic, tone: Tone, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            topic,
            tone,
        });
    }
    /// The state a message about `topic` described changed: it goes.
    pub fn unsay(&mut self, topic: Topic) {
        if self.message.as_ref().is_some_and(|m| m.topic == topic) {
            self.message = None;
        }
    }
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|m| m.text.as_str())
    }

    /// Adds an error (once: an entry with the same key is listed already).
    pub fn push_error(&mut self, e: ErrorEntry) {
        if let Some(k) = &e.key {
            if self.errors.iter().any(|x| x.key.as_ref() == Some(k)) {
                return;
            }
        }
        self.errors.push(e);
        self.errors_gen += 1;
    }
    /// Keeps the errors `keep` says to keep.
    pub fn retain_errors(&mut self, keep: impl FnMut(&ErrorEntry) -> bool) {
        let before = self.errors.len();
        self.errors.retain(keep);
        if self.errors.len() != before {
            self.errors_gen += 1;
        }
    }

    /// The key that gives `c` where a tab has the focus (for "press r to reload").
    pub fn tab_key(&self, section: &str, c: Command) -> String {
        self.keymap.key_for(
            &[
                section,
                crate::keymap::section::LIST,
                crate::keymap::section::GLOBAL,
            ],
            c,
        )
    }
    /// "see Errors (3)": where the details of a failure are, with the key that goes there.
    pub fn see_errors(&self) -> String {
        let tab = Tab::Errors;
        let key = self.keymap.key_for(
            &[crate::keymap::section::GLOBAL],
            Command::GoTab(tab.index() as u8 + 1),
        );
        if key.is_empty() {
            format!("see {}", tab.title())
        } else {
            format!("see {}, key {key}", tab.title())
        }
    }
    /// Who acts: the audit log's actor.
    pub fn actor(&self) -> String {
        self.session
            .as_ref()
            .map(|si| si.identity.name.clone())
            .unwrap_or_default()
    }
    /// The UPN a directory user's account has (learnt from the listing) or will have.
    pub fn upn_of(&self, u: &DirectoryUser) -> (String, bool) {
        match u
            .tenant_user_id
            .as_ref()
            .and_then(|t| self.account_upns.get(t))
        {
            Some(upn) => (upn.clone(), true),
            None => (self.directory.planned_upn(u).to_string(), false),
        }
    }
    /// The rows are every tenant user (a finished listing, or the tenant snapshot while a
    /// round brings it up to date): a plan may compare with them.
    pub fn listed(&self) -> bool {
        (self.load == Load::Done || self.complete_copy) && !self.reloading
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppState {
    pub data: Data,
    /// The tab on screen.
    pub tab: Tab,
    pub tabs: Tabs,
    /// The dialog over the tabs; `Modal::None` = the tab has the keys.
    pub modal: Modal,
    /// A question over everything (quit while applying, close unsaved passwords).
    pub question: Option<Question>,
    /// The `?` overlay, over everything.
    pub help: Option<Help>,
}

impl AppState {
    pub fn new(tenant: &str) -> AppState {
        let mut s = AppState::default();
        s.data.tenant = tenant.to_string();
        s
    }

    /// A signed-in state on the Import tab holding `users` already classified, with no I/O:
    /// for tests and benchmarks. `AppState::with_tenant_users` classifies with a real index.
    pub fn with_classified_users(users: Vec<(User, ImportStatus)>) -> AppState {
        let mut s = AppState::new("contoso.onmicrosoft.com");
        s.data.phase = Phase::Main;
        s.data.directory_loaded = true;
        s.data.session = Some(SessionInfo {
            identity: Identity {
                name: "admin@contoso.onmicrosoft.com".into(),
                tenant_id: None,
            },
            expires_at: 3600,
        });
        s.data.load_gen = 1;
        let (users, statuses): (Vec<User>, Vec<ImportStatus>) = users.into_iter().unzip();
        for (chunk, st) in users.chunks(999).zip(statuses.chunks(999)) {
            super::update::apply_page(&mut s, Arc::new(chunk.to_vec()), st);
        }
        s.data.load = Load::Done;
        s.data.expected = Some(s.data.rows.len());
        s
    }

    /// A signed-in state on the Import tab holding `users`, classified with `index`
    /// (`DirectoryIndex::classify`), with no I/O. The benchmark's way to a big state:
    /// `AppState::with_tenant_users(users, DirectoryIndex::default())`, then time
    /// `app::draw` on a `TestBackend` terminal and `update(&mut s, Action::FilterInput(..))`.
    pub fn with_tenant_users(users: Vec<User>, index: DirectoryIndex) -> AppState {
        let classified = users
            .into_iter()
            .map(|u| {
                let s = index.classify(&u);
                (u, s)
            })
            .collect();
        let mut s = AppState::with_classified_users(classified);
        s.data.index = Arc::new(index);
        s
    }

    /// Error count for the tab title.
    pub fn error_count(&self) -> usize {
        self.data.errors.len()
    }
}
