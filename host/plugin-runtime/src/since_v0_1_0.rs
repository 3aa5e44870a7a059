//! The adapter for `gigmcp:plugin@0.1.0` (`wit/since_v0.1.0/`): the generated bindings, the host side of
//! its imports, and the conversions between its types and the gateway's own (`hooks`). This is the only
//! place that knows this WIT version; a new version gets a sibling module and the rest of the host stays as
//! it is.

use serde_json::Value;
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::call::{Answer, Hook};
use crate::host_state::HostState;
use gigmcp_types::audit::{AuditEvent, Outcome};
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::policy::{
    AuthOutcome, CallContext, Delivery, DenyReason, EgressDecision, EgressRequest, Grant, Identity, McpRequest,
    McpResponse, PlaceholderLocation, Principal, RedactAction, Redaction, RequestAction, RequestOp, ResponseAction,
    SecretHandle, TemplatePart,
};
use gigmcp_types::user::ProfileAccess;

pub const WIT_VERSION: &str = "0.1.0";
pub const PACKAGE: &str = "gigmcp:plugin";

/// The interface a kind's world exports besides `lifecycle` (its hooks), in this WIT version.
pub fn hook_interface(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::EgressPolicy => "egress",
        PluginKind::CredentialInjector => "credentials",
        PluginKind::AuthMapper => "auth",
        PluginKind::AuditSink => "audit",
        PluginKind::McpFilter => "mcp",
    }
}

/// The `gigmcp:plugin` interfaces a kind's world imports in this WIT version (besides WASI, which every
/// component may import and which is linked to deny-all implementations).
pub fn imported_interfaces(kind: PluginKind) -> &'static [&'static str] {
    match kind {
        PluginKind::CredentialInjector => &["types", "log", "clock", "secrets"],
        _ => &["types", "log", "clock"],
    }
}

/// A secret lent to a plugin: what the `secret` resource stands for in the instance's table.
#[derive(Debug, Clone)]
pub struct SecretRef {
    pub credential: String,
    pub handle: SecretHandle,
}

// The credential-injector world imports everything any world imports, so its bindings define the shared
// interfaces (`types`, `log`, `clock`, `secrets`) and the other worlds reuse them.
mod credential {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "credential-injector",
        exports: { default: async },
        with: { "gigmcp:plugin/secrets.secret": super::SecretRef },
    });
}

mod egress {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "egress-policy",
        exports: { default: async },
        with: {
            "gigmcp:plugin/types": super::credential::gigmcp::plugin::types,
            "gigmcp:plugin/log": super::credential::gigmcp::plugin::log,
            "gigmcp:plugin/clock": super::credential::gigmcp::plugin::clock,
        },
    });
}

mod auth {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "auth-mapper",
        exports: { default: async },
        with: {
            "gigmcp:plugin/types": super::credential::gigmcp::plugin::types,
            "gigmcp:plugin/log": super::credential::gigmcp::plugin::log,
            "gigmcp:plugin/clock": super::credential::gigmcp::plugin::clock,
        },
    });
}

mod audit {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "audit-sink",
        exports: { default: async },
        with: {
            "gigmcp:plugin/types": super::credential::gigmcp::plugin::types,
            "gigmcp:plugin/log": super::credential::gigmcp::plugin::log,
            "gigmcp:plugin/clock": super::credential::gigmcp::plugin::clock,
        },
    });
}

mod mcp {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "mcp-filter",
        exports: { default: async },
        with: {
            "gigmcp:plugin/types": super::credential::gigmcp::plugin::types,
            "gigmcp:plugin/log": super::credential::gigmcp::plugin::log,
            "gigmcp:plugin/clock": super::credential::gigmcp::plugin::clock,
        },
    });
}

use credential::gigmcp::plugin::{clock, log, secrets, types as wit};

/// Adds this version's host imports (`log`, `clock`, `secrets`) to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    credential::CredentialInjector::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.plugin_log(level, &message);
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> u64 {
        gigmcp_types::sync::now_ms().max(0) as u64
    }
}

impl wit::Host for HostState {}

impl secrets::Host for HostState {}

