//! Styles, NO_COLOR aware: without colour the selection stays visible by reverse video and bold,
//! and status words carry the meaning colour would.
use ratatui::style::{Color, Modifier, Style};

use crate::directory::{BindingState, ImportStatus};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(no_color: bool) -> Theme {
        Theme { color: !no_color }
    }
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn tab_active(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Cyan)
                .fg(Color::Black)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn bar(&self) -> Style {
        if self.color {
            Style::new().bg(Color::Indexed(236)).fg(Color::Gray)
        } else {
            Style::new()
        }
    }
    pub fn header_row(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn banner(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Magenta)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }
    pub fn status(&self, s: ImportStatus) -> Style {
        match s {
            ImportStatus::New => self.fg(Color::Cyan),
            ImportStatus::Imported => self.fg(Color::Green),
            ImportStatus::Conflict => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ImportStatus::Failed => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            ImportStatus::Guest => self.fg(Color::Magenta),
        }
    }
    pub fn binding(&self, b: BindingState) -> Style {
        match b {
            BindingState::Bound => self.fg(Color::Green),
            BindingState::Unbound => self.fg(Color::Gray),
            BindingState::Blocked => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        }
    }
    /// A change the directory wants and the tenant does not have yet (magenta, bold).
    pub fn pending(&self) -> Style {
        self.fg(Color::Magenta).add_modifier(Modifier::BOLD)
    }
    pub fn gauge(&self) -> Style {
        self.fg(Color::Cyan)
    }
}
