//! The Import tab: every tenant user with its import status (New, Imported, Conflict, Failed),
//! listed page by page; `/` and the status filter, marks, import, sort, detail. Owns the results
//! of its effect (`ImportDone`) and the sort it asks the runtime for.
use std::sync::Arc;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::directory::{ImportOutcome, ImportStatus};
use crate::failure::Failure;
use crate::format::{count, thousands};
use crate::graph::User;
use crate::keymap::Command;
use crate::ui::text::width;
use crate::ui::widgets::{draw_list, flex_widths, table_line, visible, Col, ListSpec};
use crate::ui::Theme;

use super::super::component::{Component, Outcome, Section, TabView, TextMode};
use super::super::dialogs::detail::Detail;
use super::super::dialogs::question::Question;
use super::super::dialogs::Modal;
use super::super::effect::{Effect, SortKey};
use super::super::explain::ErrorEntry;
use super::super::layout;
use super::super::list::{self, ListView, Needle, Sort};
use super::super::state::{Data, Load, Marks, TenantRows, Topic};

pub const SECTION: Section = Section {
    name: "import",
    title: "Import tab",
};

const TITLES: [&str; 6] = ["", "Status", "Display name", "UPN", "Mail", "Enabled"];
/// The columns `<` and `>` sort by, in order.
const SORTABLE: [usize; 5] = [1, 2, 3, 4, 5];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportTab {
    pub view: ListView,
    /// None = All.
    pub status: Option<ImportStatus>,
    pub marks: Marks,
    /// Every row in the sort's order (None: as listed). Computed off the UI thread for the
    /// text columns.
    pub order: Option<Arc<Vec<u32>>>,
    /// A sort asked for and not back yet (the runtime sorts 1M rows in the background).
    pub sorting: bool,
    /// The admin confirmed importing the guests among the rows (the question's yes).
    pub guests_ok: bool,
}

impl ImportTab {
    pub const SECTION: Section = SECTION;
    pub const TITLE: &'static str = "Import";

    fn rows_on_screen(&self, data: &Data) -> usize {
        layout::list_rows(self.list_area(data, layout::screen_of(data).body))
    }

    /// Column widths for the rows on screen: the text columns as wide as what they show.
    fn widths(&self, data: &Data, list: Rect) -> Vec<usize> {
        let (mut name, mut upn, mut mail) = (width(TITLES[2]), width(TITLES[3]), width(TITLES[4]));
        for i in visible(self.view.shown.len(), self.view.offset, list) {
            let u = data.rows.user(self.view.shown[i]);
            name = name.max(width(u.display_name.as_deref().unwrap_or("")));
            upn = upn.max(width(&u.user_principal_name));
            mail = mail.max(width(u.mail.as_deref().unwrap_or("")));
        }
        flex_widths(
            &[
                Col::Fixed(1),
                Col::Fixed(8),
                Col::Text {
                    want: name + 2,
                    min: 10,
                },
                Col::Text { want: upn, min: 12 },
                Col::Text {
                    want: mail,
                    min: 10,
                },
                Col::Fixed(7),
            ],
            list.width,
        )
    }

    fn matches(rows: &TenantRows, r: usize, q: &Needle, status: Option<ImportStatus>) -> bool {
        status.is_none_or(|st| rows.status[r] == st) && (q.is_empty() || q.is_in(rows.hay.get(r)))
    }

    /// Every row again, filtered: O(rows). The rows kept on screen go (`stale` ends).
    pub fn rescan(&mut self, data: &Data) {
        let rows = self.rows_on_screen(data);
        let keep = self.view.selected_row();
        let (q, st) = (Needle::new(&self.view.query), self.status);
        let r = &data.rows;
        self.view.shown = match &self.order {
            Some(order) => order
                .iter()
                .copied()
                .filter(|&i| (i as usize) < r.len() && Self::matches(r, i as usize, &q, st))
                .collect(),
            None => (0..r.len())
                .filter(|&i| Self::matches(r, i, &q, st))
                .map(|i| i as u32)
                .collect(),
        };
        self.view.stale = false;
        self.view.reselect(keep, rows);
    }

