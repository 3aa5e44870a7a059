//! A plugin's name: parsed at the boundary, then trusted.

use std::fmt;

use crate::names::NameError;

const MAX: usize = 63;

/// A plugin's name, unique in the gateway: 1 to 63 characters from a-z, 0-9 and '-', starting with a letter or
/// digit (the rules of a profile slug).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginName(String);

impl PluginName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let bytes = value.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(NameError::Invalid {
                kind: "plugin name",
                value: value.to_owned(),
                max: MAX,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_validated() {
        assert!(PluginName::parse("egress-allowlist").is_ok());
        for bad in ["", "-x", "Tool", "a_b", "a/b", &"x".repeat(64)] {
            assert!(PluginName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
