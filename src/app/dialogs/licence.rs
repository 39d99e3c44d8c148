//! The licence dialog of the Licences tab (`a` on a SKU): who gets the SKU, then which of its
//! service plans are on. First a directory group or user is picked (typing finds it by name,
//! email or display name; ↑↓ move; Enter goes on), then the SKU's service plans are a
//! checklist (Space turns the selected plan off or on; a plan off becomes a disabled plan,
//! as the CLI's `--sku PART,-PLAN` writes it). Enter records the SKU with those plans for the
//! group or user, `x` removes it (`Directory::change_licence`, what `m365sync licence
//! assign|unassign` call; nothing is sent until an apply), and `p` then previews what it
//! changes. Owns the result of its effect (`LicenceChanged`).
use std::collections::BTreeSet;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::directory::{LicenceChange, LicenceOwner, LicencePick};
use crate::failure::Failure;
use crate::keymap::Command;
use crate::ui::text::{clean, cut, fit};
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::explain::ErrorEntry;
use super::super::state::{Data, Tone, Topic};

/// Picking who gets the SKU: characters type into the find field.
pub const SECTION: Section = Section {
    name: "licence_assign",
    title: "Licence: who gets it (other keys type to find)",
};
/// The SKU's service plans, as a checklist.
pub const PLANS: Section = Section {
    name: "licence_plans",
    title: "Licence: its service plans",
};

/// The rows of a list shown at once.
const ROWS: usize = 8;

/// A directory group or user a SKU can be assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub owner: LicenceOwner,
    /// The group's name or the user's email.
    pub name: String,
    /// A group's member count, a user's display name.
    pub detail: String,
    /// Name and detail lower-cased once, for finding as one types.
    key: String,
    /// What it has of this SKU now (from the Licences report), if anything.
    pub current: Option<LicencePick>,
}

impl Target {
    fn new(owner: LicenceOwner, name: &str, detail: String, current: Option<LicencePick>) -> Self {
        // A newline between: a query (typed or pasted: one line) cannot match across the two.
        let key = format!("{}\n{}", name.to_lowercase(), detail.to_lowercase());
        Target {
            owner,
            name: name.to_string(),
            detail,
            key,
            current,
        }
    }
    /// As the CLI and the messages name it: `group "Sales"`, or the email.
    pub fn label(&self) -> String {
        match self.owner {
            LicenceOwner::Group(_) => format!("group \"{}\"", self.name),
            LicenceOwner::User(_) => self.name.clone(),
        }
    }
    fn kind(&self) -> &'static str {
        match self.owner {
            LicenceOwner::Group(_) => "group",
            LicenceOwner::User(_) => "user",
        }
    }
}

/// Which part of the dialog has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    /// Who gets the SKU.
    #[default]
    Who,
    /// The SKU's service plans, for the target picked.
    Plans,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignLicence {
    /// The SKU's part number (`SPE_E3`).
    pub sku: String,
    /// Its service plans (`servicePlanName`).
    pub plans: Vec<String>,
    /// Directory groups, then directory users.
    pub targets: Vec<Target>,
    /// The find text (lower case matching).
    pub find: String,
    /// Indexes into `targets` of those the find text matches.
    pub shown: Vec<usize>,
    /// Index into `shown`.
    pub selected: usize,
    pub step: Step,
    /// Index into `targets` of the one picked (the Plans step).
    pub target: Option<usize>,
    /// The plans turned off (upper case names).
    pub off: BTreeSet<String>,
    /// Index into `plans`.
    pub plan: usize,
}