    /// A page arrived (rows `first..`): those that pass the filters are shown. O(page).
    pub fn rows_appended(&mut self, data: &Data, first: u32) {
        let q = Needle::new(&self.view.query);
        for r in first as usize..data.rows.len() {
            if Self::matches(&data.rows, r, &q, self.status) {
                self.view.shown.push(r as u32);
            }
        }
    }

    /// A reload's first page replaced the rows: the list starts again where it was (the same
    /// tenant lists in the same order), marks and the sort go with the old rows.
    pub fn rows_replaced(&mut self) {
        self.view.shown.clear();
        self.marks.clear();
        self.order = None;
        self.sorting = false;
        self.view.stale = false;
    }

    /// Statuses changed (a reclassification): under a status filter the rows stay where they
    /// are until `r` or a filter change, so the cursor never lands on another user.
    pub fn statuses_changed(&mut self) {
        if self.status.is_some() {
            self.view.stale = true;
        }
    }

    /// The listing is complete: a sort asked for is made now.
    pub fn listing_done(&mut self, data: &Data, fx: &mut Vec<Effect>) {
        if self.view.sort.is_some() && self.order.is_none() {
            self.request_sort(data, fx);
        }
    }

    /// The runtime's sort of load `gen` by `key` came back.
    pub fn sorted(&mut self, data: &Data, gen: u64, key: SortKey, order: Vec<u32>) -> bool {
        let Some(sort) = self.view.sort else {
            return false;
        };
        if gen != data.load_gen || sort_key(sort.column) != key || !self.sorting {
            return false;
        }
        let mut order = order;
        if sort.descending {
            order.reverse();
        }
        self.order = Some(Arc::new(order));
        self.sorting = false;
        self.rescan(data);
        true
    }

    fn request_sort(&mut self, data: &Data, fx: &mut Vec<Effect>) {
        let Some(key) = self.view.sort.map(|s| sort_key(s.column)) else {
            self.order = None;
            self.sorting = false;
            self.rescan(data);
            return;
        };
        // A million rows are sorted off the UI thread, whatever the column.
        self.sorting = true;
        fx.push(Effect::SortRows {
            gen: data.load_gen,
            key,
            pages: data.rows.pages.clone(),
            statuses: data.rows.status.clone(),
        });
    }

    fn sort_command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        if !data.listed() {
            data.say(
                Topic::Key,
                "Sorting waits for the listing to end: the list is in Graph's order until then.",
            );
            return Outcome::Done;
        }
        self.view.sort = next_sort(self.view.sort, c, &SORTABLE);
        self.order = None;
        data.unsay(Topic::Key);
        self.request_sort(data, fx);
        Outcome::Done
    }

    /// The import asked for, the guests among its rows confirmed (the question's yes).
    pub fn import_with_guests(&mut self, data: &mut Data, fx: &mut Vec<Effect>) -> Outcome {
        self.guests_ok = true;
        let o = self.start_import(data, fx);
        self.guests_ok = false;
        o
    }

    fn start_import(&mut self, data: &mut Data, fx: &mut Vec<Effect>) -> Outcome {
        if data.importing.is_some() {
            data.say(
                Topic::Import,
                "An import is already running; wait for it to finish.",
            );
            return Outcome::Done;
        }
        let n = data.rows.len();
        let rows: Vec<u32> = if self.marks.is_empty() {
            self.view.selected_row().into_iter().collect()
        } else {
            self.marks.iter().filter(|&r| (r as usize) < n).collect()
        };
        if rows.is_empty() {
            data.say(Topic::Key, "Nothing to import: no row is selected.");
            return Outcome::Done;
        }
        // A Conflict is not imported again: it is linked to the directory user who has its
        // address. One Conflict alone: its detail offers the link.
        let conflicts = rows
            .iter()
            .filter(|&&r| data.rows.status[r as usize] == ImportStatus::Conflict)
            .count();
        if conflicts == 1 && rows.len() == 1 {
            let row = rows[0];
            data.say(
                Topic::Import,
                "A Conflict is linked, not imported: Enter links it to the directory user.",
            );
            return Outcome::Open(Modal::Detail(Box::new(Detail::tenant_user(data, row))));
        }
        let users: Vec<User> = rows
            .iter()
            .filter(|&&r| data.rows.status[r as usize] != ImportStatus::Conflict)
            .map(|&r| data.rows.user(r).clone())
            .collect();
        if users.is_empty() {
            data.say(
                Topic::Import,
                format!(
                    "{} marked: a Conflict is linked, not imported (Enter on one links it).",
                    count(conflicts, "Conflict", None)
                ),
            );
            return Outcome::Done;
        }
        // Guests are not imported as members unless the admin says so.
        let guests = users.iter().filter(|u| u.guest).count();
        if guests > 0 && !self.guests_ok {
            return Outcome::Ask(Question::ImportGuests {
                guests,
                others: users.len() - guests,
            });
        }
        data.importing = Some(users.len());
        let mut msg = format!("Importing {}…", count(users.len(), "user", None));
        if conflicts > 0 {
            msg.push_str(&format!(
                " ({} left out: Enter on one links it)",
                count(conflicts, "Conflict", None)
            ));
        }
        data.say(Topic::Import, msg);
        fx.push(Effect::Import { users });
        Outcome::Done
    }
}

