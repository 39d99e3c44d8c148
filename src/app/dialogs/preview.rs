//! The plan: `p` computes it off the UI thread (`Planning`), then the preview shows all of it
//! as one scrollable list you can check before `y`: the warnings, what checking an interrupted
//! run found, every op to send with its full UPN (a default-domain override said as such),
//! every group op, every item held back with why; the guard and the self-block ask for what
//! must be typed. Owns the results of its effect (`PlanReady`), and the re-check after a fix.
use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use tui_input::{Input, InputRequest};

use crate::failure::Failure;
use crate::format::{count, eta, thousands};
use crate::keymap::Command;
use crate::sync::apply::WriteBudget;
use crate::sync::plan::OpKind;
use crate::ui::text::{fit, wrap};
use crate::ui::widgets::frame_block;
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::explain::{ErrorEntry, ErrorSource};
use super::super::layout;
use super::super::list::{follow, is_move, moved};
use super::super::state::{Data, Load, PlanView, Tone, Topic};
use super::Modal;

pub const PLANNING: Section = Section {
    name: "planning",
    title: "Computing the plan",
};
pub const SECTION: Section = Section {
    name: "preview",
    title: "Plan preview",
};
pub const TYPING: Section = Section {
    name: "preview_upn",
    title: "Plan preview: typing the UPN (other keys type)",
};

/// The write budget the console plans and applies with (Graph's, `sync::apply`).
pub const BUDGET: WriteBudget = WriteBudget::GRAPH;

/// `p` was pressed: the plan of `gen` is being computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planning {
    pub gen: u64,
}

/// One line of the preview's list.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Heading(String, Tone),
    /// A line of wrapped text.
    Note(String, Tone),
    Op(usize),
    GroupOp(usize),
    Held(usize),
    GroupHeld(usize),
    MemberHeld(usize),
    Blank,
}

/// The confirmation the preview's box takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Guard,
    Deletes,
    Upn,
    None,
}

#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub view: PlanView,
    /// The list's lines (rebuilt when the width changes: warnings are wrapped to it).
    pub rows: Vec<Row>,
    /// The width `rows` were built for.
    pub built_for: u16,
    /// Selected line and first line on screen.
    pub selected: usize,
    pub offset: usize,
    /// What is typed to get past the guard (its count), then the self-block (the UPN).
    pub guard_input: Input,
    /// The guard's count was typed (a self-block asks for the UPN next).
    pub guard_ok: bool,
    /// The delete guard's count was typed (after the guard's, before the UPN).
    pub delete_ok: bool,
}

impl PartialEq for Preview {
    fn eq(&self, o: &Self) -> bool {
        self.view == o.view
            && self.selected == o.selected
            && self.offset == o.offset
            && self.guard_input.value() == o.guard_input.value()
            && self.guard_ok == o.guard_ok
            && self.delete_ok == o.delete_ok
    }
}

/// How long a plan takes, and on what the estimate rests.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub eta: Duration,
    pub basis: String,
}

/// A realistic ETA of `ops` changes costing `writes` Graph writes: never faster than the write
/// budget, than the $batch round trips (20 changes a batch, 4 batches at a time, about a second
/// each), or than the rate the last run achieved.
pub fn estimate(ops: usize, writes: u64, measured: Option<f64>) -> Estimate {
    let budget = BUDGET.eta(writes);
    let rounds = ops.div_ceil(20 * 4) as u64;
    let trips = Duration::from_secs(rounds);
    let mut e = Estimate {
        eta: budget.max(trips),
        basis: format!(
            "{} at the write budget of {} per {} s",
            count(writes as usize, "write", None),
            thousands(BUDGET.writes as usize),
            BUDGET.window.as_secs()
        ),
    };
    if let Some(rate) = measured.filter(|r| *r > 0.0) {
        let m = Duration::from_secs_f64(ops as f64 / rate);
        if m > e.eta {
            e = Estimate {
                eta: m,
                basis: format!("at the last run's {}", crate::format::rate(rate)),
            };
        }
    }
    e
}

impl Preview {
    pub fn new(view: PlanView, data: &Data) -> Preview {
        let mut p = Preview {
            view,
            ..Preview::default()
        };
        p.rebuild(data);
        p
    }

    fn list_width(data: &Data) -> usize {
        layout::dialog_inner(data).width as usize
    }