impl AssignLicence {
    /// The dialog for `sku` (with its service plans) over the directory's groups and users;
    /// what each has of it now comes from the Licences report.
    pub fn new(data: &Data, sku: String, plans: Vec<String>) -> AssignLicence {
        // Who has this SKU now, by (owner, lower-case name): one pass, however many users.
        let has: std::collections::HashMap<(&str, String), LicencePick> = data
            .licences
            .report
            .as_deref()
            .map(|r| r.assignments.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| {
                let pick = a
                    .licences
                    .iter()
                    .filter_map(|l| LicencePick::parse(l).ok())
                    .find(|p| p.sku.eq_ignore_ascii_case(&sku))?;
                Some(((a.owner, a.name.to_lowercase()), pick))
            })
            .collect();
        let current =
            |owner: &'static str, name: &str| has.get(&(owner, name.to_lowercase())).cloned();
        let mut targets: Vec<Target> = data
            .directory
            .groups
            .iter()
            .map(|g| {
                Target::new(
                    LicenceOwner::Group(g.id),
                    &g.name,
                    crate::format::count(g.members.len(), "member", None),
                    current("group", &g.name),
                )
            })
            .collect();
        targets.extend(data.directory.users.iter().map(|u| {
            Target::new(
                LicenceOwner::User(u.id),
                &u.email,
                u.display_name.clone(),
                current("user", &u.email),
            )
        }));
        let shown = (0..targets.len()).collect();
        AssignLicence {
            sku,
            plans,
            targets,
            shown,
            ..AssignLicence::default()
        }
    }

    fn refind(&mut self) {
        // The tabs' matcher over keys lower-cased when the dialog opened: nothing is
        // allocated per target as one types.
        let q = crate::app::list::Needle::new(&self.find.trim().to_lowercase());
        let keep = self.shown.get(self.selected).copied();
        self.shown = self
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| q.is_empty() || q.is_in(&t.key))
            .map(|(i, _)| i)
            .collect();
        self.selected = keep
            .and_then(|k| self.shown.iter().position(|&i| i == k))
            .unwrap_or(0);
    }

    /// The target picked, or the one selected while picking.
    pub fn chosen(&self) -> Option<&Target> {
        match self.step {
            Step::Plans => self.target.and_then(|i| self.targets.get(i)),
            Step::Who => self
                .shown
                .get(self.selected)
                .and_then(|&i| self.targets.get(i)),
        }
    }

    /// What Enter records: the SKU with the plans turned off.
    pub fn pick(&self) -> LicencePick {
        LicencePick {
            sku: self.sku.clone(),
            disabled_plans: self.off.iter().cloned().collect(),
        }
    }

    /// The Plans step for the selected target, its plans as it has them now.
    fn choose(&mut self) -> Outcome {
        let Some(&i) = self.shown.get(self.selected) else {
            return Outcome::Ignored;
        };
        self.target = Some(i);
        self.step = Step::Plans;
        self.plan = 0;
        self.off = self.targets[i]
            .current
            .as_ref()
            .map(|p| p.disabled_plans.iter().cloned().collect())
            .unwrap_or_default();
        Outcome::Done
    }

    fn record(&self, change: LicenceChange, fx: &mut Vec<Effect>) -> Outcome {
        let Some(t) = self.chosen() else {
            return Outcome::Ignored;
        };
        fx.push(Effect::ChangeLicence {
            owner: t.owner,
            name: t.label(),
            change,
        });
        Outcome::Close
    }
}

/// The change was recorded (what, in words), or not.
pub fn changed(data: &mut Data, result: Result<String, Failure>, fx: &mut Vec<Effect>) {
    match result {
        Ok(what) => {
            // `assigned to group "Sales": SPE_E3` as a sentence.
            let mut c = what.chars();
            let what: String = c
                .next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default();
            let p = data.tab_key(super::super::tabs::licences::SECTION.name, Command::Preview);
            data.tell(
                Topic::Wish,
                Tone::Good,
                format!("{what}. {p} previews what it changes; nothing is sent yet."),
            );
            fx.push(Effect::LoadDirectory);
            data.licences.loading = false;
            super::super::tabs::licences::load(data, fx);
        }
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Wish,
                Tone::Bad,
                format!("The licence was not recorded ({}).", data.see_errors()),
            );
        }
    }
}

