//! Enter on a row: everything about it, scrollable, and what can be done from there. A tenant
//! user says why it is a Conflict and links it (Enter or `l`); a directory user says the UPN
//! its account has or will be created with, its wish, its last error and its groups; a group
//! lists its members; an error shows its whole diagnosis (`f` previews the fix).
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use tui_input::InputRequest;

use crate::directory::ImportStatus;
use crate::format::thousands;
use crate::keymap::Command;
use crate::ui::widgets::{frame_block, labeled};
use crate::ui::Theme;

use super::super::component::{Component, Dialog, Outcome, Section, TextMode};
use super::super::effect::{Effect, Fix};
use super::super::explain::ErrorEntry;
use super::super::layout;
use super::super::list::{is_move, moved};
use super::super::state::{Data, PendingOp, RowState, Topic};
use super::super::tabs::bindings::group_name_shown;
use super::super::tabs::errors::detail_lines;

pub const SECTION: Section = Section {
    name: "detail",
    title: "Detail",
};

/// What a detail is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Of {
    /// A row of the Import tab (its tenant id, to find it again after a reload).
    TenantUser {
        row: u32,
        id: String,
    },
    DirectoryUser(i64),
    Group(i64),
    Error(Box<ErrorEntry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub of: Of,
    /// First line on screen.
    pub scroll: usize,
}

const LABEL: usize = 14;

impl Detail {
    pub fn tenant_user(data: &Data, row: u32) -> Detail {
        Detail {
            of: Of::TenantUser {
                row,
                id: data.rows.user(row).id.clone(),
            },
            scroll: 0,
        }
    }
    pub fn directory_user(id: i64) -> Detail {
        Detail {
            of: Of::DirectoryUser(id),
            scroll: 0,
        }
    }
    pub fn group(id: i64) -> Detail {
        Detail {
            of: Of::Group(id),
            scroll: 0,
        }
    }
    pub fn error(e: ErrorEntry) -> Detail {
        Detail {
            of: Of::Error(Box::new(e)),
            scroll: 0,
        }
    }

    /// The tenant row it shows, when it is still the same user.
    fn tenant_row(&self, data: &Data) -> Option<u32> {
        match &self.of {
            Of::TenantUser { row, id } => ((*row as usize) < data.rows.len()
                && data.rows.user(*row).id == *id)
                .then_some(*row),
            _ => None,
        }
    }

    /// The directory user a Conflict would be linked to.
    fn conflict_holder(&self, data: &Data) -> Option<i64> {
        let row = self.tenant_row(data)?;
        if data.rows.status[row as usize] != ImportStatus::Conflict {
            return None;
        }
        let u = data.rows.user(row);
        data.index.holder_of(u).or_else(|| {
            let addr = [u.mail.as_deref(), Some(u.user_principal_name.as_str())];
            data.directory
                .users
                .iter()
                .find(|d| {
                    addr.iter()
                        .flatten()
                        .any(|a| a.eq_ignore_ascii_case(&d.email))
                })
                .map(|d| d.id)
        })
    }

    fn title(&self, data: &Data) -> String {
        match &self.of {
            Of::TenantUser { .. } => match self.tenant_row(data) {
                Some(r) => format!(
                    "Tenant user {}",
                    data.rows.user(r).display_name.as_deref().unwrap_or("")
                ),
                None => "Tenant user".into(),
            },
            Of::DirectoryUser(id) => match data.directory.user(*id) {
                Some(u) => format!("Directory user {}", u.display_name),
                None => "Directory user".into(),
            },
            Of::Group(id) => match data.directory.groups.iter().find(|g| g.id == *id) {
                Some(g) => format!("Group {}", group_name_shown(&g.name)),
                None => "Group".into(),
            },
            Of::Error(e) => format!("{} · {}", e.diag.title, e.diag.subject.label()),
        }
    }

