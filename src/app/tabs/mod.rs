//! The one registry of tabs: a row here (and a module, and a section in keymap.toml) is all a
//! new tab takes. The macro makes the `Tab` enum (order = the row order: `go_tab = 1` is the
//! first), the `Tabs` struct that holds every tab's state, and the only two matches over tabs,
//! which just hand out the tab as a [`TabView`]: a tab that does not implement it all does not
//! compile.
use super::component::TabView;

pub mod bindings;
pub mod errors;
pub mod import;
pub mod licences;

macro_rules! tabs {
    ($($variant:ident => $field:ident : $ty:ty),+ $(,)?) => {
        /// A tab, in header order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Tab {
            $($variant),+
        }

        impl Tab {
            pub const ALL: &'static [Tab] = &[$(Tab::$variant),+];
            pub fn title(self) -> &'static str {
                match self {
                    $(Tab::$variant => <$ty>::TITLE),+
                }
            }
            /// Its section of keymap.toml.
            pub fn section(self) -> &'static str {
                match self {
                    $(Tab::$variant => <$ty>::SECTION.name),+
                }
            }
        }

        /// Every tab's state.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Tabs {
            $(pub $field: $ty),+
        }

        impl Tabs {
            pub fn get(&self, t: Tab) -> &dyn TabView {
                match t {
                    $(Tab::$variant => &self.$field),+
                }
            }
            pub fn get_mut(&mut self, t: Tab) -> &mut dyn TabView {
                match t {
                    $(Tab::$variant => &mut self.$field),+
                }
            }
        }
    };
}

tabs! {
    Import => import: import::ImportTab,
    Bindings => bindings: bindings::BindingsTab,
    Errors => errors: errors::ErrorsTab,
    Licences => licences: licences::LicencesTab,
}

impl Default for Tab {
    fn default() -> Self {
        Tab::ALL[0]
    }
}

impl Tab {
    /// Position in the header (0-based); `go_tab = index + 1`.
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }
    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
    /// The tab `go_tab = n` asks for.
    pub fn nth(n: u8) -> Option<Tab> {
        (n as usize)
            .checked_sub(1)
            .and_then(|i| Tab::ALL.get(i))
            .copied()
    }
}
