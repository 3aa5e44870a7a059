//! Configuration: parsed once at start-up from the environment into typed structs. Nothing reads the
//! environment later. Missing or malformed settings stop start-up with a message that says what to set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use sha2::Digest;
use thiserror::Error;

use gigmcp_control::oidc::OidcSettings;
use gigmcp_sandbox as sandbox;
use gigmcp_types::secret::{MASTER_KEY_HINT, MasterKey};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: &'static str, hint: &'static str },
    #[error("{name} is invalid ({value:?}): {hint}")]
    Invalid {
        name: &'static str,
        value: String,
        hint: &'static str,
    },
    #[error("cannot read {name} from {path}: {source}")]
    File {
        name: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{name} is no longer supported: {replacement}")]
    Removed {
        name: &'static str,
        replacement: &'static str,
    },
    #[error("set either {name} or {name}_FILE, not both")]
    Both { name: &'static str },
    #[error(
        "OpenID Connect is configured only in part: {missing} not set. Set GIG_OIDC_ISSUER, GIG_OIDC_CLIENT_ID and \
         GIG_OIDC_REDIRECT_URL (and GIG_OIDC_CLIENT_SECRET or GIG_OIDC_CLIENT_SECRET_FILE for a confidential \
         client), or none of them to run without an identity provider"
    )]
    OidcPartial { missing: String },
    #[error("{0}")]
    OAuth(String),
}

/// Variables of the original system that no longer apply, with what replaced them.
const REMOVED: &[(&str, &str)] = &[
    (
        "GIG_BEARER_TOKEN",
        "every profile has its own token now; create one with `gigmcp profile create <slug>`",
    ),
    (
        "GIG_ECHO_BIN",
        "the echo server is built in; add it with `gigmcp server add <name> --builtin echo`",
    ),
    (
        "GIG_BOOTSTRAP_PATH",
        "define profiles and servers with the gigmcp CLI (`gigmcp profile create`, `gigmcp server add`)",
    ),
];

/// The environment, read once.
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A secret given inline or as `<NAME>_FILE` (trailing newline trimmed).
    fn secret(&self, name: &'static str, file_name: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.get(name), self.get(file_name)) {
            (Some(_), Some(_)) => Err(ConfigError::Both { name }),
            (Some(v), None) => Ok(Some(v.to_owned())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|source| ConfigError::File {
                    name: file_name,
                    path: path.to_owned(),
                    source,
                }),
            (None, None) => Ok(None),
        }
    }
}

/// Where the data lives: all the CLI needs.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub db_path: PathBuf,
    /// Where npm and PyPI servers are installed (`GIG_SERVERS_DIR`, default `$GIG_DATA_DIR/servers`).
    pub servers_dir: PathBuf,
    /// Compiled plugin components (`GIG_PLUGIN_CACHE_DIR`, default `$GIG_DATA_DIR/plugin-cache`); entries are
    /// authenticated with a key derived from the master key, anything else is recompiled.
    pub plugin_cache_dir: PathBuf,
    /// Servers' persistent state directories (`GIG_STATE_DIR`, default `$GIG_DATA_DIR/state`).
    pub state_dir: PathBuf,
}

impl Paths {
    /// Every path absolute, resolved once against the working directory of the command that starts: what a
    /// sandbox mounts and what the installers write must not depend on where a later step runs (a relative
    /// `GIG_DATA_DIR` once made npm and PyPI installs fail with an invalid mount).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        refuse_removed(env)?;
        let absolute = |name: &'static str, path: PathBuf| {
            std::path::absolute(&path).map_err(|source| ConfigError::File {
                name,
                path: path.display().to_string(),
                source,
            })
        };
        let data_dir = absolute(
            "GIG_DATA_DIR",
            PathBuf::from(env.get("GIG_DATA_DIR").unwrap_or("./data")),
        )?;
        // A setting, or its default inside the data directory.
        let inside = |name: &'static str, default: &str| {
            absolute(
                name,
                env.get(name).map_or_else(|| data_dir.join(default), PathBuf::from),
            )
        };
        let db_path = inside("GIG_DB_PATH", "gigmcp.db")?;
        let servers_dir = inside("GIG_SERVERS_DIR", "servers")?;
        let plugin_cache_dir = inside("GIG_PLUGIN_CACHE_DIR", "plugin-cache")?;
        let state_dir = inside("GIG_STATE_DIR", "state")?;
        Ok(Self {
            data_dir,
            db_path,
            servers_dir,
            plugin_cache_dir,
            state_dir,
        })
    }
}