impl secrets::HostSecret for HostState {
    fn name(&mut self, secret: Resource<SecretRef>) -> String {
        self.table
            .get(&secret)
            .map(|s| s.credential.clone())
            .unwrap_or_default()
    }

    fn duplicate(&mut self, secret: Resource<SecretRef>) -> Resource<SecretRef> {
        // A handle the guest holds is always in the table (the component model checks handles before the
        // call reaches here); a failed push (the table is full) gives an invalid handle, which traps when used.
        let copy = self.table.get(&secret).cloned();
        match copy {
            Ok(copy) => self.table.push(copy).unwrap_or_else(|_| Resource::new_own(u32::MAX)),
            Err(_) => Resource::new_own(u32::MAX),
        }
    }

    fn drop(&mut self, secret: Resource<SecretRef>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

/// A prepared component of one world: imports resolved and exports type-checked, ready to instantiate.
pub enum WorldPre {
    Egress(egress::EgressPolicyPre<HostState>),
    Credentials(credential::CredentialInjectorPre<HostState>),
    Auth(auth::AuthMapperPre<HostState>),
    Audit(audit::AuditSinkPre<HostState>),
    Mcp(mcp::McpFilterPre<HostState>),
}

/// An instantiated component of one world.
pub enum WorldInstance {
    Egress(egress::EgressPolicy),
    Credentials(credential::CredentialInjector),
    Auth(auth::AuthMapper),
    Audit(audit::AuditSink),
    Mcp(mcp::McpFilter),
}

impl WorldPre {
    /// Checks that the component exports the world of `kind` with the right types.
    pub fn new(
        kind: gigmcp_types::plugin::PluginKind,
        pre: wasmtime::component::InstancePre<HostState>,
    ) -> wasmtime::Result<Self> {
        use gigmcp_types::plugin::PluginKind as K;
        Ok(match kind {
            K::EgressPolicy => WorldPre::Egress(egress::EgressPolicyPre::new(pre)?),
            K::CredentialInjector => WorldPre::Credentials(credential::CredentialInjectorPre::new(pre)?),
            K::AuthMapper => WorldPre::Auth(auth::AuthMapperPre::new(pre)?),
            K::AuditSink => WorldPre::Audit(audit::AuditSinkPre::new(pre)?),
            K::McpFilter => WorldPre::Mcp(mcp::McpFilterPre::new(pre)?),
        })
    }

    pub async fn instantiate(&self, store: &mut wasmtime::Store<HostState>) -> wasmtime::Result<WorldInstance> {
        Ok(match self {
            WorldPre::Egress(pre) => WorldInstance::Egress(pre.instantiate_async(store).await?),
            WorldPre::Credentials(pre) => WorldInstance::Credentials(pre.instantiate_async(store).await?),
            WorldPre::Auth(pre) => WorldInstance::Auth(pre.instantiate_async(store).await?),
            WorldPre::Audit(pre) => WorldInstance::Audit(pre.instantiate_async(store).await?),
            WorldPre::Mcp(pre) => WorldInstance::Mcp(pre.instantiate_async(store).await?),
        })
    }
}

/// What a hook call produced, in the gateway's types; `Err` is a malformed result (fail closed).
pub type Converted<T> = Result<T, String>;

/// Runs `$call` on the world's `lifecycle` export, whichever world it is.
macro_rules! lifecycle {
    ($instance:expr, |$l:ident| $call:expr) => {
        match $instance {
            WorldInstance::Egress(w) => {
                let $l = w.gigmcp_plugin_lifecycle();
                $call
            }
            WorldInstance::Credentials(w) => {
                let $l = w.gigmcp_plugin_lifecycle();
                $call
            }
            WorldInstance::Auth(w) => {
                let $l = w.gigmcp_plugin_lifecycle();
                $call
            }
            WorldInstance::Audit(w) => {
                let $l = w.gigmcp_plugin_lifecycle();
                $call
            }
            WorldInstance::Mcp(w) => {
                let $l = w.gigmcp_plugin_lifecycle();
                $call
            }
        }
    };
}

fn wrong_world() -> wasmtime::Error {
    wasmtime::Error::msg("hook called on an instance of another world")
}

impl WorldInstance {
    /// Makes one call. `Err`: the call trapped or broke a limit; `Ok(Err(..))`: the answer is malformed.
    pub(crate) async fn call(
        &self,
        store: &mut wasmtime::Store<HostState>,
        hook: &Hook<'_>,
    ) -> wasmtime::Result<Converted<Answer>> {
        Ok(match *hook {
            Hook::ConfigSchema => {
                let schema = self.config_schema(&mut *store).await?;
                store.data().check_output(schema.len())?;
                Ok(Answer::Schema(schema))
            }
            Hook::Init { config } => Ok(Answer::Init(self.init(store, config).await?)),
            Hook::Egress { ctx, request } => self.egress(store, ctx, request).await?.map(Answer::Egress),
            Hook::Inject { ctx, request, grants } => {
                self.inject(store, ctx, request, grants).await?.map(Answer::Inject)
            }
            Hook::MapIdentity { ctx, identity } => {
                self.map_identity(store, ctx, identity).await?.map(Answer::MapIdentity)
            }
            Hook::Route { events } => self.route(store, events).await?.map(Answer::Route),
            Hook::OnRequest { ctx, request } => self.on_request(store, ctx, request).await?.map(Answer::OnRequest),
            Hook::OnResponse { ctx, response } => self.on_response(store, ctx, response).await?.map(Answer::OnResponse),
        })
    }

    async fn config_schema(&self, store: &mut wasmtime::Store<HostState>) -> wasmtime::Result<String> {
        lifecycle!(self, |l| l.call_config_schema(store).await)
    }

    /// `Ok(Err(..))`: the plugin refused the configuration.
    async fn init(
        &self,
        store: &mut wasmtime::Store<HostState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), DenyReason>> {
        let result = lifecycle!(self, |l| l.call_init(&mut *store, config).await)?;
        Ok(result.map_err(|e| DenyReason::new(e.code, e.message)))
    }

    async fn egress(
        &self,
        store: &mut wasmtime::Store<HostState>,
        ctx: &CallContext,
        request: &EgressRequest,
    ) -> wasmtime::Result<Converted<EgressDecision>> {
        let WorldInstance::Egress(w) = self else {
            return Err(wrong_world());
        };
        use egress::exports::gigmcp::plugin::egress as e;
        let request = e::EgressRequest {
            server: request.server.clone(),
            host: request.host.clone(),
            port: request.port,
            http: request.http.as_ref().map(|h| e::HttpRequestLine {
                method: h.method.clone(),
                path: h.path.clone(),
            }),
            declared: request.declared.clone(),
        };
        let input = request.server.len()
            + request.host.len()
            + request.declared.iter().map(String::len).sum::<usize>()
            + request.http.as_ref().map_or(0, |h| h.method.len() + h.path.len());
        store.data().check_input(input)?;
        let decision = w
            .gigmcp_plugin_egress()
            .call_decide(&mut *store, &wit_ctx(ctx), &request)
            .await?;
        if let wit::Verdict::Deny(reason) = &decision.verdict {
            store.data().check_output(deny_size(reason))?;
        }
        Ok(Ok(match decision.verdict {
            wit::Verdict::Allow => EgressDecision::Allow {
                cache_ttl_secs: decision.cache_ttl_secs,
            },
            wit::Verdict::Deny(reason) => EgressDecision::Deny(deny(reason)),
        }))
    }

    async fn inject(
        &self,
        store: &mut wasmtime::Store<HostState>,
        ctx: &CallContext,
        request: &gigmcp_types::policy::OutboundRequest,
        grants: &[Grant],
    ) -> wasmtime::Result<Converted<Result<Vec<RequestOp>, DenyReason>>> {
        let WorldInstance::Credentials(w) = self else {
            return Err(wrong_world());
        };
        use credential::exports::gigmcp::plugin::credentials as c;
        let wit_request = c::OutboundRequest {
            server: request.server.clone(),
            method: request.method.clone(),
            host: request.host.clone(),
            port: request.port,
            path: request.path.clone(),
            header_names: request.header_names.clone(),
            placeholders: request
                .placeholders
                .iter()
                .map(|p| c::PlaceholderSite {
                    credential: p.credential.clone(),
                    location: match &p.location {
                        PlaceholderLocation::Header(h) => c::PlaceholderLocation::Header(h.clone()),
                        PlaceholderLocation::Query(q) => c::PlaceholderLocation::Query(q.clone()),
                    },
                    before: p.before.clone(),
                    after: p.after.clone(),
                })
                .collect(),
        };
        let input = [&request.server, &request.method, &request.host, &request.path]
            .iter()
            .map(|s| s.len())
            .sum::<usize>()
            + request.header_names.iter().map(String::len).sum::<usize>()
            + request
                .placeholders
                .iter()
                .map(|p| p.credential.len() + p.before.len() + p.after.len() + 16)
                .sum::<usize>()
            + grants.iter().map(|g| g.credential.len()).sum::<usize>();
        store.data().check_input(input)?;
        let mut wit_grants = Vec::with_capacity(grants.len());
        for grant in grants {
            let secret = store.data_mut().table.push(SecretRef {
                credential: grant.credential.clone(),
                handle: grant.handle.clone(),
            })?;
            wit_grants.push(c::Grant {
                credential: grant.credential.clone(),
                secret,
            });
        }
        let result = w
            .gigmcp_plugin_credentials()
            .call_inject(&mut *store, &wit_ctx(ctx), &wit_request, &wit_grants)
            .await?;
        let ops = match result {
            Err(e) => {
                store.data().check_output(e.code.len() + e.message.len())?;
                return Ok(Ok(Err(DenyReason::new(e.code, e.message))));
            }
            Ok(ops) => ops,
        };
        let output: usize = ops
            .iter()
            .map(|op| match op {
                c::RequestOp::SetHeader(v) | c::RequestOp::SetQuery(v) => {
                    v.name.len()
                        + v.value
                            .iter()
                            .map(|p| match p {
                                c::TemplatePart::Literal(text) => text.len(),
                                c::TemplatePart::Secret(_) => 8,
                            })
                            .sum::<usize>()
                }
                c::RequestOp::RemoveHeader(name) => name.len(),
            })
            .sum();
        store.data().check_output(output)?;
        // Every secret in the answer is a handle the host lent (the component model lets a guest hold no other),
        // in this call or an earlier one; resolve each to the host's handle and take it back out of the table.
        let table = &mut store.data_mut().table;
        let mut resolve = |value: Vec<c::TemplatePart>| -> wasmtime::Result<Vec<TemplatePart>> {
            value
                .into_iter()
                .map(|part| {
                    Ok(match part {
                        c::TemplatePart::Literal(text) => TemplatePart::Literal(text),
                        c::TemplatePart::Secret(secret) => TemplatePart::Secret(table.delete(secret)?.handle),
                    })
                })
                .collect()
        };
        let mut converted = Vec::with_capacity(ops.len());
        for op in ops {
            converted.push(match op {
                c::RequestOp::SetHeader(v) => RequestOp::SetHeader {
                    name: v.name,
                    value: resolve(v.value)?,
                },
                c::RequestOp::RemoveHeader(name) => RequestOp::RemoveHeader(name),
                c::RequestOp::SetQuery(v) => RequestOp::SetQuery {
                    name: v.name,
                    value: resolve(v.value)?,
                },
            });
        }
        // Invariant: a plugin places only the secrets granted for this request. A handle it kept from an
        // earlier call (it may hold one as long as its instance lives) is refused, and the request fails.
        let granted = |handle: &SecretHandle| grants.iter().any(|g| &g.handle == handle);
        for op in &converted {
            if let RequestOp::SetHeader { value, .. } | RequestOp::SetQuery { value, .. } = op
                && value
                    .iter()
                    .any(|part| matches!(part, TemplatePart::Secret(handle) if !granted(handle)))
            {
                return Ok(Err("it placed a secret that was not granted for this request".into()));
            }
        }
        Ok(Ok(Ok(converted)))
    }

    async fn map_identity(
        &self,
        store: &mut wasmtime::Store<HostState>,
        ctx: &CallContext,
        identity: &Identity,
    ) -> wasmtime::Result<Converted<AuthOutcome>> {
        let WorldInstance::Auth(w) = self else {
            return Err(wrong_world());
        };
        use auth::exports::gigmcp::plugin::auth as a;
        let identity = a::Identity {
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            claims: identity.claims.to_string(),
            token_fingerprint: identity.token_fingerprint.clone(),
        };
        store
            .data()
            .check_input(identity.issuer.len() + identity.subject.len() + identity.claims.len())?;
        let outcome = w
            .gigmcp_plugin_auth()
            .call_map_identity(&mut *store, &wit_ctx(ctx), &identity)
            .await?;
        let output = match &outcome {
            a::AuthOutcome::Principal(p) => {
                p.user.len()
                    + p.roles.iter().map(String::len).sum::<usize>()
                    + match &p.profiles {
                        wit::ProfileAccess::All => 0,
                        wit::ProfileAccess::Only(list) => list.iter().map(String::len).sum(),
                    }
            }
            a::AuthOutcome::Unauthenticated(r) | a::AuthOutcome::Forbidden(r) => deny_size(r),
        };
        store.data().check_output(output)?;
        Ok(Ok(match outcome {
            a::AuthOutcome::Principal(p) => AuthOutcome::Principal(Principal {
                user: p.user,
                roles: p.roles,
                profiles: match p.profiles {
                    wit::ProfileAccess::All => ProfileAccess::All,
                    wit::ProfileAccess::Only(list) => ProfileAccess::Only(list),
                },
            }),
            a::AuthOutcome::Unauthenticated(r) => AuthOutcome::Unauthenticated(deny(r)),
            a::AuthOutcome::Forbidden(r) => AuthOutcome::Forbidden(deny(r)),
        }))
    }

    async fn route(
        &self,
        store: &mut wasmtime::Store<HostState>,
        events: &[AuditEvent],
    ) -> wasmtime::Result<Converted<Result<Vec<Delivery>, DenyReason>>> {
        let WorldInstance::Audit(w) = self else {
            return Err(wrong_world());
        };
        use audit::exports::gigmcp::plugin::audit as a;
        let wit_events: Vec<a::AuditEvent> = events
            .iter()
            .map(|e| a::AuditEvent {
                id: e.id as u64,
                time_ms: e.time_ms as u64,
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                profile: e.profile.clone(),
                server: e.server.clone(),
                outcome: e.outcome.as_str().to_owned(),
                detail: e.detail.to_string(),
            })
            .collect();
        store.data().check_input(wit_events.iter().map(event_size).sum())?;
        let result = w.gigmcp_plugin_audit().call_route(&mut *store, &wit_events).await?;
        let deliveries = match result {
            Err(e) => return Ok(Ok(Err(DenyReason::new(e.code, e.message)))),
            Ok(d) => d,
        };
        store.data().check_output(
            deliveries
                .iter()
                .map(|d| d.destination.len() + event_size(&d.event))
                .sum(),
        )?;
        let mut converted = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let detail = match serde_json::from_str::<Value>(&d.event.detail) {
                Ok(v) => v,
                Err(e) => return Ok(Err(format!("event {} has a detail that is not JSON: {e}", d.event.id))),
            };
            // A sink may redact an event, not change what happened: its outcome must be one of the gateway's.
            let Some(outcome) = Outcome::parse(&d.event.outcome) else {
                return Ok(Err(format!(
                    "event {} has an unknown outcome {:?}",
                    d.event.id, d.event.outcome
                )));
            };
            converted.push(Delivery {
                destination: d.destination,
                event: AuditEvent {
                    id: d.event.id as i64,
                    time_ms: d.event.time_ms as i64,
                    kind: d.event.kind,
                    actor: d.event.actor,
                    profile: d.event.profile,
                    server: d.event.server,
                    outcome,
                    detail,
                },
            });
        }
        Ok(Ok(Ok(converted)))
    }

    async fn on_request(
        &self,
        store: &mut wasmtime::Store<HostState>,
        ctx: &CallContext,
        request: &McpRequest,
    ) -> wasmtime::Result<Converted<RequestAction>> {
        let WorldInstance::Mcp(w) = self else {
            return Err(wrong_world());
        };
        use mcp::exports::gigmcp::plugin::mcp as m;
        let wit_request = m::McpRequest {
            server: request.server.clone(),
            method: request.method.clone(),
            name: request.name.clone(),
            params: request.params.to_string(),
        };
        store.data().check_input(wit_request.params.len())?;
        let action = w
            .gigmcp_plugin_mcp()
            .call_on_request(&mut *store, &wit_ctx(ctx), &wit_request)
            .await?;
        store.data().check_output(match &action {
            m::RequestAction::Allow => 0,
            m::RequestAction::Deny(r) => deny_size(r),
            m::RequestAction::Rewrite(text) => text.len(),
        })?;
        Ok(match action {
            m::RequestAction::Allow => Ok(RequestAction::Allow),
            m::RequestAction::Deny(r) => Ok(RequestAction::Deny(deny(r))),
            m::RequestAction::Rewrite(text) => parse_json(&text, "rewritten params").map(RequestAction::Rewrite),
        })
    }

    async fn on_response(
        &self,
        store: &mut wasmtime::Store<HostState>,
        ctx: &CallContext,
        response: &McpResponse,
    ) -> wasmtime::Result<Converted<ResponseAction>> {
        let WorldInstance::Mcp(w) = self else {
            return Err(wrong_world());
        };
        use mcp::exports::gigmcp::plugin::mcp as m;
        let wit_response = m::McpResponse {
            server: response.server.clone(),
            method: response.method.clone(),
            name: response.name.clone(),
            payload: response.result.to_string(),
        };
        store.data().check_input(wit_response.payload.len())?;
        let action = w
            .gigmcp_plugin_mcp()
            .call_on_response(&mut *store, &wit_ctx(ctx), &wit_response)
            .await?;
        store.data().check_output(match &action {
            m::ResponseAction::Pass => 0,
            m::ResponseAction::Deny(r) => deny_size(r),
            m::ResponseAction::Replace(text) => text.len(),
            m::ResponseAction::Redact(list) => list
                .iter()
                .map(|r| {
                    r.pointer.len()
                        + match &r.action {
                            m::RedactAction::Remove => 0,
                            m::RedactAction::Replace(text) => text.len(),
                        }
                })
                .sum(),
        })?;
        Ok(match action {
            m::ResponseAction::Pass => Ok(ResponseAction::Pass),
            m::ResponseAction::Deny(r) => Ok(ResponseAction::Deny(deny(r))),
            m::ResponseAction::Replace(text) => parse_json(&text, "replacement result").map(ResponseAction::Replace),
            m::ResponseAction::Redact(list) => list
                .into_iter()
                .map(|r| {
                    Ok(Redaction {
                        pointer: r.pointer,
                        action: match r.action {
                            m::RedactAction::Remove => RedactAction::Remove,
                            m::RedactAction::Replace(text) => {
                                RedactAction::Replace(parse_json(&text, "redaction replacement")?)
                            }
                        },
                    })
                })
                .collect::<Result<_, String>>()
                .map(ResponseAction::Redact),
        })
    }
}

fn wit_ctx(ctx: &CallContext) -> wit::CallContext {
    wit::CallContext {
        request_id: ctx.request_id.clone(),
        profile: ctx.profile.as_ref().map(|p| p.to_string()),
    }
}

fn deny_size(reason: &wit::DenyReason) -> usize {
    reason.code.len() + reason.message.len()
}

fn event_size(e: &audit::exports::gigmcp::plugin::audit::AuditEvent) -> usize {
    e.kind.len()
        + e.actor.len()
        + e.outcome.len()
        + e.detail.len()
        + e.profile.as_ref().map_or(0, String::len)
        + e.server.as_ref().map_or(0, String::len)
}

fn deny(reason: wit::DenyReason) -> DenyReason {
    DenyReason::new(reason.code, reason.message)
}

fn parse_json(text: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("the plugin returned {what} that is not JSON: {e}"))
}
