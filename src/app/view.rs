//! The view: a pure function of the state, O(screen). The root draws the frame around the
//! components (header with the tabs, the status bar, the message line, the hint bar) and asks
//! each visible layer to draw itself: the tab, the dialog over it, a question, the help. The
//! hint bar shows the focused layer's keys from the same rows and the same "what works now" as
//! the help. The finished frame is scrubbed of anything a terminal would act on.
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::format::thousands;
use crate::keymap::{section, Command};
use crate::ui::text::fit;
use crate::ui::Theme;

use super::component::Component;
use super::dialogs::preview::tone_style;
use super::layout;
use super::signin::{ConfigScreen, SignInScreen};
use super::state::{AppState, Load, Modal, PendingOp, Phase, Tab};
use super::update::{offered, sections};

/// Draws the whole screen of `s`.
pub fn draw(frame: &mut Frame, s: &AppState) {
    let area = frame.area();
    let theme = Theme::new(s.data.no_color);
    match &s.data.phase {
        Phase::Config { .. } => ConfigScreen.draw(frame, area, &s.data, &theme),
        Phase::SignIn(_) => SignInScreen.draw(frame, area, &s.data, &theme),
        Phase::Main => draw_main(frame, area, s, &theme),
    }
    if let Some(q) = &s.question {
        q.draw(frame, area, &s.data, &theme);
    }
    if area.height > 0 {
        let hints = Rect::new(area.x, area.y + area.height - 1, area.width, 1);
        draw_hints(frame, hints, s, &theme);
    }
    if let Some(h) = &s.help {
        h.draw(frame, area, &s.data, &theme);
    }
    crate::ui::text::scrub(frame.buffer_mut());
}

fn draw_main(frame: &mut Frame, area: Rect, s: &AppState, theme: &Theme) {
    let screen = layout::screen_of(&s.data);
    draw_header(frame, screen.header, s, theme);
    draw_status(frame, screen.status, s, theme);
    s.tabs.get(s.tab).draw(frame, screen.body, &s.data, theme);
    if let Some(d) = s.modal.get() {
        d.draw(frame, screen.body, &s.data, theme);
    }
    if let Some(m) = &s.data.message {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                fit(&format!(" {}", m.text), area.width as usize),
                tone_style(theme, m.tone),
            ))),
            screen.message,
        );
    }
}

/// Where each tab's title is in the header: (tab, first column, end column). Drawing and
/// clicks use it.
pub fn header_tabs(s: &AppState) -> Vec<(Tab, u16, u16)> {
    let mut x = crate::ui::text::width(" m365sync ") as u16 + 1;
    let mut out = Vec::new();
    for (tab, label) in tab_labels(s) {
        let w = crate::ui::text::width(&label) as u16;
        out.push((tab, x, x + w));
        x += w + 1;
    }
    out
}

fn tab_labels(s: &AppState) -> Vec<(Tab, String)> {
    Tab::ALL
        .iter()
        .map(|&tab| {
            let key = s
                .data
                .keymap
                .key_for(&[section::GLOBAL], Command::GoTab(tab.index() as u8 + 1));
            let t = s.tabs.get(tab);
            let mut label = format!(" {key} {}", t.title());
            if let Some((badge, _)) = t.badge(&s.data) {
                label.push(' ');
                label.push_str(&badge);
            }
            label.push(' ');
            (tab, label.replace("  ", " "))
        })
        .collect()
}

