//! The terminal toolkit: styles (NO_COLOR aware), text made safe and measured by display width,
//! and the widgets every screen is made of. It knows nothing of the app: the console's screens
//! are components in `app` (each tab and dialog draws itself with these), so `app` uses `ui`
//! and `ui` never uses `app`.
pub mod text;
pub mod theme;
pub mod widgets;

pub use text::{fit, wrap};
pub use theme::Theme;