impl Component for AssignLicence {
    fn sections(&self, _: &Data) -> Vec<Section> {
        match self.step {
            Step::Who => vec![SECTION],
            Step::Plans => vec![PLANS, Section::DIALOG],
        }
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        let mut v = vec![Command::Back, Command::Down, Command::Up];
        match self.step {
            Step::Who => {
                if !self.shown.is_empty() {
                    v.push(Command::Submit);
                }
            }
            Step::Plans => {
                v.push(Command::Submit);
                if !self.plans.is_empty() {
                    v.push(Command::TogglePlan);
                }
                if self.chosen().is_some_and(|t| t.current.is_some()) {
                    v.push(Command::UnassignLicence);
                }
            }
        }
        v
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        match self.step {
            Step::Who => TextMode::All,
            Step::Plans => TextMode::None,
        }
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        if !self.commands(data).contains(&c) {
            return Outcome::Ignored;
        }
        match (self.step, c) {
            (Step::Who, Command::Down) => {
                self.selected = (self.selected + 1).min(self.shown.len().saturating_sub(1));
            }
            (Step::Who, Command::Up) => self.selected = self.selected.saturating_sub(1),
            (Step::Who, Command::Submit) => return self.choose(),
            (Step::Who, Command::Back) => return Outcome::Close,
            (Step::Plans, Command::Down) => {
                self.plan = (self.plan + 1).min(self.plans.len().saturating_sub(1));
            }
            (Step::Plans, Command::Up) => self.plan = self.plan.saturating_sub(1),
            (Step::Plans, Command::TogglePlan) => {
                let Some(p) = self.plans.get(self.plan).map(|p| p.to_ascii_uppercase()) else {
                    return Outcome::Ignored;
                };
                if !self.off.remove(&p) {
                    self.off.insert(p);
                }
            }
            (Step::Plans, Command::Submit) => {
                return self.record(LicenceChange::Assign(self.pick()), fx)
            }
            (Step::Plans, Command::UnassignLicence) => {
                return self.record(LicenceChange::Unassign(self.sku.clone()), fx)
            }
            (Step::Plans, Command::Back) => {
                self.step = Step::Who;
                self.target = None;
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }
    fn input(&mut self, _: &mut Data, req: InputRequest) -> bool {
        if self.step != Step::Who {
            return false;
        }
        match req {
            InputRequest::InsertChar(c) if !c.is_control() => self.find.push(c),
            InputRequest::DeletePrevChar => {
                self.find.pop();
            }
            InputRequest::DeleteLine => self.find.clear(),
            _ => return true,
        }
        self.refind();
        true
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        // Room for the box's frame, its title lines, the key line and the screen's bars.
        let width = (area.width as usize).saturating_sub(10).clamp(30, 76);
        let rows = (area.height as usize).saturating_sub(14).clamp(3, ROWS);
        let lines = match self.step {
            Step::Who => self.who_lines(width, rows, theme),
            Step::Plans => self.plan_lines(width, rows, theme),
        };
        super::small(
            frame,
            area,
            data,
            theme,
            &format!("Assign {}", self.sku),
            lines,
            &super::hints(data, self),
        );
    }
}

/// The first row of a window of `rows` that keeps `selected` in view.
fn window(selected: usize, rows: usize) -> usize {
    selected.saturating_sub(rows.saturating_sub(1))
}

impl AssignLicence {
    fn who_lines(&self, width: usize, rows: usize, theme: &Theme) -> Vec<Line<'static>> {
        let mut lines = vec![
            Line::from(vec![
                Span::raw("Who gets "),
                Span::styled(self.sku.clone(), theme.bold()),
                Span::raw("? A directory group (its bound members) or user."),
            ]),
            Line::from(vec![
                Span::styled("Find: ", theme.dim()),
                Span::styled(format!("{}_", clean(&self.find)), theme.accent()),
            ]),
        ];
        let name_w = width.saturating_sub(8).min(34);
        let first = window(self.selected, rows);
        for (row, &i) in self.shown.iter().enumerate().skip(first).take(rows) {
            let t = &self.targets[i];
            let style = if row == self.selected {
                theme.selected()
            } else {
                Style::new()
            };
            let mut spans = vec![
                Span::styled(format!("{:<6}", t.kind()), style.patch(theme.dim())),
                Span::styled(fit(&t.name, name_w), style),
            ];
            let rest = width.saturating_sub(6 + name_w + 2);
            let note = match &t.current {
                Some(p) => format!("  has {}", p.label()),
                None => format!("  {}", t.detail),
            };
            spans.push(Span::styled(
                fit(&note, rest),
                style.patch(if t.current.is_some() {
                    theme.ok()
                } else {
                    theme.dim()
                }),
            ));
            lines.push(Line::from(spans));
        }
        lines.push(Line::from(Span::styled(
            if self.shown.is_empty() {
                "No directory group or user matches.".to_string()
            } else {
                format!("{} of {}", self.shown.len(), self.targets.len())
            },
            theme.dim(),
        )));
        lines
    }

    fn plan_lines(&self, width: usize, rows: usize, theme: &Theme) -> Vec<Line<'static>> {
        let who = self.chosen().map(Target::label).unwrap_or_default();
        let mut lines = vec![Line::from(vec![
            Span::styled(self.sku.clone(), theme.bold()),
            Span::raw(" for "),
            Span::styled(cut(&who, width.saturating_sub(12)), theme.bold()),
        ])];
        if self.plans.is_empty() {
            lines.push(Line::from(Span::styled(
                "The tenant lists no service plan for this SKU: it is given whole.",
                theme.dim(),
            )));
        } else {
            lines.push(Line::from(Span::styled(
                "Its service plans (a plan turned off is not given):",
                theme.dim(),
            )));
        }
        let first = window(self.plan, rows);
        for (i, p) in self.plans.iter().enumerate().skip(first).take(rows) {
            let off = self.off.contains(&p.to_ascii_uppercase());
            let style = if i == self.plan {
                theme.selected()
            } else {
                Style::new()
            };
            lines.push(Line::from(vec![
                Span::styled(if off { "[ ] " } else { "[x] " }, style),
                Span::styled(
                    fit(p, width.saturating_sub(10).min(30)),
                    style.patch(if off { theme.dim() } else { Style::new() }),
                ),
                Span::styled(if off { " off" } else { "" }, style.patch(theme.warn())),
            ]));
        }
        lines.push(Line::from(vec![
            Span::styled("Saved as ", theme.dim()),
            Span::styled(self.pick().label(), theme.ok()),
            Span::styled("; nothing is sent until an apply.", theme.dim()),
        ]));
        if let Some(p) = self.chosen().and_then(|t| t.current.as_ref()) {
            lines.push(Line::from(Span::styled(
                format!("It has {} now.", p.label()),
                theme.dim(),
            )));
        }
        lines
    }
}

