//! Typed configuration. The gateway has already checked the configuration against the plugin's JSON
//! Schema; parsing it into a Rust type here catches what a schema cannot say and gives the operator a
//! precise error, which `gigmcp plugin config` prints.

use serde::de::DeserializeOwned;

use crate::PluginError;

/// Parses the configuration JSON into `T`. An error has the code `invalid-config` and says where.
pub fn parse<T: DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    serde_json::from_str(text).map_err(|e| PluginError::new("invalid-config", format!("configuration: {e}")))
}

/// For plugins without settings: accepts only an empty object.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

impl NoConfig {
    pub const SCHEMA: &'static str = r#"{"type":"object","additionalProperties":false}"#;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        hosts: Vec<String>,
    }

    #[test]
    fn parse_reports_the_field_at_fault() {
        let ok: Sample = parse(r#"{"hosts":["a"]}"#).unwrap();
        assert_eq!(ok.hosts, ["a"]);
        let err = parse::<Sample>(r#"{"hostz":[]}"#).err().unwrap();
        assert_eq!(err.code, "invalid-config");
        assert!(err.message.contains("hostz"), "{}", err.message);
        assert!(parse::<NoConfig>("").is_ok());
    }
}
