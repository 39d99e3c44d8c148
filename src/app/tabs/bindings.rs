//! The Bindings tab: directory users (or groups, `t`) with their binding state, the change
//! their wish asks for (pending) or the last failure; marks, the state filter, toggling wishes
//! (recorded, nothing sent), the preview (`p`), passwords, disconnect. Owns the results of its
//! effect (`WantSaved`).
use std::collections::HashMap;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tui_input::InputRequest;

use crate::directory::{BindingState, DirectoryGroup, GroupState};
use crate::failure::Failure;
use crate::format::{count, thousands};
use crate::keymap::Command;
use crate::ui::text::width;
use crate::ui::widgets::{draw_list, flex_widths, header_line, table_line, visible, Col, ListSpec};
use crate::ui::Theme;

use super::super::component::{Component, Outcome, Section, TabView, TextMode};
use super::super::dialogs::detail::Detail;
use super::super::dialogs::disconnect::Disconnect;
use super::super::dialogs::password::PasswordInput;
use super::super::dialogs::{preview, Modal};
use super::super::effect::Effect;
use super::super::explain::ErrorEntry;
use super::super::layout;
use super::super::list::{self, ListView, Needle};
use super::super::state::{binding_slot, Data, Marks, PendingOp, RowState, StateFilter, Topic};
use super::import::{next_sort, titles_with_sort};

pub const SECTION: Section = Section {
    name: "bindings",
    title: "Bindings tab",
};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindingsTab {
    pub view: ListView,
    /// None = All.
    pub state: Option<StateFilter>,
    /// Rows of `directory.users`.
    pub marks: Marks,
    /// The row last marked: `V` marks from it to the selected row.
    pub anchor: Option<u32>,
    /// The list shows directory groups (`t`), not users: `view.shown` indexes
    /// `directory.groups` then.
    pub groups: bool,
    /// Directory ids of the rows when the directory was last read (marks, the selection and
    /// the rows kept on screen follow their users to the new rows).
    ids: Vec<i64>,
    /// `Data::directory_gen` last followed.
    seen: u64,
}

/// The state filter a group's state falls under.
pub fn group_filter(g: GroupState) -> StateFilter {
    match g {
        GroupState::Unbound => StateFilter::Unbound,
        GroupState::Pending => StateFilter::Pending,
        GroupState::Bound => StateFilter::Bound,
        GroupState::Failed => StateFilter::Error,
        GroupState::Kept => StateFilter::Blocked,
    }
}

