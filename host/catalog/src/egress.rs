//! Egress entries of a manifest (`api.example.com`, `*.example.com`) and the registry's denylist.

use std::net::IpAddr;

/// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`: server names, vendors and each label of an egress host.
pub fn is_slug(text: &str) -> bool {
    let bytes = text.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match bytes {
        [] => false,
        [one] => inner(one),
        [first, middle @ .., last] => inner(first) && inner(last) && middle.iter().all(|b| inner(b) || *b == b'-'),
    }
}

/// The registry's check of one egress entry, in its order; the error says what is wrong.
pub fn check_entry(entry: &str) -> Result<(), String> {
    let host = match entry.strip_prefix("*.") {
        Some(host) => {
            if !host.contains('.') {
                return Err(format!(
                    "egress {entry:?} invalid: a wildcard suffix must keep at least two labels"
                ));
            }
            host
        }
        None => entry,
    };
    if host.contains('*') {
        return Err(format!("egress {entry:?} invalid: bare or embedded wildcard"));
    }
    if entry.contains([':', '/']) {
        return Err(format!("egress {entry:?} invalid: ports and paths not allowed"));
    }
    if host.parse::<IpAddr>().is_ok() {
        return Err(format!("egress {entry:?} invalid: raw IP literals not allowed"));
    }
    if !host.split('.').all(is_slug) {
        return Err(format!(
            "egress {entry:?} invalid: each label must be lowercase [a-z0-9-], not starting or ending with -"
        ));
    }
    Ok(())
}

/// The schema's `egressAllows`: `host` equals an entry (ignoring case), or an entry `*.s` and `host` ends
/// with `.s` at any depth. The apex `s` itself is not matched.
pub fn allows(egress: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    egress.iter().any(|entry| match entry.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{}", suffix.to_ascii_lowercase())),
        None => entry.eq_ignore_ascii_case(&host),
    })
}

/// The denylist of exfiltration and internal domains (`denylist/exfil-domains.txt`): one domain per line,
/// `#` comments and blank lines ignored.
#[derive(Debug, Clone, Default)]
pub struct Denylist(Vec<String>);

impl Denylist {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .map(|line| line.trim().to_ascii_lowercase())
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .collect(),
        )
    }

    /// The denylist entry an egress entry hits, if any: the host (without `*.`) equals it or is under it.
    pub fn hit(&self, entry: &str) -> Option<&str> {
        let host = entry.strip_prefix("*.").unwrap_or(entry);
        self.0
            .iter()
            .find(|bad| host == bad.as_str() || host.ends_with(&format!(".{bad}")))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_entries_are_accepted_and_refused_as_the_registry_does() {
        for good in ["slack.com", "*.slack.com", "*.s3.us-east-1.amazonaws.com", "a-1.b2.io"] {
            assert_eq!(check_entry(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("*", "bare or embedded"),
            ("*.com", "two labels"),
            ("foo.*.com", "bare or embedded"),
            ("*.*.x.com", "bare or embedded"),
            ("slack.com:443", "ports and paths"),
            ("slack.com/path", "ports and paths"),
            ("10.0.0.1", "raw IP"),
            ("*.10.0.0.1", "raw IP"),
            ("", "each label"),
            ("UPPER.com", "each label"),
            ("-bad.com", "each label"),
            ("trailing.dot.", "each label"),
        ] {
            let error = check_entry(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn wildcards_allow_any_depth_but_not_the_apex() {
        let egress = vec!["*.dynamics.com".to_owned(), "api.x.io".to_owned()];
        assert!(allows(&egress, "org.api.crm.dynamics.com"));
        assert!(allows(&egress, "a.dynamics.com"));
        assert!(allows(&egress, "API.X.io"));
        assert!(!allows(&egress, "dynamics.com"));
        assert!(!allows(&egress, "evildynamics.com"));
        assert!(!allows(&egress, "b.x.io"));
    }

    #[test]
    fn the_denylist_matches_a_domain_and_everything_under_it() {
        let list = Denylist::parse("# comment\npastebin.com\n\n ngrok.io \nmetadata.google.internal\ninternal\n");
        assert_eq!(list.hit("pastebin.com"), Some("pastebin.com"));
        assert_eq!(list.hit("api.pastebin.com"), Some("pastebin.com"));
        assert_eq!(list.hit("*.ngrok.io"), Some("ngrok.io"));
        assert_eq!(list.hit("metadata.google.internal"), Some("metadata.google.internal"));
        assert_eq!(list.hit("x.internal"), Some("internal"));
        assert_eq!(list.hit("notpastebin.com"), None);
    }
}