/// The runtime's key for a sort by `column`.
fn sort_key(column: usize) -> SortKey {
    match column {
        1 => SortKey::Status,
        2 => SortKey::DisplayName,
        3 => SortKey::Upn,
        4 => SortKey::Mail,
        _ => SortKey::Enabled,
    }
}

/// The order of every row sorted by `key` (ascending; text lower-cased; ties by row): the
/// runtime runs it off the UI thread. Status and Enabled are a counting sort.
pub fn sort_order(pages: &[Arc<Vec<User>>], statuses: &[ImportStatus], key: SortKey) -> Vec<u32> {
    let users = pages.iter().flat_map(|p| p.iter());
    let slot = |u: &User, r: usize| -> Option<usize> {
        match key {
            SortKey::Status => Some(super::super::state::status_slot(
                statuses.get(r).copied().unwrap_or(ImportStatus::New),
            )),
            SortKey::Enabled => Some(match u.account_enabled {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            }),
            _ => None,
        }
    };
    if matches!(key, SortKey::Status | SortKey::Enabled) {
        let mut buckets: [Vec<u32>; ImportStatus::ALL.len()] = Default::default();
        for (r, u) in users.enumerate() {
            buckets[slot(u, r).unwrap_or(0)].push(r as u32);
        }
        return buckets.concat();
    }
    let mut keys: Vec<(String, u32)> = users
        .enumerate()
        .map(|(r, u)| {
            let k = match key {
                SortKey::DisplayName => u.display_name.as_deref().unwrap_or(""),
                SortKey::Upn => &u.user_principal_name,
                _ => u.mail.as_deref().unwrap_or(""),
            };
            (k.to_lowercase(), r as u32)
        })
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|(_, r)| r).collect()
}

/// `<`, `>` and `~` on a sort over `sortable` columns: the next or previous column (then none),
/// or the other direction.
pub fn next_sort(sort: Option<Sort>, c: Command, sortable: &[usize]) -> Option<Sort> {
    let at = sort.and_then(|s| sortable.iter().position(|&x| x == s.column));
    let pick = |i: Option<usize>| {
        i.map(|i| Sort {
            column: sortable[i],
            descending: false,
        })
    };
    match c {
        Command::SortNext => pick(match at {
            None => Some(0),
            Some(i) if i + 1 < sortable.len() => Some(i + 1),
            Some(_) => None,
        }),
        Command::SortPrev => pick(match at {
            None => Some(sortable.len() - 1),
            Some(0) => None,
            Some(i) => Some(i - 1),
        }),
        _ => sort.map(|s| Sort {
            descending: !s.descending,
            ..s
        }),
    }
}

