//! Recognising secret-looking strings without regular expressions: the text is cut into words of token
//! characters and each word is checked against the shapes of common credentials; PEM private key blocks are
//! found by their armour. The shapes are specific (prefix, length, alphabet) to keep false positives rare.

const REDACTED: &str = "[REDACTED]";

/// Prefixes worth a closer look; text without any of them is passed without parsing.
const HINTS: &[&str] = &[
    "PRIVATE KEY",
    "AKIA",
    "ASIA",
    "gh",
    "github_pat_",
    "xox",
    "eyJ",
    "gig_",
    "sk-",
    "glpat-",
];

pub fn may_contain(text: &str) -> bool {
    HINTS.iter().any(|hint| text.contains(hint))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

fn all(text: &str, pred: impl Fn(u8) -> bool) -> bool {
    text.bytes().all(pred)
}

fn upper_or_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether one word has the shape of a credential.
fn looks_secret(word: &str) -> bool {
    let word = word.trim_matches('.');
    let with = |prefix: &str| word.strip_prefix(prefix);
    if let Some(rest) = with("AKIA").or_else(|| with("ASIA")) {
        return rest.len() == 16 && all(rest, upper_or_digit);
    }
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if let Some(rest) = with(prefix) {
            return rest.len() >= 36 && all(rest, |b| b.is_ascii_alphanumeric());
        }
    }
    if let Some(rest) = with("github_pat_") {
        return rest.len() >= 60 && all(rest, |b| b.is_ascii_alphanumeric() || b == b'_');
    }
    if let Some(rest) = with("glpat-") {
        return rest.len() >= 20 && all(rest, base64url);
    }
    if word.len() > 4 && word.starts_with("xox") && word.as_bytes()[4] == b'-' {
        return word.len() >= 20 && b"baprs".contains(&word.as_bytes()[3]) && all(&word[5..], base64url);
    }
    if let Some(rest) = with("gig_") {
        return rest.len() == 43 && all(rest, base64url);
    }
    if let Some(rest) = with("sk-") {
        return rest.len() >= 32 && all(rest, base64url);
    }
    if word.starts_with("eyJ") {
        let parts: Vec<&str> = word.split('.').collect();
        return parts.len() == 3 && parts.iter().all(|p| p.len() >= 8 && all(p, base64url));
    }
    false
}

/// The text with every secret-looking word and private key block replaced, or None if there was none.
pub fn redact(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    // PEM private keys first: their base64 lines are not words of a known shape.
    while let Some(start) = rest.find("-----BEGIN ") {
        let header_end = rest[start..]
            .find("-----\n")
            .or_else(|| rest[start + 11..].find("-----").map(|i| i + 11));
        let is_private = header_end.is_some_and(|end| rest[start..start + end].contains("PRIVATE KEY"));
        let end_marker = rest[start..]
            .find("-----END ")
            .and_then(|e| rest[start + e + 9..].find("-----").map(|f| start + e + 9 + f + 5));
        match (is_private, end_marker) {
            (true, Some(end)) => {
                out.push_str(&rest[..start]);
                out.push_str(REDACTED);
                rest = &rest[end..];
                changed = true;
            }
            _ => {
                out.push_str(&rest[..start + 11]);
                rest = &rest[start + 11..];
            }
        }
    }
    out.push_str(rest);
    let mut result = String::with_capacity(out.len());
    let bytes = out.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if is_word_byte(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_word_byte(bytes[i]) {
                i += 1;
            }
            let word = &out[start..i];
            if looks_secret(word) {
                result.push_str(REDACTED);
                changed = true;
            } else {
                result.push_str(word);
            }
        } else {
            let start = i;
            while i < bytes.len() && !is_word_byte(bytes[i]) {
                i += 1;
            }
            result.push_str(&out[start..i]);
        }
    }
    changed.then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_shapes_are_redacted_and_ordinary_text_is_not() {
        let gh = format!("token ghp_{} here", "a".repeat(36));
        assert_eq!(redact(&gh).unwrap(), "token [REDACTED] here");
        assert_eq!(redact("key=AKIAABCDEFGHIJKLMNOP;").unwrap(), "key=[REDACTED];");
        let jwt = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36";
        assert_eq!(redact(jwt).unwrap(), "Bearer [REDACTED]");
        let pem = "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----\nb";
        assert_eq!(redact(pem).unwrap(), "a\n[REDACTED]\nb");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(redact(cert), None);
        assert_eq!(redact("the gh cli and sk-learn and AKIA are fine"), None);
        assert_eq!(redact(&format!("gig_{}", "x".repeat(43))).unwrap(), "[REDACTED]");
    }
}
