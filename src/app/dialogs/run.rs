//! An apply: its progress while it runs (gauge, counts, rate, a live ETA, the last errors; Esc
//! stops sending), then what was done, titled by what was done: every temporary password
//! issued (shown once: copy with `c`, write the hand-off CSV with `w`; closing with passwords
//! neither copied nor written asks first) and the outcome of every op. Owns the results of
//! its effects (`Apply` events, `ApplyFinished`, `HandoffWritten`).
use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, LineGauge, Paragraph};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::failure::Failure;
use crate::format::{count, eta, thousands};
use crate::keymap::Command;
use crate::sync::apply::{
    ApplyProgress, ApplySummary, IssuedPassword, OpResult, Outcome as OpOutcome,
};
use crate::sync::ops::Kind;
use crate::ui::text::fit;
use crate::ui::widgets::frame_block;
use crate::ui::Theme;

use super::super::action::ApplyNews;
use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::{Effect, Secret};
use super::super::explain::{ErrorEntry, ErrorSource};
use super::super::layout;
use super::super::list::{follow, is_move, moved};
use super::super::state::{Data, PlanView, RowFailure, Tone, Topic};
use super::question::Question;
use super::Modal;

pub const RUNNING: Section = Section {
    name: "run",
    title: "Applying",
};
pub const RESULT: Section = Section {
    name: "result",
    title: "What was done",
};

/// One failed op as the progress view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub upn: String,
    pub kind: Kind,
    pub message: String,
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

/// An apply run: progress while it runs, what was done and the passwords after.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Run {
    pub total: usize,
    /// Graph writes of the plan (the ETA at the write budget).
    pub writes: u64,
    pub progress: ApplyProgress,
    /// The most recent failures, newest last (at most `Run::KEEP_ERRORS`).
    pub errors: Vec<RunError>,
    /// Esc was pressed: no new op is sent, those in flight finish.
    pub stopping: bool,
    pub finished: Option<RunEnd>,
    /// Every op of the run and how it ended.
    pub results: Vec<OpResult>,
    /// Generated passwords: shown once after the run, dropped when the panel closes.
    pub passwords: Vec<IssuedPassword>,
    /// Which passwords were copied (`c`).
    pub copied: Vec<bool>,
    /// Selected item of the finished list: the passwords first, then the outcomes.
    pub selected: usize,
    pub offset: usize,
    /// Where the hand-off CSV was written.
    pub handoff: Option<String>,
}

/// A line of the finished run's list.
enum Item<'a> {
    Heading(String, Tone),
    Password(usize, &'a IssuedPassword),
    Result(usize, &'a OpResult),
    Blank,
}

impl Run {
    pub const KEEP_ERRORS: usize = 5;

    pub fn start(view: &PlanView, _: &Data) -> Run {
        let total = view.plan.ops.len() + view.group_ops.len();
        Run {
            total,
            writes: view.writes,
            progress: ApplyProgress {
                remaining: total,
                ..Default::default()
            },
            ..Run::default()
        }
    }

    /// Passwords neither copied nor written to the hand-off file: lost if the view closes.
    pub fn unsaved(&self) -> usize {
        if self.handoff.is_some() {
            return 0;
        }
        self.passwords
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.copied.get(*i).copied().unwrap_or(false))
            .count()
    }

    fn items(&self) -> usize {
        self.passwords.len() + self.results.len()
    }

    /// The lines of the finished list, with the selectable index of each item line.
    fn lines(&self) -> Vec<Item<'_>> {
        let mut v = Vec::new();
        if !self.passwords.is_empty() {
            v.push(Item::Heading(
                format!(
                    "{} (changed at first sign-in), shown only once:",
                    count(self.passwords.len(), "temporary password", None)
                ),
                Tone::Warn,
            ));
            v.extend(
                self.passwords
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Item::Password(i, p)),
            );
            v.push(Item::Blank);
        }
        if !self.results.is_empty() {
            v.push(Item::Heading(
                format!("Every change of the run: {}", thousands(self.results.len())),
                Tone::Info,
            ));
            let p = self.passwords.len();
            v.extend(
                self.results
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Item::Result(p + i, r)),
            );
        }
        v
    }

    /// The line of item `sel` in `lines()`.
    fn line_of(&self, sel: usize) -> usize {
        self.lines()
            .iter()
            .position(|l| match l {
                Item::Password(i, _) | Item::Result(i, _) => *i == sel,
                _ => false,
            })
            .unwrap_or(0)
    }

    /// Summary, hand-off line, list (finished; the keys are in the hint bar under it).
    fn areas(data: &Data) -> [Rect; 3] {
        Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(layout::dialog_inner(data))
    }

    /// The run's title: what was done, not what was planned.
    pub fn title(&self) -> String {
        match (&self.finished, self.stopping) {
            (
                Some(RunEnd::Done {
                    done,
                    failed,
                    cancelled,
                }),
                _,
            ) => {
                let mut t = if *cancelled > 0 {
                    format!("Stopped: {} done", thousands(*done))
                } else if *done == 0 {
                    "Nothing done".to_string()
                } else {
                    format!("Done: {}", count(*done, "change", None))
                };
                if *failed > 0 {
                    t.push_str(&format!(", {} failed", thousands(*failed)));
                }
                if *cancelled > 0 {
                    t.push_str(&format!(", {} not sent", thousands(*cancelled)));
                }
                t
            }
            (Some(RunEnd::Failed(_)), _) => "The apply stopped with an error".into(),
            (None, true) => "Stopping…".to_string(),
            (None, false) => format!("Applying {}", count(self.total, "change", None)),
        }
    }

    /// A live ETA: the rate measured over the last seconds, never faster than the budget.
    pub fn live_eta(&self) -> Duration {
        let p = &self.progress;
        let per_op = self.writes as f64 / self.total.max(1) as f64;
        let budget = super::preview::BUDGET.eta((p.remaining as f64 * per_op).ceil() as u64);
        if p.rate > 0.0 {
            budget.max(Duration::from_secs_f64(p.remaining as f64 / p.rate))
        } else {
            budget
        }
    }
}

