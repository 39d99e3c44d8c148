//! A one-key fix of the Errors tab (`f`), previewed: what will change in plain words, the
//! value it writes (typed in place for an email or a mailNickname, checked as typed), `y` or
//! Enter applies, Tab offers the error's next fix. Owns the result of its effect (`FixDone`)
//! and follows its error when the list changes under it.
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use tui_input::{Input, InputRequest};

use crate::diagnose::FixAction;
use crate::directory::DirectoryUser;
use crate::failure::Failure;
use crate::keymap::Command;
use crate::ui::text::{fit, wrap};
use crate::ui::widgets::{centered, dialog_width, frame_block, hint_spans};
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::{Effect, Fix};
use super::super::explain::{ErrorEntry, ErrorSource};
use super::super::state::{Data, Phase, SignIn, Tone, Topic};
use super::preview::start_plan;
use super::Modal;

pub const SECTION: Section = Section {
    name: "fix",
    title: "Fix preview",
};
pub const TYPING: Section = Section {
    name: "fix_text",
    title: "Fix preview: typing the value (other keys type)",
};

/// The preview of a one-key fix.
#[derive(Clone, Default)]
pub struct FixDialog {
    pub action: Option<FixAction>,
    /// Index into `Data::errors` of the error it fixes (kept right when errors change under
    /// the dialog, by `target`).
    pub error: usize,
    /// The error it fixes, to find it again when the list changes (a re-check landed).
    pub target: Option<Box<ErrorEntry>>,
    /// What will change, in plain words, one line each.
    pub change: Vec<String>,
    /// The fix changes something that cannot be undone (purge).
    pub irreversible: bool,
    /// The value being typed (an email, a mailNickname), and what it is called.
    pub input: Option<Input>,
    pub label: &'static str,
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

/// Open the preview of a fix of error `error`: `which` = that fix, else its main one.
pub fn open(data: &mut Data, error: usize, which: Option<FixAction>) -> Outcome {
    let Some(e) = data.errors.get(error) else {
        return Outcome::Ignored;
    };
    let fixes = e.fixes();
    let Some(action) = which.or_else(|| fixes.first().copied()) else {
        let kind = e.kind().to_string();
        data.say(
            Topic::Fix,
            format!("No one-key fix for {kind}: follow the steps shown."),
        );
        return Outcome::Done;
    };
    Outcome::Open(Modal::Fix(Box::new(preview(data, error, action))))
}

/// The directory user an error is about: its id, else the one holding the address of the
/// tenant user it names.
fn target_user<'a>(data: &'a Data, e: &ErrorEntry) -> Option<&'a DirectoryUser> {
    if let Some(u) = e.directory_id.and_then(|id| data.directory.user(id)) {
        return Some(u);
    }
    let t = e.tenant_user_id.as_ref()?;
    let u = (0..data.rows.len() as u32)
        .map(|r| data.rows.user(r))
        .find(|u| &u.id == t)?;
    if let Some(id) = data.index.holder_of(u) {
        return data.directory.user(id);
    }
    let addr = [u.mail.as_deref(), Some(u.user_principal_name.as_str())];
    data.directory.users.iter().find(|d| {
        addr.iter()
            .flatten()
            .any(|a| a.eq_ignore_ascii_case(&d.email))
    })
}