fn draw_header(frame: &mut Frame, area: Rect, s: &AppState, theme: &Theme) {
    let mut spans = vec![Span::styled(" m365sync ", theme.accent()), Span::raw(" ")];
    for (tab, label) in tab_labels(s) {
        let alert = s.tabs.get(tab).badge(&s.data).is_some_and(|(_, a)| a);
        let style = if tab == s.tab {
            theme.tab_active()
        } else if alert {
            theme.error()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    let left: usize = spans.iter().map(|s| s.width()).sum();
    if let Some(b) = &s.data.banner {
        let b = format!(" {b} ");
        let room = (area.width as usize).saturating_sub(left);
        if room > 4 {
            let b = fit(&b, room.min(crate::ui::text::width(&b)));
            let pad = room - crate::ui::text::width(&b);
            spans.push(Span::raw(" ".repeat(pad)));
            spans.push(Span::styled(b, theme.banner()));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// "52m", "1h05m", "expired".
pub fn token_left(expires_at: i64, now: i64) -> String {
    let left = expires_at - now;
    if left <= 0 {
        return "expired".into();
    }
    let m = left / 60;
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

/// The status bar, the same on every tab: tenant │ identity │ token ── this tab's counts │
/// pending changes │ work in progress. Short of room, the left shortens first, then the
/// counts; work in progress is never cut.
fn draw_status(frame: &mut Frame, area: Rect, s: &AppState, theme: &Theme) {
    let width = area.width as usize;
    let w = |v: &[Span]| v.iter().map(|s| s.width()).sum::<usize>();
    let d = &s.data;
    let tab = s.tabs.get(s.tab);
    let pending = d.directory.pending_total();
    let pending_spans = |long: bool| -> Vec<Span<'static>> {
        let mut v = Vec::new();
        if pending == 0 {
            v.push(Span::styled(
                if long {
                    "no pending change"
                } else {
                    "0 pending"
                },
                theme.dim(),
            ));
            return v;
        }
        if !long {
            v.push(Span::styled(
                format!("{} pending", thousands(pending)),
                theme.pending(),
            ));
            return v;
        }
        v.push(Span::styled("pending ", theme.dim()));
        let mut first = true;
        for p in PendingOp::ALL {
            let n = d.directory.pending[p.slot()];
            if n > 0 {
                if !first {
                    v.push(Span::raw(" "));
                }
                first = false;
                v.push(Span::styled(format!("{} ", p.label()), theme.pending()));
                v.push(Span::raw(thousands(n)));
            }
        }
        v
    };
    let bar = || Span::styled(" │ ", theme.dim());
    let mut work: Vec<Span> = Vec::new();
    if let Some(text) = work_in_progress(s) {
        work.push(bar());
        work.push(Span::styled(text, theme.accent()));
    }
    if let Some(a) = &d.as_of {
        // When the tenant users shown were current (the saved copy until a round ends).
        work.push(bar());
        work.push(Span::styled(format!("{} ", a.label()), theme.dim()));
    }
    // The right part, longest form that leaves the identity some room: this tab's counts,
    // then the pending changes.
    let join = |counts: Vec<Span<'static>>, pending: Vec<Span<'static>>| {
        let mut v = vec![bar()];
        v.extend(counts);
        if !pending.is_empty() {
            if v.len() > 1 {
                v.push(bar());
            }
            v.extend(pending);
        }
        v.push(Span::raw(" "));
        v
    };
    let mut forms: Vec<Vec<Span>> = vec![
        join(tab.counts(d, theme, false), pending_spans(true)),
        join(tab.counts(d, theme, false), pending_spans(false)),
        join(tab.counts(d, theme, true), pending_spans(false)),
    ];
    if pending == 0 {
        // Nothing pending: short of room, that is what goes first.
        forms.push(join(tab.counts(d, theme, true), Vec::new()));
    }
    forms.push(join(Vec::new(), pending_spans(false)));
    let short = d.tenant.split('.').next().unwrap_or(&d.tenant).to_string();
    // The identity keeps at least its short form.
    let left_min = match &d.session {
        Some(si) => crate::ui::text::width(&format!(
            " {short} │ {} │ {}",
            si.identity.name.split('@').next().unwrap_or(""),
            token_left(si.expires_at, d.now)
        )),
        None => crate::ui::text::width(&short) + 1,
    };
    let right_room = width.saturating_sub(w(&work) + left_min);
    let last = forms.last().cloned().unwrap_or_default();
    let right = forms
        .into_iter()
        .find(|f| w(f) <= right_room)
        .unwrap_or(last);
    let room = width.saturating_sub(w(&right) + w(&work));

    let mut forms = vec![format!(" {}", d.tenant), format!(" {short}")];
    if let Some(si) = &d.session {
        let name = &si.identity.name;
        let local = name.split('@').next().unwrap_or(name);
        let left = token_left(si.expires_at, d.now);
        forms = vec![
            format!(" {} │ {} │ token {}", d.tenant, name, left),
            format!(" {} │ {} │ token {}", d.tenant, local, left),
            format!(" {} │ {} │ {}", d.tenant, local, left),
            format!(" {short} │ {local} │ {left}"),
            format!(" {short} │ {left}"),
            format!(" {short}"),
        ];
    }
    let left = forms
        .iter()
        .find(|f| crate::ui::text::width(f) <= room)
        .cloned()
        .unwrap_or_else(|| fit(forms.last().expect("one form"), room));
    let mut spans = vec![Span::styled(
        crate::ui::text::clean(&left).into_owned(),
        theme.bold(),
    )];
    spans.extend(right);
    let used = w(&spans) + w(&work);
    if work.is_empty() {
        spans.push(Span::raw(" ".repeat(width.saturating_sub(used))));
    } else {
        // Work in progress at the right edge, where it is always found.
        spans.push(Span::raw(" ".repeat(width.saturating_sub(used))));
        spans.extend(work);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

/// What is running, in words: "listing users 12,345…", "importing 3 users…", "applying
/// 12/40…", "planning…".
pub fn work_in_progress(s: &AppState) -> Option<String> {
    let d = &s.data;
    if let Modal::Run(r) = &s.modal {
        if r.finished.is_none() {
            let p = &r.progress;
            return Some(format!(
                "{} {}/{}…",
                if r.stopping { "stopping" } else { "applying" },
                thousands(p.done + p.failed + p.not_sent),
                thousands(r.total)
            ));
        }
    }
    if d.applying {
        return Some("applying…".into());
    }
    if d.checking_journal {
        return Some("checking an interrupted run…".into());
    }
    if matches!(s.modal, Modal::Planning(_)) || d.check_gen.is_some() {
        return Some("planning…".into());
    }
    if let Some(n) = d.importing {
        return Some(format!(
            "importing {}…",
            crate::format::count(n, "user", None)
        ));
    }
    if s.tabs.import.sorting {
        return Some("sorting…".into());
    }
    if let (Load::Loading { .. }, Some(r)) = (&d.load, &d.refreshing) {
        return Some(format!(
            "{}{}",
            r.label(),
            if d.preview_after_listing {
                " then preview"
            } else {
                ""
            }
        ));
    }
    match &d.load {
        Load::Waiting => Some("reading the directory…".into()),
        Load::Loading { .. } if d.complete_copy => Some("bringing up to date…".into()),
        Load::Loading { .. } => Some(format!(
            "listing {}…{}",
            thousands(d.rows.len()),
            if d.preview_after_listing {
                " then preview"
            } else {
                ""
            }
        )),
        _ => None,
    }
}

/// The keys of the focused layer that work now (global ones pinned right, so they never fall
/// off a narrow terminal). The help is built from the same rows.
fn draw_hints(frame: &mut Frame, area: Rect, s: &AppState, theme: &Theme) {
    let names = sections(s);
    let offer = offered(s);
    let (global, mut local): (Vec<_>, Vec<_>) = s
        .data
        .keymap
        .hints(&names, offer)
        .into_iter()
        .partition(|(_, _, sec)| sec == section::GLOBAL && names.len() > 1);
    // Moving first, then what this screen does, then the rest of the list's keys.
    local.sort_by_key(|(_, word, sec)| match (sec.as_str(), word.as_str()) {
        (section::LIST, "move") => 0,
        (section::LIST, _) => 2,
        _ => 1,
    });
    let entry = |keys: String, word: String| {
        vec![
            Span::styled(keys, theme.key()),
            Span::raw(" "),
            Span::styled(word, theme.dim()),
            Span::raw("  "),
        ]
    };
    let width = |v: &[Span]| v.iter().map(|s| s.width()).sum::<usize>();
    let mut right: Vec<Span> = Vec::new();
    for (k, w, _) in global.into_iter().rev() {
        let e = entry(k, w);
        if width(&right) + width(&e) + 1 > area.width as usize {
            break;
        }
        right.splice(0..0, e);
    }
    let mut left = vec![Span::raw(" ")];
    for (k, w, _) in local {
        let e = entry(k, w);
        if width(&left) + width(&e) + width(&right) > area.width as usize {
            break;
        }
        left.extend(e);
    }
    let pad = (area.width as usize).saturating_sub(width(&left) + width(&right));
    left.push(Span::raw(" ".repeat(pad)));
    left.extend(right);
    frame.render_widget(Paragraph::new(Line::from(left)), area);
}
