//! AppState: plain data, no handles, no I/O. `update` is the only place it changes; `ui::draw`
//! reads it.
//!
//! Scale: a tenant may hold a million users. Everything a keystroke or a frame touches is
//! O(page), O(screen) or O(shown rows): rows arrive a page at a time with their lower-case
//! haystack built once, per-status counts are kept incrementally, a filter is a `Vec<u32>` of
//! row indices narrowed in place when the query grows, marks are a bitset.
use std::collections::HashMap;
use std::sync::Arc;

use tui_input::Input;

use crate::auth::{AuthError, DeviceCodeStart, Identity};
use crate::diagnose::FixAction;
use crate::directory::DomainSettings;
use crate::directory::{BindingState, DirectoryIndex, DirectoryUser, ImportStatus};
use crate::graph::Domain;
use crate::graph::User;
use crate::keymap::Keymap;
use crate::sync::apply::{ApplyProgress, IssuedPassword};
use crate::sync::password::PasswordError;
use crate::sync::plan::OpKind;

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
    /// None = All.
    pub state: Option<StateFilter>,
    /// Rows of `directory.users`.
    pub marks: Marks,
    /// The row last marked: `V` marks from it to the selected row.
    pub anchor: Option<u32>,
    /// The last failed op of a directory user (by directory id), until one succeeds.
    pub failures: HashMap<i64, RowFailure>,
    /// The list shows directory groups (`g`), not users: `view.shown` indexes
    /// `directory.groups` then.
    pub groups: bool,
}

/// Why the last op of a directory user failed (from `ApplyEvent::OpFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    pub kind: OpKind,
    /// Graph's code, e.g. `Request_BadRequest`.
    pub code: String,
    pub message: String,
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
        if !failures.is_empty() && failures.contains_key(&u.id) {
            return RowState::Error;
        }
        if let Some(p) = PendingOp::of(u) {
            return RowState::Pending(p);
        }
        match u.binding {
            BindingState::Unbound => RowState::Unbound,
            BindingState::Bound => RowState::Bound,
            BindingState::Blocked => RowState::Blocked,
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

#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub view: PlanView,
    /// First op line on screen, and the selected one.
    pub selected: usize,
    pub offset: usize,
    /// What is typed to get past the guard (its count), then the self-block (the UPN).
    pub guard_input: Input,
    /// The guard's count was typed (a self-block asks for the UPN next).
    pub guard_ok: bool,
}

impl PartialEq for Preview {
    fn eq(&self, o: &Self) -> bool {
        self.view == o.view
            && self.selected == o.selected
            && self.offset == o.offset
            && self.guard_input.value() == o.guard_input.value()
    }
}

impl Preview {
    /// What the admin confirmed so far: the guard's count, then the UPN of a self-block.
    pub fn confirm(&self) -> crate::sync::pipeline::Confirm {
        let typed = self.guard_input.value().trim();
        let count_typed = self
            .view
            .guard
            .as_ref()
            .filter(|g| self.guard_ok || typed == g.blocks.to_string())
            .map(|g| g.blocks);
        crate::sync::pipeline::Confirm {
            yes_block: count_typed,
            yes_block_self: (self.view.guard.is_none() || self.guard_ok).then(|| typed.to_string()),
            yes_block_self_any: false,
        }
    }
    /// What must be typed next (the guard's count, then the UPN), None when nothing.
    pub fn expected(&self) -> Option<String> {
        match (&self.view.guard, &self.view.self_block) {
            (Some(g), _) if !self.guard_ok => Some(g.blocks.to_string()),
            (_, Some(b)) => Some(b.upn.clone()),
            _ => None,
        }
    }
    /// `y` is accepted: nothing to confirm, or everything typed as asked.
    pub fn confirmed(&self) -> bool {
        crate::sync::pipeline::check_confirmed(&self.view, &self.confirm()).is_ok()
    }
}

/// One failed op as the progress view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub upn: String,
    pub kind: crate::sync::ops::Kind,
    pub message: String,
}

/// An apply run: progress while it runs, the summary and the passwords after.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Run {
    pub total: usize,
    pub progress: ApplyProgress,
    /// The most recent failures, newest last (at most `Run::KEEP_ERRORS`).
    pub errors: Vec<RunError>,
    /// Esc was pressed: no new op is sent, those in flight finish.
    pub stopping: bool,
    pub finished: Option<RunEnd>,
    /// Generated passwords: shown once after the run, dropped when the panel closes.
    pub passwords: Vec<IssuedPassword>,
    /// Selected password in the panel.
    pub selected: usize,
    /// Where the hand-off CSV was written.
    pub handoff: Option<String>,
}

impl Run {
    pub const KEEP_ERRORS: usize = 5;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Done {
        done: usize,
        failed: usize,
        cancelled: usize,
    },
    Failed(String),
}

/// The masked password input of one directory user. The plaintext lives here only while it is
/// typed; Debug never shows it.
#[derive(Clone, Default)]
pub struct PasswordInput {
    pub directory_id: i64,
    pub email: String,
    pub input: Input,
    /// The rule the text breaks, in plain words (None = acceptable), checked as it is typed.
    pub problem: Option<String>,
}