/// What the engine reports while it runs.
pub fn news(data: &mut Data, modal: &mut Modal, news: ApplyNews) -> bool {
    let run = match modal {
        Modal::Run(run) => Some(run),
        _ => None,
    };
    match news {
        ApplyNews::Progress(p) => match run {
            Some(run) if run.progress != p => {
                if p.rate > 0.0 {
                    data.measured_rate = Some(p.rate);
                }
                run.progress = p;
                true
            }
            _ => false,
        },
        ApplyNews::OpDone { op, .. } => op
            .user()
            .is_some_and(|o| data.row_failures.remove(&o.directory_id).is_some()),
        ApplyNews::OpFailed { op, error } => {
            if let Some(run) = run {
                run.errors.push(RunError {
                    upn: op.target(),
                    kind: op.kind(),
                    message: match &error {
                        crate::graph::GraphError::Api { message, .. } => message.clone(),
                        e => e.to_string(),
                    },
                });
                if run.errors.len() > Run::KEEP_ERRORS {
                    run.errors.remove(0);
                }
            }
            let entry = ErrorEntry::from_op(&op, &error);
            if let Some(o) = op.user() {
                data.row_failures.insert(
                    o.directory_id,
                    RowFailure {
                        kind: o.kind,
                        code: error.code().to_string(),
                        message: entry.message.clone(),
                    },
                );
            }
            data.push_error(entry);
            true
        }
        ApplyNews::OpNotSent { op, why } => {
            if let Some(run) = run {
                run.errors.push(RunError {
                    upn: op.target(),
                    kind: op.kind(),
                    message: why,
                });
                if run.errors.len() > Run::KEEP_ERRORS {
                    run.errors.remove(0);
                }
                return true;
            }
            false
        }
        ApplyNews::PasswordIssued(p) => {
            if let Some(run) = run {
                if !run.passwords.iter().any(|q| q.upn == p.upn) {
                    run.passwords.push(p);
                    run.copied.push(false);
                }
            }
            true
        }
    }
}

