//! Entity tags for the objects a stale write could clobber: a plugin's configuration (its current revision)
//! and a profile's servers (their ordered list). A client reads the tag (`ETag`), sends it back with its write
//! (`If-Match`), and a write made against anything else is refused (412) instead of undoing someone's change.

use sha2::{Digest, Sha256};

use crate::names::ServerName;

/// The tag of a plugin whose current revision is `revision`: every change (configuration, new version,
/// rollback) makes another revision current.
pub fn plugin_revision(revision: i64) -> String {
    format!("\"rev-{revision}\"")
}

/// The tag of a profile's servers, in order: equal lists have equal tags.
pub fn profile_servers(servers: &[ServerName]) -> String {
    let mut hash = Sha256::new();
    for server in servers {
        hash.update(server.as_str().as_bytes());
        hash.update(b"\n");
    }
    format!("\"servers-{}\"", &hex::encode(hash.finalize())[..16])
}

/// Whether an `If-Match` header value lets a write to an object tagged `current` go ahead: `*`, or a list of
/// tags of which one is `current` (compared strongly: a weak tag `W/"…"` never matches).
pub fn if_match(header: &str, current: &str) -> bool {
    let header = header.trim();
    header == "*" || header.split(',').any(|tag| tag.trim() == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_what_they_tag() {
        let a = ServerName::parse("a").unwrap();
        let b = ServerName::parse("b").unwrap();
        assert_eq!(
            profile_servers(&[a.clone(), b.clone()]),
            profile_servers(&[a.clone(), b.clone()])
        );
        assert_ne!(profile_servers(&[a.clone(), b.clone()]), profile_servers(&[b, a]));
        assert_ne!(profile_servers(&[]), plugin_revision(1));
        assert_eq!(plugin_revision(12), "\"rev-12\"");
    }

    #[test]
    fn if_match_compares_strongly() {
        let tag = plugin_revision(3);
        assert!(if_match("\"rev-3\"", &tag));
        assert!(if_match(" \"rev-1\", \"rev-3\" ", &tag));
        assert!(if_match("*", &tag));
        assert!(!if_match("W/\"rev-3\"", &tag));
        assert!(!if_match("\"rev-4\"", &tag));
        assert!(!if_match("rev-3", &tag));
        assert!(!if_match("", &tag));
    }
}
