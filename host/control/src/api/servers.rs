//! `/api/servers`: defined and removed by admins only (a server's command, mounts, environment and URL are
//! powers over the host: invariant 7). Any user may list them, to choose a profile's servers; only admins
//! see how a server is run.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::api::{Body, Page, PageQuery, PathParams, Query, RemoveQuery};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_ops::{Actor, Ops, ServerInput};
use gigmcp_types::names::ServerName;
use gigmcp_types::server as servers;
use gigmcp_types::server::ServerDef;

#[derive(Serialize, JsonSchema)]
pub struct ServerView {
    pub name: String,
    pub prefix: String,
    pub per_session: bool,
    /// stdio, builtin, toolpack or http.
    pub transport: String,
    /// How it is run (command and arguments, built-in, catalog entry, or URL): shown to admins only.
    pub target: Option<String>,
    /// For a catalog toolpack: the entry and version installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// A catalog upgrade changed what it runs or where it connects: it does not start until an admin consents
    /// (`POST /api/servers/{name}/consent`).
    pub consent_pending: bool,
    /// The hosts it declares it needs to reach.
    pub egress: Vec<String>,
    /// Its sandboxes running now.
    pub running: Vec<RunningView>,
    /// Its persistent state directories, one per profile that ran it (admins only).
    pub state: Vec<StateView>,
}

#[derive(Serialize, JsonSchema)]
pub struct StateView {
    pub profile: String,
    /// Its size limit; absent when this host cannot enforce one.
    pub limit_bytes: Option<u64>,
    /// What it takes on the host's disk.
    pub disk_bytes: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct RunningView {
    pub profile: String,
    pub per_session: bool,
    pub pid: Option<u32>,
    pub address: Option<String>,
    pub uptime_s: u64,
    pub restarts: u32,
    pub memory_bytes: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    /// 1–63 characters from a-z, 0-9, '-' and '_', starting with a letter or digit.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$"))]
    pub name: String,
    /// Names are exposed as `<prefix>_<name>` (default: the server's name; empty: the plain names).
    pub prefix: Option<String>,
    #[serde(default)]
    pub per_session: bool,
    /// An entry of the signed catalog to install: `name`, `name@version` or `sha256:<digest>` (nothing else
    /// but `name` and `base_url` may be given with it). On an installed toolpack of the same entry: an upgrade,
    /// which waits for `POST /api/servers/{name}/consent` if it changes what runs or where it connects.
    pub catalog: Option<String>,
    /// With `catalog`: the tenant's own API host (`https://acme.zendesk.com`).
    pub base_url: Option<String>,
    /// Absolute path of a stdio MCP server, run in a sandbox.
    pub command: Option<String>,
    /// A built-in server: `echo`.
    pub builtin: Option<String>,
    /// A streamable-HTTP MCP server's URL.
    pub url: Option<String>,
    /// An npm package to install (install scripts off) and run with Node: `<package>@<version>`, or a range,
    /// a dist-tag or just `<package>` (the latest), resolved at install time to the exact version that is
    /// installed and pinned in the definition.
    pub npm: Option<String>,
    /// A PyPI package to install (wheels only) and run: `<package>==<version>`, or specifiers like `>=1,<2`,
    /// or just `<package>` (the latest with a wheel for the runtime), resolved at install time and pinned.
    pub pypi: Option<String>,
    /// With npm or pypi: which of the package's executables to run.
    pub bin: Option<String>,
    /// With npm or pypi: the interpreter (default: the host's node, or /usr/bin/python3).
    pub runtime: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The server's environment (it gets nothing else).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host paths visible in the sandbox: `HOST[:SANDBOX][:rw]`.
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Memory limit of its sandbox, like `512m`.
    pub memory: Option<String>,
    /// Process limit of its sandbox (at least 8).
    pub pids: Option<u64>,
    /// The size of its persistent state directory (one per profile, at `/state`), like `256m` (at least 4m).
    pub state_size: Option<String>,
    /// Hosts it may reach through the egress proxy: host, host:port, *.domain.
    #[serde(default)]
    pub egress: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    /// Replace the hosts it may reach through the egress proxy (empty: none).
    pub egress: Vec<String>,
}

/// `after`: only lines numbered above it (the last one a reader saw).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    pub after: Option<u64>,
}

