//! Validated names: parse at the boundary, then trust.
//!
//! A profile slug, a server name and a name prefix each have their own type so that one can never be
//! passed where another is meant (the original system once read a profile id as a user id).

use std::fmt;

use thiserror::Error;

/// MCP limits tool and prompt names to 128 characters; the exposed name is `<prefix>_<name>`.
pub const MAX_EXPOSED_NAME: usize = 128;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "invalid {kind} {value:?}: use 1 to {max} characters from a-z, 0-9, '-' and '_', starting with a letter or digit"
    )]
    Invalid {
        kind: &'static str,
        value: String,
        max: usize,
    },
}

fn is_valid(value: &str, max: usize, allow_underscore: bool) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && !bytes[0].is_ascii_uppercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || (allow_underscore && *b == b'_'))
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $max:expr, $underscore:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            pub fn parse(value: &str) -> Result<Self, NameError> {
                if is_valid(value, $max, $underscore) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(NameError::Invalid { kind: $kind, value: value.to_owned(), max: $max })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

name_type!(
    /// A profile's slug: the `<slug>` of `/mcp/p/<slug>`. No underscore, so it reads cleanly in URLs.
    ProfileSlug,
    "profile slug",
    63,
    false
);
name_type!(
    /// A server's name, unique in the gateway.
    ServerName,
    "server name",
    63,
    true
);
name_type!(
    /// A plugin's name, unique in the gateway: the rules of a profile slug.
    PluginName,
    "plugin name",
    63,
    false
);

/// The prefix a server's tools and prompts are exposed under: `<prefix>_<name>`, or the plain name when empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() || is_valid(value, 63, true) {
            Ok(Self(value.to_owned()))
        } else {
            Err(NameError::Invalid {
                kind: "prefix",
                value: value.to_owned(),
                max: 63,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name a client sees for an upstream `name`.
    pub fn expose(&self, name: &str) -> String {
        if self.0.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{}", self.0, name)
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables of the CLI line up: a name honours the width and alignment of a format (`{:<24}`).
    #[test]
    fn names_pad_like_strings() {
        let server = ServerName::parse("echo").unwrap();
        assert_eq!(format!("[{server:<8}]"), "[echo    ]");
        assert_eq!(format!("[{:>6}]", ProfileSlug::parse("demo").unwrap()), "[  demo]");
        assert_eq!(format!("[{:<6}]", Prefix::parse("ec").unwrap()), "[ec    ]");
        assert_eq!(format!("[{:<8}]", PluginName::parse("p").unwrap()), "[p       ]");
    }

    #[test]
    fn plugin_names_are_validated() {
        assert!(PluginName::parse("egress-allowlist").is_ok());
        for bad in ["", "-x", "Tool", "a_b", "a/b", &"x".repeat(64)] {
            assert!(PluginName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs_reject_what_urls_and_shells_would_mangle() {
        for bad in ["", "Demo", "a b", "a/b", "../x", "a_b", "-x", &"x".repeat(64), "é"] {
            assert!(ProfileSlug::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["demo", "team-1", "0x"] {
            assert!(ProfileSlug::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn server_names_allow_underscores() {
        assert!(ServerName::parse("my_server-2").is_ok());
        assert!(ServerName::parse("_x").is_err());
        assert!(ServerName::parse("X").is_err());
    }

    #[test]
    fn empty_prefix_exposes_the_plain_name() {
        assert_eq!(Prefix::parse("").unwrap().expose("echo"), "echo");
        assert_eq!(Prefix::parse("srv").unwrap().expose("echo"), "srv_echo");
        assert!(Prefix::parse("a b").is_err());
    }
}