    /// Every line of the detail at `width`: drawing and scrolling both use it.
    pub fn lines(&self, data: &Data, width: usize, theme: &Theme) -> Vec<Line<'static>> {
        let mut out: Vec<Line<'static>> = Vec::new();
        let field = |out: &mut Vec<Line<'static>>, name: &str, value: &str, style: Style| {
            if !value.is_empty() {
                out.extend(labeled(name, LABEL, value, width, theme.dim(), style));
            }
        };
        match &self.of {
            Of::TenantUser { .. } => {
                let Some(row) = self.tenant_row(data) else {
                    out.push(Line::from(
                        " This user is not listed any more (a new listing).",
                    ));
                    return out;
                };
                let u = data.rows.user(row);
                let st = data.rows.status[row as usize];
                field(&mut out, " Status", st.label(), theme.status(st));
                field(
                    &mut out,
                    " Name",
                    u.display_name.as_deref().unwrap_or(""),
                    Style::new(),
                );
                field(&mut out, " UPN", &u.user_principal_name, Style::new());
                field(
                    &mut out,
                    " Mail",
                    u.mail.as_deref().unwrap_or("—"),
                    Style::new(),
                );
                let enabled = match u.account_enabled {
                    Some(true) => "yes",
                    Some(false) => "no (sign-in blocked)",
                    None => "—",
                };
                field(&mut out, " Sign-in", enabled, Style::new());
                field(&mut out, " Object id", &u.id, theme.dim());
                out.push(Line::from(""));
                match st {
                    ImportStatus::Conflict => {
                        let holder = self
                            .conflict_holder(data)
                            .and_then(|id| data.directory.user(id));
                        let why = match holder {
                            Some(d) => format!(
                                "The directory user {} <{}> already has this address and is not \
                                 linked to this account. Importing it again would make a \
                                 duplicate.",
                                d.display_name, d.email
                            ),
                            None => "A directory user already has this address and is not \
                                     linked to this account."
                                .into(),
                        };
                        field(&mut out, " Why Conflict", &why, theme.warn());
                        let key = data.keymap.key_for(&[SECTION.name], Command::Link);
                        field(
                            &mut out,
                            " Link",
                            &format!(
                                "Enter (or {key}) links the directory user to this account: \
                                 nothing is created or changed in the tenant, the user shows \
                                 as Imported."
                            ),
                            theme.ok(),
                        );
                    }
                    ImportStatus::Imported => {
                        let d = data
                            .index
                            .linked
                            .get(&u.id)
                            .and_then(|id| data.directory.user(*id));
                        if let Some(d) = d {
                            field(
                                &mut out,
                                " Linked to",
                                &format!("directory user {} <{}>", d.display_name, d.email),
                                theme.ok(),
                            );
                        }
                    }
                    ImportStatus::Failed => {
                        let why = data
                            .index
                            .failed
                            .get(&u.id)
                            .map(|f| format!("{} ({}), {}", f.message, f.kind, f.at))
                            .unwrap_or_default();
                        field(&mut out, " Last import", &why, theme.error());
                    }
                    ImportStatus::Guest => field(
                        &mut out,
                        " Guest",
                        &format!(
                            "An invited user of another organisation (userType Guest). Not \
                             imported as a member: {} on its row asks first, and an imported \
                             guest stays linked to its guest account, never made a member.",
                            data.tab_key(super::super::tabs::import::SECTION.name, Command::Import)
                        ),
                        theme.warn(),
                    ),
                    ImportStatus::New => field(
                        &mut out,
                        " Import",
                        &format!(
                            "Not in the directory yet: {} on its row imports it.",
                            data.tab_key(super::super::tabs::import::SECTION.name, Command::Import)
                        ),
                        Style::new(),
                    ),
                }
            }
            Of::DirectoryUser(id) => {
                let Some(u) = data.directory.user(*id) else {
                    out.push(Line::from(" This user is not in the directory any more."));
                    return out;
                };
                let st = RowState::of(u, &data.row_failures);
                field(&mut out, " State", st.label(), Style::new());
                field(&mut out, " Name", &u.display_name, Style::new());
                field(&mut out, " Email", &u.email, Style::new());
                let (upn, known) = data.upn_of(u);
                let upn_note = if known {
                    format!("{upn} (the account's)")
                } else if data.directory.upn_overrides.contains_key(&u.id) {
                    format!("{upn} (used at bind: the default-domain fix; the email stays)")
                } else {
                    format!("{upn} (used at bind: its email)")
                };
                field(&mut out, " UPN", &upn_note, Style::new());
                let wish = match PendingOp::of(u) {
                    Some(p) => format!(
                        "{} — the next sync will {} ({} previews it)",
                        if u.wanted() { "bound" } else { "unbound" },
                        p.word(),
                        data.tab_key(super::super::tabs::bindings::SECTION.name, Command::Preview)
                    ),
                    None => format!(
                        "{} — nothing to do",
                        if u.wanted() { "bound" } else { "unbound" }
                    ),
                };
                field(&mut out, " Wish", &wish, Style::new());
                // Every reason it is wanted bound: directly, and each bound group.
                let mut why: Vec<String> = Vec::new();
                if u.want_bound {
                    why.push("directly (bind, or the toggle here)".into());
                }
                why.extend(
                    u.bound_via
                        .iter()
                        .map(|g| format!("through group {}", group_name_shown(g))),
                );
                field(
                    &mut out,
                    " Why bound",
                    &if why.is_empty() {
                        "— not wanted bound (directly nor through a bound group)".to_string()
                    } else {
                        why.join("; ")
                    },
                    Style::new(),
                );
                if let Some(t) = &u.tenant_user_id {
                    field(&mut out, " Account id", t, theme.dim());
                }
                if let Some(f) = data.row_failures.get(&u.id) {
                    field(
                        &mut out,
                        " Last error",
                        &format!("{} failed: {} ({})", f.kind.label(), f.message, f.code),
                        theme.error(),
                    );
                }
                let groups: Vec<String> = data
                    .directory
                    .groups
                    .iter()
                    .filter(|g| g.members.contains(&u.id))
                    .map(|g| group_name_shown(&g.name))
                    .collect();
                field(
                    &mut out,
                    " Groups",
                    &if groups.is_empty() {
                        "—".into()
                    } else {
                        groups.join(", ")
                    },
                    Style::new(),
                );
                let pw = u
                    .password_set_at
                    .as_deref()
                    .map(|at| format!("set {at} (never stored)"))
                    .unwrap_or_else(|| "never set here".into());
                field(&mut out, " Password", &pw, theme.dim());
            }
            Of::Group(id) => {
                let Some(g) = data.directory.groups.iter().find(|g| g.id == *id) else {
                    out.push(Line::from(" This group is not in the directory any more."));
                    return out;
                };
                field(&mut out, " State", g.state().label(), Style::new());
                field(&mut out, " Name", &group_name_shown(&g.name), Style::new());
                let kind = match g.kind {
                    crate::directory::GroupKind::Security => "security group",
                    crate::directory::GroupKind::M365 => "Microsoft 365 group",
                };
                field(&mut out, " Kind", kind, Style::new());
                field(
                    &mut out,
                    " mailNickname",
                    &crate::sync::groups::nickname_for(g),
                    Style::new(),
                );
                if let Some(t) = &g.tenant_group_id {
                    field(&mut out, " M365 group id", t, theme.dim());
                }
                if let Some(e) = &g.last_error {
                    field(&mut out, " Last error", e, theme.error());
                }
                out.push(Line::from(""));
                out.push(Line::from(Span::styled(
                    format!(" Members: {}", thousands(g.members.len())),
                    theme.bold(),
                )));
                for m in &g.members {
                    let text = match data.directory.user(*m) {
                        Some(u) => {
                            let st = RowState::of(u, &data.row_failures);
                            format!("{} <{}>  {}", u.display_name, u.email, st.label())
                        }
                        None => "(a user no longer in the directory)".into(),
                    };
                    out.extend(labeled("", 3, &text, width, Style::new(), Style::new()));
                }
            }
            Of::Error(e) => out = detail_lines(data, e, width, theme),
        }
        out
    }

    /// The text (the keys are in the hint bar under it).
    fn areas(data: &Data) -> [Rect; 1] {
        [layout::dialog_inner(data)]
    }
}