/// How sandboxes are made (`GIG_SANDBOX_*`, `GIG_MAX_SANDBOXES`, `GIG_PROXY_PORT`, `GIG_INSTANCE`).
pub fn sandbox_settings(env: &Env, paths: &Paths) -> Result<sandbox::Settings, ConfigError> {
    let instance = match env.get("GIG_INSTANCE") {
        Some(text) => {
            let ok =
                (1..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                return Err(ConfigError::Invalid {
                    name: "GIG_INSTANCE",
                    value: text.to_owned(),
                    hint: "give 1 to 4 characters from a-z and 0-9; it names this gateway's interfaces and rules",
                });
            }
            text.to_owned()
        }
        None => {
            // Stable per data directory, so a restart finds (and removes) what a crashed run left behind.
            let dir = std::fs::canonicalize(&paths.data_dir).unwrap_or_else(|_| paths.data_dir.clone());
            let digest = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
            hex::encode(&digest[..2])
        }
    };
    let cidr = env.get("GIG_SANDBOX_CIDR").unwrap_or("10.88.0.0/16");
    let pool = sandbox::net::Pool::parse(cidr).map_err(|_| ConfigError::Invalid {
        name: "GIG_SANDBOX_CIDR",
        value: cidr.to_owned(),
        hint: "give an IPv4 network with a prefix of /8 to /30, like 10.88.0.0/16",
    })?;
    let number = |name: &'static str, default: u64, min: u64, max: u64, hint: &'static str| match env.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                name,
                value: text.to_owned(),
                hint,
            }),
    };
    let max_sandboxes = number(
        "GIG_MAX_SANDBOXES",
        64,
        1,
        16384,
        "give a number of sandboxes from 1 to 16384",
    )?;
    let uid_base = number(
        "GIG_SANDBOX_UID_BASE",
        200_000,
        10_000,
        4_000_000_000,
        "give the first host uid for sandboxes (at least 10000); sandbox n runs as that uid + n",
    )?;
    let proxy_port = number("GIG_PROXY_PORT", 8081, 1, 65535, "give a TCP port")?;
    let size = |name: &'static str, default: u64| match env.get(name) {
        None => Ok(default),
        Some(text) => gigmcp_types::server::parse_size(text).ok_or_else(|| ConfigError::Invalid {
            name,
            value: text.to_owned(),
            hint: "give a size like 512m or 1g",
        }),
    };
    let memory_bytes = size("GIG_SANDBOX_MEMORY", 1 << 30)?;
    let state_bytes = size("GIG_SANDBOX_STATE_SIZE", gigmcp_types::server::DEFAULT_STATE_BYTES)?;
    if state_bytes < gigmcp_types::server::MIN_STATE_BYTES {
        return Err(ConfigError::Invalid {
            name: "GIG_SANDBOX_STATE_SIZE",
            value: env.get("GIG_SANDBOX_STATE_SIZE").unwrap_or_default().to_owned(),
            hint: "give a size of at least 4m",
        });
    }
    let pids = number(
        "GIG_SANDBOX_PIDS",
        256,
        8,
        1_000_000,
        "give a number of processes, at least 8",
    )?;
    Ok(sandbox::Settings {
        instance,
        pool,
        max_sandboxes: max_sandboxes as usize,
        uid_base: uid_base as u32,
        proxy_port: proxy_port as u16,
        default_limits: gigmcp_types::server::Limits {
            memory_bytes,
            pids,
            state_bytes,
        },
        state_root: paths.state_dir.clone(),
        servers_dir: paths.servers_dir.clone(),
    })
}

/// Everything `gigmcp serve` needs.
#[derive(Debug)]
pub struct ServeConfig {
    pub paths: Paths,
    pub listen: SocketAddr,
    pub master_key: MasterKey,
    /// The origin browsers use to reach the gateway; requests with another non-loopback `Origin` are refused.
    pub public_origin: Option<String>,
    /// `GIG_METRICS_LISTEN`: where `/metrics` is served (none: not at all).
    pub metrics_listen: Option<SocketAddr>,
    /// The largest request body accepted on the MCP endpoint; larger bodies get 413.
    pub max_body_bytes: usize,
    pub sandbox: sandbox::Settings,
    /// A server process unused for this long is stopped (`GIG_IDLE_TIMEOUT`, seconds or e.g. `15m`).
    pub idle_timeout: std::time::Duration,
    /// The URL the control plane is reached at: `GIG_PUBLIC_URL`, or `http://<GIG_LISTEN>`. Its origin is the
    /// one state-changing browser requests must come from; an https URL makes session cookies `Secure`.
    pub public_url: url::Url,
    /// How long a web session lasts (`GIG_SESSION_TTL`, default 12h).
    pub session_ttl: std::time::Duration,
    /// How long a connection's flow may take at the provider (`GIG_CONNECT_FLOW_TTL`).
    pub connect_flow_ttl: std::time::Duration,
    /// The identity provider, when `GIG_OIDC_*` configure one (all of them or none).
    pub oidc: Option<OidcSettings>,
    /// The dashboard: the build embedded in this binary, or `GIG_WEB_DIR` (a `web/dist` read at every request,
    /// for working on the dashboard without rebuilding the gateway).
    pub web: gigmcp_control::dashboard::WebFiles,
}