/// Shows stray spaces of a group name: quoted when the name has leading, trailing or double
/// spaces, as it is otherwise.
pub fn group_name_shown(name: &str) -> String {
    if name.trim() != name || name.contains("  ") {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

/// A Bindings row's style: a pending change stands out, an error is red.
pub fn row_style(theme: &Theme, s: RowState) -> Style {
    match s {
        RowState::Bound => theme.binding(BindingState::Bound),
        RowState::Unbound => theme.binding(BindingState::Unbound),
        RowState::Blocked => theme.binding(BindingState::Blocked),
        RowState::Pending(_) => theme.pending(),
        RowState::Error => theme.error(),
    }
}

fn group_row_state(g: &DirectoryGroup) -> RowState {
    match g.state() {
        GroupState::Unbound => RowState::Unbound,
        GroupState::Bound => RowState::Bound,
        GroupState::Kept => RowState::Blocked,
        GroupState::Failed => RowState::Error,
        GroupState::Pending => RowState::Pending(PendingOp::Create),
    }
}

const USER_TITLES: [&str; 6] = [
    "",
    "State",
    "Why bound",
    "Display name",
    "Email",
    "Account UPN / last error",
];
/// Wide terminals: the UPN and the last error each get a column.
const WIDE: u16 = 150;
const USER_TITLES_WIDE: [&str; 7] = [
    "",
    "State",
    "Why bound",
    "Display name",
    "Email",
    "Account UPN",
    "Last error",
];
const USER_SORTABLE: [usize; 5] = [1, 2, 3, 4, 5];

const GROUP_TITLES: [&str; 6] = [
    "State",
    "Group",
    "Kind",
    "mailNickname",
    "Members",
    "Last error",
];
const GROUP_SORTABLE: [usize; 4] = [0, 1, 2, 4];

impl BindingsTab {
    pub const SECTION: Section = SECTION;
    pub const TITLE: &'static str = "Bindings";

    fn rows_on_screen(&self, data: &Data) -> usize {
        layout::list_rows(self.list_area(data, layout::screen_of(data).body))
    }

    fn user_passes(&self, data: &Data, r: usize, q: &Needle) -> bool {
        let d = &data.directory;
        self.state
            .is_none_or(|f| RowState::of_row(d, r, &data.row_failures).filter() == f)
            && (q.is_empty() || q.is_in(d.hay.get(r)))
    }

    fn group_passes(&self, data: &Data, r: usize) -> bool {
        let g = &data.directory.groups[r];
        let q = &self.view.query;
        self.state.is_none_or(|f| group_filter(g.state()) == f)
            && (q.is_empty() || g.name.to_lowercase().contains(q.as_str()))
    }

    fn len(&self, data: &Data) -> usize {
        if self.groups {
            data.directory.groups.len()
        } else {
            data.directory.users.len()
        }
    }

    /// Row indices in the sort's order (None: as the directory lists them).
    fn ordered(&self, data: &Data) -> Option<Vec<u32>> {
        let sort = self.view.sort?;
        let mut rows: Vec<u32> = (0..self.len(data) as u32).collect();
        let d = &data.directory;
        if self.groups {
            let key = |r: &u32| {
                let g = &d.groups[*r as usize];
                match sort.column {
                    0 => format!("{:?}", g.state()),
                    2 => format!("{:?}", g.kind),
                    4 => format!("{:09}", g.members.len()),
                    _ => g.name.to_lowercase(),
                }
            };
            rows.sort_by_cached_key(key);
        } else {
            let key = |r: &u32| {
                let u = &d.users[*r as usize];
                match sort.column {
                    1 => RowState::of(u, &data.row_failures).label().to_string(),
                    2 => u.reason(),
                    4 => u.email.to_lowercase(),
                    5 => data.upn_of(u).0.to_lowercase(),
                    _ => u.display_name.to_lowercase(),
                }
            };
            rows.sort_by_cached_key(key);
        }
        if sort.descending {
            rows.reverse();
        }
        Some(rows)
    }

    /// The rows that pass `keep`, in the list's order.
    fn collect(&self, data: &Data, mut keep: impl FnMut(u32) -> bool) -> Vec<u32> {
        match self.ordered(data) {
            Some(order) => order.into_iter().filter(|&r| keep(r)).collect(),
            None => (0..self.len(data) as u32).filter(|&r| keep(r)).collect(),
        }
    }

    /// Every row again, filtered: the rows kept on screen go.
    pub fn rescan(&mut self, data: &Data) {
        let rows = self.rows_on_screen(data);
        let keep = self.view.selected_row();
        let q = Needle::new(&self.view.query);
        self.view.shown = self.collect(data, |r| {
            if self.groups {
                self.group_passes(data, r as usize)
            } else {
                self.user_passes(data, r as usize, &q)
            }
        });
        self.view.stale = false;
        self.view.reselect(keep, rows);
    }

    /// The directory was read again: marks, the anchor, the selection and the rows on screen
    /// follow their users to their new rows; rows that no longer pass the state filter stay
    /// until `r` or a filter change (the list never moves under the cursor).
    fn follow_directory(&mut self, data: &Data) {
        let d = &data.directory;
        let old = std::mem::take(&mut self.ids);
        let new: Vec<i64> = d.users.iter().map(|u| u.id).collect();
        // Usually the same users in the same rows (a wish saved): nothing moves.
        let same = old == new;
        let filtered = self.state.is_some() || !self.view.query.is_empty();
        let row_of: HashMap<i64, u32> = if same
            || old.is_empty()
            || (self.marks.is_empty() && self.anchor.is_none() && !filtered)
        {
            HashMap::new()
        } else {
            new.iter()
                .enumerate()
                .map(|(r, id)| (*id, r as u32))
                .collect()
        };
        let moved = |r: u32| -> Option<u32> {
            if same {
                return Some(r);
            }
            let id = old.get(r as usize)?;
            match row_of.get(id) {
                Some(&r) => Some(r),
                None if row_of.is_empty() => new.iter().position(|x| x == id).map(|r| r as u32),
                None => None,
            }
        };
        if !old.is_empty() && !same {
            let marks: Vec<u32> = self.marks.iter().filter_map(moved).collect();
            self.marks.clear();
            for r in marks {
                self.marks.insert(r);
            }
            self.anchor = self.anchor.and_then(moved);
        }
        let keep = self.view.selected_row().and_then(moved);
        // The rows on screen stay (under a filter, those that stopped passing too).
        let kept: std::collections::HashSet<u32> = if old.is_empty() || !filtered {
            Default::default()
        } else {
            self.view.shown.iter().filter_map(|&r| moved(r)).collect()
        };
        self.ids = new;
        if self.groups {
            self.rescan(data);
            return;
        }
        let rows = self.rows_on_screen(data);
        let mut stale = false;
        let q = Needle::new(&self.view.query);
        self.view.shown = self.collect(data, |r| {
            let pass = self.user_passes(data, r as usize, &q);
            if !pass && kept.contains(&r) {
                stale = true;
                return true;
            }
            pass
        });
        self.view.stale = stale;
        self.view.reselect(keep, rows);
    }

    /// Records the desired binding of the marked rows (else the selected row): `want` None
    /// toggles, binding all of them unless every one already wants to be bound, so a mixed
    /// selection is never half unbound by surprise. Only the wish changes (here at once, for
    /// real by the effect); nothing is sent.
    fn set_want(&mut self, data: &mut Data, want: Option<bool>, fx: &mut Vec<Effect>) {
        if self.groups {
            self.set_group_want(data, want, fx);
            return;
        }
        let n = data.directory.users.len();
        let rows: Vec<u32> = if self.marks.is_empty() {
            self.view.selected_row().into_iter().collect()
        } else {
            self.marks.iter().filter(|&r| (r as usize) < n).collect()
        };
        if rows.is_empty() {
            data.say(Topic::Key, "Nothing to toggle: no row is selected.");
            return;
        }
        let users = &mut data.directory.users;
        let bound = want.unwrap_or_else(|| rows.iter().any(|&r| !users[r as usize].want_bound));
        let mut ids = Vec::new();
        // A member of a bound group stays bound through it, whatever its direct wish.
        let mut via = 0;
        for r in rows {
            let u = &mut data.directory.users[r as usize];
            if u.want_bound == bound {
                continue;
            }
            if !bound && !u.bound_via.is_empty() {
                via += 1;
            }
            if let Some(p) = PendingOp::of(u) {
                data.directory.pending[p.slot()] -= 1;
            }
            u.want_bound = bound;
            if let Some(p) = PendingOp::of(u) {
                data.directory.pending[p.slot()] += 1;
            }
            if let Some(f) = data.directory.flags.get_mut(r as usize) {
                *f = crate::app::state::pack(u.wanted(), u.binding);
            }
            // A new wish replaces the last failure.
            let id = u.id;
            data.row_failures.remove(&id);
            ids.push(id);
        }
        self.marks.clear();
        self.anchor = None;
        if self.state.is_some() && !ids.is_empty() {
            // The toggled rows stay on screen under the state filter until `r`.
            self.view.stale = true;
        }
        if ids.is_empty() {
            data.say(
                Topic::Wish,
                format!(
                    "Nothing changed: already {}.",
                    if bound {
                        "wanted bound"
                    } else {
                        "wanted unbound"
                    }
                ),
            );
            return;
        }
        let p = data.tab_key(SECTION.name, Command::Preview);
        data.say(
            Topic::Wish,
            format!(
                "{} {}: {p} previews the changes (nothing is sent yet).{}",
                if bound { "Bind" } else { "Unbind" },
                count(ids.len(), "user", None),
                if via > 0 {
                    format!(
                        " {} bound through a bound group.",
                        count(via, "stays", Some("stay")).replacen(' ', " of them ", 1)
                    )
                } else {
                    String::new()
                }
            ),
        );
        data.wants_in_flight += 1;
        fx.push(Effect::SetWant { ids, bound });
    }

    /// The group list's `set_want`: the selected group's wish (toggled, or `want`); nothing is
    /// sent.
    fn set_group_want(&mut self, data: &mut Data, want: Option<bool>, fx: &mut Vec<Effect>) {
        let Some(g) = self
            .view
            .selected_row()
            .and_then(|r| data.directory.groups.get_mut(r as usize))
        else {
            data.say(Topic::Key, "Nothing to toggle: no group is selected.");
            return;
        };
        let bound = want.unwrap_or(!g.want_bound);
        if g.want_bound == bound {
            data.say(
                Topic::Wish,
                format!(
                    "Nothing changed: already {}.",
                    if bound {
                        "wanted bound"
                    } else {
                        "wanted unbound"
                    }
                ),
            );
            return;
        }
        g.want_bound = bound;
        let (id, name) = (g.id, g.name.trim().to_string());
        if self.state.is_some() {
            self.view.stale = true;
        }
        let p = data.tab_key(SECTION.name, Command::Preview);
        data.say(
            Topic::Wish,
            format!(
                "{} group {name}: {p} previews the changes (nothing is sent yet).",
                if bound { "Bind" } else { "Unbind" },
            ),
        );
        data.wants_in_flight += 1;
        fx.push(Effect::SetGroupWant {
            ids: vec![id],
            bound,
        });
    }

    fn mark_command(&mut self, c: Command, rows: usize) -> Outcome {
        let t = self;
        match c {
            Command::MarkRow => {
                let Some(row) = t.view.selected_row() else {
                    return Outcome::Ignored;
                };
                t.marks.toggle(row);
                if t.marks.contains(row) {
                    t.anchor = Some(row);
                }
                t.view.nav(Command::Down, rows);
            }
            Command::MarkDown | Command::MarkUp => {
                let Some(row) = t.view.selected_row() else {
                    return Outcome::Ignored;
                };
                t.marks.insert(row);
                t.view.nav(
                    if c == Command::MarkDown {
                        Command::Down
                    } else {
                        Command::Up
                    },
                    rows,
                );
                if let Some(next) = t.view.selected_row() {
                    t.marks.insert(next);
                    t.anchor = Some(next);
                }
            }
            Command::MarkRange => {
                let Some(row) = t.view.selected_row() else {
                    return Outcome::Ignored;
                };
                let from = match t.anchor {
                    // The anchor may be filtered out: start where it would be.
                    Some(a) => t
                        .view
                        .position(a)
                        .unwrap_or_else(|| t.view.shown.partition_point(|&r| r < a)),
                    None => t.view.selected,
                };
                let (lo, hi) = if from <= t.view.selected {
                    (from, t.view.selected)
                } else {
                    (t.view.selected, from.min(t.view.shown.len() - 1))
                };
                for &r in &t.view.shown[lo..=hi] {
                    t.marks.insert(r);
                }
                t.anchor = Some(row);
            }
            Command::MarkAll => {
                for &r in &t.view.shown {
                    t.marks.insert(r);
                }
            }
            Command::UnmarkAll => {
                t.marks.clear();
                t.anchor = None;
            }
            Command::InvertMarks => {
                for &r in &t.view.shown {
                    t.marks.toggle(r);
                }
                t.anchor = None;
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }
}

/// A recorded wish came back: the directory is the truth, read it again (a failed save undoes
/// the toggle) once every toggle sent is saved.
pub fn want_saved(data: &mut Data, result: Result<usize, Failure>, fx: &mut Vec<Effect>) {
    if let Err(e) = result {
        data.push_error(ErrorEntry::from_failure(&e));
        data.say(
            Topic::Wish,
            format!("Could not record the bindings ({}).", data.see_errors()),
        );
    }
    data.wants_in_flight = data.wants_in_flight.saturating_sub(1);
    if data.wants_in_flight == 0 {
        fx.push(Effect::LoadDirectory);
    }
}

impl Component for BindingsTab {
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
        v.extend([
            Command::CycleStatus,
            Command::ToggleGroups,
            Command::Preview,
            Command::Disconnect,
            Command::SortNext,
            Command::SortPrev,
        ]);
        if self.view.sort.is_some() {
            v.push(Command::SortReverse);
        }
        let row = self.view.selected_row().is_some();
        if row {
            v.extend([Command::ToggleWant, Command::Bind, Command::Unbind]);
        }
        // Group rows are toggled one at a time; passwords are users'.
        if !self.groups && row {
            v.extend([
                Command::MarkRow,
                Command::MarkRange,
                Command::MarkDown,
                Command::MarkUp,
                Command::MarkAll,
                Command::InvertMarks,
                Command::SetPassword,
            ]);
        }
        if !self.marks.is_empty() {
            v.extend([Command::UnmarkAll, Command::Back]);
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
        if self.groups && !self.commands(data).contains(&c) {
            // The group list has no marks and no passwords.
            return Outcome::Ignored;
        }
        match c {
            Command::ToggleGroups => {
                self.groups = !self.groups;
                self.marks.clear();
                self.anchor = None;
                self.view.selected = 0;
                self.view.offset = 0;
                self.view.sort = None;
                self.rescan(data);
            }
            Command::ToggleWant => self.set_want(data, None, fx),
            Command::Bind => self.set_want(data, Some(true), fx),
            Command::Unbind => self.set_want(data, Some(false), fx),
            Command::MarkRow
            | Command::MarkDown
            | Command::MarkUp
            | Command::MarkRange
            | Command::MarkAll
            | Command::UnmarkAll
            | Command::InvertMarks => return self.mark_command(c, rows),
            Command::Back => {
                if self.marks.is_empty() {
                    return Outcome::Ignored;
                }
                self.marks.clear();
                self.anchor = None;
            }
            Command::CycleStatus => {
                self.state = StateFilter::cycle(self.state);
                self.rescan(data);
            }
            Command::SortNext | Command::SortPrev | Command::SortReverse => {
                let cols: &[usize] = if self.groups {
                    &GROUP_SORTABLE
                } else {
                    &USER_SORTABLE
                };
                self.view.sort = next_sort(self.view.sort, c, cols);
                self.rescan(data);
            }
            Command::Preview => return preview::start_plan(data, fx),
            Command::SetPassword => {
                let Some(row) = self.view.selected_row() else {
                    return Outcome::Ignored;
                };
                let u = &data.directory.users[row as usize];
                let p = PasswordInput::new(u, data.password_rule);
                return Outcome::Open(Modal::Password(p));
            }
            Command::Disconnect => {
                if data.applying {
                    data.say(
                        Topic::Disconnect,
                        "An apply is running: wait for it to end first.",
                    );
                } else {
                    return Outcome::Open(Modal::Disconnect(Disconnect::default()));
                }
            }
            Command::Open => {
                let Some(row) = self.view.selected_row() else {
                    return Outcome::Ignored;
                };
                let d = if self.groups {
                    Detail::group(data.directory.groups[row as usize].id)
                } else {
                    Detail::directory_user(data.directory.users[row as usize].id)
                };
                return Outcome::Open(Modal::Detail(Box::new(d)));
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
        let mut spans = list::filter_spans(&self.view, theme);
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            if self.groups { "Groups" } else { "Users" },
            theme.accent(),
        ));
        spans.push(Span::styled("  state ", theme.dim()));
        spans.push(Span::styled(
            self.state.map(|s| s.label()).unwrap_or("All"),
            theme.bold(),
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
        frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
        if self.view.editing {
            list::set_filter_cursor(frame, toolbar, &self.view);
        }
        if self.groups {
            self.draw_groups(frame, list_area, data, theme);
        } else {
            self.draw_users(frame, list_area, data, theme);
        }
    }
}

impl BindingsTab {
    fn draw_users(&self, frame: &mut Frame, list_area: Rect, data: &Data, theme: &Theme) {
        let d = &data.directory;
        let wide = list_area.width >= WIDE;
        let titles: &[&str] = if wide {
            &USER_TITLES_WIDE
        } else {
            &USER_TITLES
        };
        let v = &self.view;
        let upn_cell = |u: &crate::directory::DirectoryUser| -> (String, Style) {
            let (upn, known) = data.upn_of(u);
            if known || u.want_bound || u.tenant_user_id.is_some() {
                (upn, if known { Style::new() } else { theme.dim() })
            } else {
                ("—".to_string(), theme.dim())
            }
        };
        let error_cell = |u: &crate::directory::DirectoryUser| {
            data.row_failures.get(&u.id).map(|f| {
                (
                    format!("{} failed: {} ({})", f.kind.label(), f.message, f.code),
                    theme.error(),
                )
            })
        };
        let (mut why, mut name, mut email, mut upn, mut err) = (
            width(titles[2]),
            width(titles[3]),
            width(titles[4]),
            width(titles[5]),
            if wide { width(titles[6]) } else { 0 },
        );
        // Why each row is bound, for the rows on screen only: no work that grows with the
        // directory (a user in many groups is elided to the column: "via A, B…").
        for i in visible(v.shown.len(), v.offset, list_area) {
            let u = &d.users[v.shown[i] as usize];
            why = why.max(width(&u.reason()));
            name = name.max(width(&u.display_name));
            email = email.max(width(&u.email));
            let e = error_cell(u).map_or(0, |(t, _)| width(&t));
            let up = width(&upn_cell(u).0);
            if wide {
                upn = upn.max(up);
                err = err.max(e);
            } else {
                upn = upn.max(up.max(e.min(60)));
            }
        }
        let mut cols = vec![
            Col::Fixed(1),
            Col::Fixed(11),
            Col::Text {
                want: why.min(24),
                min: 6,
            },
            Col::Text {
                want: name + 2,
                min: 10,
            },
            Col::Text {
                want: email,
                min: 12,
            },
            Col::Text { want: upn, min: 12 },
        ];
        if wide {
            cols.push(Col::Text { want: err, min: 12 });
        }
        let widths = flex_widths(&cols, list_area.width);
        let titles = titles_with_sort(titles, self.view.sort);
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let header = header_line(&titles, &widths, theme);
        let empty = if !data.directory_loaded {
            "The directory is not loaded yet."
        } else if d.users.is_empty() {
            "The directory has no users yet: import some from the Import tab."
        } else {
            "No directory user matches the filter."
        };
        draw_list(
            frame,
            list_area,
            ListSpec {
                header,
                len: v.shown.len(),
                offset: v.offset,
                empty,
            },
            theme,
            |i| {
                let row = v.shown[i];
                let u = &d.users[row as usize];
                let st = RowState::of(u, &data.row_failures);
                let marked = self.marks.contains(row);
                let upn_cell = upn_cell(u);
                let error = error_cell(u);
                let mut cells = vec![
                    (if marked { "●" } else { " " }.to_string(), theme.accent()),
                    (st.label().to_string(), row_style(theme, st)),
                    (
                        match u.reason() {
                            r if r.is_empty() => "—".to_string(),
                            r => r,
                        },
                        theme.dim(),
                    ),
                    (u.display_name.clone(), Style::new()),
                    (u.email.clone(), Style::new()),
                ];
                if wide {
                    cells.push(upn_cell);
                    cells.push(error.unwrap_or_default());
                } else {
                    cells.push(error.unwrap_or(upn_cell));
                }
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

    fn draw_groups(&self, frame: &mut Frame, list_area: Rect, data: &Data, theme: &Theme) {
        let d = &data.directory;
        let v = &self.view;
        let (mut name, mut nick, mut err) = (5, 12, 10);
        for i in visible(v.shown.len(), v.offset, list_area) {
            let g = &d.groups[v.shown[i] as usize];
            name = name.max(width(&group_name_shown(&g.name)));
            nick = nick.max(width(&crate::sync::groups::nickname_for(g)));
            err = err.max(g.last_error.as_deref().map_or(0, width));
        }
        let widths = flex_widths(
            &[
                Col::Fixed(9),
                Col::Text {
                    want: name + 2,
                    min: 10,
                },
                Col::Fixed(9),
                Col::Text {
                    want: nick + 1,
                    min: 10,
                },
                Col::Fixed(7),
                Col::Text { want: err, min: 10 },
            ],
            list_area.width,
        );
        let titles = titles_with_sort(&GROUP_TITLES, self.view.sort);
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let header = header_line(&titles, &widths, theme);
        let empty = if !data.directory_loaded {
            "The directory is not loaded yet."
        } else if d.groups.is_empty() {
            "The directory has no groups (a `groups` column in the CSV import makes them)."
        } else {
            "No directory group matches the filter."
        };
        draw_list(
            frame,
            list_area,
            ListSpec {
                header,
                len: v.shown.len(),
                offset: v.offset,
                empty,
            },
            theme,
            |i| {
                let g = &d.groups[v.shown[i] as usize];
                let st = g.state();
                let error = match &g.last_error {
                    Some(e) if st == GroupState::Failed => (e.clone(), theme.error()),
                    _ => (String::new(), theme.dim()),
                };
                let kind = match g.kind {
                    crate::directory::GroupKind::Security => "security",
                    crate::directory::GroupKind::M365 => "M365",
                };
                let cells = vec![
                    (st.label().to_string(), row_style(theme, group_row_state(g))),
                    (group_name_shown(&g.name), Style::new()),
                    (kind.to_string(), theme.dim()),
                    (crate::sync::groups::nickname_for(g), Style::new()),
                    (thousands(g.members.len()), Style::new()),
                    error,
                ];
                let style = if i == v.selected {
                    theme.selected()
                } else {
                    Style::new()
                };
                table_line(cells, &widths, style)
            },
        );
    }
}

impl TabView for BindingsTab {
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
        let d = &data.directory;
        let mut v = Vec::new();
        if self.groups {
            for (i, (st, short_label)) in [
                (GroupState::Bound, "Bnd"),
                (GroupState::Pending, "Pend"),
                (GroupState::Unbound, "Unb"),
                (GroupState::Kept, "Kept"),
                (GroupState::Failed, "Fail"),
            ]
            .into_iter()
            .enumerate()
            {
                let n = d.groups.iter().filter(|g| g.state() == st).count();
                if i > 0 {
                    v.push(Span::raw(if short { " " } else { "  " }));
                }
                let label = if short { short_label } else { st.label() };
                v.push(Span::styled(format!("{label} "), theme.dim()));
                v.push(Span::raw(thousands(n)));
            }
            return v;
        }
        for (i, b) in [
            BindingState::Bound,
            BindingState::Unbound,
            BindingState::Blocked,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                v.push(Span::raw(if short { " " } else { "  " }));
            }
            let label = match (short, b) {
                (true, BindingState::Unbound) => "Unb",
                (true, BindingState::Blocked) => "Blk",
                _ => b.label(),
            };
            v.push(Span::styled(format!("{label} "), theme.binding(b)));
            v.push(Span::raw(thousands(d.counts[binding_slot(b)])));
        }
        let errors = data.row_failures.len();
        if errors > 0 {
            v.push(Span::raw("  "));
            v.push(Span::styled("Error ", theme.error()));
            v.push(Span::raw(thousands(errors)));
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
        if !self.groups && q.contains(v.query.as_str()) {
            // A longer query only narrows what is shown, O(shown).
            let hay = &data.directory.hay;
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
        if self.groups {
            data.directory
                .groups
                .get(row as usize)
                .is_some_and(|g| g.name.to_lowercase().contains(q))
        } else {
            (row as usize) < data.directory.hay.len()
                && data.directory.hay.get(row as usize).contains(q)
        }
    }
    fn refresh(&mut self, data: &Data) {
        if self.view.stale {
            self.rescan(data);
        }
    }
    fn sync(&mut self, data: &Data) {
        if self.seen != data.directory_gen {
            self.seen = data.directory_gen;
            self.follow_directory(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::action::{Action, DirectorySnapshot};
    use crate::app::fixtures;
    use crate::app::state::Load;

    fn tab_and_data() -> (BindingsTab, Data) {
        let s = fixtures::bindings_state();
        (s.tabs.bindings, s.data)
    }

    #[test]
    fn toggled_rows_stay_under_the_state_filter_until_refresh_and_counts_agree() {
        let (mut t, mut d) = tab_and_data();
        let mut fx = Vec::new();
        while t.state != Some(StateFilter::Pending) {
            t.command(&mut d, Command::CycleStatus, &mut fx);
        }
        let shown = t.view.shown.clone();
        let row = t.view.selected_row().unwrap();
        let pending = d.directory.pending_total();
        // Space: the row is no longer pending, yet it stays where it is, under the cursor.
        t.command(&mut d, Command::ToggleWant, &mut fx);
        assert!(t.view.stale);
        assert_eq!(t.view.shown, shown);
        assert_eq!(t.view.selected_row(), Some(row));
        assert_eq!(
            d.directory.pending_total(),
            pending - 1,
            "the bar counts it at once"
        );
        // The directory is read again: still there (the wish saved), still selected.
        let mut users = d.directory.users.clone();
        users.swap(0, 5);
        d.directory.users = users;
        d.directory.flags.swap(0, 5);
        d.directory_gen += 1;
        t.sync(&d);
        assert_eq!(t.view.shown.len(), shown.len(), "kept until r");
        assert_eq!(
            t.view
                .selected_row()
                .map(|r| d.directory.users[r as usize].id),
            Some(row as i64 + 1),
            "the selection follows its user to its new row"
        );
        // `r`: the rows that stopped passing go.
        t.refresh(&d);
        assert!(!t.view.stale);
        assert_eq!(t.view.shown.len(), shown.len() - 1);
        assert_eq!(
            t.view.shown.len(),
            d.directory.pending_total() - 1,
            "user 10 is an Error"
        );
    }

    #[test]
    fn the_group_list_offers_no_marks_and_no_passwords() {
        let s = fixtures::groups_state();
        let (t, d) = (s.tabs.bindings, s.data);
        let c = t.commands(&d);
        for no in [
            Command::MarkRow,
            Command::MarkAll,
            Command::InvertMarks,
            Command::SetPassword,
        ] {
            assert!(!c.contains(&no), "{no:?}");
        }
        for yes in [
            Command::ToggleWant,
            Command::ToggleGroups,
            Command::Preview,
            Command::Open,
        ] {
            assert!(c.contains(&yes), "{yes:?}");
        }
        let (t, d) = tab_and_data();
        assert!(t.commands(&d).contains(&Command::SetPassword));
    }

    #[test]
    fn p_while_listing_opens_the_preview_when_the_listing_ends() {
        let mut s = fixtures::bindings_state();
        s.data.load = Load::Loading { pages: 2 };
        let mut fx = Vec::new();
        let o = s
            .tabs
            .bindings
            .command(&mut s.data, Command::Preview, &mut fx);
        assert_eq!(o, Outcome::Done);
        assert!(fx.is_empty());
        assert!(s.data.preview_after_listing);
        let m = s.data.message().unwrap();
        assert!(
            m.contains("opens by itself") && m.contains("p again"),
            "{m}"
        );
        let gen = s.data.load_gen;
        let mut fx = crate::app::update(&mut s, Action::UsersDone { gen });
        assert!(
            matches!(fx.as_slice(), [Effect::Plan { .. }]),
            "the plan is asked for: {fx:?}"
        );
        assert!(matches!(s.modal, Modal::Planning(_)));
        // A stopped listing says how to go on.
        let mut s = fixtures::bindings_state();
        s.data.load = Load::Cancelled;
        fx.clear();
        s.tabs
            .bindings
            .command(&mut s.data, Command::Preview, &mut fx);
        assert!(fx.is_empty());
        assert!(s
            .data
            .message()
            .unwrap()
            .contains("r lists them again, then p"));
    }

    #[test]
    fn a_directory_read_with_new_users_keeps_marks_on_their_users() {
        let mut s = fixtures::bindings_state();
        s.tabs.bindings.marks.insert(5);
        let mut users = fixtures::directory_users_with_wishes(40);
        let mut extra = users[0].clone();
        extra.id = 999;
        users.insert(0, extra);
        crate::app::update(
            &mut s,
            Action::DirectoryLoaded(Ok(DirectorySnapshot {
                users,
                ..Default::default()
            })),
        );
        assert_eq!(s.tabs.bindings.marks.iter().collect::<Vec<_>>(), vec![6]);
    }
}
