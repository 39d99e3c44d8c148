//! The integration's domain settings of this tenant (`d` on Errors): the tenant's domains
//! (GET /domains), which ones m365sync may create accounts in, and its default domain. Every
//! change is saved at once and the plan re-checked; ticking an unverified domain warns, making
//! it the default is refused with the reason. Owns the results of its effects
//! (`DomainsLoaded`, `DomainsSaved`).
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::directory::DomainSettings;
use crate::failure::Failure;
use crate::graph::Domain;
use crate::keymap::Command;
use crate::ui::widgets::{
    column_widths, draw_list, frame_block, header_line, table_line, wrapped, ListSpec,
};
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::Effect;
use super::super::explain::ErrorEntry;
use super::super::layout;
use super::super::list::{follow, is_move, moved};
use super::super::state::{Data, Tone, Topic};
use super::preview::{start_check, tone_style};
use super::Modal;

pub const SECTION: Section = Section {
    name: "domains",
    title: "Domain settings",
};

const COLUMNS: [Constraint; 5] = [
    Constraint::Length(6),
    Constraint::Fill(3),
    Constraint::Length(8),
    Constraint::Length(9),
    Constraint::Fill(2),
];

/// The domain settings view: the tenant's domains (GET /domains) and what m365sync may use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DomainsView {
    /// None while loading.
    pub domains: Option<Vec<Domain>>,
    pub settings: DomainSettings,
    pub selected: usize,
    pub offset: usize,
    pub error: Option<String>,
    /// What the last key did or why it did nothing, shown in the dialog.
    pub note: Option<(String, Tone)>,
}

impl DomainsView {
    /// Whether m365sync may provision into `id` (no list saved = every verified domain).
    pub fn enabled(&self, d: &Domain) -> bool {
        match &self.settings.enabled {
            None => d.is_verified,
            Some(v) => v.iter().any(|x| x.eq_ignore_ascii_case(&d.id)),
        }
    }
    /// The integration's default domain: the one saved, else the tenant's default.
    pub fn default_domain(&self) -> Option<String> {
        self.settings.default.clone().or_else(|| {
            self.domains
                .as_ref()?
                .iter()
                .find(|d| d.is_default)
                .map(|d| d.id.clone())
        })
    }

    /// Intro, note (as tall as it is), list (the keys are in the hint bar under it).
    fn areas(&self, data: &Data) -> [Rect; 3] {
        let inner = layout::dialog_inner(data);
        let note = self.note.as_ref().map_or(1, |(t, _)| {
            crate::ui::text::wrap(t, (inner.width as usize).saturating_sub(1)).len() as u16
        });
        Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(note + 1),
            Constraint::Fill(1),
        ])
        .areas(inner)
    }

    fn enabled_list(&self) -> Vec<String> {
        self.domains
            .iter()
            .flatten()
            .filter(|x| self.enabled(x))
            .map(|x| x.id.clone())
            .collect()
    }
}

/// The tenant's domains and the saved settings, or why not.
pub fn loaded(
    data: &mut Data,
    modal: &mut Modal,
    result: Result<(Vec<Domain>, DomainSettings), Failure>,
) {
    match result {
        Ok((domains, settings)) => {
            data.domain_settings = settings.clone();
            if let Modal::Domains(v) = modal {
                v.domains = Some(domains);
                v.settings = settings;
                v.error = None;
            }
        }
        Err(e) => {
            if let Modal::Domains(v) = modal {
                v.error = Some(e.to_string());
            }
            data.push_error(ErrorEntry::from_failure(&e));
        }
    }
}

/// The settings were saved (the plan is re-checked with them), or not.
pub fn saved(data: &mut Data, modal: &Modal, result: Result<(), Failure>, fx: &mut Vec<Effect>) {
    match result {
        Err(e) => {
            data.push_error(ErrorEntry::from_failure(&e));
            data.tell(
                Topic::Domains,
                Tone::Bad,
                format!("Saving the domain settings failed ({}).", data.see_errors()),
            );
        }
        Ok(()) => {
            data.tell(
                Topic::Domains,
                Tone::Good,
                "Domain settings saved; re-checking the plan with them…",
            );
            // Preflight reads the settings: findings they clear (or add) show at once.
            if !matches!(modal, Modal::Planning(_)) {
                start_check(data, fx);
            }
        }
    }
}