impl ServeConfig {
    /// What the control plane needs of it.
    pub fn control(&self) -> gigmcp_control::Settings {
        gigmcp_control::Settings {
            db_path: self.paths.db_path.clone(),
            servers_dir: self.paths.servers_dir.clone(),
            public_url: self.public_url.clone(),
            session_ttl: self.session_ttl,
            connect_flow_ttl: self.connect_flow_ttl,
            oidc: self.oidc.clone(),
            max_body_bytes: self.max_body_bytes,
            default_limits: self.sandbox.default_limits,
            web: self.web.clone(),
        }
    }
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

impl ServeConfig {
    /// `generated_key`: in dev mode, a master key to use when none is configured.
    pub fn from_env(env: &Env, generated_key: Option<MasterKey>) -> Result<Self, ConfigError> {
        let paths = Paths::from_env(env)?;
        let listen_text = env.get("GIG_LISTEN").unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse().map_err(|_| ConfigError::Invalid {
            name: "GIG_LISTEN",
            value: listen_text.to_owned(),
            hint: "give an address and port, like 127.0.0.1:8080 or [::]:8080",
        })?;
        let master_key = match env.secret("GIG_MASTER_KEY", "GIG_MASTER_KEY_FILE")? {
            Some(text) => MasterKey::parse(&text).map_err(|_| ConfigError::Invalid {
                name: "GIG_MASTER_KEY",
                value: "<redacted>".into(),
                hint: MASTER_KEY_HINT,
            })?,
            None => generated_key.ok_or(ConfigError::Missing {
                name: "GIG_MASTER_KEY",
                hint: MASTER_KEY_HINT,
            })?,
        };
        let public_origin = match env.get("GIG_PUBLIC_URL") {
            None => None,
            Some(text) => Some(origin_of(text).ok_or_else(|| ConfigError::Invalid {
                name: "GIG_PUBLIC_URL",
                value: text.to_owned(),
                hint: "give the URL clients use to reach the gateway, like https://mcp.example.com",
            })?),
        };
        let max_body_bytes = match env.get("GIG_MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "GIG_MAX_BODY_BYTES",
                    value: text.to_owned(),
                    hint: "give a number of bytes, at least 1024",
                })?,
        };
        let sandbox = sandbox_settings(env, &paths)?;
        let idle_timeout = match env.get("GIG_IDLE_TIMEOUT") {
            None => std::time::Duration::from_secs(15 * 60),
            Some(text) => parse_duration(text).ok_or_else(|| ConfigError::Invalid {
                name: "GIG_IDLE_TIMEOUT",
                value: text.to_owned(),
                hint: "give a duration like 900, 90s, 15m or 1h",
            })?,
        };
        let public_url = public_url(env)?;
        let session_ttl = match env.get("GIG_SESSION_TTL") {
            None => std::time::Duration::from_secs(12 * 3600),
            Some(text) => parse_duration(text).ok_or_else(|| ConfigError::Invalid {
                name: "GIG_SESSION_TTL",
                value: text.to_owned(),
                hint: "give a duration like 3600, 90m or 12h",
            })?,
        };
        let metrics_listen = match env.get("GIG_METRICS_LISTEN") {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| ConfigError::Invalid {
                name: "GIG_METRICS_LISTEN",
                value: text.to_owned(),
                hint: "give an address and port for /metrics, like 127.0.0.1:9464 (keep it off the public network)",
            })?),
        };
        let connect_flow_ttl = match env.get("GIG_CONNECT_FLOW_TTL") {
            None => std::time::Duration::from_secs(600),
            Some(text) => parse_duration(text)
                .filter(|d| (10..=3600).contains(&d.as_secs()))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "GIG_CONNECT_FLOW_TTL",
                    value: text.to_owned(),
                    hint: "give how long a connection may take at the provider, 10s to 1h, like 600 or 10m",
                })?,
        };
        let web = match env.get("GIG_WEB_DIR") {
            None => gigmcp_control::dashboard::WebFiles::Embedded(gigmcp_dashboard::FILES),
            Some(dir) if std::path::Path::new(dir).join("index.html").is_file() => {
                gigmcp_control::dashboard::WebFiles::Directory(std::path::PathBuf::from(dir))
            }
            Some(dir) => {
                return Err(ConfigError::Invalid {
                    name: "GIG_WEB_DIR",
                    value: dir.to_owned(),
                    hint: "give a dashboard build: a directory with index.html (web/dist after `make web`)",
                });
            }
        };
        Ok(Self {
            web,
            paths,
            listen,
            master_key,
            public_origin,
            metrics_listen,
            max_body_bytes,
            sandbox,
            idle_timeout,
            public_url,
            session_ttl,
            connect_flow_ttl,
            oidc: oidc_settings(env)?,
        })
    }
}