    /// The lines of the list for this terminal's width.
    fn rebuild(&mut self, data: &Data) {
        let w = Self::list_width(data).max(20);
        let v = &self.view;
        let mut rows = Vec::new();
        let note = |rows: &mut Vec<Row>, text: &str, tone: Tone, lead: &str| {
            let indent = " ".repeat(lead.chars().count());
            for (i, l) in wrap(text, w.saturating_sub(2 + indent.len()))
                .into_iter()
                .enumerate()
            {
                let head = if i == 0 { lead } else { indent.as_str() };
                rows.push(Row::Note(format!("{head}{l}"), tone));
            }
        };
        if !v.warnings.is_empty() {
            for t in &v.warnings {
                note(&mut rows, t, Tone::Warn, "! ");
            }
            rows.push(Row::Blank);
        }
        // Deprovisioning: what a block schedules and when, what a rebind cancelled, and
        // more deletes than the delete guard allows (its count is typed in the guard box).
        if let Some(t) = &v.delete_guard {
            note(&mut rows, &t.message, Tone::Warn, "! ");
        }
        if !v.deprovision.scheduled.is_empty() || !v.deprovision.cancelled.is_empty() {
            rows.push(Row::Heading(
                "Scheduled by the deprovisioning policy".into(),
                Tone::Info,
            ));
            for l in v
                .deprovision
                .scheduled
                .iter()
                .chain(&v.deprovision.cancelled)
            {
                note(&mut rows, l, Tone::Info, "  ");
            }
            rows.push(Row::Blank);
        }
        if let Some(who) = &v.running {
            note(
                &mut rows,
                &format!(
                    "Another apply is running ({who}): what an interrupted run left was not \
                     checked now."
                ),
                Tone::Warn,
                "! ",
            );
        }
        if v.unchecked > 0 {
            note(
                &mut rows,
                &format!(
                    "{} left by an interrupted run not checked by this view.",
                    count(v.unchecked, "change", None)
                ),
                Tone::Warn,
                "! ",
            );
        }
        if !v.verified.is_empty() {
            rows.push(Row::Heading(
                format!(
                    "Checked from an interrupted run: {}",
                    thousands(v.verified.len())
                ),
                Tone::Info,
            ));
            for x in &v.verified {
                note(&mut rows, &x.describe(), Tone::Info, "  ");
            }
            rows.push(Row::Blank);
        }
        let n = v.plan.ops.len() + v.group_ops.len();
        rows.push(Row::Heading(
            format!("Changes to send: {}", thousands(n)),
            Tone::Good,
        ));
        if n == 0 {
            rows.push(Row::Note(
                "  none: everything the directory wants is held back".into(),
                Tone::Warn,
            ));
        }
        // Grouped by cause, as the dry run lists them (`sync::causes`, one function for both).
        for (g, group) in crate::sync::causes::by_cause(v).into_iter().enumerate() {
            if g > 0 {
                rows.push(Row::Blank);
            }
            rows.push(Row::Heading(group.title(), Tone::Info));
            for r in group.ops {
                let i = match r {
                    crate::sync::causes::OpRef::Group(i) => {
                        rows.push(Row::GroupOp(i));
                        continue;
                    }
                    crate::sync::causes::OpRef::User(i) => i,
                };
                let op = &v.plan.ops[i];
                rows.push(Row::Op(i));
                if data.directory.upn_overrides.contains_key(&op.directory_id)
                    && !op.upn.eq_ignore_ascii_case(&op.email)
                {
                    note(
                        &mut rows,
                        &format!(
                            "↳ the UPN is on the default domain (the fix); the email stays {}",
                            op.email
                        ),
                        Tone::Warn,
                        "    ",
                    );
                }
                // The field-level diff it applies (a create sets its first values).
                if op.kind != OpKind::Create {
                    for c in &op.changes {
                        note(&mut rows, &c.describe(), Tone::Info, "    ");
                    }
                }
                // The licences it adds (with the plans off) and removes, as the dry run.
                if let Some(l) = op.licences.as_deref().filter(|l| !l.is_empty()) {
                    note(
                        &mut rows,
                        &format!("licences: {}", l.describe()),
                        Tone::Info,
                        "    ",
                    );
                }
            }
        }
        // Accounts mastered on-premises: the directory differs, nothing is sent; said why.
        let synced: Vec<&crate::sync::preflight::Issue> = v
            .issues
            .iter()
            .map(|(i, _)| i)
            .filter(|i| i.kind == "synced-from-on-premises")
            .collect();
        if !synced.is_empty() {
            rows.push(Row::Blank);
            rows.push(Row::Heading(
                format!(
                    "Not edited, synced from on-premises AD: {}",
                    thousands(synced.len())
                ),
                Tone::Warn,
            ));
            for i in synced {
                note(&mut rows, &i.message, Tone::Warn, "  ");
            }
        }
        let held = v.held_count();
        if held > 0 {
            rows.push(Row::Blank);
            rows.push(Row::Heading(
                format!(
                    "⏸ Held back, never sent: {} ({})",
                    thousands(held),
                    data.see_errors()
                ),
                Tone::Warn,
            ));
            let why = |rows: &mut Vec<Row>, issue: &crate::sync::preflight::Issue| {
                note(
                    rows,
                    &format!("↳ {}: {}", issue.kind, issue.message),
                    Tone::Bad,
                    "    ",
                );
            };
            for (i, (_, issue)) in v.held.iter().enumerate() {
                rows.push(Row::Held(i));
                why(&mut rows, issue);
            }
            for (i, (_, issue)) in v.group_held.iter().enumerate() {
                rows.push(Row::GroupHeld(i));
                why(&mut rows, issue);
            }
            for (i, (_, issue)) in v.member_held.iter().enumerate() {
                rows.push(Row::MemberHeld(i));
                note(
                    &mut rows,
                    &format!("↳ held back with its member ({})", issue.kind),
                    Tone::Bad,
                    "    ",
                );
            }
        }
        self.rows = rows;
        self.built_for = data.width;
        let list = self.areas(data)[1];
        follow(
            &mut self.selected,
            &mut self.offset,
            self.rows.len(),
            list.height as usize,
        );
    }

