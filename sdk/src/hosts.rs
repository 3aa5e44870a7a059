//! Host name patterns: `api.example.com` (exact) or `*.example.com` (exactly one label before the domain: the
//! apex is never implied and a wildcard never spans labels). Comparison is case-insensitive and ignores a
//! trailing dot.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.suffix`.
    OneLabel(String),
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let host = normalize(text);
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(format!("{text:?}: a wildcard needs a domain after `*.`"));
            }
            return Ok(HostPattern::OneLabel(suffix.to_owned()));
        }
        if host.contains('*') {
            return Err(format!(
                "{text:?}: `*` is allowed only as the whole first label (`*.example.com`)"
            ));
        }
        Ok(HostPattern::Exact(host))
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = normalize(host);
        match self {
            HostPattern::Exact(exact) => &host == exact,
            HostPattern::OneLabel(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_label_wildcards_never_match_the_apex_or_deeper_names() {
        let p = HostPattern::parse("*.Example.com.").unwrap();
        assert!(p.matches("api.example.com"));
        assert!(p.matches("API.EXAMPLE.COM."));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("a.b.example.com"));
        assert!(!p.matches("evilexample.com"));
        assert!(HostPattern::parse("a.*.com").is_err());
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("").is_err());
    }
}