/// A server's recent log: what its sandboxes wrote on stderr and the gateway's lines about them, oldest
/// first. Kept in memory: 500 lines per sandbox, the running sandboxes and the last 4 that ended.
#[derive(Serialize, JsonSchema)]
pub struct ServerLog {
    pub lines: Vec<servers::LogLine>,
}

#[derive(Serialize, JsonSchema)]
pub struct Restarted {
    /// How many running processes were stopped (they start again on next use).
    pub stopped: usize,
}

fn view(state: &ControlState, def: &ServerDef, admin: bool, running: Vec<RunningView>) -> ServerView {
    let (transport, target) = def.spec.describe();
    ServerView {
        name: def.name.to_string(),
        prefix: def.prefix.as_str().to_owned(),
        per_session: def.per_session,
        transport: transport.to_owned(),
        target: admin.then_some(target),
        catalog: match &def.spec {
            gigmcp_types::server::ServerSpec::Toolpack { toolpack, .. } => {
                Some(format!("{}@{}", toolpack.entry, toolpack.version))
            }
            _ => None,
        },
        consent_pending: matches!(&def.spec, gigmcp_types::server::ServerSpec::Toolpack { toolpack, .. } if !toolpack.consented()),
        egress: def.spec.egress().to_vec(),
        running,
        state: if admin {
            state
                .states
                .list(&def.name)
                .into_iter()
                .map(|s| StateView {
                    profile: s.profile,
                    limit_bytes: s.limit_bytes,
                    disk_bytes: s.disk_bytes,
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// The request as the input `server add` takes too (one definition code for both: `ops::ServerInput`).
fn input(body: CreateServer) -> ServerInput {
    ServerInput {
        name: body.name,
        prefix: body.prefix,
        per_session: body.per_session,
        command: body.command,
        builtin: body.builtin,
        url: body.url,
        npm: body.npm,
        pypi: body.pypi,
        bin: body.bin,
        runtime: body.runtime,
        args: body.args,
        env: body.env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        mounts: body.mounts,
        memory: body.memory,
        pids: body.pids,
        state_size: body.state_size,
        egress: body.egress,
        credentials: Vec::new(),
    }
}

fn ops<'a>(state: &'a ControlState, caller: &Caller) -> Ops<'a> {
    Ops {
        store: &state.store,
        actor: Actor::User(caller.user),
        audit: Some(&state.audit),
    }
}

fn running_of(state: &ControlState, server: &str) -> Vec<RunningView> {
    state
        .running
        .sandbox_statuses()
        .into_iter()
        .filter(|s| s.server == server)
        .map(|s| RunningView {
            profile: s.profile,
            per_session: s.per_session,
            pid: s.pid,
            address: s.address,
            uptime_s: s.uptime_s,
            restarts: s.restarts,
            memory_bytes: s.memory_bytes,
        })
        .collect()
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ServerView>>, ApiError> {
    let limit = page.limit()?;
    blocking(&state, move |state| {
        let after = page.after.unwrap_or_default();
        let views: Vec<ServerView> = state
            .store
            .list_servers()
            .map_err(ApiError::internal)?
            .iter()
            .filter(|s| s.name.as_str() > after.as_str())
            .take(limit + 1)
            .map(|s| view(state, s, caller.is_admin(), running_of(state, s.name.as_str())))
            .collect();
        Ok(Json(Page::cut(views, limit, |s| s.name.clone())))
    })
    .await
}

pub async fn get(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<ServerView>, ApiError> {
    let name = ServerName::parse(&name).map_err(|_| ApiError::not_found(format!("no server named {name:?}")))?;
    blocking(&state, move |state| {
        let def = state
            .store
            .server(&name)
            .map_err(|e| ApiError::from(gigmcp_ops::OpsError::from(e)))?;
        Ok(Json(view(
            state,
            &def,
            caller.is_admin(),
            running_of(state, name.as_str()),
        )))
    })
    .await
}

pub async fn create(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Body(body): Body<CreateServer>,
) -> Result<(StatusCode, Json<ServerView>), ApiError> {
    caller.require_admin()?;
    if let Some(reference) = body.catalog.clone() {
        return install(state, caller, body, reference).await;
    }
    if body.base_url.is_some() {
        return Err(ApiError::bad_request("base_url goes with catalog"));
    }
    let input = input(body);
    // An npm or PyPI install can take a while: it runs off the runtime, like every store write.
    blocking(&state, move |state| {
        let def = ops(state, &caller).add_server_from(input, state.default_limits, &state.servers_dir)?;
        Ok((StatusCode::CREATED, Json(view(state, &def, true, Vec::new()))))
    })
    .await
}

/// `POST /api/servers` with `catalog`: an install (201) or an upgrade (200) of a catalog toolpack.
async fn install(
    state: Arc<ControlState>,
    caller: Caller,
    body: CreateServer,
    reference: String,
) -> Result<(StatusCode, Json<ServerView>), ApiError> {
    let combined = [
        ("prefix", body.prefix.is_some()),
        ("per_session", body.per_session),
        ("command", body.command.is_some()),
        ("builtin", body.builtin.is_some()),
        ("url", body.url.is_some()),
        ("npm", body.npm.is_some()),
        ("pypi", body.pypi.is_some()),
        ("bin", body.bin.is_some()),
        ("runtime", body.runtime.is_some()),
        ("args", !body.args.is_empty()),
        ("env", !body.env.is_empty()),
        ("mounts", !body.mounts.is_empty()),
        ("egress", !body.egress.is_empty()),
        ("memory", body.memory.is_some()),
        ("pids", body.pids.is_some()),
        ("state_size", body.state_size.is_some()),
    ];
    if let Some((field, _)) = combined.iter().find(|(_, given)| *given) {
        return Err(ApiError::bad_request(format!(
            "{field} cannot be combined with catalog: a catalog entry's manifest defines the server"
        )));
    }
    let name = ServerName::parse(&body.name)?;
    blocking(&state, move |state| {
        let index = crate::api::catalog::current(state)?;
        let outcome = ops(state, &caller).install_from_catalog(
            &index,
            &gigmcp_ops::install::CatalogInstall {
                name: &name,
                reference: &reference,
                base_url: body.base_url.as_deref(),
                consent: false,
                servers_dir: &state.servers_dir,
                oci: &state.oci,
            },
        )?;
        let status = match outcome.action {
            gigmcp_ops::install::InstallAction::Installed => StatusCode::CREATED,
            _ => StatusCode::OK,
        };
        Ok((
            status,
            Json(view(state, &outcome.def, true, running_of(state, name.as_str()))),
        ))
    })
    .await
}

#[derive(Serialize, JsonSchema)]
pub struct Consented {
    /// What changed since the runtime consented to before (empty: nothing waited for consent).
    pub changes: Vec<String>,
}

/// Consent to the runtime a catalog toolpack was upgraded to (admins).
pub async fn consent(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<Consented>, ApiError> {
    caller.require_admin()?;
    let name = ServerName::parse(&name).map_err(|_| ApiError::not_found(format!("no server named {name:?}")))?;
    blocking(&state, move |state| {
        let changes = ops(state, &caller).consent(&name)?;
        Ok(Json(Consented { changes }))
    })
    .await
}

pub async fn update(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Body(body): Body<UpdateServer>,
) -> Result<Json<ServerView>, ApiError> {
    caller.require_admin()?;
    let name = ServerName::parse(&name).map_err(|_| ApiError::not_found(format!("no server named {name:?}")))?;
    let egress = servers::parse_egress(&body.egress.join(",")).map_err(invalid)?;
    blocking(&state, move |state| {
        let def = ops(state, &caller).set_server_egress(&name, egress)?;
        Ok(Json(view(state, &def, true, running_of(state, name.as_str()))))
    })
    .await
}

pub async fn delete(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let name = ServerName::parse(&name).map_err(|_| ApiError::not_found(format!("no server named {name:?}")))?;
    blocking(&state, move |state| {
        ops(state, &caller).remove_server(&name, state.states.as_ref(), query.delete_state.unwrap_or(false))?;
        state.running.forget_server_logs(&name);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// The server named `name`, or 404.
async fn existing(state: &Arc<ControlState>, name: String) -> Result<ServerName, ApiError> {
    let name = ServerName::parse(&name).map_err(|_| ApiError::not_found(format!("no server named {name:?}")))?;
    blocking(state, move |state| {
        state
            .store
            .server(&name)
            .map_err(|e| ApiError::from(gigmcp_ops::OpsError::from(e)))?;
        Ok(name)
    })
    .await
}

pub async fn logs(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<ServerLog>, ApiError> {
    caller.require_admin()?;
    let name = existing(&state, name).await?;
    Ok(Json(ServerLog {
        lines: state.running.server_logs(&name, query.after),
    }))
}

/// How long one follow stream lasts: a browser's `EventSource` reconnects on its own, resuming after the last
/// line it got, and the session is checked again then (a logged-out session stops following).
const FOLLOW_FOR: Duration = Duration::from_secs(5 * 60);

/// The lines kept, then each new line as it is written: server-sent events `line` whose data is a
/// [`servers::LogLine`] and whose id is its number. Resumes after `Last-Event-ID` (or `after`).
pub async fn follow_logs(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<LogsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require_admin()?;
    let name = existing(&state, name).await?;
    let after = match headers.get("last-event-id") {
        Some(id) => Some(
            id.to_str()
                .ok()
                .and_then(|id| id.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a line number"))?,
        ),
        None => query.after,
    };
    let (kept, receiver) = state.running.follow_server_logs(&name, after);
    let follow = Follow {
        state,
        name,
        pending: kept.into(),
        last: after,
        receiver,
        until: tokio::time::Instant::now() + FOLLOW_FOR,
    };
    let events = futures_util::stream::unfold(follow, |mut follow| async move {
        let line = follow.next().await?;
        let event = Event::default()
            .event("line")
            .id(line.seq.to_string())
            .json_data(&line)
            .unwrap_or_else(|_| Event::default().comment("unserializable line"));
        Some((Ok(event), follow))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A follower's place in a server's log.
struct Follow {
    state: Arc<ControlState>,
    name: ServerName,
    /// Lines to send before waiting for new ones.
    pending: VecDeque<servers::LogLine>,
    /// The number of the last line sent.
    last: Option<u64>,
    receiver: broadcast::Receiver<servers::LogLine>,
    until: tokio::time::Instant,
}

impl Follow {
    /// The next line to send; `None` when the stream ends.
    async fn next(&mut self) -> Option<servers::LogLine> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                if self.last.is_some_and(|last| line.seq <= last) {
                    continue; // sent already
                }
                self.last = Some(line.seq);
                return Some(line);
            }
            match tokio::time::timeout_at(self.until, self.receiver.recv()).await {
                Err(_elapsed) => return None,
                Ok(Ok(line)) => self.pending.push_back(line),
                // Too far behind: what it missed is read again from the log (what is no longer kept is lost).
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    self.pending = self.state.running.server_logs(&self.name, self.last).into();
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    }
}

pub async fn restart(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<Restarted>, ApiError> {
    caller.require_admin()?;
    let name = existing(&state, name).await?;
    blocking(&state, move |state| {
        let stopped = state.running.restart_server(&name);
        ops(state, &caller).record(
            "server.restart",
            None,
            Some(name.as_str()),
            serde_json::json!({"stopped": stopped}),
        );
        Ok(Json(Restarted { stopped }))
    })
    .await
}