/// The run ended: the summary, the passwords (every one the run issued), what failed to
/// Errors.
pub fn finished(data: &mut Data, modal: &mut Modal, result: Result<ApplySummary, Failure>) {
    data.applying = false;
    if !matches!(modal, Modal::Run(_)) {
        // Never expected (the run view stays up while applying), but passwords must be shown.
        *modal = Modal::Run(Box::default());
    }
    let Modal::Run(run) = modal else {
        unreachable!("set just above");
    };
    match result {
        Ok(sum) => {
            for p in sum.passwords {
                if !run.passwords.iter().any(|q| q.upn == p.upn) {
                    run.passwords.push(p);
                    run.copied.push(false);
                }
            }
            let stalled = match &sum.stopped {
                Some(crate::sync::apply::Stopped::Stalled { after, throttled }) => Some(format!(
                    "no change finished for {} (throttled {throttled} times); what was not \
                     sent is planned again by the next preview",
                    crate::format::duration(*after)
                )),
                Some(crate::sync::apply::Stopped::SinkFailed(e)) => Some(e.clone()),
                _ => None,
            };
            run.progress.done = sum.done;
            run.progress.failed = sum.failed;
            run.progress.remaining = 0;
            run.results = sum.results;
            run.finished = Some(RunEnd::Done {
                done: sum.done,
                failed: sum.failed,
                cancelled: sum.cancelled,
            });
            let mut msg = format!("Applied: {} done", thousands(sum.done));
            if sum.failed > 0 {
                msg.push_str(&format!(
                    ", {} failed ({})",
                    thousands(sum.failed),
                    data.see_errors()
                ));
            }
            if sum.cancelled > 0 {
                msg.push_str(&format!(
                    ", {} not sent (the next preview plans them again)",
                    thousands(sum.cancelled)
                ));
            }
            msg.push('.');
            let tone = if sum.failed > 0 {
                Tone::Warn
            } else {
                Tone::Good
            };
            data.tell(Topic::Apply, tone, msg);
            if let Some(why) = stalled {
                data.push_error(ErrorEntry::from_diagnosis(
                    ErrorSource::Graph,
                    "apply",
                    crate::diagnose::diagnose_stalled(&why),
                ));
            }
            for email in sum.passwords_lost {
                data.push_error(ErrorEntry::password_lost(&email, "this run"));
            }
        }
        Err(e) => {
            run.finished = Some(RunEnd::Failed(e.to_string()));
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Apply,
                Tone::Bad,
                format!(
                    "The apply did not start or stopped with an error ({}).",
                    data.see_errors()
                ),
            );
        }
    }
    let first = (!run.passwords.is_empty() || !run.results.is_empty()).then_some(0);
    run.selected = first.unwrap_or(0);
    run.offset = 0;
}

/// The hand-off CSV was written (its path), or not.
pub fn handoff_written(data: &mut Data, modal: &mut Modal, result: Result<String, Failure>) {
    match result {
        Ok(path) => {
            data.tell(
                Topic::Apply,
                Tone::Good,
                format!("Hand-off CSV written: {path}"),
            );
            if let Modal::Run(run) = modal {
                run.handoff = Some(path);
            }
        }
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Apply,
                Tone::Bad,
                format!(
                    "Writing the hand-off CSV failed ({}); the passwords are still here.",
                    data.see_errors()
                ),
            );
        }
    }
}

/// A result's mark, outcome word, why, and style.
fn outcome_cells(r: &OpResult, theme: &Theme) -> (&'static str, &'static str, String, Style) {
    match &r.outcome {
        OpOutcome::Done => (" ✓", "done", String::new(), theme.ok()),
        OpOutcome::Failed(e) => (" ✗", "failed", e.to_string(), theme.error()),
        OpOutcome::NotSent(why) => (" ·", "not sent", why.clone(), theme.warn()),
        OpOutcome::Unknown => (
            " ?",
            "unknown",
            "the answer was lost: checked before the next plan".into(),
            theme.warn(),
        ),
    }
}

