//! Starting `gigmcp serve` for a measurement: a fresh data directory in the run's scratch directory, one
//! profile holding the built-in echo server, a random master key, listening on a free loopback port, its
//! log kept in the scratch directory (and shown when a check fails).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::HttpTarget;
use crate::procs;

/// What to start.
pub struct Spec<'a> {
    /// Names the data directory and the log file in the scratch directory.
    pub name: &'a str,
    pub profile: &'a str,
    /// `--per-session`: a fresh sandbox for every client session instead of one for the profile.
    pub per_session: bool,
    /// Extra environment of `gigmcp serve` (sandbox settings, log level).
    pub env: Vec<(&'static str, String)>,
    /// The echo server as a command line and the paths its sandbox needs; `None`: the built-in one.
    pub upstream: Option<(String, Vec<String>)>,
}

pub struct Gateway {
    pub child: Child,
    pub target: Arc<HttpTarget>,
    pub data: PathBuf,
    pub log: PathBuf,
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address in a `listening on http://…` line (Gig'MCP's log, floor 2's stdout).
pub fn address_in(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let at = line.find("listening on http://")? + "listening on http://".len();
    line[at..].split_whitespace().next()?.trim_end_matches('/').parse().ok()
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A random master key (64 hex characters).
pub fn master_key() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs a `gigmcp` CLI command on a data directory; gives its output (stdout then stderr).
pub async fn cli(gigmcp: &Path, data: &Path, cli_args: &[&str]) -> Result<String> {
    cli_with_input(gigmcp, data, None, cli_args, "").await
}

/// Like `cli`, with `input` on standard input (where secrets are read from) and a master key when given.
pub async fn cli_with_input(
    gigmcp: &Path,
    data: &Path,
    master_key: Option<&str>,
    cli_args: &[&str],
    input: &str,
) -> Result<String> {
    let mut command = Command::new(gigmcp);
    command
        .args(cli_args)
        .env("GIG_DATA_DIR", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(key) = master_key {
        command.env("GIG_MASTER_KEY", key);
    }
    let run = async {
        let mut child = command.spawn()?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
        Ok::<_, anyhow::Error>(child.wait_with_output().await?)
    };
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .with_context(|| format!("gigmcp {} took over 2 minutes", cli_args.join(" ")))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("gigmcp {} failed ({}): {text}", cli_args.join(" "), output.status);
    }
    Ok(text)
}

/// Creates the data directory, the profile and the echo server, then starts `gigmcp serve`.
pub async fn start(gigmcp: &Path, workdir: &Path, spec: Spec<'_>) -> Result<Gateway> {
    let data = workdir.join(format!("{}-data", spec.name));
    let created = cli(gigmcp, &data, &["profile", "create", spec.profile]).await?;
    let token = strip_ansi(&created)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| w.starts_with("gig_"))
        .map(str::to_owned)
        .context("`gigmcp profile create` printed no token")?;
    let mut add: Vec<String> = ["server", "add", "echo"].map(String::from).to_vec();
    match &spec.upstream {
        Some((line, mounts)) => {
            let mut words = line.split_whitespace();
            add.extend(["--command".into(), words.next().unwrap_or_default().to_owned()]);
            for word in words {
                add.extend(["--arg".into(), word.to_owned()]);
            }
            for mount in mounts {
                add.extend(["--mount".into(), mount.clone()]);
            }
        }
        None => add.extend(["--builtin".into(), "echo".into()]),
    }
    if spec.per_session {
        add.push("--per-session".into());
    }
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    cli(gigmcp, &data, &add).await?;
    cli(gigmcp, &data, &["profile", "add-server", spec.profile, "echo"]).await?;

    let log_path = workdir.join(format!("{}.log", spec.name));
    let mut log = tokio::fs::File::create(&log_path).await?;
    let mut child = Command::new(gigmcp)
        .arg("serve")
        .env("GIG_DATA_DIR", &data)
        .env("GIG_MASTER_KEY", master_key()?)
        .env("GIG_LISTEN", "127.0.0.1:0")
        .envs(spec.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            log.write_all(format!("{line}\n").as_bytes()).await?;
            log.flush().await?;
            if let Some(addr) = address_in(&line) {
                return Ok::<_, std::io::Error>(Some(addr));
            }
        }
        Ok(None)
    })
    .await;
    let addr = match found {
        Ok(Ok(Some(addr))) => addr,
        other => {
            procs::terminate(&mut child, Duration::from_secs(5)).await;
            bail!("gigmcp serve did not start ({other:?}):\n{}", tail(&log_path));
        }
    };
    // Keep draining its log so that it never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log.write_all(format!("{line}\n").as_bytes()).await;
            let _ = log.flush().await;
        }
    });
    Ok(Gateway {
        child,
        target: Arc::new(HttpTarget {
            addr,
            path: format!("/mcp/p/{}", spec.profile),
            bearer: Some(token),
            tool: "echo_echo".into(),
        }),
        data,
        log: log_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_found_in_a_coloured_log_line() {
        let line = "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m gigmcp::cli: Gig'MCP listening on http://127.0.0.1:41234";
        assert_eq!(address_in(line), Some("127.0.0.1:41234".parse().unwrap()));
        assert_eq!(
            address_in("listening on http://127.0.0.1:5/"),
            Some("127.0.0.1:5".parse().unwrap())
        );
    }
}
