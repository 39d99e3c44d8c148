//! The one registry of dialogs: `Modal` is the dialog over the tabs, and its only two matches
//! hand the dialog out as a [`Dialog`] (an enum that only delegates: a dialog that does not
//! implement it all does not compile). The question and the help are layers of their own, over
//! any dialog.
use super::component::Dialog;

pub mod detail;
pub mod disconnect;
pub mod domains;
pub mod export;
pub mod fix;
pub mod help;
pub mod licence;
pub mod password;
pub mod preview;
pub mod question;
pub mod run;

pub use question::Question;

/// The keymap sections of the dialogs, the question and the help.
pub const SECTIONS: &[&str] = &[
    preview::PLANNING.name,
    preview::SECTION.name,
    preview::TYPING.name,
    run::RUNNING.name,
    run::RESULT.name,
    password::SECTION.name,
    fix::SECTION.name,
    fix::TYPING.name,
    export::SECTION.name,
    domains::SECTION.name,
    disconnect::SECTION.name,
    detail::SECTION.name,
    licence::SECTION.name,
    licence::PLANS.name,
    question::SECTION.name,
    help::SECTION.name,
];

macro_rules! dialogs {
    ($($(#[$meta:meta])* $variant:ident($ty:ty)),+ $(,)?) => {
        /// The dialog over the tabs; `None` = the tab has the keys.
        #[derive(Debug, Clone, PartialEq, Default)]
        pub enum Modal {
            #[default]
            None,
            $($(#[$meta])* $variant($ty)),+
        }

        impl Modal {
            pub fn get(&self) -> Option<&dyn Dialog> {
                match self {
                    Modal::None => None,
                    $(Modal::$variant(d) => Some(d)),+
                }
            }
            pub fn get_mut(&mut self) -> Option<&mut dyn Dialog> {
                match self {
                    Modal::None => None,
                    $(Modal::$variant(d) => Some(d)),+
                }
            }
        }
    };
}

dialogs! {
    /// `p` was pressed: the plan is being computed.
    Planning(preview::Planning),
    Preview(Box<preview::Preview>),
    /// An apply: its progress, then what was done and the passwords issued.
    Run(Box<run::Run>),
    Password(password::PasswordInput),
    /// The question before disconnecting the tenant, then the disconnecting.
    Disconnect(disconnect::Disconnect),
    /// A one-key fix of the Errors tab, previewed: what will change, `y` applies.
    Fix(Box<fix::FixDialog>),
    /// Export the errors shown: `c` CSV, `j` JSON.
    Export(export::Export),
    /// The integration's domain settings of this tenant.
    Domains(Box<domains::DomainsView>),
    /// Enter on a row: everything about it, and what can be done.
    Detail(Box<detail::Detail>),
    /// `a` on the Licences tab: who gets the SKU (a group or user) and its service plans.
    AssignLicence(licence::AssignLicence),
}

impl Modal {
    pub fn is_open(&self) -> bool {
        !matches!(self, Modal::None)
    }
}

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::component::Component;
use super::state::Data;
use crate::ui::widgets::{centered, frame_block, hint_spans};
use crate::ui::Theme;

/// A dialog's key line: its own sections' hints, of the commands it offers now (the hint bar
/// shows the same, from the same rows).
pub fn hints(data: &Data, c: &dyn Component) -> Vec<(String, String)> {
    let sections: Vec<&str> = c.sections(data).iter().map(|s| s.name).collect();
    let offered = c.commands(data);
    data.keymap
        .hints(&sections, |x| offered.contains(&x))
        .into_iter()
        .map(|(k, w, _)| (k, w))
        .collect()
}

/// A centered box with `lines` and a key line.
pub fn small(
    frame: &mut Frame,
    area: Rect,
    _: &Data,
    theme: &Theme,
    title: &str,
    mut lines: Vec<Line<'static>>,
    keys: &[(String, String)],
) {
    let keys_line = Line::from(hint_spans(keys, theme));
    let w = lines
        .iter()
        .map(|l| l.width())
        .chain([keys_line.width()])
        .max()
        .unwrap_or(0)
        .max(title.len() + 4) as u16
        + 4;
    if !keys.is_empty() {
        lines.push(Line::from(""));
        lines.push(keys_line);
    }
    let rect = centered(area, w, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = frame_block(title.to_string(), theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    frame.render_widget(
        Paragraph::new(
            lines
                .into_iter()
                .map(|l| {
                    let mut spans = vec![Span::raw(" ")];
                    spans.extend(l.spans);
                    Line::from(spans)
                })
                .collect::<Vec<_>>(),
        ),
        inner,
    );
}