/// What a fix will change, for its preview.
pub fn preview(data: &Data, error: usize, action: FixAction) -> FixDialog {
    let e = &data.errors[error];
    let user = target_user(data, e);
    let email = user
        .map(|u| u.email.clone())
        .unwrap_or_else(|| e.diag.subject.name().to_string());
    let mut d = FixDialog {
        action: Some(action),
        error,
        target: Some(Box::new(e.clone())),
        label: "Value",
        ..FixDialog::default()
    };
    let holder = e
        .issue
        .as_ref()
        .and_then(|i| i.holder.clone())
        .unwrap_or_default();
    let deleted_addr = holder
        .strip_prefix("soft-deleted user ")
        .map(str::to_string)
        .or_else(|| e.op.as_ref().map(|o| o.upn.clone()));
    match action {
        FixAction::EditEmail => {
            d.label = "Email";
            d.input = Some(Input::new(email.clone()));
            match user {
                Some(u) => {
                    d.change = vec![
                        format!("Directory user: {} <{}>", u.display_name, u.email),
                        "Type the new email; Enter saves it to the directory, then the plan is \
                         re-checked."
                            .into(),
                    ];
                    d.problem = check_email(&email, &email);
                }
                None => {
                    d.change = vec![
                        "No directory user has this address any more: there is no email to edit."
                            .into(),
                    ];
                    d.problem = Some("No directory user to edit.".into());
                }
            }
        }
        FixAction::UseDefaultDomain => {
            // Preflight's suggestion was made with the domain settings the plan read; the
            // settings last shown are the fallback.
            let default = e
                .issue
                .as_ref()
                .and_then(|i| i.suggestion.as_deref())
                .and_then(|x| x.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
                .or_else(|| data.domain_settings.default.clone());
            let local = email.split_once('@').map_or(email.as_str(), |(l, _)| l);
            match default {
                Some(dom) => {
                    let upn = format!("{local}@{dom}");
                    d.change = vec![
                        format!("User: {email}"),
                        format!("Account UPN will be: {upn}"),
                        format!("Email stays: {email}"),
                        "Stored as a UPN override in the directory; the plan is re-checked.".into(),
                    ];
                    d.value = Some(upn);
                }
                None => {
                    let key =
                        data.tab_key(super::super::tabs::errors::SECTION.name, Command::Domains);
                    d.change = vec![
                        "No default domain is set for this integration.".into(),
                        format!(
                            "Press {key} on the Errors tab to pick one in the domain settings."
                        ),
                    ];
                }
            }
        }
        FixAction::SanitizeNickname => {
            let v = e
                .issue
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let nick = e
                .issue
                .as_ref()
                .and_then(|i| i.suggestion.clone())
                .unwrap_or_else(|| crate::sync::preflight::sanitize_mail_nickname(&v));
            d.label = "mailNickname";
            d.change = vec![
                format!("Group: {}", e.diag.subject.name()),
                format!("mailNickname: {v} -> {nick}"),
                "Enter accepts it, or edit it first; then the plan is re-checked.".into(),
            ];
            d.problem = nickname_problem(&nick);
            d.input = Some(Input::new(nick.clone()));
            d.value = Some(nick);
        }
        FixAction::TrimGroupName => {
            let v = e
                .issue
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let name = crate::sync::preflight::trim_group_name(&v);
            if name == v {
                d.change = vec![format!(
                    "Group name \"{v}\" has no stray space: there is nothing to trim."
                )];
            } else {
                d.change = vec![format!("Group name: \"{v}\" -> \"{name}\"")];
                d.value = Some(name);
            }
        }
        FixAction::RestoreDeleted => {
            let a = deleted_addr.unwrap_or_default();
            d.change = vec![
                format!("Restore the soft-deleted account {a} (with its mailbox and licences)."),
                "It comes back blocked as it was; the directory user can then take it over.".into(),
            ];
            d.value = Some(a);
        }
        FixAction::PurgeDeleted => {
            let a = deleted_addr.unwrap_or_default();
            d.change = vec![
                format!("Permanently delete the soft-deleted account {a}."),
                "Its mailbox, files and licences are gone for good: this cannot be undone.".into(),
                "The address is free at once for the new account.".into(),
            ];
            d.irreversible = true;
            d.value = Some(a);
        }
        FixAction::LinkConflict => match user {
            Some(u) => {
                d.change = vec![
                    format!(
                        "Link the tenant user {} to the directory user {} <{}>.",
                        e.subject, u.display_name, u.email
                    ),
                    "No account is created; the directory user is bound to the existing one."
                        .into(),
                ];
                d.value = Some(u.id.to_string());
            }
            None => {
                d.change = vec![format!(
                    "No directory user holds the address of {} now: nothing to link.",
                    e.subject
                )];
            }
        },
        FixAction::Retry => {
            let n = retry_targets(data, e);
            d.change = vec![match e.source {
                ErrorSource::Import => format!("Import {} again.", e.subject),
                _ if n > 0 => format!(
                    "Preview the plan again: the {} failed of this kind are in it if the \
                     directory still wants them; y sends them.",
                    crate::format::count(n, "change", None)
                ),
                _ => "List the tenant users again.".into(),
            }];
        }
        FixAction::SignInAgain => {
            d.change = vec!["Back to the sign-in screen: a new device code is asked for.".into()];
        }
        FixAction::SetUsageLocation => {
            d.label = "Usage location";
            let have = user
                .and_then(|u| u.attributes.get("usageLocation"))
                .map(|v| v.trim().to_string())
                .unwrap_or_default();
            d.input = Some(Input::new(have.clone()));
            match user {
                Some(u) => {
                    d.change = vec![
                        format!("Directory user: {} <{}>", u.display_name, u.email),
                        format!(
                            "Usage location now: {}",
                            if have.is_empty() { "none" } else { &have }
                        ),
                        "Type the country code where the user works (two capital letters such \
                         as US, GB, DE); Enter saves it to the directory, the next sync sends \
                         it to the account, then the licence."
                            .into(),
                    ];
                    d.problem = usage_location_problem(&have, &have);
                }
                None => {
                    d.change = vec![
                        "No directory user is linked to this account: set its usage location \
                         in the Entra admin center."
                            .into(),
                    ];
                    d.problem = Some("No directory user to edit.".into());
                }
            }
        }
    }
    d
}

/// Why a typed usage location cannot be saved in place of `old` (None = fine).
pub fn usage_location_problem(code: &str, old: &str) -> Option<String> {
    let t = code.trim();
    if !crate::sync::attributes::is_country_code(t) {
        return Some("Two capital letters: a country code such as US, GB or DE.".into());
    }
    if t == old.trim() {
        return Some("Unchanged: type the country code the licence needs.".into());
    }
    None
}

/// How many failed ops of `e`'s kind the plan would make again.
fn retry_targets(data: &Data, e: &ErrorEntry) -> usize {
    data.errors
        .iter()
        .filter(|x| x.source == ErrorSource::Graph && x.kind() == e.kind() && x.op.is_some())
        .count()
}

/// Why a typed group nickname would be refused by Graph, in plain words (None = fine).
pub fn nickname_problem(nick: &str) -> Option<String> {
    let nick = nick.trim();
    if nick.is_empty() {
        return Some("A mailNickname cannot be empty.".into());
    }
    crate::sync::preflight::check_mail_nickname(nick)
        .into_iter()
        .next()
        .map(|p| p.message)
}

/// Why `email` cannot be saved in place of `old` (None = fine).
pub fn check_email(email: &str, old: &str) -> Option<String> {
    let t = email.trim();
    let Some((l, d)) = t.split_once('@') else {
        return Some("An email needs an @.".into());
    };
    if l.is_empty() || !d.contains('.') || d.contains('@') {
        return Some("Not an email address (name@domain.tld).".into());
    }
    if t.eq_ignore_ascii_case(old) {
        return Some("Unchanged: type the new address.".into());
    }
    if crate::ui::text::is_hostile(t) {
        return Some("An email cannot hold control or invisible characters.".into());
    }
    crate::sync::preflight::check_upn(t).map(|p| p.message)
}

/// The retry fix: import again, plan again (the failed ops of this kind are in it if still
/// wanted), or list the tenant again.
fn retry(data: &mut Data, e: &ErrorEntry, fx: &mut Vec<Effect>) -> Outcome {
    if e.source == ErrorSource::Import {
        let user = e.tenant_user_id.as_ref().and_then(|t| {
            (0..data.rows.len() as u32)
                .map(|r| data.rows.user(r))
                .find(|u| &u.id == t)
                .cloned()
        });
        return match user {
            Some(u) => {
                data.importing = Some(1);
                data.say(
                    Topic::Import,
                    format!("Importing {} again…", u.user_principal_name),
                );
                fx.push(Effect::Import { users: vec![u] });
                Outcome::Close
            }
            None => {
                let r = data.tab_key(crate::keymap::section::LIST, Command::Refresh);
                data.say(
                    Topic::Fix,
                    format!("That tenant user is not listed: press {r} to list the users again."),
                );
                Outcome::Close
            }
        };
    }
    // Failed ops are planned again from the current wish: the preview shows them, y sends
    // them (through the one pipeline, guard and lock included).
    if retry_targets(data, e) == 0 || data.applying {
        super::super::update::start_load(data, fx);
        return Outcome::Close;
    }
    let kind = e.kind().to_string();
    data.retain_errors(|x| !(x.source == ErrorSource::Graph && x.kind() == kind && x.op.is_some()));
    match start_plan(data, fx) {
        Outcome::Open(m) => Outcome::Open(m),
        _ => Outcome::Close,
    }
}

/// A fix was carried out (what changed, in words), or why not. The error goes, and the plan is
/// re-checked once the directory is read again.
pub fn done(
    data: &mut Data,
    key: Option<String>,
    result: Result<String, Failure>,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(what) => {
            if let Some(k) = &key {
                data.retain_errors(|e| e.key.as_ref() != Some(k));
            }
            data.tell(Topic::Fix, Tone::Good, format!("{what} Re-checking…"));
            data.recheck_after_load = true;
            fx.push(Effect::LoadDirectory);
        }
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Fix,
                Tone::Bad,
                format!(
                    "The fix failed ({}); nothing else changed.",
                    data.see_errors()
                ),
            );
        }
    }
}