/// The URL the gateway is reached at: `GIG_PUBLIC_URL`, or `http://<GIG_LISTEN>` (login links are made of it).
pub fn public_url(env: &Env) -> Result<url::Url, ConfigError> {
    match env.get("GIG_PUBLIC_URL") {
        Some(text) => url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ConfigError::Invalid {
                name: "GIG_PUBLIC_URL",
                value: text.to_owned(),
                hint: "give the URL clients use to reach the gateway, like https://mcp.example.com",
            }),
        None => {
            let listen = env.get("GIG_LISTEN").unwrap_or("127.0.0.1:8080");
            listen
                .parse::<SocketAddr>()
                .ok()
                .and_then(|addr| url::Url::parse(&format!("http://{addr}/")).ok())
                .ok_or_else(|| ConfigError::Invalid {
                    name: "GIG_LISTEN",
                    value: listen.to_owned(),
                    hint: "give an address and port, like 127.0.0.1:8080 or [::]:8080",
                })
        }
    }
}

/// `GIG_OIDC_*`: all of issuer, client id and redirect URL, or none of them (and then no secret either).
pub fn oidc_settings(env: &Env) -> Result<Option<OidcSettings>, ConfigError> {
    let secret = env.secret("GIG_OIDC_CLIENT_SECRET", "GIG_OIDC_CLIENT_SECRET_FILE")?;
    let required = ["GIG_OIDC_ISSUER", "GIG_OIDC_CLIENT_ID", "GIG_OIDC_REDIRECT_URL"];
    let missing: Vec<&str> = required.iter().copied().filter(|n| env.get(n).is_none()).collect();
    if missing.len() == required.len() && secret.is_none() {
        return Ok(None);
    }
    if !missing.is_empty() {
        return Err(ConfigError::OidcPartial {
            missing: missing.join(", "),
        });
    }
    let http_url = |name: &'static str, hint: &'static str| {
        let text = env.get(name).unwrap_or_default();
        url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ConfigError::Invalid {
                name,
                value: text.to_owned(),
                hint,
            })
    };
    http_url(
        "GIG_OIDC_ISSUER",
        "give the provider's issuer URL, as its /.well-known/openid-configuration states it",
    )?;
    let redirect_url = http_url(
        "GIG_OIDC_REDIRECT_URL",
        "give the gateway's callback as browsers reach it, like https://mcp.example.com/auth/callback",
    )?;
    let flow_ttl = match env.get("GIG_OIDC_FLOW_TTL") {
        None => std::time::Duration::from_secs(600),
        Some(text) => parse_duration(text).ok_or_else(|| ConfigError::Invalid {
            name: "GIG_OIDC_FLOW_TTL",
            value: text.to_owned(),
            hint: "give a duration like 600, 10m or 90s",
        })?,
    };
    let scopes = env
        .get("GIG_OIDC_SCOPES")
        .unwrap_or("profile email")
        .split([' ', ','])
        .filter(|s| !s.is_empty() && *s != "openid")
        .map(str::to_owned)
        .collect();
    let extra_roots_pem = pem_roots(
        env,
        "GIG_OIDC_CA_FILE",
        "give a file of PEM certificates (-----BEGIN CERTIFICATE-----) to trust for the provider",
    )?;
    Ok(Some(OidcSettings {
        extra_roots_pem,
        issuer: env.get("GIG_OIDC_ISSUER").unwrap_or_default().to_owned(),
        client_id: env.get("GIG_OIDC_CLIENT_ID").unwrap_or_default().to_owned(),
        client_secret: secret,
        redirect_url,
        flow_ttl,
        scopes,
    }))
}

