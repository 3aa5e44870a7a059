//! Errors as operators read them.

/// The error and its causes on one line (`error sending request: … : invalid peer certificate: …`), each cause
/// once: a message that already contains its cause's text is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