/// The header titles with the sort's arrow.
pub fn titles_with_sort(titles: &[&str], sort: Option<Sort>) -> Vec<String> {
    titles
        .iter()
        .enumerate()
        .map(|(i, t)| match sort {
            Some(s) if s.column == i => {
                format!("{t} {}", if s.descending { "▼" } else { "▲" })
            }
            _ => t.to_string(),
        })
        .collect()
}

/// What an import did, said in one line; the failures go to Errors. The directory changed:
/// it is read again (then the rows are reclassified).
pub fn import_done(
    data: &mut Data,
    tab: &mut ImportTab,
    result: Result<Vec<ImportOutcome>, Failure>,
    fx: &mut Vec<Effect>,
) {
    data.importing = None;
    match result {
        Ok(outcomes) => {
            let (mut imported, mut already, mut failed) = (0usize, 0usize, 0usize);
            for o in &outcomes {
                match o {
                    ImportOutcome::Imported { .. } => imported += 1,
                    ImportOutcome::AlreadyImported { .. } => already += 1,
                    ImportOutcome::Failed(f) => {
                        failed += 1;
                        data.push_error(ErrorEntry::from_import(f));
                    }
                }
            }
            let mut msg = format!("Imported {}", count(imported, "user", None));
            if already > 0 {
                msg.push_str(&format!(", {} already", thousands(already)));
            }
            if failed > 0 {
                msg.push_str(&format!(
                    ", {} failed ({})",
                    thousands(failed),
                    data.see_errors()
                ));
            }
            msg.push('.');
            data.say(Topic::Import, msg);
            tab.marks.clear();
        }
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.say(
                Topic::Import,
                format!("Import failed ({}).", data.see_errors()),
            );
        }
    }
    fx.push(Effect::LoadDirectory);
}

impl Component for ImportTab {
    fn sections(&self, _: &Data) -> Vec<Section> {
        if self.view.editing {
            return vec![Section::FILTER];
        }
        vec![SECTION, Section::LIST]
    }

    fn commands(&self, data: &Data) -> Vec<Command> {
        let mut v = list::commands(&self.view, data);
        if self.view.editing {
            return v;
        }
        v.push(Command::CycleStatus);
        if !self.view.shown.is_empty() {
            v.extend([Command::ToggleMark, Command::MarkAll, Command::Import]);
        }
        if !self.marks.is_empty() {
            v.extend([Command::UnmarkAll, Command::Back]);
        }
        v.extend([Command::SortNext, Command::SortPrev]);
        if self.view.sort.is_some() {
            v.push(Command::SortReverse);
        }
        v
    }