    /// What the admin confirmed so far: the guard's count, the delete guard's count, then
    /// the UPN of a self-block, each typed in turn in the same box.
    pub fn confirm(&self) -> crate::sync::pipeline::Confirm {
        let typed = self.guard_input.value().trim();
        let stage = self.stage();
        let count_typed = self
            .view
            .guard
            .as_ref()
            .filter(|g| self.guard_ok || (stage == Stage::Guard && typed == g.blocks.to_string()))
            .map(|g| g.blocks);
        let deletes_typed = self
            .view
            .delete_guard
            .as_ref()
            .filter(|g| {
                self.delete_ok || (stage == Stage::Deletes && typed == g.blocks.to_string())
            })
            .map(|g| g.blocks);
        crate::sync::pipeline::Confirm {
            yes_block: count_typed,
            yes_block_self: (stage == Stage::Upn).then(|| typed.to_string()),
            yes_block_self_any: false,
            yes_delete: deletes_typed,
        }
    }
    /// Which confirmation the box takes now.
    fn stage(&self) -> Stage {
        if self.view.guard.is_some() && !self.guard_ok {
            Stage::Guard
        } else if self.view.delete_guard.is_some() && !self.delete_ok {
            Stage::Deletes
        } else if self.view.self_block.is_some() {
            Stage::Upn
        } else {
            Stage::None
        }
    }
    /// What must be typed next (the guard's count, the delete guard's, then the UPN), None
    /// when nothing.
    pub fn expected(&self) -> Option<String> {
        match self.stage() {
            Stage::Guard => self.view.guard.as_ref().map(|g| g.blocks.to_string()),
            Stage::Deletes => self
                .view
                .delete_guard
                .as_ref()
                .map(|g| g.blocks.to_string()),
            Stage::Upn => self.view.self_block.as_ref().map(|b| b.upn.clone()),
            Stage::None => None,
        }
    }
    /// `y` is accepted: nothing to confirm, or everything typed as asked.
    pub fn confirmed(&self) -> bool {
        crate::sync::pipeline::check_confirmed(&self.view, &self.confirm()).is_ok()
    }
    /// The UPN of an account it blocks is being typed: every character goes to the box.
    fn typing_upn(&self) -> bool {
        self.stage() == Stage::Upn
    }

    /// The guard box's message, wrapped to `w`.
    fn guard_text(&self, w: usize) -> (String, Vec<String>) {
        let (title, message) = match (self.stage(), &self.view) {
            (Stage::Guard, PlanView { guard: Some(g), .. }) => {
                (" Mass-change guard ", g.message.clone())
            }
            (
                Stage::Deletes,
                PlanView {
                    delete_guard: Some(g),
                    ..
                },
            ) => (" Delete guard ", g.message.clone()),
            (
                Stage::Upn,
                PlanView {
                    self_block: Some(b),
                    ..
                },
            ) => (" Blocking your own account ", b.message.clone()),
            _ => (" Confirm ", String::new()),
        };
        (title.to_string(), wrap(&message, w.saturating_sub(2)))
    }

    /// Summary, list, guard box: the one layout of drawing and scrolling (the keys are in
    /// the hint bar right under it).
    fn areas(&self, data: &Data) -> [Rect; 3] {
        let inner = layout::dialog_inner(data);
        let guard_h = match self.expected() {
            Some(_) => self.guard_text(inner.width as usize).1.len() as u16 + 3,
            None => 0,
        };
        Layout::vertical([
            Constraint::Length(2),
            Constraint::Fill(1),
            Constraint::Length(guard_h),
        ])
        .areas(inner)
    }
}