impl Component for Detail {
    fn sections(&self, _: &Data) -> Vec<Section> {
        vec![SECTION, Section::DIALOG]
    }
    fn commands(&self, data: &Data) -> Vec<Command> {
        let mut v = vec![
            Command::Back,
            Command::Submit,
            Command::Down,
            Command::Up,
            Command::PageDown,
            Command::PageUp,
            Command::Top,
            Command::Bottom,
        ];
        if self.conflict_holder(data).is_some() {
            v.push(Command::Link);
        }
        if let Of::Error(e) = &self.of {
            if !e.fixes().is_empty() {
                v.push(Command::Fix);
            }
        }
        v
    }
    fn text_mode(&self, _: &Data) -> TextMode {
        TextMode::None
    }
    fn command(&mut self, data: &mut Data, c: Command, fx: &mut Vec<Effect>) -> Outcome {
        let [text] = Self::areas(data);
        let rows = text.height as usize;
        match c {
            Command::Back => Outcome::Close,
            c if is_move(c) => {
                let n = self
                    .lines(data, text.width as usize, &Theme::new(true))
                    .len();
                let max = n.saturating_sub(rows);
                self.scroll = moved(c, self.scroll, max + 1, rows);
                Outcome::Done
            }
            Command::Link | Command::Submit => {
                let (Some(holder), Of::TenantUser { id, .. }) =
                    (self.conflict_holder(data), &self.of)
                else {
                    return if c == Command::Submit {
                        Outcome::Close
                    } else {
                        Outcome::Ignored
                    };
                };
                let who = data
                    .directory
                    .user(holder)
                    .map(|u| u.email.clone())
                    .unwrap_or_default();
                data.say(Topic::Fix, format!("Linking the account to {who}…"));
                fx.push(Effect::Fix {
                    fix: Fix::Link {
                        directory_id: holder,
                        tenant_user_id: id.clone(),
                    },
                    key: None,
                });
                Outcome::Close
            }
            Command::Fix => {
                let Of::Error(e) = &self.of else {
                    return Outcome::Ignored;
                };
                match data.errors.iter().position(|x| x == &**e) {
                    Some(i) => super::fix::open(data, i, None),
                    None => {
                        data.say(Topic::Fix, "That error is gone (re-checked).");
                        Outcome::Close
                    }
                }
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
        let [text] = Self::areas(data);
        let lines = self.lines(data, text.width as usize, theme);
        let n = lines.len();
        let rows = text.height as usize;
        let scroll = self.scroll.min(n.saturating_sub(rows));
        let mut title = self.title(data);
        if n > rows {
            title.push_str(&format!(
                " · lines {}-{} of {}",
                scroll + 1,
                (scroll + rows).min(n),
                n
            ));
        }
        frame.render_widget(frame_block(title, theme), rect);
        let shown: Vec<Line> = lines.into_iter().skip(scroll).take(rows).collect();
        frame.render_widget(Paragraph::new(shown), text);
    }
}

impl Dialog for Detail {
    fn sync(&mut self, _: &mut Data) -> Outcome {
        Outcome::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    fn text(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_conflict_says_who_holds_its_address_and_enter_links_it() {
        let mut s = fixtures::bindings_state();
        // Tenant row 8 is a Conflict; the directory user 9 has its address.
        let mut idx = crate::directory::DirectoryIndex::default();
        let u = s.data.rows.user(8).clone();
        idx.by_email.insert(u.email().to_lowercase(), (9, None));
        s.data.index = std::sync::Arc::new(idx);
        let mut d = Detail::tenant_user(&s.data, 8);
        let t = text(&d.lines(&s.data, 100, &Theme::new(true)));
        assert!(
            t.contains("Why Conflict") && t.contains(&s.data.directory.users[8].email),
            "{t}"
        );
        assert!(d.commands(&s.data).contains(&Command::Link));
        let mut fx = Vec::new();
        assert_eq!(
            d.command(&mut s.data, Command::Submit, &mut fx),
            Outcome::Close
        );
        assert_eq!(
            fx,
            vec![Effect::Fix {
                fix: Fix::Link {
                    directory_id: 9,
                    tenant_user_id: u.id.clone()
                },
                key: None
            }]
        );
        // Not a Conflict: Enter closes, nothing is sent.
        let mut d = Detail::tenant_user(&s.data, 0);
        fx.clear();
        assert_eq!(
            d.command(&mut s.data, Command::Submit, &mut fx),
            Outcome::Close
        );
        assert!(fx.is_empty());
    }

    #[test]
    fn a_directory_user_shows_its_upn_wish_groups_and_last_error() {
        let mut s = fixtures::groups_state();
        s.data
            .directory
            .upn_overrides
            .insert(11, "lynne@contoso.com".into());
        let d = Detail::directory_user(11);
        let t = text(&d.lines(&s.data, 120, &Theme::new(true)));
        assert!(
            t.contains("lynne@contoso.com (used at bind: the default-domain fix"),
            "{t}"
        );
        assert!(
            t.contains("Last error") && t.contains("create account failed"),
            "{t}"
        );
        assert!(t.contains("Groups       —"), "in no group: {t}");
        let t = text(&Detail::directory_user(10).lines(&s.data, 120, &Theme::new(true)));
        assert!(t.contains("R&D; Ops"), "its group: {t}");
        let g = Detail::group(2);
        let t = text(&g.lines(&s.data, 120, &Theme::new(true)));
        assert!(
            t.contains("Members: 3") && t.contains(&s.data.directory.users[0].email),
            "{t}"
        );
    }

    #[test]
    fn scrolling_stops_at_the_last_line() {
        let mut s = fixtures::groups_state();
        s.data.height = 12;
        let mut d = Detail::group(1);
        let mut fx = Vec::new();
        for _ in 0..50 {
            d.command(&mut s.data, Command::Down, &mut fx);
        }
        let [text_area] = Detail::areas(&s.data);
        let n = d
            .lines(&s.data, text_area.width as usize, &Theme::new(true))
            .len();
        assert_eq!(d.scroll, n.saturating_sub(text_area.height as usize));
    }
}
