//! The Errors tab: every failure and preflight finding so far as a catalog diagnosis: the kinds
//! present with their counts (`s` narrows to one), a list, and a detail pane that scrolls
//! (what happened, why, numbered fix steps, the one-key fixes, the permission, and the raw
//! code, message and ids support asks for). `f` previews a fix, `e` exports, `d` opens the
//! domain settings, Enter the whole detail.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::format::thousands;
use crate::keymap::Command;
use crate::ui::text::fit;
use crate::ui::text::width;
use crate::ui::widgets::{
    draw_list, flex_widths, header_line, labeled, position, table_line, visible, Col, ListSpec,
};
use crate::ui::Theme;

use super::super::component::{Component, Outcome, Section, TabView, TextMode};
use super::super::dialogs::detail::Detail;
use super::super::dialogs::export::Export;
use super::super::dialogs::{fix, Modal};
use super::super::effect::Effect;
use super::super::explain::{ErrorEntry, ErrorSource};
use super::super::layout;
use super::super::list::{self, ListView};
use super::super::state::{Data, Topic};
use super::import::{next_sort, titles_with_sort};

pub const SECTION: Section = Section {
    name: "errors",
    title: "Errors tab",
};

const TITLES: [&str; 4] = ["Source", "Kind", "About", "Message"];
const SORTABLE: [usize; 3] = [0, 1, 2];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorsTab {
    pub view: ListView,
    /// Only errors of this catalog kind (`s` cycles through the kinds present); None = all.
    pub kind: Option<String>,
    /// Lines the detail pane is scrolled by, for the error `detail_of`.
    pub detail_scroll: usize,
    pub detail_of: Option<u32>,
    /// `Data::errors_gen` last followed.
    seen: u64,
    /// The error selected when the list was last followed: the selection stays on it when
    /// the errors change (a re-check replaces the findings).
    remember: Option<(u32, Box<ErrorEntry>)>,
}

impl ErrorsTab {
    pub const SECTION: Section = SECTION;
    pub const TITLE: &'static str = "Errors";

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

    /// Rows of the error list when `body` rows are free for list and detail together.
    pub fn list_rows(body: usize) -> usize {
        (body / 3).max(3).min(body)
    }

    /// Toolbar, kinds line, list (with its header) and detail pane.
    fn areas(area: Rect) -> [Rect; 4] {
        let body = area.height.saturating_sub(2) as usize;
        let rows = Self::list_rows(body) as u16;
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(rows + 1),
            Constraint::Fill(1),
        ])
        .areas(area)
    }

    fn rows_on_screen(&self, data: &Data) -> usize {
        layout::list_rows(self.list_area(data, layout::screen_of(data).body))
    }

    fn passes(&self, e: &ErrorEntry, data: &Data) -> bool {
        self.kind.as_deref().is_none_or(|k| e.kind() == k)
            && text_matches(e, data, &self.view.query)
    }

    /// Errors are few (one per failure, not per user): a rescan is cheap. The selection stays
    /// on the same error when it is still there.
    pub fn rescan(&mut self, data: &Data) {
        if let Some(k) = &self.kind {
            if !data.errors.iter().any(|e| e.kind() == k) {
                self.kind = None;
            }
        }
        let rows = self.rows_on_screen(data);
        let keep = match &self.remember {
            Some((_, e)) => Some((**e).clone()),
            None => self
                .view
                .selected_row()
                .and_then(|r| data.errors.get(r as usize))
                .cloned(),
        };
        let mut shown: Vec<u32> = (0..data.errors.len())
            .filter(|&r| self.passes(&data.errors[r], data))
            .map(|r| r as u32)
            .collect();
        if let Some(sort) = self.view.sort {
            let key = |r: &u32| {
                let e = &data.errors[*r as usize];
                match sort.column {
                    0 => e.source.label().to_string(),
                    1 => e.kind().to_string(),
                    _ => about(e, data).to_lowercase(),
                }
            };
            shown.sort_by_cached_key(key);
            if sort.descending {
                shown.reverse();
            }
        }
        self.view.shown = shown;
        let keep = keep.and_then(|k| data.errors.iter().position(|e| *e == k).map(|i| i as u32));
        self.view.reselect(keep, rows);
        self.remember = None;
    }

    fn selected<'a>(&self, data: &'a Data) -> Option<(usize, &'a ErrorEntry)> {
        let r = self.view.selected_row()? as usize;
        data.errors.get(r).map(|e| (r, e))
    }

    fn scroll(&self) -> usize {
        if self.detail_of == self.view.selected_row() {
            self.detail_scroll
        } else {
            0
        }
    }
}