    fn text_mode(&self, _: &Data) -> TextMode {
        if self.view.editing {
            TextMode::All
        } else {
            TextMode::None
        }
    }

    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        let rows = self.rows_on_screen(data);
        match c {
            Command::ToggleMark => {
                let Some(row) = self.view.selected_row() else {
                    return Outcome::Ignored;
                };
                self.marks.toggle(row);
                self.view.nav(Command::Down, rows);
            }
            Command::MarkAll => {
                for &r in &self.view.shown {
                    self.marks.insert(r);
                }
            }
            Command::UnmarkAll => self.marks.clear(),
            Command::Back => {
                // Esc: the filter went first (the list does it), then the marks.
                if self.marks.is_empty() {
                    return Outcome::Ignored;
                }
                self.marks.clear();
            }
            Command::CycleStatus => {
                self.status = match self.status {
                    None => Some(ImportStatus::New),
                    Some(ImportStatus::New) => Some(ImportStatus::Imported),
                    Some(ImportStatus::Imported) => Some(ImportStatus::Conflict),
                    Some(ImportStatus::Conflict) => Some(ImportStatus::Failed),
                    Some(ImportStatus::Failed) => Some(ImportStatus::Guest),
                    Some(ImportStatus::Guest) => None,
                };
                self.rescan(data);
            }
            Command::Import => return self.start_import(data, fx),
            Command::Open => {
                let Some(row) = self.view.selected_row() else {
                    return Outcome::Ignored;
                };
                return Outcome::Open(Modal::Detail(Box::new(Detail::tenant_user(data, row))));
            }
            Command::SortNext | Command::SortPrev | Command::SortReverse => {
                return self.sort_command(data, c, fx)
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }

    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }

    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let (toolbar, _) = layout::toolbar_and_list(area);
        let list_area = self.list_area(data, area);
        let right_w = (toolbar.width / 3).clamp(12, 40);
        let [left, right] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_w)]).areas(toolbar);

        let mut spans = list::filter_spans(&self.view, theme);
        spans.push(Span::styled("  status ", theme.dim()));
        spans.push(Span::styled(
            self.status.map(|s| s.label()).unwrap_or("All"),
            self.status.map(|s| theme.status(s)).unwrap_or(theme.bold()),
        ));
        spans.push(Span::styled(
            format!(
                "  {} shown · {}",
                thousands(self.view.shown.len()),
                crate::ui::widgets::position(self.view.selected, self.view.shown.len())
            ),
            theme.dim(),
        ));
        if self.view.stale {
            spans.push(Span::styled(
                format!(
                    " (changed rows kept: {} refreshes)",
                    data.tab_key(SECTION.name, Command::Refresh)
                ),
                theme.warn(),
            ));
        }
        if !self.marks.is_empty() {
            spans.push(Span::styled(
                format!("  {} marked", thousands(self.marks.len())),
                theme.accent(),
            ));
        }
        if self.sorting {
            spans.push(Span::styled("  sorting…", theme.accent()));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), left);
        if self.view.editing {
            list::set_filter_cursor(frame, left, &self.view);
        }
        draw_progress(frame, right, data, theme);

        let widths = self.widths(data, list_area);
        let titles = titles_with_sort(&TITLES, self.view.sort);
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let header = crate::ui::widgets::header_line(&titles, &widths, theme);
        let r = data.tab_key(SECTION.name, Command::Refresh);
        let empty = match &data.load {
            _ if !data.rows.is_empty() => "No user matches the filter.".to_string(),
            Load::Waiting => "Reading the local directory…".into(),
            Load::Loading { .. } => {
                "Waiting for the first page of users from Microsoft Graph…".into()
            }
            Load::Failed { .. } => {
                format!("Loading the users failed (see the Errors tab); {r} tries again.")
            }
            Load::Cancelled => format!("Listing was stopped: {r} lists the users again."),
            _ => "The tenant has no users.".into(),
        };
        let v = &self.view;
        draw_list(
            frame,
            list_area,
            ListSpec {
                header,
                len: v.shown.len(),
                offset: v.offset,
                empty: &empty,
            },
            theme,
            |i| {
                let row = v.shown[i];
                let u = data.rows.user(row);
                let st = data.rows.status[row as usize];
                let marked = self.marks.contains(row);
                let cells = vec![
                    (if marked { "●" } else { " " }.to_string(), theme.accent()),
                    (st.label().to_string(), theme.status(st)),
                    (u.display_name.clone().unwrap_or_default(), Style::new()),
                    (u.user_principal_name.clone(), Style::new()),
                    (u.mail.clone().unwrap_or_default(), theme.dim()),
                    (
                        match u.account_enabled {
                            Some(true) => "yes",
                            Some(false) => "no",
                            None => "—",
                        }
                        .to_string(),
                        Style::new(),
                    ),
                ];
                let style = if i == v.selected {
                    theme.selected()
                } else if marked {
                    theme.bold()
                } else {
                    Style::new()
                };
                table_line(cells, &widths, style)
            },
        );
    }
}