/// Parses `900`, `90s`, `15m`, `1h`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().ok()?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
}

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin`.
pub fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

/// The egress proxy's settings: `GIG_EGRESS_EXTRA_CA` (a PEM file of extra upstream roots),
/// `GIG_EGRESS_RESOLVE` (`host=addr` or `host:port=addr`, comma separated), `GIG_EGRESS_ALLOW_ADDRS`
/// (CIDRs the dial guard lets through), `GIG_EGRESS_MAX_TUNNELS` (per sandbox, default 64).
pub fn egress_settings(env: &Env, proxy_port: u16) -> Result<gigmcp_egress::EgressSettings, ConfigError> {
    use gigmcp_egress::settings as egress;
    let mut settings = egress::EgressSettings::new(proxy_port);
    if let Some(path) = env.get("GIG_EGRESS_EXTRA_CA") {
        settings.extra_roots =
            egress::read_extra_roots(std::path::Path::new(path)).map_err(|e| ConfigError::Invalid {
                name: "GIG_EGRESS_EXTRA_CA",
                value: e,
                hint: "give the path of a PEM file holding the CA certificates upstreams are trusted by",
            })?;
    }
    if let Some(text) = env.get("GIG_EGRESS_RESOLVE") {
        settings.resolve = egress::Resolve::parse(text).map_err(|e| ConfigError::Invalid {
            name: "GIG_EGRESS_RESOLVE",
            value: e,
            hint: "give host=address or host:port=address pairs, comma separated, like api.example.com=203.0.113.7",
        })?;
    }
    if let Some(text) = env.get("GIG_EGRESS_ALLOW_ADDRS") {
        settings.allow_addrs = egress::parse_allow_addrs(text).map_err(|e| ConfigError::Invalid {
            name: "GIG_EGRESS_ALLOW_ADDRS",
            value: e,
            hint: "give CIDRs, comma separated, like 198.51.100.0/24,2001:db8::/32",
        })?;
    }
    if let Some(text) = env.get("GIG_EGRESS_MAX_TUNNELS") {
        settings.max_tunnels = egress::parse_max_tunnels(text).map_err(|e| ConfigError::Invalid {
            name: "GIG_EGRESS_MAX_TUNNELS",
            value: e,
            hint: "give the number of tunnels a sandbox may hold open at once (default 64)",
        })?;
    }
    Ok(settings)
}

fn refuse_removed(env: &Env) -> Result<(), ConfigError> {
    for (name, replacement) in REMOVED {
        if env.get(name).is_some() {
            return Err(ConfigError::Removed { name, replacement });
        }
    }
    Ok(())
}

/// `GIG_INSTALL`: catalog refs (`name`, `name@version`, `sha256:<digest>`), comma separated, installed at
/// start-up with consent. Needs a catalog.
pub fn catalog_installs(env: &Env, catalog: bool) -> Result<Vec<String>, ConfigError> {
    let Some(text) = env.get("GIG_INSTALL") else {
        return Ok(Vec::new());
    };
    if !catalog {
        return Err(ConfigError::Invalid {
            name: "GIG_INSTALL",
            value: text.to_owned(),
            hint: "installing from the catalog needs GIG_REGISTRY_INDEX_URL and GIG_REGISTRY_PUBKEY",
        });
    }
    let references: Vec<String> = text.split(',').map(str::trim).map(str::to_owned).collect();
    if references
        .iter()
        .any(|r| r.is_empty() || r.contains(char::is_whitespace))
    {
        return Err(ConfigError::Invalid {
            name: "GIG_INSTALL",
            value: text.to_owned(),
            hint: "give catalog refs separated by commas: name, name@version or sha256:<digest>",
        });
    }
    Ok(references)
}

/// How static-binary catalog entries are pulled: `GIG_OCI_CA_FILE`, `GIG_OCI_USERNAME`,
/// `GIG_OCI_PASSWORD` (or `_FILE`).
pub fn oci_settings(env: &Env) -> Result<gigmcp_ops::oci::OciSettings, ConfigError> {
    Ok(gigmcp_ops::oci::OciSettings {
        extra_roots_pem: pem_roots(
            env,
            "GIG_OCI_CA_FILE",
            "give a file of PEM certificates (-----BEGIN CERTIFICATE-----) to trust for OCI registries",
        )?,
        username: env.get("GIG_OCI_USERNAME").map(str::to_owned),
        password: env.secret("GIG_OCI_PASSWORD", "GIG_OCI_PASSWORD_FILE")?,
    })
}

/// Extra trusted roots from the PEM file a variable names (none when unset).
fn pem_roots(env: &Env, name: &'static str, hint: &'static str) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = env.get(name) else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|source| ConfigError::File {
        name,
        path: path.to_owned(),
        source,
    })?;
    if !reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|certs| !certs.is_empty()) {
        return Err(ConfigError::Invalid {
            name,
            value: path.to_owned(),
            hint,
        });
    }
    Ok(Some(pem))
}

/// The signed catalog: `GIG_REGISTRY_INDEX_URL` and `GIG_REGISTRY_PUBKEY` together (or neither), and
/// `GIG_REGISTRY_CA_FILE` for an index served under a private CA.
pub fn catalog_source(env: &Env) -> Result<Option<gigmcp_ops::catalog::CatalogSource>, ConfigError> {
    let (url, key) = match (env.get("GIG_REGISTRY_INDEX_URL"), env.get("GIG_REGISTRY_PUBKEY")) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                name: "GIG_REGISTRY_PUBKEY",
                hint: "the registry's Ed25519 public key (64 hex characters) that signs index.json; \
                       `gigmcp catalog keygen` prints one for a registry of your own",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                name: "GIG_REGISTRY_INDEX_URL",
                hint: "the https:// or file:// URL of the registry's index.json (its signature is read from \
                       the same URL with .sig appended)",
            });
        }
        (Some(url), Some(key)) => (url, key),
    };
    let url = gigmcp_ops::catalog::IndexUrl::parse(url).map_err(|_| ConfigError::Invalid {
        name: "GIG_REGISTRY_INDEX_URL",
        value: url.to_owned(),
        hint: "give an https:// URL or a file:// URL with an absolute path, of index.json",
    })?;
    let key = gigmcp_catalog::PublicKey::parse(key).map_err(|_| ConfigError::Invalid {
        name: "GIG_REGISTRY_PUBKEY",
        value: key.to_owned(),
        hint: "give the Ed25519 public key as 64 hex characters",
    })?;
    let extra_roots_pem = pem_roots(
        env,
        "GIG_REGISTRY_CA_FILE",
        "give a file of PEM certificates (-----BEGIN CERTIFICATE-----) to trust for the registry",
    )?;
    Ok(Some(gigmcp_ops::catalog::CatalogSource {
        url,
        key,
        extra_roots_pem,
    }))
}

/// The settings `GIG_OAUTH_<VENDOR>_*` give for one vendor's OAuth app: added at start-up when the vendor has
/// no app yet (what the database holds wins). `CLIENT_ID`, `AUTHORIZE_URL` and `TOKEN_URL` are required;
/// `CLIENT_SECRET` or `CLIENT_SECRET_FILE` (unless `PKCE=true`), `SCOPES` (commas or spaces), `REVOKE_URL`,
/// `AUTH_STYLE`, `SCOPE_SEPARATOR`, `DEFAULT_EXPIRES_IN` and `PARAMS` (`k=v,k=v`) are optional. The vendor is
/// the lower-cased middle of the name (`GIG_OAUTH_ACME_CLIENT_ID` → `acme`).
pub fn oauth_seeds(
    env: &Env,
) -> Result<Vec<(gigmcp_types::oauth::App, Option<gigmcp_types::secret::Secret>)>, ConfigError> {
    use gigmcp_types::oauth::{App, AuthStyle, DEFAULT_EXPIRES_IN, Vendor, split_scopes};
    const FIELDS: &[&str] = &[
        "CLIENT_ID",
        "CLIENT_SECRET_FILE",
        "CLIENT_SECRET",
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "REVOKE_URL",
        "SCOPES",
        "DEFAULT_SCOPES",
        "PKCE",
        "AUTH_STYLE",
        "SCOPE_SEPARATOR",
        "DEFAULT_EXPIRES_IN",
        "PARAMS",
    ];
    let mut vendors: Vec<String> = Vec::new();
    for name in env.0.keys().filter(|k| !env.0[*k].is_empty()) {
        let Some(rest) = name.strip_prefix("GIG_OAUTH_") else {
            continue;
        };
        let Some(field) = FIELDS.iter().find(|f| rest.ends_with(&format!("_{f}"))) else {
            return Err(ConfigError::OAuth(format!(
                "{name} is not an OAuth setting: use GIG_OAUTH_<VENDOR>_ and one of {}",
                FIELDS.join(", ")
            )));
        };
        let vendor = rest[..rest.len() - field.len() - 1].to_ascii_lowercase();
        if !vendors.contains(&vendor) {
            vendors.push(vendor);
        }
    }
    vendors.sort();
    let mut seeds = Vec::new();
    for raw in vendors {
        let prefix = format!("GIG_OAUTH_{}_", raw.to_ascii_uppercase());
        let get = |field: &str| env.get(&format!("{prefix}{field}")).map(str::to_owned);
        let fail = |what: String| ConfigError::OAuth(format!("{prefix}*: {what}"));
        let vendor = Vendor::parse(&raw).map_err(|e| fail(e.to_string()))?;
        let required = |field: &str| {
            get(field).ok_or_else(|| {
                fail(format!(
                    "{prefix}{field} is required (with CLIENT_ID, AUTHORIZE_URL, TOKEN_URL)"
                ))
            })
        };
        let pkce = get("PKCE").as_deref() == Some("true");
        let secret = match (get("CLIENT_SECRET"), get("CLIENT_SECRET_FILE")) {
            (Some(_), Some(_)) => return Err(fail(format!("set {prefix}CLIENT_SECRET or its _FILE, not both"))),
            (Some(v), None) => Some(v),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| fail(format!("cannot read {prefix}CLIENT_SECRET_FILE {path}: {e}")))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let mut params = Vec::new();
        for pair in get("PARAMS")
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| fail(format!("{prefix}PARAMS: {pair:?} is not name=value")))?;
            params.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let app = App {
            vendor,
            authorize_url: required("AUTHORIZE_URL")?,
            token_url: required("TOKEN_URL")?,
            revoke_url: get("REVOKE_URL"),
            client_id: required("CLIENT_ID")?,
            scopes: split_scopes(&get("SCOPES").or_else(|| get("DEFAULT_SCOPES")).unwrap_or_default()),
            pkce,
            params,
            auth_style: match get("AUTH_STYLE") {
                Some(text) => AuthStyle::parse(&text).map_err(|e| fail(e.to_string()))?,
                None => AuthStyle::Basic,
            },
            scope_separator: get("SCOPE_SEPARATOR").unwrap_or_else(|| " ".into()),
            require_refresh_token: true,
            default_expires_in: match get("DEFAULT_EXPIRES_IN") {
                Some(text) => text.parse().map_err(|_| {
                    fail(format!(
                        "{prefix}DEFAULT_EXPIRES_IN {text:?} is not a number of seconds"
                    ))
                })?,
                None => DEFAULT_EXPIRES_IN,
            },
        };
        app.check().map_err(|e| fail(e.to_string()))?;
        if secret.is_none() && !pkce {
            return Err(fail(format!(
                "{prefix}CLIENT_SECRET or {prefix}CLIENT_SECRET_FILE is required (or {prefix}PKCE=true for a public client)"
            )));
        }
        seeds.push((app, secret.map(|s| gigmcp_types::secret::Secret::new(s.into_bytes()))));
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_apps_are_seeded_from_complete_valid_settings_only() {
        let base = [
            ("GIG_OAUTH_ACME_CLIENT_ID", "c1"),
            ("GIG_OAUTH_ACME_CLIENT_SECRET", "s1"),
            ("GIG_OAUTH_ACME_AUTHORIZE_URL", "https://auth.acme.example/authorize"),
            ("GIG_OAUTH_ACME_TOKEN_URL", "https://auth.acme.example/token"),
            ("GIG_OAUTH_ACME_SCOPES", "read, write read"),
            ("GIG_OAUTH_ACME_PARAMS", "audience=api.acme.example"),
        ];
        let seeds = oauth_seeds(&Env::from_pairs(&base)).unwrap();
        assert_eq!(seeds.len(), 1);
        let (app, secret) = &seeds[0];
        assert_eq!(app.vendor.as_str(), "acme");
        assert_eq!(app.scopes, ["read", "write"]);
        assert_eq!(app.params, [("audience".to_owned(), "api.acme.example".to_owned())]);
        assert_eq!(secret.as_ref().unwrap().expose(), b"s1");
        let refused = |pairs: &[(&str, &str)], needle: &str| {
            let error = oauth_seeds(&Env::from_pairs(pairs)).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        };
        refused(&base[..3], "GIG_OAUTH_ACME_TOKEN_URL is required");
        refused(&[&base[..1], &base[2..4]].concat(), "CLIENT_SECRET");
        let mut http = base.to_vec();
        http[3] = ("GIG_OAUTH_ACME_TOKEN_URL", "http://auth.acme.example/token");
        refused(&http, "https://");
        refused(&[("GIG_OAUTH_ACME_CLIENTID", "x")], "is not an OAuth setting");
        let public = [&base[..1], &base[2..4], &[("GIG_OAUTH_ACME_PKCE", "true")]].concat();
        assert!(oauth_seeds(&Env::from_pairs(&public)).unwrap()[0].1.is_none());
    }

    #[test]
    fn gig_install_needs_a_catalog_and_well_formed_refs() {
        assert_eq!(
            catalog_installs(&Env::from_pairs(&[]), false).unwrap(),
            Vec::<String>::new()
        );
        let env = Env::from_pairs(&[("GIG_INSTALL", "newsfeed, pubsub@1.5.0")]);
        assert_eq!(catalog_installs(&env, true).unwrap(), ["newsfeed", "pubsub@1.5.0"]);
        assert!(
            catalog_installs(&env, false)
                .unwrap_err()
                .to_string()
                .contains("GIG_REGISTRY_INDEX_URL")
        );
        let env = Env::from_pairs(&[("GIG_INSTALL", "newsfeed,,pubsub")]);
        assert!(catalog_installs(&env, true).unwrap_err().to_string().contains("comma"));
    }

    #[test]
    fn every_path_setting_is_made_absolute_once() {
        let cwd = std::env::current_dir().unwrap();
        let paths = Paths::from_env(&Env::from_pairs(&[("GIG_DATA_DIR", "./.gigmcp-data")])).unwrap();
        assert_eq!(paths.data_dir, cwd.join(".gigmcp-data"));
        for path in [
            &paths.data_dir,
            &paths.db_path,
            &paths.servers_dir,
            &paths.plugin_cache_dir,
        ] {
            assert!(path.is_absolute(), "{}", path.display());
        }
        let paths = Paths::from_env(&Env::from_pairs(&[
            ("GIG_DB_PATH", "db.sqlite"),
            ("GIG_SERVERS_DIR", "srv"),
            ("GIG_PLUGIN_CACHE_DIR", "../cache"),
        ]))
        .unwrap();
        assert_eq!(paths.db_path, cwd.join("db.sqlite"));
        assert_eq!(paths.servers_dir, cwd.join("srv"));
        assert!(paths.plugin_cache_dir.is_absolute());
    }

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn serve_requires_a_master_key_and_says_how_to_make_one() {
        let err = ServeConfig::from_env(&Env::from_pairs(&[]), None).unwrap_err();
        assert!(err.to_string().contains("openssl rand -hex 32"), "{err}");
        let err = ServeConfig::from_env(&Env::from_pairs(&[("GIG_MASTER_KEY", "abc")]), None).unwrap_err();
        assert!(err.to_string().contains("64 hex"), "{err}");
        assert!(!err.to_string().contains("abc"), "error echoes the secret: {err}");
        let ok = ServeConfig::from_env(&Env::from_pairs(&[("GIG_MASTER_KEY", KEY)]), None).unwrap();
        assert_eq!(ok.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            ok.paths.db_path,
            std::env::current_dir().unwrap().join("data/gigmcp.db")
        );
    }

    #[test]
    fn master_key_file_works_and_both_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{KEY}\n")).unwrap();
        let file = file.to_str().unwrap();
        assert!(ServeConfig::from_env(&Env::from_pairs(&[("GIG_MASTER_KEY_FILE", file)]), None).is_ok());
        let both = Env::from_pairs(&[("GIG_MASTER_KEY_FILE", file), ("GIG_MASTER_KEY", KEY)]);
        assert!(matches!(
            ServeConfig::from_env(&both, None),
            Err(ConfigError::Both { .. })
        ));
    }

    #[test]
    fn removed_variables_stop_start_up_naming_their_replacement() {
        let env = Env::from_pairs(&[("GIG_MASTER_KEY", KEY), ("GIG_BEARER_TOKEN", "x")]);
        let err = ServeConfig::from_env(&env, None).unwrap_err();
        assert!(err.to_string().contains("gigmcp profile create"), "{err}");
    }

    #[test]
    fn sandbox_settings_are_validated() {
        let ok = ServeConfig::from_env(&Env::from_pairs(&[("GIG_MASTER_KEY", KEY)]), None).unwrap();
        assert_eq!(ok.sandbox.max_sandboxes, 64);
        assert_eq!(ok.sandbox.instance.len(), 4);
        assert_eq!(ok.idle_timeout, std::time::Duration::from_secs(900));
        for (name, value) in [
            ("GIG_SANDBOX_CIDR", "10.88.0.0/31"),
            ("GIG_INSTANCE", "TOO-LONG"),
            ("GIG_MAX_SANDBOXES", "0"),
            ("GIG_SANDBOX_UID_BASE", "0"),
            ("GIG_SANDBOX_MEMORY", "lots"),
            ("GIG_IDLE_TIMEOUT", "soon"),
        ] {
            let env = Env::from_pairs(&[("GIG_MASTER_KEY", KEY), (name, value)]);
            let err = ServeConfig::from_env(&env, None).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        assert_eq!(parse_duration("15m"), Some(std::time::Duration::from_secs(900)));
    }

    #[test]
    fn oidc_is_configured_all_or_none() {
        let base = [("GIG_MASTER_KEY", KEY)];
        let none = ServeConfig::from_env(&Env::from_pairs(&base), None).unwrap();
        assert!(none.oidc.is_none());
        let full = [
            ("GIG_MASTER_KEY", KEY),
            ("GIG_OIDC_ISSUER", "https://idp.example.com"),
            ("GIG_OIDC_CLIENT_ID", "gigmcp"),
            ("GIG_OIDC_REDIRECT_URL", "https://mcp.example.com/auth/callback"),
            ("GIG_OIDC_CLIENT_SECRET", "s3cret"),
        ];
        let oidc = ServeConfig::from_env(&Env::from_pairs(&full), None)
            .unwrap()
            .oidc
            .unwrap();
        assert_eq!(oidc.issuer, "https://idp.example.com");
        assert_eq!(oidc.flow_ttl, std::time::Duration::from_secs(600));
        assert_eq!(oidc.scopes, ["profile", "email"]);
        assert!(!format!("{oidc:?}").contains("s3cret"));
        // Each required variable left out is named.
        for left_out in ["GIG_OIDC_ISSUER", "GIG_OIDC_CLIENT_ID", "GIG_OIDC_REDIRECT_URL"] {
            let pairs: Vec<_> = full.iter().copied().filter(|(k, _)| *k != left_out).collect();
            let err = ServeConfig::from_env(&Env::from_pairs(&pairs), None).unwrap_err();
            assert!(matches!(err, ConfigError::OidcPartial { .. }), "{err}");
            assert!(err.to_string().contains(left_out), "{err}");
        }
        // A secret alone is partial configuration too.
        let err = ServeConfig::from_env(
            &Env::from_pairs(&[("GIG_MASTER_KEY", KEY), ("GIG_OIDC_CLIENT_SECRET", "x")]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("GIG_OIDC_ISSUER, GIG_OIDC_CLIENT_ID"), "{err}");
        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "not a certificate").unwrap();
        for (name, value) in [
            ("GIG_OIDC_ISSUER", "not a url"),
            ("GIG_OIDC_REDIRECT_URL", "ftp://x/cb"),
            ("GIG_OIDC_FLOW_TTL", "forever"),
            ("GIG_OIDC_CA_FILE", not_pem.path().to_str().unwrap()),
            ("GIG_OIDC_CA_FILE", "/nonexistent/ca.pem"),
        ] {
            let mut pairs: Vec<_> = full.iter().copied().filter(|(k, _)| *k != name).collect();
            pairs.push((name, value));
            let err = ServeConfig::from_env(&Env::from_pairs(&pairs), None).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn public_url_gives_an_origin() {
        assert_eq!(
            origin_of("https://mcp.example.com/x").as_deref(),
            Some("https://mcp.example.com")
        );
        assert_eq!(origin_of("http://h:8080").as_deref(), Some("http://h:8080"));
        assert!(origin_of("ftp://h").is_none());
        let env = Env::from_pairs(&[("GIG_MASTER_KEY", KEY), ("GIG_LISTEN", "nonsense")]);
        assert!(ServeConfig::from_env(&env, None).is_err());
    }
}