impl Component for DomainsView {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION, Section::DIALOG]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        let mut v = vec![Command::Back, Command::Submit];
        if self.domains.as_ref().is_some_and(|d| !d.is_empty()) {
            v.extend([
                Command::Down,
                Command::Up,
                Command::PageDown,
                Command::PageUp,
                Command::Top,
                Command::Bottom,
                Command::ToggleDomain,
                Command::DefaultDomain,
            ]);
        }
        v
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        let len = self.domains.as_ref().map_or(0, |d| d.len());
        let rows = layout::list_rows(self.areas(data)[2]);
        match c {
            Command::Back | Command::Submit => Outcome::Close,
            c if is_move(c) => {
                if len == 0 {
                    return Outcome::Ignored;
                }
                self.selected = moved(c, self.selected, len, rows);
                follow(&mut self.selected, &mut self.offset, len, rows);
                Outcome::Done
            }
            Command::ToggleDomain | Command::DefaultDomain => {
                let Some(d) = self
                    .domains
                    .as_ref()
                    .and_then(|d| d.get(self.selected))
                    .cloned()
                else {
                    return Outcome::Ignored;
                };
                if c == Command::ToggleDomain {
                    let mut on = self.enabled_list();
                    if self.enabled(&d) {
                        on.retain(|x| !x.eq_ignore_ascii_case(&d.id));
                        self.note = Some((
                            format!(
                                "{} is not used any more: no account is created in it.",
                                d.id
                            ),
                            Tone::Info,
                        ));
                    } else {
                        on.push(d.id.clone());
                        self.note = Some(if d.is_verified {
                            (format!("{} may be used now.", d.id), Tone::Good)
                        } else {
                            (
                                format!(
                                    "{} is not verified: Graph refuses accounts on it until you \
                                     verify it (Microsoft 365 admin center > Settings > Domains); \
                                     until then preflight holds them back.",
                                    d.id
                                ),
                                Tone::Warn,
                            )
                        });
                    }
                    self.settings.enabled = Some(on);
                } else {
                    if !d.is_verified {
                        self.note = Some((
                            format!(
                                "{} cannot be the default: it is not verified, so Graph would \
                                 refuse every account made on it. Verify it in the Microsoft 365 \
                                 admin center first.",
                                d.id
                            ),
                            Tone::Bad,
                        ));
                        return Outcome::Done;
                    }
                    self.settings.default = Some(d.id.clone());
                    // The default domain is one m365sync may provision into.
                    if !self.enabled(&d) {
                        let mut on = self.enabled_list();
                        on.push(d.id.clone());
                        self.settings.enabled = Some(on);
                    }
                    self.note = Some((
                        format!(
                            "{} is the default domain now (the use-default-domain fix uses it).",
                            d.id
                        ),
                        Tone::Good,
                    ));
                }
                let settings = self.settings.clone();
                data.domain_settings = settings.clone();
                fx.push(Effect::SaveDomains {
                    tenant: data.tenant.clone(),
                    settings,
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
        let block = frame_block(format!("Domains of {}", data.tenant), theme);
        frame.render_widget(block, rect);
        let [intro, note, list] = self.areas(data);
        let default = self.default_domain();
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(Span::styled(
                    " Where m365sync may create accounts (✓), and its default domain (★).",
                    theme.dim(),
                )),
                Line::from(Span::styled(
                    format!(
                        " Default: {}   ·   {}",
                        default.as_deref().unwrap_or("none"),
                        if self.settings.enabled.is_none() {
                            "no list saved: every verified domain"
                        } else {
                            "saved for this tenant"
                        }
                    ),
                    theme.bold(),
                )),
            ]),
            intro,
        );
        if let Some((text, tone)) = &self.note {
            frame.render_widget(
                Paragraph::new(wrapped(
                    text,
                    note.width as usize,
                    tone_style(theme, *tone),
                    " ",
                )),
                note,
            );
        }
        match (&self.domains, &self.error) {
            (_, Some(e)) => frame.render_widget(
                Paragraph::new(Line::from(crate::ui::widgets::safe(
                    &format!(" {e}"),
                    theme.error(),
                )))
                .wrap(Wrap { trim: true }),
                list,
            ),
            (None, None) => frame.render_widget(
                Paragraph::new(Line::from(Span::styled(
                    " Reading the tenant's domains…",
                    theme.accent(),
                ))),
                list,
            ),
            (Some(ds), None) => {
                let widths = column_widths(&COLUMNS, list.width);
                let header = header_line(
                    &["   Use", "Domain", "Verified", "Auth", "Notes"],
                    &widths,
                    theme,
                );
                draw_list(
                    frame,
                    list,
                    ListSpec {
                        header,
                        len: ds.len(),
                        offset: self.offset,
                        empty: "The tenant has no domains.",
                    },
                    theme,
                    |i| {
                        let d = &ds[i];
                        let on = self.enabled(d);
                        let is_default = default
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(&d.id));
                        let mut notes = Vec::new();
                        if d.is_default {
                            notes.push("tenant default");
                        }
                        if d.is_initial {
                            notes.push("initial");
                        }
                        if on && !d.is_verified {
                            notes.push("allowed but not verified");
                        }
                        let cells = vec![
                            (
                                format!(
                                    " {} {}",
                                    if on { "✓" } else { "·" },
                                    if is_default { "★" } else { " " }
                                ),
                                if on { theme.ok() } else { theme.dim() },
                            ),
                            (d.id.clone(), Style::new()),
                            (
                                if d.is_verified { "yes" } else { "no" }.to_string(),
                                if d.is_verified {
                                    theme.ok()
                                } else {
                                    theme.error()
                                },
                            ),
                            (
                                d.authentication_type
                                    .clone()
                                    .unwrap_or_else(|| "Managed".into()),
                                theme.dim(),
                            ),
                            (notes.join(", "), theme.dim()),
                        ];
                        let style = if i == self.selected {
                            theme.selected()
                        } else {
                            Style::new()
                        };
                        table_line(cells, &widths, style)
                    },
                );
            }
        }
    }
}

