//! The masked password input of one directory user (`P` on Bindings). It says before anything
//! is typed what happens to the password: pushed at once to a bound account, or, for a user
//! with no bound account, not kept (m365sync never stores a password) and what the bind will
//! do instead. Owns the result of its effect (`PasswordSet`).
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use tui_input::{Input, InputRequest};

use crate::directory::DirectoryUser;
use crate::failure::Failure;
use crate::keymap::Command;
use crate::ui::text::fit;
use crate::ui::widgets::{centered, dialog_width, frame_block, hint_spans, wrapped};
use crate::ui::Theme;

use super::super::action::PasswordOutcome;
use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::{Effect, Secret};
use super::super::explain::ErrorEntry;
use super::super::state::{Data, PasswordRule, Tone, Topic};

pub const SECTION: Section = Section {
    name: "password",
    title: "Setting a password (other keys type)",
};

/// The masked password input of one directory user. The plaintext lives here only while it is
/// typed; Debug never shows it.
#[derive(Clone, Default)]
pub struct PasswordInput {
    pub directory_id: i64,
    pub email: String,
    pub input: Input,
    /// The rule the text breaks, in plain words (None = acceptable), checked as it is typed.
    pub problem: Option<String>,
    /// The user has a bound account: the password is pushed to it at once.
    pub bound: bool,
    rule: PasswordRule,
}

impl PartialEq for PasswordInput {
    fn eq(&self, o: &Self) -> bool {
        self.directory_id == o.directory_id
            && self.email == o.email
            && self.input.value() == o.input.value()
            && self.problem == o.problem
            && self.bound == o.bound
    }
}

impl std::fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordInput")
            .field("directory_id", &self.directory_id)
            .field("email", &self.email)
            .field("len", &self.input.value().chars().count())
            .field("bound", &self.bound)
            .finish()
    }
}

impl PasswordInput {
    pub fn new(u: &DirectoryUser, rule: PasswordRule) -> PasswordInput {
        PasswordInput {
            directory_id: u.id,
            email: u.email.clone(),
            input: Input::default(),
            problem: (rule.0)("").err().map(|e| e.to_string()),
            // As `sync::apply::set_password` decides: a linked account the directory wants.
            bound: u.tenant_user_id.is_some() && u.want_bound,
            rule,
        }
    }

    /// What happens to the password, in plain words.
    fn what_happens(&self) -> Vec<(String, bool)> {
        if self.bound {
            vec![
                (
                    "Sent at once to the bound account; the user keeps it (no change at sign-in) \
                     and is signed out everywhere (policy: --revoke-on-password)."
                        .into(),
                    false,
                ),
                (
                    "The directory records when it was set, never the password.".into(),
                    false,
                ),
            ]
        } else {
            vec![
                (
                    format!(
                        "{} has no bound account: nothing is sent now, and the password is not \
                         kept (m365sync never stores passwords).",
                        self.email
                    ),
                    true,
                ),
                (
                    "When it is bound, a new account gets a generated temporary password, shown \
                     once after the run; an existing account keeps its own. Only when it was \
                     set is recorded."
                        .into(),
                    false,
                ),
            ]
        }
    }
}

/// The password reached the account (or was only recorded), or why not: said plainly.
pub fn password_set(
    data: &mut Data,
    email: String,
    result: Result<PasswordOutcome, Failure>,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(PasswordOutcome::Pushed { re_enabled }) => data.tell(
            Topic::Password,
            Tone::Good,
            format!(
                "Password of {email} set on its account{}.",
                if re_enabled {
                    " (sign-in enabled again)"
                } else {
                    ""
                }
            ),
        ),
        Ok(PasswordOutcome::RecordedOnly) => data.tell(
            Topic::Password,
            Tone::Warn,
            format!(
                "Nothing was sent: {email} has no bound account. The password was not kept; \
                 binding it issues a temporary password."
            ),
        ),
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Password,
                Tone::Bad,
                format!(
                    "Setting the password of {email} failed ({}).",
                    data.see_errors()
                ),
            );
        }
    }
    fx.push(Effect::LoadDirectory);
}

