//! The plugin host: which plugins are bound where, asking them, and combining their answers.
//!
//! Combination rules (DESIGN.md, "Plugins"):
//! - Every bound plugin of a kind is asked in binding order; any deny wins (deny-overrides).
//! - Global bindings apply to every profile; a profile's bindings can only narrow. For requests the profile's
//!   filters run first and the global ones last, so a global policy always judges the final form of a
//!   request (a profile's rewrite cannot slip past it); for responses the global filters run first and the
//!   profile's see only what they let through (a profile cannot undo a global redaction).
//! - A policy plugin that fails (trap, timeout, out of memory or fuel, malformed or oversized answer,
//!   quarantine) denies, with a reason naming the plugin and the failure: policy fails closed.
//!
//! The bound set is swapped atomically on reload: a call takes the current set once, so a request in flight
//! finishes on the versions it started with, and a swap never fails a call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::call::{Answer, Hook};
use crate::limits::CallFailure;
use crate::loaded::LoadedPlugin;
use crate::redact;
use crate::runtime::Runtime;
use gigmcp_types::audit::AuditEvent;
use gigmcp_types::ids::PluginId;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::policy::{
    AuthOutcome, CallContext, Delivery, DenyReason, EgressDecision, EgressRequest, Grant, Identity, McpRequest,
    McpResponse, OutboundRequest, Principal, RequestAction, RequestOp, ResponseAction,
};
use gigmcp_types::user::ProfileAccess;

/// The outcome of the request filters.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestDecision {
    /// Send `params` (rewritten if `rewritten`).
    Allow {
        params: Value,
        rewritten: bool,
    },
    Deny(DenyReason),
}

/// The outcome of the response filters.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseDecision {
    /// Return `result`, as redacted or replaced by the plugins in `modified_by` (none: unchanged).
    Pass {
        result: Value,
        modified_by: Vec<String>,
    },
    Deny(DenyReason),
}

/// The plugins bound for one kind: global ones and each profile's, each list in binding order.
#[derive(Default, Clone)]
pub struct Chain {
    pub global: Vec<Arc<LoadedPlugin>>,
    pub profiles: HashMap<ProfileSlug, Vec<Arc<LoadedPlugin>>>,
}

