//! Servers' persistent state directories, as changes to profiles and servers see them: data a server wrote
//! for a profile's users is deleted only when the caller confirms it (`--delete-state`, or `delete_state` in
//! the API), never as a side effect. Empty states go with their server or profile without asking.

use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::server::StateDir;

use crate::OpsError;

/// The state directories of this data directory (the binary implements it with the sandbox's `StateStore`:
/// ops never mounts anything itself).
pub trait ServerStates: Send + Sync {
    /// The states of `server`, one per profile that ever ran it.
    fn list(&self, server: &ServerName) -> Vec<StateDir>;
    /// Whether the server wrote anything into `state` that a removal would lose.
    fn holds_data(&self, state: &StateDir) -> bool;
    /// Removes the state of `server` for `profile` (unmounted first), or for every profile.
    fn remove(&self, server: &ServerName, profile: Option<&ProfileSlug>) -> Result<(), String>;
}

/// Which states a change would leave without an owner: (server, profile) pairs, `None` for every profile.
pub(crate) type Targets = Vec<(ServerName, Option<ProfileSlug>)>;

fn of(states: &dyn ServerStates, targets: &Targets) -> Vec<StateDir> {
    targets
        .iter()
        .flat_map(|(server, profile)| {
            states
                .list(server)
                .into_iter()
                .filter(move |s| profile.as_ref().is_none_or(|p| p.as_str() == s.profile))
        })
        .collect()
}

/// Refuses the change when it would orphan states and the caller did not confirm their deletion; called
/// before anything is written.
pub(crate) fn check(states: &dyn ServerStates, targets: &Targets, confirmed: bool) -> Result<(), OpsError> {
    let found: Vec<StateDir> = of(states, targets)
        .into_iter()
        .filter(|s| states.holds_data(s))
        .collect();
    if found.is_empty() || confirmed {
        return Ok(());
    }
    let names: Vec<String> = found.iter().map(|s| format!("{}/{}", s.server, s.profile)).collect();
    let bytes: u64 = found.iter().map(|s| s.disk_bytes).sum();
    Err(OpsError::Conflict(format!(
        "this deletes the state of {} ({:.1} MiB on disk): confirm with --delete-state (API: delete_state=true)",
        names.join(", "),
        bytes as f64 / 1048576.0
    )))
}

/// Removes the states of `targets`, once the change they belonged to is written.
pub(crate) fn remove(states: &dyn ServerStates, targets: &Targets) -> Result<Vec<String>, OpsError> {
    let mut removed = Vec::new();
    for found in of(states, targets) {
        let server = ServerName::parse(&found.server).map_err(|e| OpsError::Internal(e.to_string()))?;
        let profile = ProfileSlug::parse(&found.profile).map_err(|e| OpsError::Internal(e.to_string()))?;
        states.remove(&server, Some(&profile)).map_err(|e| {
            OpsError::Internal(format!(
                "the change was made, but the state of {server}/{profile} could not be removed: {e}"
            ))
        })?;
        removed.push(format!("{server}/{profile}"));
    }
    Ok(removed)
}
