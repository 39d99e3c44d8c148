//! Disconnecting the tenant (`D` on Bindings): the question, then the disconnecting. Owns the
//! result of its effect (`Disconnected`).
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::failure::Failure;
use crate::keymap::Command;
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::explain::ErrorEntry;
use super::super::state::{AppState, Load, Phase, SignIn, Tab, Tabs, Tone, Topic};
use super::Modal;

pub const SECTION: Section = Section {
    name: "disconnect",
    title: "Disconnect the tenant",
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// Confirmed: the directory, the token cache and the tenant snapshot are being cleared.
    pub busy: bool,
}

/// The tenant was disconnected: back to the sign-in screen with nothing of it left; or why not.
pub fn disconnected(s: &mut AppState, result: Result<(), Failure>, fx: &mut Vec<Effect>) {
    match result {
        Ok(()) => {
            s.modal = Modal::None;
            s.tabs = Tabs::default();
            s.tab = Tab::default();
            let d = &mut s.data;
            d.session = None;
            d.load_gen += 1;
            fx.push(Effect::CancelLoad);
            d.load = Load::Idle;
            d.expected = None;
            d.rows.clear();
            d.reloading = false;
            d.account_upns.clear();
            d.directory = Default::default();
            d.directory_loaded = false;
            d.directory_gen += 1;
            d.row_failures.clear();
            d.preview_after_listing = false;
            d.message = None;
            d.signin_note = Some(
                "Disconnected: every binding was un-selected and the sign-in forgotten; the \
                 M365 accounts were left as they are. Sign in to connect again."
                    .into(),
            );
            d.signin_gen += 1;
            d.phase = Phase::SignIn(SignIn::Requesting);
            fx.push(Effect::StartDeviceCode { gen: d.signin_gen });
        }
        Err(e) => {
            s.modal = Modal::None;
            s.data.push_error(ErrorEntry::from_failure(&e));
            s.data.tell(
                Topic::Disconnect,
                Tone::Bad,
                format!(
                    "Disconnecting failed ({}); nothing was changed.",
                    s.data.see_errors()
                ),
            );
        }
    }
}

impl Component for Disconnect {
    fn sections(&self, _: &super::super::state::Data) -> Vec<Section> {
        vec![SECTION, Section::DIALOG]
    }
    fn commands(&self, _: &super::super::state::Data) -> Vec<Command> {
        if self.busy {
            vec![]
        } else {
            vec![Command::Back, Command::Confirm]
        }
    }
    fn text_mode(&self, _: &super::super::state::Data) -> TextMode {
        TextMode::None
    }
    fn command(
        &mut self,
        _: &mut super::super::state::Data,
        c: Command,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        if self.busy {
            return Outcome::Ignored;
        }
        match c {
            Command::Back => Outcome::Close,
            Command::Confirm => {
                self.busy = true;
                fx.push(Effect::Disconnect);
                Outcome::Done
            }
            _ => Outcome::Ignored,
        }
    }
    fn input(&mut self, _: &mut super::super::state::Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &super::super::state::Data, theme: &Theme) {
        if self.busy {
            return super::small(
                frame,
                area,
                data,
                theme,
                "Disconnect",
                vec![Line::from(Span::styled("Disconnecting…", theme.accent()))],
                &[],
            );
        }
        super::small(
            frame,
            area,
            data,
            theme,
            "Disconnect the tenant?",
            vec![
                Line::from("This un-selects every binding in the directory and forgets"),
                Line::from("the saved sign-in (token cache) and the saved copy of the"),
                Line::from("tenant's users."),
                Line::from(""),
                Line::from(Span::styled(
                    "Every M365 account is left exactly as it is: nothing is blocked,",
                    theme.ok(),
                )),
                Line::from(Span::styled(
                    "deleted or changed in the tenant.",
                    theme.ok(),
                )),
                Line::from(""),
                Line::from("You will be back at the sign-in screen."),
            ],
            &super::hints(data, self),
        );
    }
}

impl Dialog for Disconnect {
    fn sync(&mut self, _: &mut super::super::state::Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    #[test]
    fn it_asks_then_disconnects_once() {
        let mut d = fixtures::bindings_state().data;
        let mut q = Disconnect::default();
        let mut fx = Vec::new();
        assert_eq!(q.command(&mut d, Command::Back, &mut fx), Outcome::Close);
        assert_eq!(q.command(&mut d, Command::Confirm, &mut fx), Outcome::Done);
        assert_eq!(fx, vec![Effect::Disconnect]);
        assert!(q.busy && q.commands(&d).is_empty());
        assert_eq!(q.command(&mut d, Command::Back, &mut fx), Outcome::Ignored);
    }
}