/// `p`: the plan needs the directory and every tenant user; while they are listed it opens by
/// itself when they are (`p` again: it does not).
pub fn start_plan(data: &mut Data, fx: &mut Vec<Effect>) -> Outcome {
    if data.applying {
        data.say(Topic::Plan, "An apply is running: wait for it to end.");
        return Outcome::Done;
    }
    if data.checking_journal {
        data.say(
            Topic::Plan,
            "Checking what an interrupted run left against the tenant: the plan waits for it.",
        );
        return Outcome::Done;
    }
    if !data.directory_loaded {
        data.say(Topic::Plan, "The directory is not loaded yet.");
        return Outcome::Done;
    }
    if !data.listed() {
        // Without every tenant user the plan would create accounts that exist.
        let p = data.tab_key(super::super::tabs::bindings::SECTION.name, Command::Preview);
        let r = data.tab_key(super::super::tabs::bindings::SECTION.name, Command::Refresh);
        match data.load {
            Load::Loading { .. } | Load::Waiting => {
                data.preview_after_listing = !data.preview_after_listing;
                if data.preview_after_listing {
                    data.say(
                        Topic::Plan,
                        format!(
                            "The plan needs every tenant user ({} listed so far): the preview \
                             opens by itself when the listing ends ({p} again: don't).",
                            thousands(data.rows.len())
                        ),
                    );
                } else {
                    data.say(
                        Topic::Plan,
                        "The preview will not open by itself after the listing.",
                    );
                }
            }
            _ => data.say(
                Topic::Plan,
                format!(
                    "The plan needs every tenant user and the listing did not finish: {r} lists \
                     them again, then {p}."
                ),
            ),
        }
        return Outcome::Done;
    }
    data.preview_after_listing = false;
    // A new plan supersedes what was said about wishes, fixes and the last plan.
    data.message = None;
    data.plan_gen += 1;
    fx.push(Effect::Plan {
        gen: data.plan_gen,
        pages: data.rows.pages.clone(),
        extras: data.tenant_extras.clone(),
        now: data.now,
    });
    Outcome::Open(Modal::Planning(Planning { gen: data.plan_gen }))
}

/// After a fix: compute the plan again only for its preflight findings (Errors is updated,
/// nothing opens). Skipped when the tenant users are not all listed.
pub fn start_check(data: &mut Data, fx: &mut Vec<Effect>) {
    if !data.listed() || !data.directory_loaded {
        return;
    }
    data.plan_gen += 1;
    data.check_gen = Some(data.plan_gen);
    fx.push(Effect::Plan {
        gen: data.plan_gen,
        pages: data.rows.pages.clone(),
        extras: data.tenant_extras.clone(),
        now: data.now,
    });
}

/// Replace the findings in Errors (preflight's, and the licence errors recorded on accounts)
/// by those of the latest plan.
fn set_preflight_errors(data: &mut Data, view: &PlanView) {
    use crate::sync::pipeline::FindingSource;
    data.retain_errors(|e| !matches!(e.source, ErrorSource::Preflight | ErrorSource::Tenant));
    // The same findings as `m365sync errors` and the dry run: one function makes them.
    for f in crate::sync::pipeline::findings(view) {
        let entry = match (f.source, &f.subject) {
            (FindingSource::Tenant, subject) => ErrorEntry::from_recorded(&f.issue, subject.name()),
            (FindingSource::Preflight, crate::diagnose::Subject::Group(name)) => {
                ErrorEntry::from_group_issue(&f.issue, name)
            }
            (FindingSource::Preflight, subject) => ErrorEntry::from_issue(
                &f.issue,
                subject.name(),
                f.op.as_ref().and_then(|o| o.user()),
            ),
        };
        data.push_error(entry);
    }
}

/// The plan of `gen` came back: a re-check updates Errors; the plan asked for opens the
/// preview (or says there is nothing to do).
pub fn plan_ready(
    data: &mut Data,
    modal: &mut Modal,
    gen: u64,
    result: Result<Box<PlanView>, Failure>,
) -> bool {
    if data.check_gen == Some(gen) {
        data.check_gen = None;
        match result {
            Ok(view) => {
                set_preflight_errors(data, &view);
                let p = data.tab_key(super::super::tabs::bindings::SECTION.name, Command::Preview);
                let msg = match view.held_count() {
                    0 => format!("Re-checked: nothing is held back now; {p} previews the plan."),
                    n => format!(
                        "Re-checked: {} still held back ({}).",
                        thousands(n),
                        data.see_errors()
                    ),
                };
                data.say(Topic::Fix, msg);
            }
            Err(e) => data.push_error(ErrorEntry::from_failure(&e)),
        }
        return true;
    }
    if *modal != Modal::Planning(Planning { gen }) {
        return false; // the admin went back, or a newer plan was asked for
    }
    if let Ok(view) = &result {
        set_preflight_errors(data, view);
    }
    match result {
        Ok(view) if view.in_sync() && view.verified.is_empty() => {
            *modal = Modal::None;
            data.tell(
                Topic::Plan,
                Tone::Good,
                "Nothing to do: the tenant already matches the directory.",
            );
        }
        Ok(view) => *modal = Modal::Preview(Box::new(Preview::new(*view, data))),
        Err(e) => {
            *modal = Modal::None;
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Plan,
                Tone::Bad,
                format!("The plan could not be computed ({}).", data.see_errors()),
            );
        }
    }
    true
}

