//! m365sync: provision directory users into a Microsoft 365 tenant from the terminal.
//!
//! Module map and the walls between modules: see DESIGN.md (the simulator in `sim` never
//! imports the client's code, so a test compares two independent implementations).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod csvsafe;
pub mod demo;
pub mod diagnose;
pub mod directory;
pub mod failure;
pub mod format;
pub mod graph;
pub mod handoff;
pub mod keymap;
pub mod lock;
pub mod logfile;
pub mod sim;
pub mod snapshot;
pub mod sync;
pub mod text;
pub mod ui;