impl Chain {
    fn profile(&self, profile: &Option<ProfileSlug>) -> &[Arc<LoadedPlugin>] {
        profile
            .as_ref()
            .and_then(|p| self.profiles.get(p))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// What is loaded and bound: replaced as a whole on reload.
#[derive(Default, Clone)]
pub struct Active {
    pub plugins: HashMap<PluginId, Arc<LoadedPlugin>>,
    pub chains: HashMap<PluginKind, Chain>,
}

pub struct PluginHost {
    pub runtime: Arc<Runtime>,
    active: RwLock<Arc<Active>>,
}

fn failed(plugin: &LoadedPlugin, failure: &CallFailure) -> DenyReason {
    DenyReason::new(
        failure.code(),
        format!(
            "plugin {} {failure}; policy plugins fail closed, so this is denied",
            plugin.name
        ),
    )
    .by(plugin.name.as_str())
}

impl PluginHost {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Self {
            runtime,
            active: RwLock::default(),
        }
    }

    pub fn active(&self) -> Arc<Active> {
        self.active.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn swap(&self, active: Active) {
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(active);
    }

    /// The plugins loaded now, by name (for statistics and inspection).
    pub fn loaded(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut plugins: Vec<_> = self.active().plugins.values().cloned().collect();
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        plugins
    }

    /// The plugins bound now. A request takes this once and asks all its hooks of it, so it finishes on the
    /// versions it started with whatever is swapped meanwhile.
    pub fn current(&self) -> PluginSet {
        PluginSet(self.active())
    }

    /// `current().egress_decide(..)`.
    pub async fn egress_decide(&self, ctx: &CallContext, request: &EgressRequest) -> EgressDecision {
        self.current().egress_decide(ctx, request).await
    }

    /// `current().inject_credentials(..)`.
    pub async fn inject_credentials(
        &self,
        ctx: &CallContext,
        request: &OutboundRequest,
        grants: &[Grant],
    ) -> Result<Vec<RequestOp>, DenyReason> {
        self.current().inject_credentials(ctx, request, grants).await
    }

    /// `current().map_identity(..)`.
    pub async fn map_identity(&self, ctx: &CallContext, identity: &Identity) -> AuthOutcome {
        self.current().map_identity(ctx, identity).await
    }

    /// `current().filter_request(..)`.
    pub async fn filter_request(&self, ctx: &CallContext, request: McpRequest) -> RequestDecision {
        self.current().filter_request(ctx, request).await
    }

    /// `current().filter_response(..)`.
    pub async fn filter_response(&self, ctx: &CallContext, response: McpResponse) -> ResponseDecision {
        self.current().filter_response(ctx, response).await
    }

    /// `audit-sink`: the deliveries the sinks bound for these events chose. A failing sink yields an error
    /// for the caller to retry; it never affects traffic.
    pub async fn route_audit(
        &self,
        plugin: &LoadedPlugin,
        events: &[AuditEvent],
    ) -> Result<Result<Vec<Delivery>, DenyReason>, CallFailure> {
        plugin.call(&None, Hook::Route { events }).await.and_then(Answer::route)
    }

    /// The audit sinks bound now (global ones; audit events are routed outside any profile).
    pub fn audit_sinks(&self) -> Vec<Arc<LoadedPlugin>> {
        self.active()
            .chains
            .get(&PluginKind::AuditSink)
            .map(|c| c.global.clone())
            .unwrap_or_default()
    }
}

/// A snapshot of the bound plugins: the hooks of one request.
#[derive(Clone)]
pub struct PluginSet(Arc<Active>);

impl PluginSet {
    /// `egress-policy`: may `request.server` reach `request.host:request.port`? With no policy bound, no:
    /// egress is allowed only by a policy.
    pub async fn egress_decide(&self, ctx: &CallContext, request: &EgressRequest) -> EgressDecision {
        let active = &self.0;
        let Some(chain) = active.chains.get(&PluginKind::EgressPolicy) else {
            return EgressDecision::Deny(DenyReason::new(
                "no-egress-policy",
                "no egress-policy plugin is bound, so no egress is allowed",
            ));
        };
        // The cache TTL is the smallest any plugin gave, and none if any plugin gave none. `None`: no answer yet.
        let mut ttl: Option<Option<u32>> = None;
        for plugin in chain.global.iter().chain(chain.profile(&ctx.profile)) {
            let decision = plugin
                .call(&ctx.profile, Hook::Egress { ctx, request })
                .await
                .and_then(Answer::egress);
            match decision {
                Ok(EgressDecision::Allow { cache_ttl_secs }) => {
                    ttl = Some(match (ttl, cache_ttl_secs) {
                        (None, b) => b,
                        (Some(Some(a)), Some(b)) => Some(a.min(b)),
                        _ => None,
                    });
                }
                Ok(EgressDecision::Deny(reason)) => return EgressDecision::Deny(reason.by(plugin.name.as_str())),
                Err(failure) => return EgressDecision::Deny(failed(plugin, &failure)),
            }
        }
        let Some(ttl) = ttl else {
            return EgressDecision::Deny(DenyReason::new(
                "no-egress-policy",
                "no egress-policy plugin is bound for this profile, so no egress is allowed",
            ));
        };
        EgressDecision::Allow { cache_ttl_secs: ttl }
    }

    /// `credential-injector`: the operations to apply to an outbound request, global plugins' first. Any
    /// failure fails the request (no credential is better than a wrong one).
    pub async fn inject_credentials(
        &self,
        ctx: &CallContext,
        request: &OutboundRequest,
        grants: &[Grant],
    ) -> Result<Vec<RequestOp>, DenyReason> {
        let active = &self.0;
        let Some(chain) = active.chains.get(&PluginKind::CredentialInjector) else {
            return Ok(Vec::new());
        };
        let mut ops = Vec::new();
        for plugin in chain.global.iter().chain(chain.profile(&ctx.profile)) {
            let result = plugin
                .call(&ctx.profile, Hook::Inject { ctx, request, grants })
                .await
                .and_then(Answer::inject);
            match result {
                Ok(Ok(more)) => ops.extend(more),
                Ok(Err(reason)) => return Err(reason.by(plugin.name.as_str())),
                Err(failure) => return Err(failed(plugin, &failure)),
            }
        }
        Ok(ops)
    }

    /// `auth-mapper`: every bound mapper must recognise the identity; the principal is what they all grant
    /// (the intersection of their roles and profiles). With no mapper bound, nobody is authenticated.
    pub async fn map_identity(&self, ctx: &CallContext, identity: &Identity) -> AuthOutcome {
        let active = &self.0;
        let plugins: Vec<_> = active
            .chains
            .get(&PluginKind::AuthMapper)
            .map(|c| c.global.iter().chain(c.profile(&ctx.profile)).cloned().collect())
            .unwrap_or_default();
        if plugins.is_empty() {
            return AuthOutcome::Unauthenticated(DenyReason::new(
                "no-auth-mapper",
                "no auth-mapper plugin is bound, so no login is accepted",
            ));
        }
        let mut combined: Option<Principal> = None;
        for plugin in &plugins {
            let outcome = plugin
                .call(&ctx.profile, Hook::MapIdentity { ctx, identity })
                .await
                .and_then(Answer::map_identity);
            match outcome {
                Ok(AuthOutcome::Principal(p)) => {
                    combined = Some(match combined {
                        None => p,
                        Some(c) => intersect(c, p),
                    })
                }
                Ok(AuthOutcome::Unauthenticated(r)) => {
                    return AuthOutcome::Unauthenticated(r.by(plugin.name.as_str()));
                }
                Ok(AuthOutcome::Forbidden(r)) => return AuthOutcome::Forbidden(r.by(plugin.name.as_str())),
                Err(failure) => return AuthOutcome::Forbidden(failed(plugin, &failure)),
            }
        }
        AuthOutcome::Principal(combined.expect("at least one mapper answered"))
    }

    /// `mcp-filter` on a request to an upstream server: the profile's filters, then the global ones; each
    /// sees the params as rewritten so far.
    pub async fn filter_request(&self, ctx: &CallContext, request: McpRequest) -> RequestDecision {
        let active = &self.0;
        let Some(chain) = active.chains.get(&PluginKind::McpFilter) else {
            return RequestDecision::Allow {
                params: request.params,
                rewritten: false,
            };
        };
        let mut request = request;
        let mut rewritten = false;
        for plugin in chain.profile(&ctx.profile).iter().chain(&chain.global) {
            let action = plugin
                .call(&ctx.profile, Hook::OnRequest { ctx, request: &request })
                .await
                .and_then(Answer::on_request);
            match action {
                Ok(RequestAction::Allow) => {}
                Ok(RequestAction::Rewrite(params)) => {
                    request.params = params;
                    rewritten = true;
                }
                Ok(RequestAction::Deny(reason)) => return RequestDecision::Deny(reason.by(plugin.name.as_str())),
                Err(failure) => return RequestDecision::Deny(failed(plugin, &failure)),
            }
        }
        RequestDecision::Allow {
            params: request.params,
            rewritten,
        }
    }

    /// `mcp-filter` on a response from an upstream server (including list results): the global filters, then
    /// the profile's; each sees the result as redacted so far.
    pub async fn filter_response(&self, ctx: &CallContext, response: McpResponse) -> ResponseDecision {
        let active = &self.0;
        let Some(chain) = active.chains.get(&PluginKind::McpFilter) else {
            return ResponseDecision::Pass {
                result: response.result,
                modified_by: Vec::new(),
            };
        };
        let mut response = response;
        let mut modified_by = Vec::new();
        for plugin in chain.global.iter().chain(chain.profile(&ctx.profile)) {
            let action = plugin
                .call(
                    &ctx.profile,
                    Hook::OnResponse {
                        ctx,
                        response: &response,
                    },
                )
                .await
                .and_then(Answer::on_response);
            match action {
                Ok(ResponseAction::Pass) => {}
                Ok(ResponseAction::Replace(result)) => {
                    response.result = result;
                    modified_by.push(plugin.name.to_string());
                }
                Ok(ResponseAction::Redact(redactions)) => {
                    let result = std::mem::take(&mut response.result);
                    match redact::apply(result, redactions) {
                        Ok(result) => response.result = result,
                        Err(e) => {
                            return ResponseDecision::Deny(failed(plugin, &CallFailure::Malformed(e)));
                        }
                    }
                    modified_by.push(plugin.name.to_string());
                }
                Ok(ResponseAction::Deny(reason)) => return ResponseDecision::Deny(reason.by(plugin.name.as_str())),
                Err(failure) => return ResponseDecision::Deny(failed(plugin, &failure)),
            }
        }
        ResponseDecision::Pass {
            result: response.result,
            modified_by,
        }
    }

    /// Whether any mcp-filter applies to this profile: the session can skip building hook inputs when none does.
    pub fn filters_mcp(&self, profile: &Option<ProfileSlug>) -> bool {
        self.0
            .chains
            .get(&PluginKind::McpFilter)
            .is_some_and(|c| !c.global.is_empty() || !c.profile(profile).is_empty())
    }
}

/// What two mappers both grant.
fn intersect(a: Principal, b: Principal) -> Principal {
    let roles = a.roles.into_iter().filter(|r| b.roles.contains(r)).collect();
    let profiles = match (a.profiles, b.profiles) {
        (ProfileAccess::All, other) | (other, ProfileAccess::All) => other,
        (ProfileAccess::Only(x), ProfileAccess::Only(y)) => {
            ProfileAccess::Only(x.into_iter().filter(|p| y.contains(p)).collect())
        }
    };
    Principal {
        user: a.user,
        roles,
        profiles,
    }
}