impl Dialog for AssignLicence {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog() -> AssignLicence {
        let targets = vec![
            Target::new(LicenceOwner::Group(4), "Sales", "3 members".into(), None),
            Target::new(
                LicenceOwner::User(9),
                "ann@contoso.com",
                "Ann Lee".into(),
                Some(LicencePick::parse("SPE_E3,-TEAMS1").unwrap()),
            ),
            Target::new(
                LicenceOwner::User(10),
                "ben@contoso.com",
                "Ben Ode".into(),
                None,
            ),
        ];
        AssignLicence {
            sku: "SPE_E3".into(),
            plans: vec![
                "EXCHANGE_S_ENTERPRISE".into(),
                "TEAMS1".into(),
                "INTUNE_A".into(),
            ],
            shown: (0..targets.len()).collect(),
            targets,
            ..AssignLicence::default()
        }
    }

    fn typed(a: &mut AssignLicence, d: &mut Data, s: &str) {
        for c in s.chars() {
            assert!(a.input(d, InputRequest::InsertChar(c)));
        }
    }

    #[test]
    fn typing_finds_a_user_and_plans_toggled_off_become_disabled_plans() {
        let mut d = Data::default();
        let mut a = dialog();
        let mut fx = Vec::new();
        assert_eq!(a.text_mode(&d), TextMode::All, "characters type to find");
        typed(&mut a, &mut d, "BEN");
        assert_eq!(a.shown, vec![2], "by email or display name, any case");
        assert_eq!(a.command(&mut d, Command::Submit, &mut fx), Outcome::Done);
        assert_eq!(a.step, Step::Plans);
        assert_eq!(a.text_mode(&d), TextMode::None);
        assert!(
            !a.commands(&d).contains(&Command::UnassignLicence),
            "Ben has no SPE_E3 to remove"
        );
        // TEAMS1 off, then INTUNE_A off and on again.
        a.command(&mut d, Command::Down, &mut fx);
        a.command(&mut d, Command::TogglePlan, &mut fx);
        a.command(&mut d, Command::Down, &mut fx);
        a.command(&mut d, Command::Down, &mut fx);
        assert_eq!(a.plan, 2, "bounded");
        a.command(&mut d, Command::TogglePlan, &mut fx);
        a.command(&mut d, Command::TogglePlan, &mut fx);
        assert!(fx.is_empty(), "nothing recorded before Enter: {fx:?}");
        assert_eq!(a.command(&mut d, Command::Submit, &mut fx), Outcome::Close);
        assert_eq!(
            fx,
            vec![Effect::ChangeLicence {
                owner: LicenceOwner::User(10),
                name: "ben@contoso.com".into(),
                change: LicenceChange::Assign(LicencePick::parse("SPE_E3,-TEAMS1").unwrap()),
            }]
        );
    }