impl Component for Planning {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![PLANNING]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        vec![Command::Back]
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, _: &mut Data, c: Command, _: &mut Vec<Effect>) -> Outcome {
        match c {
            Command::Back => Outcome::Close,
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        super::small(
            frame,
            area,
            data,
            theme,
            "Preview",
            vec![Line::from(Span::styled(
                "Computing the plan against the tenant users listed…",
                theme.accent(),
            ))],
            &super::hints(data, self),
        );
    }
}

impl Dialog for Planning {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

impl Component for Preview {
    fn sections(&self, _: &Data) -> Vec<Section> {
        if self.typing_upn() {
            vec![TYPING]
        } else {
            vec![SECTION, Section::DIALOG]
        }
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        let mut v = vec![
            Command::Back,
            Command::Down,
            Command::Up,
            Command::PageDown,
            Command::PageUp,
            Command::Top,
            Command::Bottom,
        ];
        if self.confirmed() && !self.view.is_empty() {
            v.push(Command::Confirm);
        }
        v
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        if self.typing_upn() {
            TextMode::All
        } else if self.expected().is_some() {
            TextMode::Digits
        } else {
            TextMode::None
        }
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        let rows = self.areas(data)[1].height as usize;
        match c {
            Command::Back => Outcome::Close,
            c if is_move(c) => {
                self.selected = moved(c, self.selected, self.rows.len(), rows);
                follow(&mut self.selected, &mut self.offset, self.rows.len(), rows);
                Outcome::Done
            }
            Command::Confirm => {
                if self.view.is_empty() {
                    data.say(
                        Topic::Plan,
                        format!(
                            "Nothing to send: every change is held back ({}).",
                            data.see_errors()
                        ),
                    );
                    return Outcome::Done;
                }
                if !self.confirmed() {
                    let want = self.expected().unwrap_or_default();
                    data.say(
                        Topic::Plan,
                        format!("Type {want} in the box to confirm, then y."),
                    );
                    return Outcome::Done;
                }
                let confirm = self.confirm();
                let view = Box::new(std::mem::take(&mut self.view));
                let run = super::run::Run::start(&view, data);
                data.applying = true;
                data.message = None;
                fx.push(Effect::Apply { view, confirm });
                Outcome::Open(Modal::Run(Box::new(run)))
            }
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, _: &mut Data, req: InputRequest) -> bool {
        if self.expected().is_none() {
            return false;
        }
        if !self.typing_upn() {
            // The guard's count: digits only.
            if let InputRequest::InsertChar(c) = req {
                if !c.is_ascii_digit() {
                    return false;
                }
            }
        }
        self.guard_input.handle(req);
        // A count typed with another confirmation after it: the next one is asked in the
        // same box (the guard's count, the delete guard's, then the UPN of a self-block).
        let typed_ok = self.expected().as_deref() == Some(self.guard_input.value().trim());
        match self.stage() {
            Stage::Guard
                if typed_ok
                    && (self.view.delete_guard.is_some() || self.view.self_block.is_some()) =>
            {
                self.guard_ok = true;
                self.guard_input.reset();
            }
            Stage::Deletes if typed_ok && self.view.self_block.is_some() => {
                self.delete_ok = true;
                self.guard_input.reset();
            }
            _ => {}
        }
        true
    }
    fn draw(&self, frame: &mut Frame, _: Rect, data: &Data, theme: &Theme) {
        let rect = layout::screen_of(data).body;
        frame.render_widget(Clear, rect);
        let n = self.view.plan.ops.len() + self.view.group_ops.len();
        let mut title = format!("Plan: {}", count(n, "change", None));
        if self.view.held_count() > 0 {
            title.push_str(&format!(
                " · {} held back",
                thousands(self.view.held_count())
            ));
        }
        title.push_str(&format!(
            " · line {}/{}",
            thousands((self.selected + 1).min(self.rows.len())),
            thousands(self.rows.len())
        ));
        let block = frame_block(title, theme);
        frame.render_widget(block, rect);
        let [summary, list, guard] = self.areas(data);
        self.draw_summary(frame, summary, data, theme);
        self.draw_rows(frame, list, data, theme);
        if let Some(want) = self.expected() {
            self.draw_guard(frame, guard, &want, theme);
        }
    }
}

impl Dialog for Preview {
    fn sync(&mut self, data: &mut Data) -> Outcome {
        if self.built_for != data.width || self.rows.is_empty() {
            self.rebuild(data);
        }
        Outcome::Ignored
    }
}

impl Preview {
    fn draw_summary(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let mut spans = vec![Span::raw(" ")];
        for (i, (kind, n)) in self.view.counts.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", theme.dim()));
            }
            spans.push(Span::styled(kind.label(), theme.bold()));
            spans.push(Span::raw(format!(" {}", thousands(*n))));
        }
        for kind in crate::sync::groups::GroupOpKind::ALL {
            let n = self
                .view
                .group_ops
                .iter()
                .filter(|o| o.kind == kind)
                .count();
            if n > 0 {
                if spans.len() > 1 {
                    spans.push(Span::styled(" · ", theme.dim()));
                }
                spans.push(Span::styled(kind.label(), theme.bold()));
                spans.push(Span::raw(format!(" {}", thousands(n))));
            }
        }
        let n = self.view.plan.ops.len() + self.view.group_ops.len();
        let e = estimate(n, self.view.writes, data.measured_rate);
        spans.push(Span::styled(" · ETA ", theme.dim()));
        spans.push(Span::styled(eta(e.eta), theme.accent()));
        spans.push(Span::styled(format!(" ({})", e.basis), theme.dim()));
        frame.render_widget(
            Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true }),
            area,
        );
    }

    fn draw_rows(&self, frame: &mut Frame, area: Rect, _: &Data, theme: &Theme) {
        let w = area.width as usize;
        let v = &self.view;
        // The UPN column is as wide as the longest UPN (never cut when it fits the line).
        let kind_w = 1 + self
            .rows
            .iter()
            .map(|r| match r {
                Row::Op(i) => v.plan.ops[*i].kind.label().len(),
                Row::Held(i) => v.held[*i].0.kind.label().len(),
                Row::GroupOp(i) => v.group_ops[*i].kind.label().len(),
                Row::GroupHeld(i) => v.group_held[*i].0.kind.label().len(),
                Row::MemberHeld(i) => v.member_held[*i].0.kind.label().len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .min(27);
        let upn_w = self
            .rows
            .iter()
            .map(|r| match r {
                Row::Op(i) => crate::ui::text::width(&v.plan.ops[*i].upn),
                Row::Held(i) => crate::ui::text::width(&v.held[*i].0.upn),
                Row::GroupOp(i) => {
                    let op = &v.group_ops[*i];
                    crate::ui::text::width(
                        op.member
                            .as_ref()
                            .map_or(op.group_name.as_str(), |m| m.email.as_str()),
                    )
                }
                Row::GroupHeld(i) => crate::ui::text::width(&v.group_held[*i].0.group_name) + 2,
                Row::MemberHeld(i) => v.member_held[*i]
                    .0
                    .member
                    .as_ref()
                    .map_or(0, |m| crate::ui::text::width(&m.email)),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .min(w.saturating_sub(kind_w + 2));
        // What is left: the name, and on a wide terminal the reason too.
        let rest = w.saturating_sub(kind_w + upn_w + 2);
        let (name_w, why_w) = if rest >= 50 {
            (rest / 3, rest - rest / 3 - 1)
        } else {
            (rest, 0)
        };
        let cells =
            |kind: &str, kind_style: Style, name: &str, upn: &str, why: &str, why_style: Style| {
                let mut spans = vec![
                    Span::styled(fit(&format!(" {kind}"), kind_w), kind_style),
                    Span::raw(" "),
                    Span::styled(fit(upn, upn_w), theme.bold()),
                ];
                if name_w > 0 {
                    spans.push(Span::raw(" "));
                    spans.push(Span::raw(fit(name, name_w)));
                }
                if why_w > 0 {
                    spans.push(Span::raw(" "));
                    spans.push(Span::styled(fit(why, why_w), why_style));
                }
                spans
            };
        let rows = area.height as usize;
        let offset = self.offset.min(self.rows.len().saturating_sub(rows));
        let mut lines = Vec::with_capacity(rows);
        for (i, row) in self.rows.iter().enumerate().skip(offset).take(rows) {
            let spans = match row {
                Row::Blank => vec![Span::raw("")],
                Row::Heading(t, tone) => vec![Span::styled(
                    format!(" {t}"),
                    tone_style(theme, *tone).patch(theme.bold()),
                )],
                Row::Note(t, tone) => vec![Span::styled(
                    format!(" {}", fit(t, w.saturating_sub(1))),
                    tone_style(theme, *tone),
                )],
                Row::Op(k) => {
                    let op = &v.plan.ops[*k];
                    let kind_style = match op.kind {
                        OpKind::Block => theme.warn(),
                        _ => theme.ok(),
                    };
                    cells(
                        op.kind.label(),
                        kind_style,
                        &op.display_name,
                        &op.upn,
                        &op.reason,
                        theme.dim(),
                    )
                }
                Row::GroupOp(k) => {
                    let op = &v.group_ops[*k];
                    let (what, name) = match &op.member {
                        Some(m) => (m.email.clone(), op.group_name.clone()),
                        None => (
                            op.group_name.clone(),
                            format!("mailNickname {}", op.mail_nickname),
                        ),
                    };
                    cells(
                        op.kind.label(),
                        theme.ok(),
                        &name,
                        &what,
                        &op.reason,
                        theme.dim(),
                    )
                }
                Row::Held(k) => {
                    let (op, issue) = &v.held[*k];
                    cells(
                        op.kind.label(),
                        theme.warn(),
                        &op.display_name,
                        &op.upn,
                        &issue.kind,
                        theme.error(),
                    )
                }
                Row::GroupHeld(k) => {
                    let (op, issue) = &v.group_held[*k];
                    cells(
                        op.kind.label(),
                        theme.warn(),
                        &format!("mailNickname {}", op.mail_nickname),
                        &format!("\"{}\"", op.group_name),
                        &issue.kind,
                        theme.error(),
                    )
                }
                Row::MemberHeld(k) => {
                    let (op, issue) = &v.member_held[*k];
                    let who = op.member.as_ref().map(|m| m.email.as_str()).unwrap_or("");
                    cells(
                        op.kind.label(),
                        theme.warn(),
                        &op.group_name,
                        who,
                        &issue.kind,
                        theme.error(),
                    )
                }
            };
            let mut line = Line::from(spans);
            if i == self.selected {
                line = line.style(theme.selected());
            }
            lines.push(line);
        }
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn draw_guard(&self, frame: &mut Frame, area: Rect, want: &str, theme: &Theme) {
        let ok = self.confirmed();
        let (title, message) = self.guard_text(area.width as usize);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(if ok { theme.ok() } else { theme.error() })
            .title(Span::styled(title, theme.error()));
        let gi = block.inner(area);
        frame.render_widget(block, area);
        let prompt = format!(" Type {want} to confirm: ");
        let mut lines: Vec<Line> = message
            .iter()
            .map(|m| Line::from(Span::styled(format!(" {m}"), theme.warn())))
            .collect();
        lines.push(Line::from(vec![
            Span::styled(prompt.clone(), theme.bold()),
            Span::styled(
                format!("{:<8}", crate::ui::text::clean(self.guard_input.value())),
                if ok { theme.ok() } else { theme.selected() },
            ),
            Span::styled(if ok { "  confirmed: y applies" } else { "" }, theme.ok()),
        ]));
        let y = gi.y + lines.len() as u16 - 1;
        frame.render_widget(Paragraph::new(lines), gi);
        let x =
            gi.x + crate::ui::text::width(&prompt) as u16 + self.guard_input.visual_cursor() as u16;
        if x < gi.x + gi.width && y < gi.y + gi.height {
            frame.set_cursor_position(Position::new(x, y));
        }
    }
}

pub fn tone_style(theme: &Theme, tone: Tone) -> Style {
    match tone {
        Tone::Info => theme.accent(),
        Tone::Good => theme.ok(),
        Tone::Warn => theme.warn(),
        Tone::Bad => theme.error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    fn preview(s: &crate::app::AppState) -> Preview {
        match &s.modal {
            Modal::Preview(p) => (**p).clone(),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn every_held_back_item_is_a_line_and_the_ends_are_reachable() {
        let s = fixtures::held_preview_state();
        let (mut p, mut d) = (preview(&s), s.data);
        let held: Vec<usize> = p
            .rows
            .iter()
            .filter_map(|r| match r {
                Row::Held(i) => Some(*i),
                _ => None,
            })
            .collect();
        assert_eq!(
            held,
            (0..p.view.held.len()).collect::<Vec<_>>(),
            "every one listed"
        );
        // Each says why, on the line under it.
        let why = p
            .rows
            .iter()
            .filter(
                |r| matches!(r, Row::Note(t, Tone::Bad) if t.contains("↳ upn-domain-unverified")),
            )
            .count();
        assert_eq!(why, 1);
        let mut fx = Vec::new();
        p.command(&mut d, Command::Bottom, &mut fx);
        assert_eq!(p.selected, p.rows.len() - 1);
        let rows = p.areas(&d)[1].height as usize;
        assert!(
            p.offset + rows >= p.rows.len(),
            "the last line is on screen"
        );
        p.command(&mut d, Command::Top, &mut fx);
        assert_eq!((p.selected, p.offset), (0, 0));
        assert!(fx.is_empty());
    }

    #[test]
    fn scheduled_deprovisioning_steps_are_listed_with_their_dates() {
        let s = fixtures::preview_state(1, 1, false);
        let mut view = preview(&s).view;
        view.deprovision.scheduled =
            vec!["Ann Lee: licences removed on 12 Jan, deleted on 11 Feb".into()];
        view.deprovision.cancelled =
            vec!["Ben Ode: wanted bound again; deleted on 3 Mar cancelled".into()];
        let p = Preview::new(view, &s.data);
        let notes: Vec<&str> = p
            .rows
            .iter()
            .filter_map(|r| match r {
                Row::Note(t, Tone::Info) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert!(p.rows.iter().any(
            |r| matches!(r, Row::Heading(h, _) if h == "Scheduled by the deprovisioning policy")
        ));
        assert!(notes
            .iter()
            .any(|t| t.contains("Ann Lee: licences removed on 12 Jan")));
        assert!(notes
            .iter()
            .any(|t| t.contains("deleted on 3 Mar cancelled")));
    }

    #[test]
    fn the_eta_is_never_faster_than_the_budget_the_round_trips_or_the_last_run() {
        let e = estimate(7, 7, None);
        assert_eq!(e.eta, Duration::from_secs(1), "one round of $batch");
        assert!(e.basis.contains("write budget"));
        let e = estimate(6000, 6000, None);
        assert_eq!(e.eta, Duration::from_secs(300), "3,000 writes per 150 s");
        let e = estimate(600, 600, Some(2.0));
        assert_eq!(e.eta, Duration::from_secs(300), "the last run managed 2/s");
        assert!(e.basis.contains("last run"));
    }

    #[test]
    fn y_starts_the_run_with_the_view_and_what_was_confirmed() {
        let s = fixtures::preview_state(2, 1, false);
        let (mut p, mut d) = (preview(&s), s.data);
        let mut fx = Vec::new();
        let o = p.command(&mut d, Command::Confirm, &mut fx);
        assert!(matches!(o, Outcome::Open(Modal::Run(_))), "{o:?}");
        assert!(d.applying);
        assert!(matches!(fx.as_slice(), [Effect::Apply { view, .. }] if view.plan.ops.len() == 5));
        // Enter never applies.
        let s = fixtures::preview_state(2, 1, false);
        let (mut p, mut d) = (preview(&s), s.data);
        assert_eq!(
            p.command(&mut d, Command::Submit, &mut fx),
            Outcome::Ignored
        );
    }

    #[test]
    fn the_delete_guard_is_typed_after_the_guards_count() {
        let s = fixtures::preview_state(3, 60, true);
        let mut view = preview(&s).view;
        let g = view.guard.clone().expect("the fixture trips the guard");
        view.delete_guard = Some(crate::sync::plan::GuardTrip {
            blocks: 12,
            bound: g.bound,
            message: "This plan deletes 12 accounts (--yes-delete 12).".into(),
        });
        let (mut p, mut d) = (Preview::new(view, &s.data), s.data);
        let typed = |p: &mut Preview, d: &mut Data, text: &str| {
            for c in text.chars() {
                assert!(p.input(d, InputRequest::InsertChar(c)));
            }
        };
        assert_eq!(p.expected(), Some(g.blocks.to_string()));
        typed(&mut p, &mut d, &g.blocks.to_string());
        assert!(!p.confirmed(), "the deletes are not confirmed yet");
        assert_eq!(p.expected().as_deref(), Some("12"));
        assert_eq!(p.guard_text(80).0, " Delete guard ");
        typed(&mut p, &mut d, "11");
        assert!(!p.confirmed(), "a wrong count confirms nothing");
        for _ in 0..2 {
            p.input(&mut d, InputRequest::DeletePrevChar);
        }
        typed(&mut p, &mut d, "12");
        assert!(p.confirmed());
        let c = p.confirm();
        assert_eq!((c.yes_block, c.yes_delete), (Some(g.blocks), Some(12)));
    }

    #[test]
    fn the_guard_box_takes_digits_only() {
        let s = fixtures::preview_state(3, 60, true);
        let (mut p, mut d) = (preview(&s), s.data);
        assert_eq!(p.text_mode(&d), TextMode::Digits);
        assert!(!p.input(&mut d, InputRequest::InsertChar('x')));
        assert!(p.input(&mut d, InputRequest::InsertChar('6')));
        assert!(p.input(&mut d, InputRequest::InsertChar('0')));
        assert!(p.confirmed());
        assert!(p.commands(&d).contains(&Command::Confirm));
    }
}
