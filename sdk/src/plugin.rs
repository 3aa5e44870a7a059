//! The part every kind shares: configuration and the instance's state.

use serde::de::DeserializeOwned;

use crate::PluginError;

/// A plugin: built from its configuration once per instance (`init`), then asked by the kind's hooks.
///
/// The gateway creates instances as it needs them (never shared between profiles) and may discard one at
/// any time, so keep no state that must outlive a call except what `new` derives from the configuration.
pub trait Plugin: Sized + 'static {
    /// The configuration, parsed from the operator's JSON.
    type Config: DeserializeOwned;
    /// A JSON Schema for the configuration (the subset of JSON Schema the gateway supports is listed in
    /// `wit/README.md`). The gateway checks configurations against it before `new` sees them.
    const CONFIG_SCHEMA: &'static str;

    fn new(config: Self::Config) -> Result<Self, PluginError>;
}

/// Builds the plugin from the configuration JSON (the `init` export).
#[doc(hidden)]
pub fn build<T: Plugin>(config: &str) -> Result<T, PluginError> {
    let parsed: T::Config = crate::config::parse(config)?;
    T::new(parsed)
}

/// The answer to a hook called before `init` succeeded. The host never does that; a plugin answers such a
/// call with a denial or an error rather than a trap.
#[doc(hidden)]
pub fn not_initialised() -> PluginError {
    PluginError::new("not-initialised", "the plugin was called before init succeeded")
}

/// Exports a plugin: `export_plugin!(MyPlugin);` once, at the crate's root. `MyPlugin` implements
/// [`Plugin`] and the trait of the kind the crate's SDK feature selects.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __GIGMCP_INSTANCE: ::std::cell::RefCell<::std::option::Option<::std::rc::Rc<$plugin>>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            // The instance's plugin, set by `init`. A WebAssembly instance is single-threaded.
            fn __gigmcp_plugin() -> ::std::option::Option<::std::rc::Rc<$plugin>> {
                __GIGMCP_INSTANCE.with(|slot| slot.borrow().clone())
            }

            #[allow(dead_code)]
            struct __GigmcpExport;

            impl $crate::bindings::exports::gigmcp::plugin::lifecycle::Guest for __GigmcpExport {
                fn config_schema() -> ::std::string::String {
                    <$plugin as $crate::Plugin>::CONFIG_SCHEMA.into()
                }
                fn init(config: ::std::string::String) -> ::std::result::Result<(), $crate::PluginError> {
                    let plugin = $crate::__plugin::build::<$plugin>(&config)?;
                    __GIGMCP_INSTANCE
                        .with(|slot| *slot.borrow_mut() = ::std::option::Option::Some(::std::rc::Rc::new(plugin)));
                    ::std::result::Result::Ok(())
                }
            }

            $crate::__export_kind!(__GigmcpExport, __gigmcp_plugin);
            // Only components export: native builds (the plugin's unit tests) cannot carry WIT export names.
            #[cfg(target_arch = "wasm32")]
    $crate::bindings::__export_world!(__GigmcpExport with_types_in $crate::bindings);
        };
    };
}