impl TabView for ImportTab {
    fn title(&self) -> &'static str {
        Self::TITLE
    }
    fn badge(&self, _: &Data) -> Option<(String, bool)> {
        None
    }
    fn list(&self) -> &ListView {
        &self.view
    }
    fn list_mut(&mut self) -> &mut ListView {
        &mut self.view
    }
    fn list_area(&self, _: &Data, body: Rect) -> Rect {
        layout::toolbar_and_list(body).1
    }
    fn counts(&self, data: &Data, theme: &Theme, short: bool) -> Vec<Span<'static>> {
        let mut v = Vec::new();
        // Guests are counted when the tenant has some.
        let shown = ImportStatus::ALL
            .iter()
            .filter(|st| **st != ImportStatus::Guest || data.rows.count(**st) > 0);
        for (i, st) in shown.enumerate() {
            if i > 0 {
                v.push(Span::raw(if short { " " } else { "  " }));
            }
            let label = match (short, st) {
                (true, ImportStatus::Imported) => "Imp",
                (true, ImportStatus::Conflict) => "Confl",
                (true, ImportStatus::Failed) => "Fail",
                (true, ImportStatus::Guest) => "Gst",
                _ => st.label(),
            };
            v.push(Span::styled(format!("{label} "), theme.status(*st)));
            v.push(Span::raw(thousands(data.rows.count(*st))));
        }
        v
    }
    fn filter_changed(&mut self, data: &Data) {
        let rows = self.rows_on_screen(data);
        let q = self.view.typed_query();
        let v = &mut self.view;
        if q == v.query {
            return;
        }
        let keep = v.selected_row();
        if q.contains(v.query.as_str()) {
            // Every row matching the longer query matched the shorter one: O(shown).
            let hay = &data.rows.hay;
            let needle = Needle::new(&q);
            v.shown.retain(|&r| needle.is_in(hay.get(r as usize)));
            v.query = q;
            v.reselect(keep, rows);
        } else {
            v.query = q;
            self.rescan(data);
        }
    }
    fn matches(&self, data: &Data, row: u32, q: &str) -> bool {
        (row as usize) < data.rows.len() && data.rows.hay.get(row as usize).contains(q)
    }
    fn sync(&mut self, _: &Data) {}
    fn refresh(&mut self, _: &Data) {
        // The listing starts again: its rows replace these.
    }
}

