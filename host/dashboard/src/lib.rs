//! The dashboard's built files, embedded at compile time from `web/dist` (see build.rs). Empty when the
//! dashboard was not built before the gateway.

#![forbid(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// Whether this binary carries a dashboard build.
pub fn built() -> bool {
    FILES.iter().any(|(path, _)| *path == "/index.html")
}