/// Whether an error holds `q` (lower case) in what the list shows of it.
fn text_matches(e: &ErrorEntry, data: &Data, q: &str) -> bool {
    q.is_empty()
        || [
            e.code.as_str(),
            e.kind(),
            e.subject.as_str(),
            e.message.as_str(),
            e.source.label(),
        ]
        .iter()
        .any(|f| f.to_lowercase().contains(q))
        || about(e, data).to_lowercase().contains(q)
}

/// What an error is about, naming users and groups (never a directory id).
pub fn about(e: &ErrorEntry, data: &Data) -> String {
    match e.directory_id.and_then(|id| data.directory.user(id)) {
        Some(u) if e.subject.is_empty() => u.email.clone(),
        _ => e.diag.subject.name().to_string(),
    }
}

/// `text` with each "directory user 1008" named: "directory user Ann Lee <ann@x>".
pub fn name_ids(text: &str, data: &Data) -> String {
    const TAG: &str = "directory user ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(TAG) {
        let (before, after) = rest.split_at(i + TAG.len());
        out.push_str(before);
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        match digits
            .parse::<i64>()
            .ok()
            .and_then(|id| data.directory.user(id))
        {
            Some(u) => {
                out.push_str(&format!("{} <{}>", u.display_name, u.email));
                rest = &after[digits.len()..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The detail of one error as lines `width` wide: the pane and the detail dialog show these.
pub fn detail_lines(
    data: &Data,
    e: &ErrorEntry,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let d = &e.diag;
    let mut lines = Vec::new();
    lines.extend(labeled(
        "What",
        7,
        &name_ids(&d.what, data),
        width,
        theme.bold(),
        Style::new(),
    ));
    // The raw code and ids first: support asks for them, and they must fit at 80x24.
    let target = d.raw.as_ref().and_then(|r| r.target.as_deref());
    let mut raw = match (e.status, e.source, target) {
        (Some(st), _, _) => format!("{} (HTTP {st})", e.code),
        (None, ErrorSource::Preflight, Some(t)) => {
            format!("preflight check of {t}: held back, nothing was sent")
        }
        (None, ErrorSource::Tenant, _) => format!(
            "{} recorded on the account by Microsoft 365 (licenseAssignmentStates)",
            e.code
        ),
        (None, _, _) => e.code.clone(),
    };
    if let Some(r) = &e.request_id {
        raw.push_str(&format!(" · request-id {r}"));
    }
    if let Some(t) = &e.trace_id {
        raw.push_str(&format!(" · trace {t}"));
    }
    if let Some(at) = &e.at {
        raw.push_str(&format!(" · {at}"));
    }
    lines.extend(labeled("Raw", 7, &raw, width, theme.bold(), theme.dim()));
    for (i, step) in d.steps.iter().enumerate() {
        let head = if i == 0 { "Fix" } else { "" };
        lines.extend(labeled(
            head,
            7,
            &format!("{}. {}", i + 1, name_ids(step, data)),
            width,
            theme.bold(),
            Style::new(),
        ));
    }
    let fixes = d.fixes();
    if !fixes.is_empty() {
        let km = &data.keymap;
        let mut spans = vec![Span::styled(fit("Keys", 7), theme.bold())];
        spans.push(Span::styled(
            km.key_for(&[SECTION.name], Command::Fix),
            theme.key(),
        ));
        spans.push(Span::raw(format!(" {}", fixes[0].id())));
        if fixes.len() > 1 {
            let others: Vec<&str> = fixes[1..].iter().map(|f| f.id()).collect();
            spans.push(Span::styled(
                format!(
                    "  (then {} for {})",
                    km.key_for(&[fix::SECTION.name], Command::NextFix),
                    others.join(", ")
                ),
                theme.dim(),
            ));
        }
        lines.push(Line::from(spans));
    }
    if let Some(p) = &d.permission {
        lines.extend(labeled("Needs", 7, p, width, theme.bold(), theme.warn()));
    }
    lines.extend(labeled("Why", 7, &d.why, width, theme.bold(), theme.dim()));
    lines.push(Line::from(""));
    let mut field = |name: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            lines.extend(labeled(name, 12, &v, width, theme.dim(), Style::new()));
        }
    };
    field("Message", Some(name_ids(&e.message, data)));
    field("Target", d.raw.as_ref().and_then(|r| r.target.clone()));
    field("Request-id", e.request_id.clone());
    field("Trace id", e.trace_id.clone());
    field("Date", e.at.clone());
    field("Kind", Some(format!("{} · {}", d.kind, e.source.label())));
    lines
}

impl Component for ErrorsTab {
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
        if !data.errors.is_empty() {
            v.push(Command::CycleStatus);
        }
        v.extend([Command::Domains, Command::SortNext, Command::SortPrev]);
        if self.view.sort.is_some() {
            v.push(Command::SortReverse);
        }
        if !self.view.shown.is_empty() {
            v.extend([Command::Export, Command::DetailDown, Command::DetailUp]);
        }
        if self
            .selected(data)
            .is_some_and(|(_, e)| !e.fixes().is_empty())
        {
            v.push(Command::Fix);
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
        match c {
            Command::CycleStatus => {
                let kinds: Vec<String> = ErrorsTab::kinds(&data.errors)
                    .into_iter()
                    .map(|(k, _)| k.to_string())
                    .collect();
                self.kind = match &self.kind {
                    None => kinds.first().cloned(),
                    Some(k) => kinds
                        .iter()
                        .position(|x| x == k)
                        .and_then(|i| kinds.get(i + 1).cloned()),
                };
                self.rescan(data);
            }
            Command::Fix => {
                let Some((i, e)) = self.selected(data) else {
                    return Outcome::Ignored;
                };
                if e.fixes().is_empty() {
                    let kind = e.kind().to_string();
                    data.say(
                        Topic::Fix,
                        format!("No one-key fix for {kind}: follow the steps shown."),
                    );
                    return Outcome::Done;
                }
                return fix::open(data, i, None);
            }
            Command::Export => {
                if self.view.shown.is_empty() {
                    return Outcome::Ignored;
                }
                return Outcome::Open(Modal::Export(Export::new(self.view.shown.clone())));
            }
            Command::Domains => {
                fx.push(Effect::LoadDomains {
                    tenant: data.tenant.clone(),
                });
                return Outcome::Open(Modal::Domains(Box::default()));
            }
            Command::Open => {
                let Some((_, e)) = self.selected(data) else {
                    return Outcome::Ignored;
                };
                return Outcome::Open(Modal::Detail(Box::new(Detail::error(e.clone()))));
            }
            Command::DetailDown | Command::DetailUp => {
                let row = self.view.selected_row();
                if self.detail_of != row {
                    self.detail_of = row;
                    self.detail_scroll = 0;
                }
                self.detail_scroll = if c == Command::DetailDown {
                    self.detail_scroll + 1
                } else {
                    self.detail_scroll.saturating_sub(1)
                };
                // Clamped to the detail's length on the screen it is drawn on.
                let area = layout::screen_of(data).body;
                let [_, _, _, pane] = Self::areas(area);
                if let Some((_, e)) = self.selected(data) {
                    let n = detail_lines(data, e, pane.width as usize, &Theme::new(true)).len();
                    let room = pane.height.saturating_sub(1) as usize;
                    self.detail_scroll = self.detail_scroll.min(n.saturating_sub(room));
                }
            }
            Command::SortNext | Command::SortPrev | Command::SortReverse => {
                self.view.sort = next_sort(self.view.sort, c, &SORTABLE);
                self.rescan(data);
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }

    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }

    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let [toolbar, kinds, list_area, detail] = Self::areas(area);
        let v = &self.view;
        let mut spans = list::filter_spans(v, theme);
        if data.errors.is_empty() {
            spans.push(Span::styled("  No errors so far.", theme.ok()));
        } else {
            spans.push(Span::styled(
                format!(
                    "  {} errors{}  ·  {}",
                    thousands(data.errors.len()),
                    match &self.kind {
                        Some(k) => format!(", kind {k}"),
                        None => String::new(),
                    },
                    position(v.selected, v.shown.len())
                ),
                theme.bold(),
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), toolbar);
        if v.editing {
            list::set_filter_cursor(frame, toolbar, v);
        }
        self.draw_kinds(frame, kinds, data, theme);

        let (mut kind, mut about_w, mut msg) = (width(TITLES[1]), width(TITLES[2]), 20);
        for i in visible(v.shown.len(), v.offset, list_area) {
            let e = &data.errors[v.shown[i] as usize];
            kind = kind.max(width(e.kind()));
            about_w = about_w.max(width(&about(e, data)));
            msg = msg.max(width(&e.message).min(200));
        }
        let widths = flex_widths(
            &[
                Col::Fixed(9),
                Col::Text {
                    want: kind,
                    min: 12,
                },
                Col::Text {
                    want: about_w,
                    min: 12,
                },
                Col::Text { want: msg, min: 20 },
            ],
            list_area.width,
        );
        let titles = titles_with_sort(&TITLES, v.sort);
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let header = header_line(&titles, &widths, theme);
        draw_list(
            frame,
            list_area,
            ListSpec {
                header,
                len: v.shown.len(),
                offset: v.offset,
                empty: "",
            },
            theme,
            |i| {
                let e = &data.errors[v.shown[i] as usize];
                let cells = vec![
                    (e.source.label().to_string(), theme.dim()),
                    (e.kind().to_string(), theme.error()),
                    (about(e, data), Style::new()),
                    (
                        if e.message.is_empty() {
                            e.diag.title.clone()
                        } else {
                            name_ids(&e.message, data)
                        },
                        Style::new(),
                    ),
                ];
                let style = if i == v.selected {
                    theme.selected()
                } else {
                    Style::new()
                };
                table_line(cells, &widths, style)
            },
        );
        self.draw_detail(frame, detail, data, theme);
    }
}

impl ErrorsTab {
    /// `kinds: upn-domain-unverified 1 · proxy-address-held 2` with the kind shown highlighted.
    fn draw_kinds(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let kinds = ErrorsTab::kinds(&data.errors);
        if kinds.is_empty() {
            return;
        }
        let mut spans = vec![Span::styled(" kinds ", theme.dim())];
        let all = self.kind.is_none();
        spans.push(Span::styled(
            format!("all {}", thousands(data.errors.len())),
            if all { theme.selected() } else { Style::new() },
        ));
        for (k, n) in kinds {
            spans.push(Span::styled(" · ", theme.dim()));
            let on = self.kind.as_deref() == Some(k);
            spans.push(Span::styled(
                format!("{k} {n}"),
                if on { theme.selected() } else { theme.error() },
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_detail(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let Some((_, e)) = self.selected(data) else {
            let block = Block::default()
                .borders(Borders::TOP)
                .border_style(theme.dim());
            frame.render_widget(
                Paragraph::new(Line::from(Span::styled(
                    " Failures of sign-in, Microsoft Graph, imports and the preflight checks of \
                     the plan appear here, with what to do.",
                    theme.dim(),
                )))
                .block(block)
                .wrap(Wrap { trim: true }),
                area,
            );
            return;
        };
        let d = &e.diag;
        let lines = detail_lines(data, e, area.width as usize, theme);
        let room = area.height.saturating_sub(1) as usize;
        let scroll = self.scroll().min(lines.len().saturating_sub(room));
        let more = if lines.len() > room + scroll {
            let k = data.keymap.key_for(&[SECTION.name], Command::DetailDown);
            format!(" {k} more ")
        } else {
            String::new()
        };
        let title = format!(" {} · {} ", d.title, d.subject.label());
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(theme.dim())
            .title(Span::styled(
                fit(
                    &title,
                    (area.width as usize).saturating_sub(2 + more.chars().count()),
                ),
                theme.bold(),
            ))
            .title(Line::from(Span::styled(more, theme.key())).right_aligned());
        let shown: Vec<Line> = lines.into_iter().skip(scroll).collect();
        frame.render_widget(Paragraph::new(shown).block(block), area);
    }
}

impl TabView for ErrorsTab {
    fn title(&self) -> &'static str {
        Self::TITLE
    }
    fn badge(&self, data: &Data) -> Option<(String, bool)> {
        (!data.errors.is_empty()).then(|| (format!("({})", thousands(data.errors.len())), true))
    }
    fn list(&self) -> &ListView {
        &self.view
    }
    fn list_mut(&mut self) -> &mut ListView {
        &mut self.view
    }
    fn list_area(&self, _: &Data, body: Rect) -> Rect {
        Self::areas(body)[2]
    }
    fn counts(&self, data: &Data, theme: &Theme, _short: bool) -> Vec<Span<'static>> {
        let n = |s: ErrorSource| data.errors.iter().filter(|e| e.source == s).count();
        let fixable = data.errors.iter().filter(|e| !e.fixes().is_empty()).count();
        vec![
            Span::styled("Errors ", theme.error()),
            Span::raw(thousands(data.errors.len())),
            Span::styled("  held back ", theme.dim()),
            Span::raw(thousands(n(ErrorSource::Preflight))),
            Span::styled("  fixable ", theme.dim()),
            Span::raw(thousands(fixable)),
        ]
    }
    fn filter_changed(&mut self, data: &Data) {
        let q = self.view.typed_query();
        if q == self.view.query {
            return;
        }
        self.view.query = q;
        self.rescan(data);
    }
    fn matches(&self, data: &Data, row: u32, q: &str) -> bool {
        data.errors
            .get(row as usize)
            .is_some_and(|e| text_matches(e, data, q))
    }
    fn sync(&mut self, data: &Data) {
        if self.seen != data.errors_gen {
            self.seen = data.errors_gen;
            self.rescan(data);
        }
        let row = self.view.selected_row();
        if self.remember.as_ref().map(|(r, _)| *r) != row {
            self.remember = row.and_then(|r| {
                data.errors
                    .get(r as usize)
                    .map(|e| (r, Box::new(e.clone())))
            });
        }
    }
    fn refresh(&mut self, data: &Data) {
        self.rescan(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    #[test]
    fn the_detail_pane_scrolls_and_starts_at_the_top_for_another_error() {
        let s = fixtures::preflight_errors_state();
        let (mut t, mut d) = (s.tabs.errors, s.data);
        let mut fx = Vec::new();
        assert_eq!(t.scroll(), 0);
        t.command(&mut d, Command::DetailDown, &mut fx);
        t.command(&mut d, Command::DetailDown, &mut fx);
        assert_eq!(t.scroll(), 2);
        t.command(&mut d, Command::DetailUp, &mut fx);
        assert_eq!(t.scroll(), 1);
        for _ in 0..200 {
            t.command(&mut d, Command::DetailDown, &mut fx);
        }
        assert!(t.scroll() < 40, "bounded by the detail's length");
        t.view.nav(Command::Down, 5);
        assert_eq!(t.scroll(), 0, "another error's detail starts at its top");
    }

    #[test]
    fn errors_name_directory_users_never_their_ids() {
        let s = fixtures::bindings_state();
        let u = &s.data.directory.users[2];
        let t = name_ids(
            &format!("directory user {} already has the email", u.id),
            &s.data,
        );
        assert_eq!(
            t,
            format!(
                "directory user {} <{}> already has the email",
                u.display_name, u.email
            )
        );
        assert_eq!(
            name_ids("directory user 123456 is gone", &s.data),
            "directory user 123456 is gone",
            "an id nobody has is left as it is"
        );
    }

    #[test]
    fn enter_opens_the_whole_detail_and_f_the_fix() {
        let s = fixtures::preflight_errors_state();
        let (mut t, mut d) = (s.tabs.errors, s.data);
        let mut fx = Vec::new();
        assert!(matches!(
            t.command(&mut d, Command::Open, &mut fx),
            Outcome::Open(Modal::Detail(_))
        ));
        assert!(matches!(
            t.command(&mut d, Command::Fix, &mut fx),
            Outcome::Open(Modal::Fix(_))
        ));
        assert!(matches!(
            t.command(&mut d, Command::Domains, &mut fx),
            Outcome::Open(Modal::Domains(_))
        ));
        assert_eq!(
            fx,
            vec![Effect::LoadDomains {
                tenant: d.tenant.clone()
            }]
        );
    }

    #[test]
    fn a_new_error_keeps_the_selection_on_the_same_error() {
        let s = fixtures::preflight_errors_state();
        let (mut t, mut d) = (s.tabs.errors, s.data);
        t.sync(&d);
        let before = t.view.selected_row().map(|r| d.errors[r as usize].clone());
        let e = d.errors.remove(0);
        d.errors.push(e);
        d.errors_gen += 1;
        t.sync(&d);
        assert_eq!(
            t.view.selected_row().map(|r| d.errors[r as usize].clone()),
            before
        );
    }
}