    #[test]
    fn a_target_starts_with_its_plans_and_x_unassigns() {
        let mut d = Data::default();
        let mut a = dialog();
        let mut fx = Vec::new();
        a.command(&mut d, Command::Down, &mut fx);
        a.command(&mut d, Command::Submit, &mut fx);
        assert_eq!(
            a.pick().label(),
            "SPE_E3,-TEAMS1",
            "Ann's plans as she has them"
        );
        assert!(a.commands(&d).contains(&Command::UnassignLicence));
        // Esc goes back to who, keeping the find; Enter again picks the same.
        assert_eq!(a.command(&mut d, Command::Back, &mut fx), Outcome::Done);
        assert_eq!(a.step, Step::Who);
        a.command(&mut d, Command::Submit, &mut fx);
        assert_eq!(
            a.command(&mut d, Command::UnassignLicence, &mut fx),
            Outcome::Close
        );
        assert_eq!(
            fx,
            vec![Effect::ChangeLicence {
                owner: LicenceOwner::User(9),
                name: "ann@contoso.com".into(),
                change: LicenceChange::Unassign("SPE_E3".into()),
            }]
        );
    }

    #[test]
    fn a_group_is_named_as_the_cli_names_it_and_no_match_enters_nothing() {
        let mut d = Data::default();
        let mut a = dialog();
        let mut fx = Vec::new();
        assert_eq!(a.targets[0].label(), "group \"Sales\"");
        typed(&mut a, &mut d, "zzz");
        assert!(a.shown.is_empty());
        assert_eq!(
            a.command(&mut d, Command::Submit, &mut fx),
            Outcome::Ignored
        );
        assert!(a.input(&mut d, InputRequest::DeleteLine));
        assert_eq!(a.shown.len(), 3);
        // Keys of the plan step do nothing while picking.
        assert_eq!(
            a.command(&mut d, Command::TogglePlan, &mut fx),
            Outcome::Ignored
        );
        assert_eq!(a.command(&mut d, Command::Back, &mut fx), Outcome::Close);
        assert!(fx.is_empty());
    }
}
