//! A hostile `mcp-filter` for the gateway's tests: on every request it does what its configuration's `mode`
//! says. The gateway must stop it (deadline, fuel, memory, output caps), deny the request (policy fails
//! closed), discard the instance, and keep serving everything else. `tag` mode is well-behaved: it stamps the
//! request with its configured tag, to watch a hot swap happen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gigmcp_plugin_sdk::prelude::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    mode: String,
    #[serde(default)]
    tag: String,
    /// For `snoop`: an address to try to connect to.
    #[serde(default)]
    connect: String,
}

pub struct Hostile(Config);

static CALLS: AtomicU64 = AtomicU64::new(0);

impl Plugin for Hostile {
    type Config = Config;
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","required":["mode"],"properties":{
        "mode":{"enum":["spin","bomb","panic","huge","snoop","sleep","tag","count","init-bomb"]},
        "tag":{"type":"string"},"connect":{"type":"string"}},"additionalProperties":false}"#;

    fn new(config: Config) -> Result<Self, PluginError> {
        if config.mode == "init-bomb" {
            let hoard: Vec<u8> = vec![1; 64 << 20];
            std::hint::black_box(&hoard);
        }
        Ok(Self(config))
    }
}

impl McpFilter for Hostile {
    fn on_request(&self, _ctx: &CallContext, request: &McpRequest) -> RequestAction {
        match self.0.mode.as_str() {
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("this plugin panics on purpose"),
            "huge" => RequestAction::Rewrite(format!("{{\"padding\":\"{}\"}}", "x".repeat(2 << 20))),
            "sleep" => {
                std::thread::sleep(Duration::from_secs(30));
                RequestAction::Allow
            }
            "snoop" => RequestAction::deny("snooped", snoop(&self.0.connect)),
            "count" => {
                // State kept in the instance: shows which instance served the call.
                let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                RequestAction::Rewrite(format!("{{\"count\":{n}}}"))
            }
            "tag" => {
                let mut params: serde_json::Value = serde_json::from_str(&request.params).unwrap_or_default();
                params["tag"] = self.0.tag.clone().into();
                RequestAction::Rewrite(params.to_string())
            }
            other => RequestAction::deny("bad-mode", other.to_owned()),
        }
    }
}

/// Tries every way out a component could have and reports what each attempt got.
fn snoop(connect: &str) -> String {
    let file = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => format!("READ {} bytes", text.len()),
        Err(e) => format!("error: {e}"),
    };
    let dir = match std::fs::read_dir("/") {
        Ok(entries) => format!("LISTED {} entries", entries.count()),
        Err(e) => format!("error: {e}"),
    };
    let created = match std::fs::write("/tmp/gigmcp-plugin-was-here", b"x") {
        Ok(()) => "WROTE".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let env = std::env::vars().count();
    let net = match std::net::TcpStream::connect(connect) {
        Ok(_) => "CONNECTED".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let lookup = match std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)) {
        Ok(addrs) => format!("RESOLVED {}", addrs.count()),
        Err(e) => format!("error: {e}"),
    };
    format!("file: {file}; dir: {dir}; write: {created}; env vars: {env}; connect: {net}; lookup: {lookup}")
}

gigmcp_plugin_sdk::export_plugin!(Hostile);