impl FixDialog {
    /// Whether applying it would do something (a value to write, or an action of its own).
    fn ready(&self) -> bool {
        match &self.input {
            Some(_) => self.problem.is_none(),
            None => {
                self.value.is_some()
                    || matches!(self.action, Some(FixAction::Retry | FixAction::SignInAgain))
            }
        }
    }

    fn many(&self, data: &Data) -> bool {
        data.errors
            .get(self.error)
            .is_some_and(|e| e.fixes().len() > 1)
    }

    /// Applies it: the effect to run, or what to say.
    fn apply(&mut self, data: &mut Data, fx: &mut Vec<Effect>) -> Outcome {
        let Some(e) = data.errors.get(self.error).cloned() else {
            return Outcome::Close;
        };
        let key = e.key.clone();
        let fix = match self.action {
            Some(FixAction::EditEmail) => {
                let new = self.input.as_ref().map(|i| i.value().trim().to_string());
                let Some(u) = target_user(data, &e) else {
                    self.problem = Some("No directory user to edit.".into());
                    return Outcome::Done;
                };
                let (id, old) = (u.id, u.email.clone());
                let Some(new) = new else {
                    return Outcome::Ignored;
                };
                if let Some(p) = check_email(&new, &old) {
                    self.problem = Some(p);
                    return Outcome::Done;
                }
                Fix::SetEmail {
                    directory_id: id,
                    email: new,
                }
            }
            Some(FixAction::UseDefaultDomain) => {
                let (Some(upn), Some(id)) =
                    (self.value.clone(), target_user(data, &e).map(|u| u.id))
                else {
                    return Outcome::Ignored;
                };
                Fix::UseDefaultDomain {
                    directory_id: id,
                    upn,
                }
            }
            Some(FixAction::SanitizeNickname) => {
                let typed = self.input.as_ref().map(|i| i.value().trim().to_string());
                let (Some(n), Some(id)) = (typed.or(self.value.clone()), e.directory_id) else {
                    return Outcome::Ignored;
                };
                if let Some(p) = nickname_problem(&n) {
                    self.problem = Some(p);
                    return Outcome::Done;
                }
                Fix::SetGroupNickname {
                    group_id: id,
                    nickname: n,
                }
            }
            Some(FixAction::TrimGroupName) => {
                let (Some(n), Some(id)) = (self.value.clone(), e.directory_id) else {
                    return Outcome::Ignored;
                };
                Fix::SetGroupName {
                    group_id: id,
                    name: n,
                }
            }
            Some(FixAction::RestoreDeleted) => {
                let Some(a) = self.value.clone().filter(|a| !a.is_empty()) else {
                    return Outcome::Ignored;
                };
                Fix::RestoreDeleted { address: a }
            }
            Some(FixAction::PurgeDeleted) => {
                let Some(a) = self.value.clone().filter(|a| !a.is_empty()) else {
                    return Outcome::Ignored;
                };
                Fix::PurgeDeleted { address: a }
            }
            Some(FixAction::LinkConflict) => {
                let (Some(id), Some(t)) = (
                    self.value.as_ref().and_then(|v| v.parse::<i64>().ok()),
                    e.tenant_user_id.clone(),
                ) else {
                    data.say(Topic::Fix, "The directory user to link was not found.");
                    return Outcome::Done;
                };
                Fix::Link {
                    directory_id: id,
                    tenant_user_id: t,
                }
            }
            Some(FixAction::SetUsageLocation) => {
                let Some(u) = target_user(data, &e) else {
                    self.problem = Some("No directory user to edit.".into());
                    return Outcome::Done;
                };
                let old = u
                    .attributes
                    .get("usageLocation")
                    .cloned()
                    .unwrap_or_default();
                let id = u.id;
                let Some(code) = self.input.as_ref().map(|i| i.value().trim().to_string()) else {
                    return Outcome::Ignored;
                };
                if let Some(p) = usage_location_problem(&code, &old) {
                    self.problem = Some(p);
                    return Outcome::Done;
                }
                Fix::SetUsageLocation {
                    directory_id: id,
                    code,
                }
            }
            Some(FixAction::Retry) => return retry(data, &e, fx),
            Some(FixAction::SignInAgain) => {
                data.session = None;
                data.signin_gen += 1;
                data.phase = Phase::SignIn(SignIn::Requesting);
                fx.push(Effect::StartDeviceCode {
                    gen: data.signin_gen,
                });
                return Outcome::Close;
            }
            None => return Outcome::Ignored,
        };
        data.say(Topic::Fix, "Applying the fix…");
        fx.push(Effect::Fix { fix, key });
        Outcome::Close
    }
}

