//! The settings, one file per section of the config file (`[server]`, `[routing]`, ...). A
//! section is one `section!` list: each line names a setting's key in the file, its flat name
//! (the key of `GET /api/settings` and of the settings table), its type, its default and, for a
//! number, its bounds. From that list follow the section's type, its patch (what a file or a
//! settings change gives), the bounds check, the rows the store writes, and the export; the
//! admin UI builds its form from [`fields`]. A check the bounds cannot say (an origin's shape)
//! stays with the config validator.
//!
//! To add a setting: one line in its section, and its label (`settings.<name>`) in the UI's
//! translations. To add a section: a file here, a field in [`Settings`] and [`SettingsPatch`],
//! and a line in [`SECTIONS`].

use serde::{Deserialize, Serialize};

/// What a form and a validator know about one setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingInfo {
    /// The config file's section: `server`.
    pub section: &'static str,
    /// The key in the section: `request_timeout_s`.
    pub key: &'static str,
    /// The flat name: in `GET /api/settings` and the settings table.
    pub name: &'static str,
    /// `section.key`: how errors name the field, and the form field's id.
    pub id: &'static str,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Whole {
        min: u64,
        max: u64,
    },
    Flag,
    Text,
    /// A list of strings.
    List,
    /// A JSON object (a table in the config file).
    Object,
}

impl Kind {
    pub const fn bounded(self, min: u64, max: u64) -> Kind {
        match self {
            Kind::Whole { .. } => Kind::Whole { min, max },
            other => other,
        }
    }
}

/// A number given outside its setting's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub setting: &'static SettingInfo,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "must be between {} and {}, got {}",
            self.min, self.max, self.value
        )
    }
}

impl SettingInfo {
    /// `Some` when `value` is a number outside the bounds.
    pub fn check(&'static self, value: Option<u64>) -> Option<OutOfRange> {
        match (self.kind, value) {
            (Kind::Whole { min, max }, Some(value)) if !(min..=max).contains(&value) => {
                Some(OutOfRange {
                    setting: self,
                    value,
                    min,
                    max,
                })
            }
            _ => None,
        }
    }
}

/// A type a setting may have.
pub trait SettingValue: Clone {
    const KIND: Kind;
    /// The value as a whole number, for the bounds check.
    fn whole(&self) -> Option<u64> {
        None
    }
    fn to_json(&self) -> serde_json::Value;
}

macro_rules! whole_value {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            const KIND: Kind = Kind::Whole { min: 0, max: <$t>::MAX as u64 };
            fn whole(&self) -> Option<u64> {
                Some(u64::from(*self))
            }
            fn to_json(&self) -> serde_json::Value {
                serde_json::Value::from(*self)
            }
        }
    )*};
}
whole_value!(u16, u32, u64);

impl SettingValue for bool {
    const KIND: Kind = Kind::Flag;
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Bool(*self)
    }
}

impl SettingValue for String {
    const KIND: Kind = Kind::Text;
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.clone())
    }
}

impl SettingValue for serde_json::Map<String, serde_json::Value> {
    const KIND: Kind = Kind::Object;
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.clone())
    }
}

impl SettingValue for Vec<String> {
    const KIND: Kind = Kind::List;
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::from(self.clone())
    }
}

/// Defines a section: `key => name: Type = default, range(min, max);` per setting (the range
/// for numbers only; without one, a number may take any value of its type).
macro_rules! section {
    (
        $(#[$doc:meta])*
        $section:literal => $name:ident, $patch:ident {
            $(
                $(#[$fdoc:meta])*
                $key:ident => $field:ident : $ty:ty = $default:expr $(, range($lo:expr, $hi:expr))? ;
            )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $ty, )+
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )+ }
            }
        }

        #[doc = concat!("`[", $section, "]` as a config file or a settings change gives it: ",
            "only what it names is set.")]
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $patch {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$ty>,
            )+
        }

        impl $name {
            pub const SECTION: &'static str = $section;

            pub const FIELDS: &'static [$crate::settings::SettingInfo] = &[$(
                $crate::settings::SettingInfo {
                    section: $section,
                    key: stringify!($key),
                    name: stringify!($field),
                    id: concat!($section, ".", stringify!($key)),
                    kind: {
                        let kind = <$ty as $crate::settings::SettingValue>::KIND;
                        $( let kind = kind.bounded($lo, $hi); )?
                        kind
                    },
                },
            )+];

            /// A patch that sets every setting to its value here: the export's form.
            pub fn to_patch(&self) -> $patch {
                $patch { $( $key: Some(self.$field.clone()), )+ }
            }
        }

        impl $patch {
            /// The first setting given outside its bounds, with the value given.
            pub fn out_of_range(&self) -> Option<$crate::settings::OutOfRange> {
                let given = [$(
                    self.$key.as_ref().and_then($crate::settings::SettingValue::whole),
                )+];
                $name::FIELDS.iter().zip(given).find_map(|(info, n)| info.check(n))
            }

            /// What it sets, as (flat name, JSON value): the settings table's rows.
            pub fn entries(&self) -> Vec<(&'static str, serde_json::Value)> {
                let mut out = Vec::new();
                $(
                    if let Some(v) = &self.$key {
                        out.push((
                            stringify!($field),
                            $crate::settings::SettingValue::to_json(v),
                        ));
                    }
                )+
                out
            }
        }
    };
}

