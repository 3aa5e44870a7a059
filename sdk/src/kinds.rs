//! One trait per plugin kind, the kind's types, and helpers to build its answers. Only the kind selected
//! by the crate's feature is compiled.

#[cfg(feature = "egress-policy")]
pub use egress::*;
#[cfg(feature = "egress-policy")]
mod egress {
    use crate::{CallContext, DenyReason, Plugin, Verdict};

    pub use crate::bindings::exports::gigmcp::plugin::egress::{EgressDecision, EgressRequest, HttpRequestLine};

    /// `egress-policy`: may the server's sandbox reach `request.host:request.port`?
    pub trait EgressPolicy: Plugin {
        fn decide(&self, ctx: &CallContext, request: &EgressRequest) -> EgressDecision;
    }

    impl EgressDecision {
        pub fn allow() -> Self {
            Self {
                verdict: Verdict::Allow,
                cache_ttl_secs: None,
            }
        }

        pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
            Self {
                verdict: Verdict::Deny(DenyReason::new(code, message)),
                cache_ttl_secs: None,
            }
        }

        /// Lets the host reuse this decision for the same server, host and port for `secs` seconds.
        pub fn cached_for(mut self, secs: u32) -> Self {
            self.cache_ttl_secs = Some(secs);
            self
        }
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __export_kind {
        ($export:ident, $get:ident) => {
            impl $crate::bindings::exports::gigmcp::plugin::egress::Guest for $export {
                fn decide(ctx: $crate::CallContext, request: $crate::EgressRequest) -> $crate::EgressDecision {
                    match $get() {
                        ::std::option::Option::Some(plugin) => $crate::EgressPolicy::decide(&*plugin, &ctx, &request),
                        ::std::option::Option::None => {
                            let e = $crate::__plugin::not_initialised();
                            $crate::EgressDecision::deny(e.code, e.message)
                        }
                    }
                }
            }
        };
    }
}

#[cfg(feature = "credential-injector")]
pub use credentials::*;
#[cfg(feature = "credential-injector")]
mod credentials {
    use crate::{CallContext, Plugin, PluginError};

    pub use crate::bindings::exports::gigmcp::plugin::credentials::{
        Grant, NamedValue, OutboundRequest, PlaceholderLocation, PlaceholderSite, RequestOp, TemplatePart,
    };
    pub use crate::bindings::gigmcp::plugin::secrets::Secret;

    /// `credential-injector`: which headers (or query parameters) an outbound request gets. Values are
    /// templates of literals and secret handles; the gateway substitutes the secrets after the plugin has
    /// returned, only for hosts each secret is bound to.
    pub trait CredentialInjector: Plugin {
        fn inject(
            &self,
            ctx: &CallContext,
            request: &OutboundRequest,
            grants: Vec<Grant>,
        ) -> Result<Vec<RequestOp>, PluginError>;
    }

    /// Builds a value from literals and secrets: `Template::new().literal("Bearer ").secret(&s).build()`.
    #[derive(Default)]
    pub struct Template(Vec<TemplatePart>);

    impl Template {
        pub fn new() -> Self {
            Self::default()
        }

        pub fn literal(mut self, text: impl Into<String>) -> Self {
            let text = text.into();
            if !text.is_empty() {
                self.0.push(TemplatePart::Literal(text));
            }
            self
        }

        /// Places the secret (a new handle to it: the grant keeps its own).
        pub fn secret(mut self, secret: &Secret) -> Self {
            self.0.push(TemplatePart::Secret(secret.duplicate()));
            self
        }

        pub fn build(self) -> Vec<TemplatePart> {
            self.0
        }
    }

    impl RequestOp {
        pub fn set_header(name: impl Into<String>, value: Template) -> Self {
            RequestOp::SetHeader(NamedValue {
                name: name.into(),
                value: value.build(),
            })
        }

        pub fn set_query(name: impl Into<String>, value: Template) -> Self {
            RequestOp::SetQuery(NamedValue {
                name: name.into(),
                value: value.build(),
            })
        }
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __export_kind {
        ($export:ident, $get:ident) => {
            impl $crate::bindings::exports::gigmcp::plugin::credentials::Guest for $export {
                fn inject(
                    ctx: $crate::CallContext,
                    request: $crate::OutboundRequest,
                    grants: ::std::vec::Vec<$crate::Grant>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::RequestOp>, $crate::PluginError> {
                    match $get() {
                        ::std::option::Option::Some(plugin) => {
                            $crate::CredentialInjector::inject(&*plugin, &ctx, &request, grants)
                        }
                        ::std::option::Option::None => ::std::result::Result::Err($crate::__plugin::not_initialised()),
                    }
                }
            }
        };
    }
}

#[cfg(feature = "auth-mapper")]
pub use auth::*;
#[cfg(feature = "auth-mapper")]
mod auth {
    use crate::{CallContext, DenyReason, Plugin};

    pub use crate::bindings::exports::gigmcp::plugin::auth::{AuthOutcome, Identity};