impl Dialog for DomainsView {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    fn view() -> (DomainsView, Data) {
        let d = fixtures::preflight_errors_state().data;
        let v = DomainsView {
            domains: Some(fixtures::domains()),
            settings: DomainSettings::default(),
            ..DomainsView::default()
        };
        (v, d)
    }

    #[test]
    fn ticking_an_unverified_domain_warns_and_making_it_default_is_refused() {
        let (mut v, mut d) = view();
        let mut fx = Vec::new();
        v.selected = 3; // northwind-labs.io, not verified
        v.command(&mut d, Command::ToggleDomain, &mut fx);
        let (note, tone) = v.note.clone().unwrap();
        assert_eq!(tone, Tone::Warn);
        assert!(note.contains("not verified"), "{note}");
        assert!(
            matches!(fx.as_slice(), [Effect::SaveDomains { .. }]),
            "saved"
        );
        fx.clear();
        v.command(&mut d, Command::DefaultDomain, &mut fx);
        let (note, tone) = v.note.clone().unwrap();
        assert_eq!(tone, Tone::Bad);
        assert!(note.contains("cannot be the default"), "{note}");
        assert!(fx.is_empty(), "nothing saved");
        v.selected = 1; // contoso.com
        v.command(&mut d, Command::DefaultDomain, &mut fx);
        assert_eq!(v.settings.default.as_deref(), Some("contoso.com"));
        assert_eq!(d.domain_settings.default.as_deref(), Some("contoso.com"));
    }
}
