//! The sign-in screen (device code, big and clear, with a countdown and every outcome in plain
//! words) and the "not set up" screen, as the components that have the keys while they are up.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::auth::AuthError;
use crate::keymap::Command;
use crate::ui::text::wrap;
use crate::ui::widgets::{centered, labeled};
use crate::ui::Theme;

use super::component::{Component, Outcome, Section, TextMode};
use super::effect::Effect;
use super::state::{Data, Phase, SignIn};

pub const SECTION: Section = Section {
    name: "signin",
    title: "Sign-in",
};

/// The sign-in screen's keys: a new code.
pub struct SignInScreen;

/// The "not set up" screen: only the global keys.
pub struct ConfigScreen;

impl Component for SignInScreen {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION]
    }
    fn commands(&self, data: &Data) -> Vec<Command> {
        match &data.phase {
            Phase::SignIn(SignIn::Resuming) => vec![],
            Phase::SignIn(_) => vec![Command::RetrySignIn],
            _ => vec![],
        }
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        if c == Command::RetrySignIn && self.commands(data).contains(&c) {
            data.signin_gen += 1;
            data.phase = Phase::SignIn(SignIn::Requesting);
            fx.push(Effect::StartDeviceCode {
                gen: data.signin_gen,
            });
            return Outcome::Done;
        }
        Outcome::Ignored
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        if let Phase::SignIn(si) = &data.phase {
            draw(frame, area, data, theme, si);
        }
    }
}

impl Component for ConfigScreen {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![]
    }
    fn commands(&self, _: &Data) -> Vec<Command> {
        vec![]
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, _: &mut Data, _: Command, _: &mut Vec<Effect>) -> Outcome {
        Outcome::Ignored
    }
    fn input(&mut self, _: &mut Data, _: InputRequest) -> bool {
        false
    }
    fn draw(&self, frame: &mut Frame, area: Rect, data: &Data, theme: &Theme) {
        if let Phase::Config { message } = &data.phase {
            draw_config(frame, area, data, theme, message);
        }
    }
}

fn frame_parts(frame: &mut Frame, area: Rect, state: &Data, theme: &Theme, what: &str) -> Rect {
    // The last line is the hint bar (drawn by the view).
    let [head, body, _hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut spans = vec![
        Span::styled(" m365sync ", theme.accent()),
        Span::raw(" "),
        Span::styled(what.to_string(), theme.bold()),
    ];
    if let Some(b) = &state.banner {
        let left: usize = spans.iter().map(|s| s.width()).sum();
        let b = format!(" {b} ");
        let room = (head.width as usize).saturating_sub(left);
        if room > b.chars().count() {
            spans.push(Span::raw(" ".repeat(room - b.chars().count())));
            spans.push(Span::styled(b, theme.banner()));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), head);
    body
}

fn card<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Span::styled(format!(" {title} "), theme.bold()))
}

/// "ABCD1234" -> "A B C D 1 2 3 4": easier to read aloud and to type from across a room.
pub fn spaced(code: &str) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    for (i, c) in code.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// "14:05" from seconds.
pub fn mmss(secs: i64) -> String {
    let s = secs.max(0);
    format!("{}:{:02}", s / 60, s % 60)
}