impl Component for Run {
    fn sections(&self, _: &Data) -> Vec<Section> {
        match self.finished {
            None => vec![RUNNING],
            Some(_) => vec![RESULT, Section::DIALOG],
        }
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        match self.finished {
            None if self.stopping => vec![],
            None => vec![Command::Back],
            Some(_) => {
                let mut v = vec![Command::Back, Command::Submit];
                if self.items() > 0 {
                    v.extend([
                        Command::Down,
                        Command::Up,
                        Command::PageDown,
                        Command::PageUp,
                        Command::Top,
                        Command::Bottom,
                    ]);
                }
                if self.selected < self.passwords.len() {
                    v.push(Command::CopyPassword);
                }
                if !self.passwords.is_empty() {
                    v.push(Command::WriteHandoff);
                }
                v
            }
        }
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        if self.finished.is_none() {
            if c == Command::Back && !self.stopping {
                self.stopping = true;
                data.say(
                    Topic::Apply,
                    "Stopping: nothing new is sent; the changes in flight finish and are recorded.",
                );
                fx.push(Effect::CancelApply);
                return Outcome::Done;
            }
            return Outcome::Ignored;
        }
        let rows = Self::areas(data)[2].height as usize;
        match c {
            Command::Back | Command::Submit => {
                let n = self.unsaved();
                if n > 0 {
                    return Outcome::Ask(Question::ClosePasswords { unsaved: n });
                }
                // The passwords were shown once (and saved); they go with the panel.
                Outcome::Close
            }
            c if is_move(c) => {
                let len = self.items();
                if len == 0 {
                    return Outcome::Ignored;
                }
                self.selected = moved(c, self.selected, len, rows);
                let mut line = self.line_of(self.selected);
                // The heading above the first item stays in view at the top.
                if self.selected == 0 {
                    line = 0;
                }
                let n = self.lines().len();
                follow(&mut line, &mut self.offset, n, rows);
                Outcome::Done
            }
            Command::CopyPassword => {
                let Some(p) = self.passwords.get(self.selected) else {
                    return Outcome::Ignored;
                };
                fx.push(Effect::Osc52 {
                    text: Secret(p.password.clone()),
                });
                if let Some(c) = self.copied.get_mut(self.selected) {
                    *c = true;
                }
                let left = self.unsaved();
                data.tell(
                    Topic::Apply,
                    Tone::Good,
                    format!(
                        "Copied the password of {} to your terminal's clipboard (OSC 52){}.",
                        p.upn,
                        if left > 0 {
                            format!("; {} not copied yet", thousands(left))
                        } else {
                            String::new()
                        }
                    ),
                );
                Outcome::Done
            }
            Command::WriteHandoff => {
                if self.passwords.is_empty() {
                    return Outcome::Ignored;
                }
                fx.push(Effect::WriteHandoff {
                    passwords: self.passwords.clone(),
                });
                Outcome::Done
            }
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, _: Rect, data: &Data, theme: &Theme) {
        let rect = layout::screen_of(data).body;
        frame.render_widget(Clear, rect);
        let block = frame_block(self.title(), theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        match &self.finished {
            None => self.draw_running(frame, inner, data, theme),
            Some(end) => self.draw_finished(frame, data, theme, end),
        }
    }
}

impl Dialog for Run {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

impl Run {
    fn draw_running(&self, frame: &mut Frame, inner: Rect, data: &Data, theme: &Theme) {
        let p = &self.progress;
        let [gauge, stats, stopping, _, errors] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(inner);
        let total = (p.done + p.failed + p.not_sent + p.remaining)
            .max(self.total)
            .max(1);
        let finished = p.done + p.failed + p.not_sent;
        frame.render_widget(
            LineGauge::default()
                .ratio((finished as f64 / total as f64).min(1.0))
                .label(format!(" {} of {} ", thousands(finished), thousands(total)))
                .filled_symbol("━")
                .unfilled_symbol("─")
                .filled_style(theme.gauge())
                .unfilled_style(theme.dim()),
            gauge,
        );
        let num = |n: usize, bad: Style| {
            Span::styled(thousands(n), if n > 0 { bad } else { theme.bold() })
        };
        let mut spans = vec![
            Span::styled(" done ", theme.dim()),
            Span::styled(thousands(p.done), theme.ok()),
            Span::styled("  failed ", theme.dim()),
            num(p.failed, theme.error()),
            Span::styled("  not sent ", theme.dim()),
            num(p.not_sent, theme.warn()),
            Span::styled("  remaining ", theme.dim()),
            Span::styled(thousands(p.remaining), theme.bold()),
            Span::styled("  ·  ", theme.dim()),
            Span::styled(crate::format::rate(p.rate), theme.accent()),
            Span::styled("  ·  throttled ", theme.dim()),
            num(p.throttled, theme.warn()),
        ];
        if p.remaining > 0 && !self.stopping {
            spans.push(Span::styled("  ·  ETA ", theme.dim()));
            spans.push(Span::styled(eta(self.live_eta()), theme.accent()));
        }
        frame.render_widget(
            Paragraph::new(Line::from(spans)).wrap(ratatui::widgets::Wrap { trim: true }),
            stats,
        );
        if self.stopping {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    " Stopping after the changes in flight… (nothing new is sent)",
                    theme.warn(),
                )),
                stopping,
            );
        }
        self.error_lines(frame, errors, theme);
        let _ = data;
    }