/// The listing's progress, right of the toolbar, in users: a gauge when the tenant's count
/// is known (Graph's `$count`, or the last listing), else a count.
fn draw_progress(frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
    let n = data.rows.len();
    let right = |frame: &mut Frame, text: String, style: Style| {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(text, style))).right_aligned(),
            area,
        )
    };
    let gauge = |frame: &mut Frame, listed: usize, of: usize| {
        frame.render_widget(
            LineGauge::default()
                .ratio((listed as f64 / of as f64).min(1.0))
                .label(format!(
                    "{} of ~{} users ",
                    thousands(listed),
                    thousands(of)
                ))
                .filled_symbol("━")
                .unfilled_symbol("─")
                .filled_style(theme.gauge())
                .unfilled_style(theme.dim()),
            area,
        )
    };
    let full = data.refreshing.as_ref().filter(|r| r.full.is_some());
    match &data.load {
        // A full listing in the background: its users listed of the tenant's count.
        Load::Loading { .. } if full.is_some() => {
            let r = full.expect("guarded");
            match r.expected.filter(|&e| e > 0) {
                Some(e) => gauge(frame, r.listed as usize, e as usize),
                None => right(
                    frame,
                    format!("{} users listed… ", thousands(r.listed as usize)),
                    theme.accent(),
                ),
            }
        }
        Load::Loading { .. } if data.complete_copy => right(
            frame,
            "delta round… (the saved copy shown) ".into(),
            theme.accent(),
        ),
        Load::Loading { .. } if data.reloading => right(
            frame,
            "listing again… (the last listing shown) ".into(),
            theme.accent(),
        ),
        Load::Loading { .. } => match data.expected {
            // The last load's total is a fair estimate.
            Some(e) if e > 0 => gauge(frame, n, e),
            // No total known: count what came, claim no ratio.
            _ => right(
                frame,
                format!("{} users loaded… ", thousands(n)),
                theme.accent(),
            ),
        },
        Load::Done => right(frame, format!("all {} loaded ", thousands(n)), theme.ok()),
        Load::Failed { .. } => right(
            frame,
            format!("load failed at {} ", thousands(n)),
            theme.error(),
        ),
        Load::Cancelled => right(frame, format!("stopped at {} ", thousands(n)), theme.warn()),
        Load::Waiting => right(frame, "reading directory… ".into(), theme.dim()),
        Load::Idle => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;
    use crate::app::state::Modal as M;

    fn tab_and_data(n: usize) -> (ImportTab, Data) {
        let s = fixtures::loaded_state(n);
        (s.tabs.import, s.data)
    }

    #[test]
    fn space_marks_and_moves_esc_clears_the_marks_then_does_nothing() {
        let (mut t, mut d) = tab_and_data(20);
        let mut fx = Vec::new();
        assert_eq!(
            t.command(&mut d, Command::ToggleMark, &mut fx),
            Outcome::Done
        );
        assert!(t.marks.contains(0));
        assert_eq!(t.view.selected, 1, "Space moves on");
        assert_eq!(t.command(&mut d, Command::Back, &mut fx), Outcome::Done);
        assert!(t.marks.is_empty());
        assert_eq!(
            t.command(&mut d, Command::Back, &mut fx),
            Outcome::Ignored,
            "nothing left for Esc: it does nothing"
        );
        assert!(fx.is_empty());
    }

    #[test]
    fn i_on_a_conflict_offers_its_link_and_a_mixed_marking_imports_the_others() {
        let (mut t, mut d) = tab_and_data(20);
        let mut fx = Vec::new();
        // Row 8 is a Conflict (fixtures::status_of).
        t.view.selected = 8;
        let o = t.command(&mut d, Command::Import, &mut fx);
        let Outcome::Open(M::Detail(detail)) = o else {
            panic!("{o:?}")
        };
        assert!(
            matches!(
                &detail.of,
                crate::app::dialogs::detail::Of::TenantUser { row: 8, .. }
            ),
            "{detail:?}"
        );
        assert!(fx.is_empty(), "nothing imported");
        assert!(d.message().unwrap().contains("linked, not imported"));
        for r in [7, 8, 9] {
            t.marks.insert(r);
        }
        t.command(&mut d, Command::Import, &mut fx);
        let [Effect::Import { users }] = fx.as_slice() else {
            panic!("{fx:?}")
        };
        assert_eq!(users.len(), 2, "the Conflict is left out");
        assert!(d.message().unwrap().contains("1 Conflict left out"));
    }

    #[test]
    fn sorts_are_made_off_the_ui_thread_and_applied_when_they_come_back() {
        let (mut t, mut d) = tab_and_data(30);
        let mut fx = Vec::new();
        // `>`: the first sortable column, Status, asked of the runtime.
        t.command(&mut d, Command::SortNext, &mut fx);
        let [Effect::SortRows {
            gen,
            key,
            pages,
            statuses,
        }] = fx.as_slice()
        else {
            panic!("{fx:?}")
        };
        let (gen, key, pages, statuses) = (*gen, *key, pages.clone(), statuses.clone());
        assert_eq!(key, SortKey::Status);
        assert!(t.sorting);
        assert!(t.sorted(&d, gen, key, sort_order(&pages, &statuses, key)));
        let st: Vec<_> = t
            .view
            .shown
            .iter()
            .map(|&r| d.rows.status[r as usize])
            .collect();
        assert!(st.windows(2).all(|w| {
            crate::app::state::status_slot(w[0]) <= crate::app::state::status_slot(w[1])
        }));
        // `>` again: Display name.
        fx.clear();
        t.command(&mut d, Command::SortNext, &mut fx);
        let [Effect::SortRows { key, .. }] = fx.as_slice() else {
            panic!("{fx:?}")
        };
        assert_eq!(*key, SortKey::DisplayName);
        let order = sort_order(&pages, &statuses, SortKey::DisplayName);
        assert!(t.sorted(&d, gen, SortKey::DisplayName, order.clone()));
        let names: Vec<String> = t
            .view
            .shown
            .iter()
            .map(|&r| d.rows.user(r).display_name.clone().unwrap().to_lowercase())
            .collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
        // `~` reverses; a stale answer is dropped.
        fx.clear();
        t.command(&mut d, Command::SortReverse, &mut fx);
        assert!(!t.sorted(&d, gen + 1, SortKey::DisplayName, order));
        // While listing, a sort waits and says why.
        d.load = Load::Loading { pages: 1 };
        fx.clear();
        t.command(&mut d, Command::SortNext, &mut fx);
        assert!(fx.is_empty());
        assert!(d.message().unwrap().contains("waits for the listing"));
    }

    #[test]
    fn guests_are_marked_filtered_and_imported_only_when_confirmed() {
        use crate::app::action::Action;
        use crate::app::update::update;
        let mut users: Vec<(User, ImportStatus)> = fixtures::tenant_users(4)
            .into_iter()
            .map(|u| (u, ImportStatus::New))
            .collect();
        users[1].0.guest = true;
        users[1].0.user_principal_name = "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com".into();
        users[1].1 = ImportStatus::Guest;
        let mut s = crate::app::AppState::with_classified_users(users);
        assert_eq!(s.data.rows.count(ImportStatus::Guest), 1);
        // The status filter reaches Guest: only the guest is shown.
        let mut fx = Vec::new();
        for _ in 0..5 {
            s.tabs
                .import
                .command(&mut s.data, Command::CycleStatus, &mut fx);
        }
        assert_eq!(s.tabs.import.status, Some(ImportStatus::Guest));
        assert_eq!(s.tabs.import.view.shown, vec![1]);
        // Import on it asks first; nothing is imported until yes.
        let fx = update(&mut s, Action::Command(Command::Import));
        assert!(fx.is_empty(), "{fx:?}");
        assert_eq!(
            s.question,
            Some(Question::ImportGuests {
                guests: 1,
                others: 0
            })
        );
        assert!(s.data.importing.is_none());
        let fx = update(&mut s, Action::Command(Command::Back));
        assert!(fx.is_empty() && s.question.is_none());
        update(&mut s, Action::Command(Command::Import));
        let fx = update(&mut s, Action::Command(Command::Confirm));
        assert!(
            matches!(fx.as_slice(), [Effect::Import { users }] if users.len() == 1 && users[0].guest),
            "{fx:?}"
        );
        assert!(!s.tabs.import.guests_ok, "the yes is for that import only");
    }

    #[test]
    fn reclassified_rows_stay_on_screen_under_a_status_filter() {
        let (mut t, mut d) = tab_and_data(20);
        let mut fx = Vec::new();
        t.command(&mut d, Command::CycleStatus, &mut fx); // New only
        let shown = t.view.shown.clone();
        t.view.selected = 2;
        let row = t.view.selected_row();
        d.rows.set_status(shown[2] as usize, ImportStatus::Imported);
        t.statuses_changed();
        assert!(t.view.stale);
        assert_eq!(t.view.shown, shown, "nothing moved");
        assert_eq!(t.view.selected_row(), row, "the cursor is on the same user");
        t.rescan(&d);
        assert!(!t.view.stale && t.view.shown.len() == shown.len() - 1);
    }

    #[test]
    fn next_sort_cycles_columns_then_none() {
        let cols = [1, 2, 3];
        let mut s = None;
        let mut seen = Vec::new();
        for _ in 0..4 {
            s = next_sort(s, Command::SortNext, &cols);
            seen.push(s.map(|x| x.column));
        }
        assert_eq!(seen, vec![Some(1), Some(2), Some(3), None]);
        assert_eq!(
            next_sort(None, Command::SortPrev, &cols).map(|x| x.column),
            Some(3)
        );
        let r = next_sort(
            Some(Sort {
                column: 2,
                descending: false,
            }),
            Command::SortReverse,
            &cols,
        );
        assert_eq!(
            r,
            Some(Sort {
                column: 2,
                descending: true
            })
        );
    }
}