impl PartialEq for PasswordInput {
    fn eq(&self, o: &Self) -> bool {
        self.directory_id == o.directory_id
            && self.email == o.email
            && self.input.value() == o.input.value()
            && self.problem == o.problem
    }
}

impl std::fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordInput")
            .field("directory_id", &self.directory_id)
            .field("email", &self.email)
            .field("len", &self.input.value().chars().count())
            .finish()
    }
}

/// A dialog over the Bindings tab; `None` = the tab itself has the keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Modal {
    #[default]
    None,
    /// `p` was pressed: the plan is being computed.
    Planning {
        gen: u64,
    },
    Preview(Box<Preview>),
    Run(Box<Run>),
    Password(PasswordInput),
    /// The question before disconnecting the tenant.
    Disconnect,
    /// Disconnecting: the directory and the token cache are being cleared.
    Disconnecting,
    /// A one-key fix of the Errors tab, previewed: what will change, `y` (or Enter) applies.
    Fix(Box<FixDialog>),
    /// Export the errors shown: `c` CSV, `j` JSON.
    Export,
    /// The integration's domain settings of this tenant.
    Domains(Box<DomainsView>),
}

/// The preview of a one-key fix.
#[derive(Clone, Default)]
pub struct FixDialog {
    pub action: Option<FixAction>,
    /// Index into `AppState::errors` of the error it fixes (kept right when errors change
    /// under the dialog, by `target`).
    pub error: usize,
    /// The error it fixes, to find it again when the list changes (a re-check landed).
    pub target: Option<Box<ErrorEntry>>,
    /// What will change, in plain words, one line each.
    pub change: Vec<String>,
    /// The fix changes something that cannot be undone (purge).
    pub irreversible: bool,
    /// Edit-email: the address being typed (tui-input).
    pub input: Option<Input>,
    /// Why the typed value is refused (None = acceptable).
    pub problem: Option<String>,
    /// The value the fix writes (new email, UPN, nickname, name) when there is no input.
    pub value: Option<String>,
}

impl PartialEq for FixDialog {
    fn eq(&self, o: &Self) -> bool {
        self.action == o.action
            && self.error == o.error
            && self.change == o.change
            && self.irreversible == o.irreversible
            && self.input.as_ref().map(|i| i.value()) == o.input.as_ref().map(|i| i.value())
            && self.problem == o.problem
            && self.value == o.value
    }
}

impl std::fmt::Debug for FixDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixDialog")
            .field("action", &self.action)
            .field("error", &self.error)
            .field("change", &self.change)
            .field("input", &self.input.as_ref().map(|i| i.value().to_string()))
            .field("problem", &self.problem)
            .field("value", &self.value)
            .finish()
    }
}

/// The domain settings view: the tenant's domains (GET /domains) and what m365sync may use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DomainsView {
    /// None while loading.
    pub domains: Option<Vec<Domain>>,
    pub settings: DomainSettings,
    pub selected: usize,
    pub error: Option<String>,
}

impl DomainsView {
    /// Whether m365sync may provision into `id` (no list saved = every verified domain).
    pub fn enabled(&self, d: &Domain) -> bool {
        match &self.settings.enabled {
            None => d.is_verified,
            Some(v) => v.iter().any(|x| x.eq_ignore_ascii_case(&d.id)),
        }
    }
    /// The integration's default domain: the one saved, else the tenant's default.
    pub fn default_domain(&self) -> Option<String> {
        self.settings.default.clone().or_else(|| {
            self.domains
                .as_ref()?
                .iter()
                .find(|d| d.is_default)
                .map(|d| d.id.clone())
        })
    }
}

impl Modal {
    pub fn is_open(&self) -> bool {
        !matches!(self, Modal::None)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorsTab {
    pub view: ListView,
    /// Only errors of this catalog kind (`s` cycles through the kinds present); None = all.
    pub kind: Option<String>,
}

impl ErrorsTab {
    /// Kinds present in `errors` with their counts, in order of first appearance.
    pub fn kinds(errors: &[ErrorEntry]) -> Vec<(&str, usize)> {
        let mut out: Vec<(&str, usize)> = Vec::new();
        for e in errors {
            match out.iter_mut().find(|(k, _)| *k == e.kind()) {
                Some((_, n)) => *n += 1,
                None => out.push((e.kind(), 1)),
            }
        }
        out
    }
}

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
}

impl DirectoryRows {
    pub fn pending_total(&self) -> usize {
        self.pending.iter().sum()
    }
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
    /// The dialog over the Bindings tab.
    pub modal: Modal,
    /// Generation of the plan asked for; a result for an older one is dropped.
    pub plan_gen: u64,
    /// `SetWant` effects not yet answered: the directory is read again when the last one is
    /// (an earlier read would show the later toggles undone for a moment).
    pub wants_in_flight: u32,
    /// An apply is running (its view may be closed while it finishes).
    pub applying: bool,
    /// The journal of an interrupted run is being checked against the tenant (after sign-in);
    /// plans wait for it.
    pub checking_journal: bool,
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
            modal: Modal::None,
            plan_gen: 0,
            wants_in_flight: 0,
            applying: false,
            checking_journal: false,
            password_rule: PasswordRule::default(),
            check_gen: None,
            recheck_after_load: false,
            domain_settings: DomainSettings::default(),
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