impl Component for PasswordInput {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        let mut v = vec![Command::Back];
        if self.problem.is_none() {
            v.push(Command::Submit);
        }
        v
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::All
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        match c {
            Command::Back => {
                data.say(Topic::Password, "Password not changed.");
                Outcome::Close
            }
            Command::Submit => {
                if let Err(e) = (self.rule.0)(self.input.value()) {
                    self.problem = Some(e.to_string());
                    return Outcome::Done;
                }
                let (directory_id, email) = (self.directory_id, self.email.clone());
                let password = Secret(self.input.value().to_string());
                // The plaintext leaves the state with the dialog; only the effect holds it.
                self.input.reset();
                data.say(
                    Topic::Password,
                    if self.bound {
                        format!("Setting the password of {email}…")
                    } else {
                        format!("Recording that the password of {email} was set…")
                    },
                );
                fx.push(Effect::SetPassword {
                    directory_id,
                    email,
                    password,
                    actor: data.actor(),
                });
                Outcome::Close
            }
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, _: &mut Data, req: InputRequest) -> bool {
        self.input.handle(req);
        self.problem = (self.rule.0)(self.input.value())
            .err()
            .map(|e| e.to_string());
        true
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        let w = dialog_width(area, 72);
        let inner_w = w.saturating_sub(4) as usize;
        let mut notes = Vec::new();
        for (text, warn) in self.what_happens() {
            notes.extend(wrapped(
                &text,
                inner_w,
                if warn { theme.warn() } else { theme.dim() },
                " ",
            ));
        }
        let h = (notes.len() as u16 + 7).min(area.height);
        let rect = centered(area, w, h);
        frame.render_widget(Clear, rect);
        let block = frame_block(format!("Set the password of {}", self.email), theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let n = self.input.value().chars().count();
        let field_w = (inner.width as usize).saturating_sub(13);
        // The end (where typing happens) stays in view.
        let shown = "•".repeat(n.min(field_w));
        let check = match &self.problem {
            Some(problem) => Line::from(vec![
                Span::styled(" ✗ ", theme.error()),
                Span::styled(problem.clone(), theme.warn()),
            ]),
            None => Line::from(vec![
                Span::styled(" ✓ ", theme.ok()),
                Span::styled("meets the tenant's password rules", theme.ok()),
            ]),
        };
        let mut lines = vec![
            Line::from(vec![
                Span::styled(" Password: ", theme.bold()),
                Span::styled(fit(&shown, field_w), theme.selected()),
            ]),
            check,
            Line::from(""),
        ];
        lines.extend(notes);
        let [text, keys] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), text);
        frame.render_widget(
            Paragraph::new(Line::from(hint_spans(&super::hints(data, self), theme))),
            keys,
        );
        let x = text.x + 11 + (self.input.visual_cursor().min(field_w)) as u16;
        if x < text.x + text.width && text.height > 0 {
            frame.set_cursor_position(Position::new(x, text.y));
        }
    }
}

impl Dialog for PasswordInput {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;
    use crate::directory::BindingState;

    #[test]
    fn an_unbound_user_is_told_nothing_is_sent_and_nothing_kept() {
        let mut u = fixtures::directory_users(3)[2].clone();
        assert_eq!(u.binding, BindingState::Unbound);
        let p = PasswordInput::new(&u, PasswordRule(fixtures::password_rule));
        assert!(!p.bound);
        let said: String = p.what_happens().into_iter().map(|(t, _)| t).collect();
        assert!(said.contains("nothing is sent now"), "{said}");
        assert!(said.contains("not kept"), "{said}");
        assert!(said.contains("generated temporary password"), "{said}");
        u.binding = BindingState::Bound;
        u.want_bound = true;
        u.tenant_user_id = Some("t".into());
        let p = PasswordInput::new(&u, PasswordRule(fixtures::password_rule));
        assert!(p.bound);
        assert!(p.what_happens()[0].0.contains("Sent at once"));
    }

    #[test]
    fn the_outcome_is_said_as_it_is() {
        let mut d = Data::default();
        let mut fx = Vec::new();
        password_set(
            &mut d,
            "a@x.com".into(),
            Ok(PasswordOutcome::RecordedOnly),
            &mut fx,
        );
        let m = d.message().unwrap();
        assert!(
            m.contains("Nothing was sent") && !m.contains("set on its account"),
            "{m}"
        );
        password_set(
            &mut d,
            "a@x.com".into(),
            Ok(PasswordOutcome::Pushed { re_enabled: true }),
            &mut fx,
        );
        assert!(d.message().unwrap().contains("sign-in enabled again"));
        assert_eq!(fx, vec![Effect::LoadDirectory, Effect::LoadDirectory]);
    }
}