pub fn draw(frame: &mut Frame, area: Rect, state: &Data, theme: &Theme, si: &SignIn) {
    let body = frame_parts(
        frame,
        area,
        state,
        theme,
        &format!("sign in to {}", state.tenant),
    );
    let w = body.width.saturating_sub(4).min(76);
    let inner = w.saturating_sub(4) as usize;
    let text = |t: &str, style| -> Vec<Line<'static>> {
        wrap(t, inner)
            .into_iter()
            .map(|l| Line::from(Span::styled(l, style)))
            .collect()
    };
    let mut lines: Vec<Line> = Vec::new();
    if let Some(note) = &state.signin_note {
        lines.extend(text(note, theme.warn()));
        lines.push(Line::from(""));
    }
    let title;
    match si {
        SignIn::Resuming => {
            title = "Sign-in";
            lines.push(Line::from("Checking the saved sign-in for this tenant…"));
        }
        SignIn::Requesting => {
            title = "Sign-in";
            lines.push(Line::from("Asking Microsoft for a sign-in code…"));
        }
        SignIn::Waiting { start, expires_at } => {
            title = "Sign in with a code";
            let left = expires_at - state.now;
            lines.push(Line::from(vec![
                Span::raw("1. On any device, open  "),
                crate::ui::widgets::safe(&start.verification_uri, theme.accent()),
            ]));
            lines.push(Line::from("2. Enter this code:"));
            lines.push(Line::from(""));
            let code = spaced(&start.user_code);
            let boxed = format!("   {code}   ");
            let bar = "─".repeat(boxed.chars().count());
            lines.push(Line::from(Span::styled(format!("┌{bar}┐"), theme.dim())).centered());
            lines.push(
                Line::from(vec![
                    Span::styled("│", theme.dim()),
                    Span::styled(boxed, theme.tab_active()),
                    Span::styled("│", theme.dim()),
                ])
                .centered(),
            );
            lines.push(Line::from(Span::styled(format!("└{bar}┘"), theme.dim())).centered());
            lines.push(Line::from(""));
            lines.push(Line::from("3. Approve as an admin of this tenant."));
            lines.push(Line::from(""));
            lines.extend(labeled(
                "Microsoft: ",
                11,
                &start.message,
                inner,
                theme.dim(),
                theme.dim(),
            ));
            lines.push(Line::from(""));
            if left > 0 {
                lines.push(Line::from(vec![
                    Span::raw("Code expires in "),
                    Span::styled(mmss(left), theme.bold()),
                    Span::styled("  ·  waiting for approval…", theme.dim()),
                ]));
            } else {
                lines.push(Line::from(Span::styled(
                    format!(
                        "The code has expired: press {} for a new one.",
                        state.keymap.key_for(&[SECTION.name], Command::RetrySignIn)
                    ),
                    theme.warn(),
                )));
            }
        }
        SignIn::Failed(e) => {
            title = "Sign-in failed";
            let d = crate::diagnose::diagnose_auth(e);
            let (what, todo) = (d.what.clone(), d.numbered_steps().join(" "));
            lines.extend(labeled("✗ ", 2, &what, inner, theme.error(), theme.bold()));
            lines.push(Line::from(""));
            lines.extend(text(&todo, Style::new()));
            lines.push(Line::from(""));
            match e {
                AuthError::OAuth {
                    error,
                    description,
                    codes,
                    trace_id,
                } => {
                    if let Some(c) = codes.first() {
                        lines.push(Line::from(vec![
                            Span::styled("Code      ", theme.dim()),
                            Span::styled(format!("AADSTS{c}"), theme.error()),
                            crate::ui::widgets::safe(&format!("  ({error})"), theme.dim()),
                        ]));
                    } else {
                        lines.push(Line::from(vec![
                            Span::styled("Code      ", theme.dim()),
                            crate::ui::widgets::safe(error, theme.error()),
                        ]));
                    }
                    lines.extend(labeled(
                        "Message",
                        10,
                        description,
                        inner,
                        theme.dim(),
                        Style::new(),
                    ));
                    if let Some(t) = trace_id {
                        lines.extend(labeled("Trace id", 10, t, inner, theme.dim(), Style::new()));
                    }
                }
                other => lines.extend(labeled(
                    "Detail",
                    10,
                    &other.to_string(),
                    inner,
                    theme.dim(),
                    Style::new(),
                )),
            }
            lines.push(Line::from(""));
            let key = |c| state.keymap.key_for(&[SECTION.name, "global"], c);
            lines.push(Line::from(vec![
                Span::styled(key(Command::RetrySignIn), theme.key()),
                Span::raw(" new code   "),
                Span::styled(key(Command::Quit), theme.key()),
                Span::raw(" quit"),
            ]));
        }
    }
    let h = lines.len() as u16 + 2;
    let rect = centered(body, w, h);
    frame.render_widget(
        Paragraph::new(lines)
            .block(card(title, theme).padding(ratatui::widgets::Padding::horizontal(1))),
        rect,
    );
}

pub fn draw_config(frame: &mut Frame, area: Rect, state: &Data, theme: &Theme, message: &str) {
    let body = frame_parts(frame, area, state, theme, "not set up yet");
    let w = body.width.saturating_sub(4).min(76);
    let inner = w.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = wrap(
        "m365sync needs to know which tenant to sign in to, and with which app.",
        inner,
    )
    .into_iter()
    .map(|l| Line::from(Span::styled(l, theme.bold())))
    .collect();
    lines.push(Line::from(""));
    for m in message.lines() {
        lines.extend(
            wrap(m, inner)
                .into_iter()
                .map(|l| Line::from(Span::styled(l, theme.warn()))),
        );
    }
    lines.push(Line::from(""));
    lines.extend(vec![
        Line::from("Give both, then start m365sync again:"),
        Line::from(vec![
            Span::styled("  m365sync --tenant ", theme.accent()),
            Span::raw("contoso.onmicrosoft.com "),
            Span::styled("--client-id ", theme.accent()),
            Span::raw("<app id>"),
        ]),
        Line::from("  or M365SYNC_TENANT and M365SYNC_CLIENT_ID, or tenant and client_id"),
        Line::from("  in config.toml in the data directory."),
        Line::from(""),
        Line::from(vec![
            Span::raw("To try m365sync without a tenant, run "),
            Span::styled("m365sync demo", theme.accent()),
            Span::raw("."),
        ]),
    ]);
    let h = lines.len() as u16 + 2;
    let rect = centered(body, w, h);
    frame.render_widget(
        Paragraph::new(lines)
            .block(card("Set up", theme).padding(ratatui::widgets::Padding::horizontal(1))),
        rect,
    );
}