    /// `auth-mapper`: who a verified identity is in the gateway.
    pub trait AuthMapper: Plugin {
        fn map_identity(&self, ctx: &CallContext, identity: &Identity) -> AuthOutcome;
    }

    impl AuthOutcome {
        pub fn forbidden(code: impl Into<String>, message: impl Into<String>) -> Self {
            AuthOutcome::Forbidden(DenyReason::new(code, message))
        }

        pub fn unauthenticated(code: impl Into<String>, message: impl Into<String>) -> Self {
            AuthOutcome::Unauthenticated(DenyReason::new(code, message))
        }
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __export_kind {
        ($export:ident, $get:ident) => {
            impl $crate::bindings::exports::gigmcp::plugin::auth::Guest for $export {
                fn map_identity(ctx: $crate::CallContext, identity: $crate::Identity) -> $crate::AuthOutcome {
                    match $get() {
                        ::std::option::Option::Some(plugin) => {
                            $crate::AuthMapper::map_identity(&*plugin, &ctx, &identity)
                        }
                        ::std::option::Option::None => {
                            let e = $crate::__plugin::not_initialised();
                            $crate::AuthOutcome::unauthenticated(e.code, e.message)
                        }
                    }
                }
            }
        };
    }
}

#[cfg(feature = "audit-sink")]
pub use audit::*;
#[cfg(feature = "audit-sink")]
mod audit {
    use crate::{Plugin, PluginError};

    pub use crate::bindings::exports::gigmcp::plugin::audit::{AuditEvent, Delivery};

    /// `audit-sink`: where copies of audit events go (`stdout`, `file:<name>`, `webhook:<name>`).
    pub trait AuditSink: Plugin {
        fn route(&self, events: Vec<AuditEvent>) -> Result<Vec<Delivery>, PluginError>;
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __export_kind {
        ($export:ident, $get:ident) => {
            impl $crate::bindings::exports::gigmcp::plugin::audit::Guest for $export {
                fn route(
                    events: ::std::vec::Vec<$crate::AuditEvent>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Delivery>, $crate::PluginError> {
                    match $get() {
                        ::std::option::Option::Some(plugin) => $crate::AuditSink::route(&*plugin, events),
                        ::std::option::Option::None => ::std::result::Result::Err($crate::__plugin::not_initialised()),
                    }
                }
            }
        };
    }
}

#[cfg(feature = "mcp-filter")]
pub use mcp::*;
#[cfg(feature = "mcp-filter")]
mod mcp {
    use crate::{CallContext, DenyReason, Plugin};

    pub use crate::bindings::exports::gigmcp::plugin::mcp::{
        McpRequest, McpResponse, RedactAction, Redaction, RequestAction, ResponseAction,
    };

    /// `mcp-filter`: what passes between clients and upstream servers. Both hooks see one upstream server's
    /// messages, with tool and prompt names as that server knows them.
    pub trait McpFilter: Plugin {
        fn on_request(&self, ctx: &CallContext, request: &McpRequest) -> RequestAction;

        fn on_response(&self, _ctx: &CallContext, _response: &McpResponse) -> ResponseAction {
            ResponseAction::Pass
        }
    }

    impl RequestAction {
        pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
            RequestAction::Deny(DenyReason::new(code, message))
        }
    }

    impl ResponseAction {
        pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
            ResponseAction::Deny(DenyReason::new(code, message))
        }
    }

    impl Redaction {
        /// Removes the value at `pointer` (an object member or an array element).
        pub fn remove(pointer: impl Into<String>) -> Self {
            Self {
                pointer: pointer.into(),
                action: RedactAction::Remove,
            }
        }

        /// Replaces the value at `pointer` with a JSON string.
        pub fn replace_with_text(pointer: impl Into<String>, text: &str) -> Self {
            Self {
                pointer: pointer.into(),
                action: RedactAction::Replace(crate::__serde_json::Value::from(text).to_string()),
            }
        }
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __export_kind {
        ($export:ident, $get:ident) => {
            impl $crate::bindings::exports::gigmcp::plugin::mcp::Guest for $export {
                fn on_request(ctx: $crate::CallContext, request: $crate::McpRequest) -> $crate::RequestAction {
                    match $get() {
                        ::std::option::Option::Some(plugin) => $crate::McpFilter::on_request(&*plugin, &ctx, &request),
                        ::std::option::Option::None => {
                            let e = $crate::__plugin::not_initialised();
                            $crate::RequestAction::deny(e.code, e.message)
                        }
                    }
                }

                fn on_response(ctx: $crate::CallContext, response: $crate::McpResponse) -> $crate::ResponseAction {
                    match $get() {
                        ::std::option::Option::Some(plugin) => {
                            $crate::McpFilter::on_response(&*plugin, &ctx, &response)
                        }
                        ::std::option::Option::None => {
                            let e = $crate::__plugin::not_initialised();
                            $crate::ResponseAction::deny(e.code, e.message)
                        }
                    }
                }
            }
        };
    }
}