impl Component for FixDialog {
    fn sections(&self, _: &Data) -> Vec<Section> {
        if self.input.is_some() {
            vec![TYPING]
        } else {
            vec![SECTION, Section::DIALOG]
        }
    }
    fn commands(&self, data: &Data) -> Vec<Command> {
        let mut v = vec![Command::Back];
        if self.many(data) {
            v.push(Command::NextFix);
        }
        if self.ready() {
            v.push(if self.input.is_some() {
                Command::Submit
            } else {
                Command::Confirm
            });
        }
        v
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        if self.input.is_some() {
            TextMode::All
        } else {
            TextMode::None
        }
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        match c {
            Command::Back => {
                data.say(Topic::Fix, "Nothing changed.");
                Outcome::Close
            }
            Command::NextFix => {
                let fixes = data
                    .errors
                    .get(self.error)
                    .map(|e| e.fixes())
                    .unwrap_or_default();
                if fixes.len() < 2 {
                    return Outcome::Ignored;
                }
                let i = fixes
                    .iter()
                    .position(|f| Some(*f) == self.action)
                    .unwrap_or(0);
                let next = fixes[(i + 1) % fixes.len()];
                *self = preview(data, self.error, next);
                Outcome::Done
            }
            Command::Confirm | Command::Submit => {
                if self.input.is_some() && c == Command::Confirm {
                    return Outcome::Ignored; // `y` is a character of the value
                }
                if !self.ready() && self.input.is_none() {
                    data.say(
                        Topic::Fix,
                        "This fix has nothing to apply: see what it says.",
                    );
                    return Outcome::Done;
                }
                self.apply(data, fx)
            }
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, data: &mut Data, req: InputRequest) -> bool {
        let Some(input) = self.input.as_mut() else {
            return false;
        };
        input.handle(req);
        let value = input.value().to_string();
        if self.action == Some(FixAction::SanitizeNickname) {
            self.problem = nickname_problem(&value);
            return true;
        }
        let user = data
            .errors
            .get(self.error)
            .and_then(|e| target_user(data, e));
        if self.action == Some(FixAction::SetUsageLocation) {
            self.problem = match user {
                Some(u) => usage_location_problem(
                    &value,
                    u.attributes.get("usageLocation").map_or("", |v| v.as_str()),
                ),
                None => Some("No directory user to edit.".into()),
            };
            return true;
        }
        let old = user.map(|u| u.email.clone());
        self.problem = match old {
            Some(old) => check_email(&value, &old),
            None => Some("No directory user to edit.".into()),
        };
        true
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let id = self.action.map(|a| a.id()).unwrap_or("fix");
        let e = data.errors.get(self.error);
        let w = dialog_width(area, 74);
        let inner_w = w.saturating_sub(4) as usize;
        let mut lines: Vec<Line> = Vec::new();
        if let Some(e) = e {
            lines.push(Line::from(vec![
                Span::styled(" Error  ", theme.dim()),
                Span::styled(fit(&e.diag.title, inner_w.saturating_sub(8)), theme.error()),
            ]));
        }
        lines.push(Line::from(""));
        for c in &self.change {
            for l in wrap(c, inner_w.saturating_sub(1)) {
                lines.push(Line::from(format!(" {l}")));
            }
        }
        let mut cursor = None;
        if let Some(input) = &self.input {
            lines.push(Line::from(""));
            let label = format!(" {}: ", self.label);
            let label_w = label.chars().count();
            let field_w = inner_w.saturating_sub(label_w + 1);
            let v = crate::ui::text::clean(input.value()).into_owned();
            let shown: String = v
                .chars()
                .skip(v.chars().count().saturating_sub(field_w))
                .collect();
            cursor = Some((lines.len(), label_w + input.visual_cursor().min(field_w)));
            lines.push(Line::from(vec![
                Span::styled(label, theme.bold()),
                Span::styled(fit(&shown, field_w), theme.selected()),
            ]));
            lines.push(match &self.problem {
                Some(p) => Line::from(vec![
                    Span::styled(" ✗ ", theme.error()),
                    Span::styled(fit(p, inner_w.saturating_sub(3)), theme.warn()),
                ]),
                None => Line::from(vec![
                    Span::styled(" ✓ ", theme.ok()),
                    Span::styled(
                        if self.action == Some(FixAction::SanitizeNickname) {
                            "a valid mailNickname"
                        } else {
                            "a valid address"
                        },
                        theme.ok(),
                    ),
                ]),
            });
        }
        if self.irreversible {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                " ⚠ This is irreversible: y deletes it for good.",
                theme.error(),
            )));
        }
        let h = (lines.len() as u16 + 4).min(area.height);
        let rect = centered(area, w, h);
        frame.render_widget(Clear, rect);
        let block = frame_block(format!("Fix: {id}"), theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [text, keys] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), text);
        frame.render_widget(
            Paragraph::new(Line::from(hint_spans(&super::hints(data, self), theme))),
            keys,
        );
        if let Some((row, col)) = cursor {
            let (x, y) = (text.x + col as u16, text.y + row as u16);
            if x < text.x + text.width && y < text.y + text.height {
                frame.set_cursor_position(Position::new(x, y));
            }
        }
    }
}