mod admin;
mod app;
mod cooldown;
mod logs;
mod pricing;
mod routing;
mod server;

pub use admin::{Admin, AdminPatch};
pub use app::{App, AppPatch};
pub use cooldown::{Cooldown, CooldownPatch, MAX_COOLDOWN_S};
pub use logs::{Logs, LogsPatch};
pub use pricing::{Pricing, PricingPatch};
pub use routing::{Routing, RoutingPatch};
pub use server::{DEFAULT_HOST, DEFAULT_PORT, Server, ServerPatch};

/// The effective settings: `GET /api/settings` answers them flat, by each setting's name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub server: Server,
    #[serde(flatten)]
    pub routing: Routing,
    #[serde(flatten)]
    pub cooldown: Cooldown,
    #[serde(flatten)]
    pub app: App,
    #[serde(flatten)]
    pub admin: Admin,
    #[serde(flatten)]
    pub logs: Logs,
    #[serde(flatten)]
    pub pricing: Pricing,
}

/// Settings by section, as the config file or `PUT /api/settings` gives them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default)]
    pub server: ServerPatch,
    #[serde(default)]
    pub routing: RoutingPatch,
    #[serde(default)]
    pub cooldown: CooldownPatch,
    #[serde(default)]
    pub app: AppPatch,
    #[serde(default)]
    pub admin: AdminPatch,
    #[serde(default)]
    pub logs: LogsPatch,
    #[serde(default)]
    pub pricing: PricingPatch,
}

/// The sections in the order of the file and the form.
pub const SECTIONS: [(&str, &[SettingInfo]); 7] = [
    (Server::SECTION, Server::FIELDS),
    (Routing::SECTION, Routing::FIELDS),
    (Cooldown::SECTION, Cooldown::FIELDS),
    (App::SECTION, App::FIELDS),
    (Admin::SECTION, Admin::FIELDS),
    (Logs::SECTION, Logs::FIELDS),
    (Pricing::SECTION, Pricing::FIELDS),
];

/// Every setting, section by section.
pub fn fields() -> impl Iterator<Item = &'static SettingInfo> {
    SECTIONS.iter().flat_map(|(_, fields)| fields.iter())
}

impl SettingsPatch {
    /// What it sets, as (flat name, JSON value) pairs.
    pub fn entries(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = self.server.entries();
        out.extend(self.routing.entries());
        out.extend(self.cooldown.entries());
        out.extend(self.app.entries());
        out.extend(self.admin.entries());
        out.extend(self.logs.entries());
        out.extend(self.pricing.entries());
        out
    }

    /// The first setting given outside its bounds, with the value given.
    pub fn out_of_range(&self) -> Option<OutOfRange> {
        self.server
            .out_of_range()
            .or_else(|| self.routing.out_of_range())
            .or_else(|| self.cooldown.out_of_range())
            .or_else(|| self.app.out_of_range())
            .or_else(|| self.admin.out_of_range())
            .or_else(|| self.logs.out_of_range())
            .or_else(|| self.pricing.out_of_range())
    }
}

impl Settings {
    /// Every setting as a patch that sets it: the export's form.
    pub fn to_patch(&self) -> SettingsPatch {
        SettingsPatch {
            server: self.server.to_patch(),
            routing: self.routing.to_patch(),
            cooldown: self.cooldown.to_patch(),
            app: self.app.to_patch(),
            admin: self.admin.to_patch(),
            logs: self.logs.to_patch(),
            pricing: self.pricing.to_patch(),
        }
    }
}

#[cfg(test)]
mod tests;
