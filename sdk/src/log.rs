//! Logging into the gateway's log, attributed to the plugin. The host caps the length of a line and the
//! number of lines per call. Never log secrets or whole requests: the log is read by people.

pub use crate::bindings::gigmcp::plugin::log::Level;

/// Writes one line. Prefer the macros: [`crate::info!`], [`crate::warn!`], [`crate::error!`], [`crate::debug!`].
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::gigmcp::plugin::log::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        // Native builds (a plugin's unit tests) have no host: print instead.
        eprintln!("[{level:?}] {message}");
    }
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)*)) };
}