impl Dialog for FixDialog {
    /// The errors changed (a re-check landed): follow the error it fixes, or close if it is
    /// gone.
    fn sync(&mut self, data: &mut Data) -> Outcome {
        let Some(target) = self.target.as_deref() else {
            return Outcome::Ignored;
        };
        if data.errors.get(self.error) == Some(target) {
            return Outcome::Ignored;
        }
        match data.errors.iter().position(|e| e == target) {
            Some(i) => {
                self.error = i;
                Outcome::Done
            }
            None => {
                data.say(
                    Topic::Fix,
                    "That error is gone (re-checked); nothing changed.",
                );
                Outcome::Close
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::explain::ErrorEntry;
    use crate::app::fixtures;

    fn with_error(e: ErrorEntry) -> Data {
        let mut d = fixtures::bindings_state().data;
        d.errors = vec![e];
        d
    }

    #[test]
    fn a_group_name_with_nothing_to_trim_says_so_and_offers_no_apply() {
        let issue = fixtures::issue(0, "group-name-extra-space", "displayName", "Finance", None);
        let d = with_error(ErrorEntry::from_group_issue(&issue, "Finance"));
        let f = preview(&d, 0, FixAction::TrimGroupName);
        assert!(f.change[0].contains("nothing to trim"), "{:?}", f.change);
        assert!(!f.commands(&d).contains(&Command::Confirm));
        let issue = fixtures::issue(
            0,
            "group-name-extra-space",
            "displayName",
            "Engineering ",
            None,
        );
        let d = with_error(ErrorEntry::from_group_issue(&issue, "Engineering "));
        let f = preview(&d, 0, FixAction::TrimGroupName);
        assert_eq!(f.value.as_deref(), Some("Engineering"));
        assert!(f.commands(&d).contains(&Command::Confirm));
    }

    #[test]
    fn the_nickname_is_labelled_mailnickname_and_checked_as_one() {
        let mut issue = fixtures::issue(
            3,
            "mailnickname-forbidden-char",
            "mailNickname",
            "Sales(EU)",
            None,
        );
        issue.suggestion = Some("SalesEU".into());
        let mut d = with_error(ErrorEntry::from_group_issue(&issue, "Sales (EU)"));
        let mut f = preview(&d, 0, FixAction::SanitizeNickname);
        assert_eq!(f.label, "mailNickname");
        assert_eq!(f.problem, None);
        f.input(&mut d, InputRequest::InsertChar('('));
        assert!(f.problem.is_some(), "a ( is refused in a mailNickname");
        assert!(!f.commands(&d).contains(&Command::Submit));
    }

    #[test]
    fn edit_email_saves_or_says_why_not() {
        // An import conflict: the directory user holding the address is found by it.
        let mut s = fixtures::bindings_state();
        let failure = fixtures::email_exists_failure(4);
        s.data.errors = vec![ErrorEntry::from_import(&failure)];
        let d = &mut s.data;
        let mut f = preview(d, 0, FixAction::EditEmail);
        assert_eq!(f.label, "Email");
        assert!(
            f.change[0].contains(&d.directory.users[4].email),
            "{:?}",
            f.change
        );
        for _ in 0..40 {
            f.input(d, InputRequest::DeletePrevChar);
        }
        for c in "henrietta@contoso.com".chars() {
            f.input(d, InputRequest::InsertChar(c));
        }
        assert_eq!(f.problem, None);
        let mut fx = Vec::new();
        assert_eq!(f.command(d, Command::Submit, &mut fx), Outcome::Close);
        assert_eq!(
            fx,
            vec![Effect::Fix {
                fix: Fix::SetEmail {
                    directory_id: 5,
                    email: "henrietta@contoso.com".into()
                },
                key: s.data.errors[0].key.clone(),
            }]
        );
        // Unchanged: Enter says why instead of doing nothing.
        let mut d = s.data.clone();
        let mut f = preview(&d, 0, FixAction::EditEmail);
        let mut fx = Vec::new();
        assert_eq!(f.command(&mut d, Command::Submit, &mut fx), Outcome::Done);
        assert!(fx.is_empty());
        assert!(f.problem.as_deref().unwrap().contains("Unchanged"));
    }

    #[test]
    fn a_usage_location_problem_recorded_on_an_account_is_fixed_by_typing_the_country() {
        let mut s = fixtures::bindings_state();
        let u = s.data.directory.users[4].clone();
        let issue = crate::sync::preflight::Issue {
            directory_id: u.id,
            kind: "licence-state-usage-location".into(),
            field: "licenseAssignmentStates".into(),
            value: "SPE_E3".into(),
            message: "Microsoft 365 reports ProhibitedInUsageLocationViolation".into(),
            suggestion: Some("ProhibitedInUsageLocationViolation".into()),
            severity: crate::sync::preflight::Severity::Error,
            holder: None,
        };
        s.data.errors = vec![ErrorEntry::from_recorded(&issue, &u.email)];
        let d = &mut s.data;
        assert_eq!(d.errors[0].fixes(), vec![FixAction::SetUsageLocation]);
        let Outcome::Open(Modal::Fix(mut f)) = open(d, 0, None) else {
            panic!("f opens the usage location fix");
        };
        assert_eq!(f.label, "Usage location");
        assert_eq!(f.text_mode(d), TextMode::All);
        let mut fx = Vec::new();
        for c in "de".chars() {
            f.input(d, InputRequest::InsertChar(c));
        }
        assert!(f
            .problem
            .as_deref()
            .unwrap()
            .contains("Two capital letters"));
        assert_eq!(f.command(d, Command::Submit, &mut fx), Outcome::Done);
        assert!(fx.is_empty(), "nothing is saved while the code is not one");
        f.input(d, InputRequest::DeleteLine);
        for c in "DE".chars() {
            f.input(d, InputRequest::InsertChar(c));
        }
        assert_eq!(f.problem, None);
        assert_eq!(f.command(d, Command::Submit, &mut fx), Outcome::Close);
        assert_eq!(
            fx,
            vec![Effect::Fix {
                fix: Fix::SetUsageLocation {
                    directory_id: u.id,
                    code: "DE".into()
                },
                key: s.data.errors[0].key.clone(),
            }]
        );
    }

    #[test]
    fn a_fix_follows_its_error_or_closes_when_it_is_gone() {
        let mut d = fixtures::preflight_errors_state().data;
        let mut f = preview(&d, 1, d.errors[1].fixes()[0]);
        let e = d.errors.remove(1);
        d.errors.push(e);
        assert_eq!(f.sync(&mut d), Outcome::Done);
        assert_eq!(f.error, d.errors.len() - 1);
        d.errors.pop();
        assert_eq!(f.sync(&mut d), Outcome::Close);
        assert!(d.message().unwrap().contains("gone"));
    }
}
