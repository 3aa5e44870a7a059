//! One hook of a plugin run on a sample input, under the production limits, in an instance of its own that
//! nothing else uses: what `gigmcp plugin test` and `POST /api/plugins/{name}/test` do. The input is JSON, one
//! shape per kind (sdk/README.md lists the fields); nothing it answers is acted on.

use serde::Deserialize;
use serde_json::Value;

use gigmcp_plugin_runtime::harness::Harness;
use gigmcp_plugin_runtime::{CallFailure, Usage};
use gigmcp_types::audit::{AuditEvent, Outcome};
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::policy::{
    CallContext, EgressRequest, Grant, HttpRequestLine, Identity, McpRequest, McpResponse, OutboundRequest,
    PlaceholderLocation, PlaceholderSite, SecretHandle,
};

/// What a dry run gave.
#[derive(Debug)]
pub struct DryRun {
    pub kind: PluginKind,
    /// The hook's answer (as Rust's debug format shows it) and what it cost, or why there was none (a trap,
    /// a limit): for a policy kind, a failure is a denial.
    pub answer: Result<(String, Usage), CallFailure>,
}

/// The input does not describe a call of the plugin's kind.
#[derive(Debug, thiserror::Error)]
#[error("the call does not describe a call of a {kind} plugin (see sdk/README.md): {detail}")]
pub struct BadCall {
    pub kind: PluginKind,
    pub detail: String,
}

/// For an egress-policy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressCall {
    server: String,
    host: String,
    port: u16,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    declared: Vec<String>,
}

/// For a credential-injector; `grants` names the credentials granted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectCall {
    server: String,
    method: String,
    host: String,
    port: u16,
    path: String,
    #[serde(default)]
    header_names: Vec<String>,
    #[serde(default)]
    placeholders: Vec<TestPlaceholder>,
    #[serde(default)]
    grants: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestPlaceholder {
    credential: String,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

/// For an auth-mapper.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityCall {
    issuer: String,
    subject: String,
    claims: Value,
}

/// For an audit-sink.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditCall {
    events: Vec<TestEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEvent {
    kind: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default = "outcome_ok")]
    outcome: Outcome,
    #[serde(default)]
    detail: Value,
}

fn outcome_ok() -> Outcome {
    Outcome::Ok
}

/// For an mcp-filter: `params` asks `on-request`, `result` asks `on-response`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McpCall {
    server: String,
    method: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
}

fn parse<T: serde::de::DeserializeOwned>(call: &Value, kind: PluginKind) -> Result<T, BadCall> {
    T::deserialize(call).map_err(|e| BadCall {
        kind,
        detail: e.to_string(),
    })
}

/// Runs the hook of `harness`'s kind on `call`, as a call made for `profile`.
pub async fn dry_run(harness: &Harness, call: &Value, profile: Option<ProfileSlug>) -> Result<DryRun, BadCall> {
    let ctx = CallContext::new("gigmcp-plugin-test", profile);
    let kind = harness.kind;
    let measured = match kind {
        PluginKind::EgressPolicy => {
            let c: EgressCall = parse(call, kind)?;
            let request = EgressRequest {
                server: c.server,
                host: c.host,
                port: c.port,
                http: c.method.map(|method| HttpRequestLine {
                    method,
                    path: c.path.unwrap_or_else(|| "/".into()),
                }),
                declared: c.declared,
            };
            debug(harness.egress(&ctx, &request).await)
        }
        PluginKind::CredentialInjector => {
            let c: InjectCall = parse(call, kind)?;
            let request = OutboundRequest {
                server: c.server,
                method: c.method,
                host: c.host,
                port: c.port,
                path: c.path,
                header_names: c.header_names,
                placeholders: c
                    .placeholders
                    .into_iter()
                    .map(|p| PlaceholderSite {
                        credential: p.credential,
                        location: match (p.header, p.query) {
                            (Some(h), _) => PlaceholderLocation::Header(h),
                            (None, q) => PlaceholderLocation::Query(q.unwrap_or_default()),
                        },
                        before: p.before,
                        after: p.after,
                    })
                    .collect(),
            };
            let grants: Vec<Grant> = c
                .grants
                .into_iter()
                .map(|credential| Grant {
                    handle: SecretHandle(format!("test:{credential}")),
                    credential,
                })
                .collect();
            debug(harness.inject(&ctx, &request, &grants).await)
        }
        PluginKind::AuthMapper => {
            let c: IdentityCall = parse(call, kind)?;
            let identity = Identity {
                issuer: c.issuer,
                subject: c.subject,
                claims: c.claims,
                token_fingerprint: "test".into(),
            };
            debug(harness.map_identity(&ctx, &identity).await)
        }
        PluginKind::AuditSink => {
            let c: AuditCall = parse(call, kind)?;
            let events: Vec<AuditEvent> = c
                .events
                .into_iter()
                .enumerate()
                .map(|(i, e)| AuditEvent {
                    id: i as i64 + 1,
                    time_ms: 0,
                    kind: e.kind,
                    actor: e.actor,
                    profile: e.profile,
                    server: e.server,
                    outcome: e.outcome,
                    detail: e.detail,
                })
                .collect();
            debug(harness.route(&events).await)
        }
        PluginKind::McpFilter => {
            let c: McpCall = parse(call, kind)?;
            match (c.params, c.result) {
                (Some(params), None) => {
                    let request = McpRequest {
                        server: c.server,
                        method: c.method,
                        name: c.name,
                        params,
                    };
                    debug(harness.on_request(&ctx, &request).await)
                }
                (None, Some(result)) => {
                    let response = McpResponse {
                        server: c.server,
                        method: c.method,
                        name: c.name,
                        result,
                    };
                    debug(harness.on_response(&ctx, &response).await)
                }
                _ => {
                    return Err(BadCall {
                        kind,
                        detail: "an mcp-filter call has either params (a request) or result (a response)".into(),
                    });
                }
            }
        }
    };
    Ok(DryRun { kind, answer: measured })
}

fn debug<T: std::fmt::Debug>(measured: Result<(T, Usage), CallFailure>) -> Result<(String, Usage), CallFailure> {
    measured.map(|(answer, usage)| (format!("{answer:?}"), usage))
}