    fn error_lines(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        if self.errors.is_empty() {
            return;
        }
        let w = area.width as usize;
        let mut lines = vec![Line::from(Span::styled(" Last errors", theme.error()))];
        for e in self.errors.iter().rev() {
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(
                    fit(&format!("{} {}:", e.kind.label(), e.upn), w / 2),
                    theme.bold(),
                ),
                Span::raw(" "),
                Span::raw(fit(&e.message, w.saturating_sub(w / 2 + 3))),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn draw_finished(&self, frame: &mut Frame, data: &Data, theme: &Theme, end: &RunEnd) {
        let [summary, handoff, list] = Self::areas(data);
        let line = match end {
            RunEnd::Done {
                done,
                failed,
                cancelled,
            } => {
                let mut spans = vec![
                    Span::raw(" "),
                    Span::styled(format!("{} done", thousands(*done)), theme.ok()),
                ];
                if *failed > 0 {
                    spans.push(Span::raw(", "));
                    spans.push(Span::styled(
                        format!("{} failed ({})", thousands(*failed), data.see_errors()),
                        theme.error(),
                    ));
                }
                if *cancelled > 0 {
                    spans.push(Span::raw(", "));
                    spans.push(Span::styled(
                        format!(
                            "{} not sent (stopped; the next preview plans them again)",
                            thousands(*cancelled)
                        ),
                        theme.warn(),
                    ));
                }
                spans.push(Span::raw("."));
                Line::from(spans)
            }
            RunEnd::Failed(e) => Line::from(vec![
                Span::styled(" The apply stopped: ", theme.error()),
                crate::ui::widgets::safe(e, Style::new()),
            ]),
        };
        frame.render_widget(
            Paragraph::new(line).wrap(ratatui::widgets::Wrap { trim: true }),
            summary,
        );
        let unsaved = self.unsaved();
        let note = match &self.handoff {
            Some(path) => Line::from(vec![
                Span::styled(" Hand-off CSV (owner-only): ", theme.dim()),
                crate::ui::widgets::safe(path, theme.ok()),
            ]),
            None if unsaved > 0 => Line::from(Span::styled(
                if unsaved == 1 {
                    " 1 password neither copied nor written: it is gone once this closes.".into()
                } else {
                    format!(
                        " {} passwords neither copied nor written: they are gone once this closes.",
                        thousands(unsaved)
                    )
                },
                theme.warn(),
            )),
            None if !self.passwords.is_empty() => {
                Line::from(Span::styled(" Every password was copied.", theme.ok()))
            }
            None => Line::from(""),
        };
        frame.render_widget(Paragraph::new(note), handoff);
        self.draw_items(frame, list, theme);
    }

    fn draw_items(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let w = area.width as usize;
        let lines = self.lines();
        if lines.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    " No change of the run was reported (the audit log has every write).",
                    theme.dim(),
                )),
                area,
            );
            return;
        }
        let rows = area.height as usize;
        let offset = self.offset.min(lines.len().saturating_sub(rows));
        let upn_w = (w / 2).max(20).min(w.saturating_sub(4));
        // The outcome columns: what happened, the kind, the UPN or group (as wide as it is),
        // and why.
        let (mut kind_w, mut target_w, mut why_w) = (4, 10, 10);
        for l in lines.iter().skip(offset).take(rows) {
            if let Item::Result(_, r) = l {
                kind_w = kind_w.max(crate::ui::text::width(r.op.kind().label()));
                target_w = target_w.max(crate::ui::text::width(&r.op.target()));
                why_w = why_w.max(crate::ui::text::width(&outcome_cells(r, theme).2));
            }
        }
        use crate::ui::widgets::Col;
        let widths = crate::ui::widgets::flex_widths(
            &[
                Col::Fixed(2),
                Col::Fixed(8),
                Col::Fixed(kind_w),
                // The UPN first: whole when the line allows it.
                Col::Fixed(target_w.min(w.saturating_sub(2 + 8 + kind_w + 4 + 10))),
                Col::Text {
                    want: why_w,
                    min: 10,
                },
            ],
            area.width,
        );
        let mut out = Vec::with_capacity(rows);
        for l in lines.iter().skip(offset).take(rows) {
            let line = match l {
                Item::Blank => Line::from(""),
                Item::Heading(t, tone) => Line::from(Span::styled(
                    format!(" {t}"),
                    super::preview::tone_style(theme, *tone),
                )),
                Item::Password(i, p) => {
                    let copied = self.copied.get(*i).copied().unwrap_or(false);
                    let line = Line::from(vec![
                        Span::styled(
                            if *i == self.selected { " › " } else { "   " },
                            theme.accent(),
                        ),
                        Span::raw(fit(&p.upn, upn_w)),
                        Span::raw(" "),
                        Span::styled(p.password.clone(), theme.bold()),
                        Span::styled(if copied { "  ✓ copied" } else { "" }, theme.ok()),
                    ]);
                    if *i == self.selected {
                        line.style(theme.selected())
                    } else {
                        line
                    }
                }
                Item::Result(i, r) => {
                    let (mark, word, why, style) = outcome_cells(r, theme);
                    let cells = vec![
                        (mark.to_string(), style),
                        (word.to_string(), style),
                        (r.op.kind().label().to_string(), Style::new()),
                        (r.op.target(), theme.bold()),
                        (why, theme.dim()),
                    ];
                    crate::ui::widgets::table_line(
                        cells,
                        &widths,
                        if *i == self.selected {
                            theme.selected()
                        } else {
                            Style::new()
                        },
                    )
                }
            };
            out.push(line);
        }
        frame.render_widget(Paragraph::new(out), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    fn run(s: &crate::app::AppState) -> Run {
        match &s.modal {
            Modal::Run(r) => (**r).clone(),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn closing_with_passwords_neither_copied_nor_written_asks() {
        let s = fixtures::passwords_state();
        let (mut r, mut d) = (run(&s), s.data);
        let mut fx = Vec::new();
        assert_eq!(r.unsaved(), 3);
        assert_eq!(
            r.command(&mut d, Command::Back, &mut fx),
            Outcome::Ask(Question::ClosePasswords { unsaved: 3 })
        );
        // `c` copies the selected one and says so.
        r.command(&mut d, Command::CopyPassword, &mut fx);
        assert!(matches!(fx.as_slice(), [Effect::Osc52 { .. }]));
        let m = d.message().unwrap();
        assert!(
            m.contains("Copied the password of") && m.contains("2 not copied yet"),
            "{m}"
        );
        assert_eq!(r.unsaved(), 2);
        // The hand-off file saves them all: closing no longer asks.
        r.handoff = Some("/x/handoff.csv".into());
        assert_eq!(r.unsaved(), 0);
        assert_eq!(r.command(&mut d, Command::Submit, &mut fx), Outcome::Close);
    }

    #[test]
    fn the_title_counts_what_was_done_not_what_was_planned() {
        let mut r = Run {
            total: 40,
            ..Run::default()
        };
        assert_eq!(r.title(), "Applying 40 changes");
        r.finished = Some(RunEnd::Done {
            done: 20,
            failed: 2,
            cancelled: 18,
        });
        assert_eq!(r.title(), "Stopped: 20 done, 2 failed, 18 not sent");
        r.finished = Some(RunEnd::Done {
            done: 1,
            failed: 0,
            cancelled: 0,
        });
        assert_eq!(r.title(), "Done: 1 change");
        r.finished = Some(RunEnd::Done {
            done: 0,
            failed: 3,
            cancelled: 0,
        });
        assert_eq!(r.title(), "Nothing done, 3 failed");
    }

    #[test]
    fn the_live_eta_follows_the_measured_rate_never_beating_the_budget() {
        let mut r = Run {
            total: 100,
            writes: 100,
            ..Run::default()
        };
        r.progress.remaining = 60;
        r.progress.rate = 2.0;
        assert_eq!(r.live_eta(), Duration::from_secs(30));
        r.progress.rate = 1000.0;
        assert_eq!(r.live_eta(), super::super::preview::BUDGET.eta(60));
    }

    #[test]
    fn esc_while_running_stops_sending_once() {
        let s = fixtures::run_state();
        let (mut r, mut d) = (run(&s), s.data);
        let mut fx = Vec::new();
        assert_eq!(r.command(&mut d, Command::Back, &mut fx), Outcome::Done);
        assert_eq!(fx, vec![Effect::CancelApply]);
        assert!(r.stopping);
        assert_eq!(r.command(&mut d, Command::Back, &mut fx), Outcome::Ignored);
        assert!(
            r.commands(&d).is_empty(),
            "nothing more to offer while it stops"
        );
    }
}
