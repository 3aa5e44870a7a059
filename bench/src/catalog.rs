//! The catalog's costs, written as one Markdown section:
//!
//! * **formats**: a generated registry of 1,000 entries (manifests and toolspecs shaped like the real
//!   catalog's average: 9 tools, 4 params each), linted and built by the real `gigmcp catalog` commands, and
//!   the built index verified and parsed in process (`Index::open`: the signature over the raw bytes, the
//!   strict parse, every entry validated), the way a gateway accepts it;
//! * **a toolpack call**: `tools/call` of a catalog toolpack through the gateway (MCP over HTTP, the engine in
//!   its sandbox, the egress proxy injecting the credential, TLS to the upstream) against the same HTTPS
//!   request made directly, in interleaved rounds of the same run. It runs in a network namespace of its own
//!   with only a loopback interface (the command re-executes itself there).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::StatusCode;
use tokio::net::TcpStream;

use crate::egress::{Client, HOST, Netns, RemoveOnDrop, SECRET, serve_upstream, test_ca};
use crate::{gateway, procs};

const IN_NETNS: &str = "GIGMCP_BENCH_CATALOG_NETNS";

#[derive(clap::Args, Clone, Debug)]
pub struct CatalogArgs {
    /// The `gigmcp` binary (release build).
    #[arg(long, default_value = "target/release/gigmcp")]
    gigmcp: PathBuf,
    /// Where to write the report's section (Markdown).
    #[arg(long, default_value = "target/catalog-bench.md")]
    out: PathBuf,
    /// Entries of the generated registry.
    #[arg(long, default_value_t = 1000)]
    entries: usize,
    /// Timed runs of each format step (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Measured calls per path (split over the rounds).
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// GIG_INSTANCE, GIG_SANDBOX_CIDR and GIG_SANDBOX_UID_BASE of the gateway under test.
    #[arg(long, default_value = "bcat")]
    instance: String,
    #[arg(long, default_value = "10.88.1.0/24")]
    sandbox_cidr: String,
    #[arg(long, default_value_t = 3_200_000)]
    sandbox_uid_base: u32,
}

pub async fn run(args: CatalogArgs) -> Result<bool> {
    if std::env::var_os(IN_NETNS).is_some() {
        return measure(args).await;
    }
    let name = format!("gigbench-catalog-{}", std::process::id());
    let netns = Netns::create(&name)?;
    let status = tokio::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{name}"))
        .arg(std::env::current_exe()?)
        .arg("catalog")
        .args(std::env::args_os().skip(2))
        .env(IN_NETNS, &name)
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run the benchmark in its network namespace")?;
    drop(netns);
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => bail!("the catalog benchmark failed ({status})"),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn quantile_ms(samples: &[u64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e6
}

/// A registry of `n` toolpack entries: `bench-<i>`, 9 tools of 4 params each, one API-key credential.
fn generate(dir: &Path, n: usize) -> Result<()> {
    for i in 0..n {
        let name = format!("bench-{i:04}");
        let entry = dir.join("manifests").join(&name);
        std::fs::create_dir_all(&entry)?;
        let mut manifest = format!(
            "schemaVersion: 1\nname: {name}\nversion: 1.0.0\nsource: {{repo: example.test/bench, tag: v1.0.0}}\n\
             image:\n  ref: registry.example.test/{name}\n  digest: sha256:{:064x}\n  entrypoint: /app/server\n  \
             builder: toolpack\ntier: sealed\nentitlements:\n  egress: [api.{name}.test]\ncredentials:\n  - id: key\n    \
             type: api_key\n    provider: {name}\n    inject: {{header: Authorization, format: 'Bearer {{token}}'}}\ntools:\n",
            i + 1
        );
        let mut spec =
            format!("schemaVersion: 1\nname: {name}\nversion: 1.0.0\nbaseUrl: https://api.{name}.test\ntools:\n");
        for t in 0..9 {
            writeln!(manifest, "  - {{name: tool_{t}, default: {}}}", t % 3 != 0)?;
            write!(
                spec,
                "  - name: tool_{t}\n    description: Tool {t} of {name}.\n    method: {}\n    path: /v1/items/{{id}}\n    \
                 params:\n      - {{name: id, in: path, type: string, required: true, description: The id.}}\n      \
                 - {{name: limit, in: query, type: integer, description: At most.}}\n      \
                 - {{name: tags, in: query, type: array, description: Tags.}}\n      \
                 - {{name: X-Trace, in: header, type: string, description: A trace id.}}\n",
                if t % 2 == 0 { "GET" } else { "DELETE" }
            )?;
        }
        writeln!(manifest, "displayName: Bench {i}\ncategory: data")?;
        std::fs::write(entry.join("1.0.0.yaml"), manifest)?;
        std::fs::write(entry.join("1.0.0.toolspec.yaml"), spec)?;
    }
    Ok(())
}

async fn timed(gigmcp: &Path, args: &[&str]) -> Result<Duration> {
    let started = Instant::now();
    let out = tokio::process::Command::new(gigmcp).args(args).output().await?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("gigmcp {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

struct Formats {
    entries: usize,
    lint: Duration,
    build: Duration,
    index_bytes: usize,
    open: Duration,
}

async fn formats(args: &CatalogArgs, workdir: &Path) -> Result<Formats> {
    let registry = workdir.join("registry");
    generate(&registry, args.entries)?;
    let key = workdir.join("key.hex");
    timed(
        &args.gigmcp,
        &["catalog", "keygen", "--out", key.to_str().unwrap_or_default()],
    )
    .await?;
    let out = workdir.join("index");
    let registry_arg = registry.to_str().unwrap_or_default();
    let mut lint = Vec::new();
    let mut build = Vec::new();
    for _ in 0..args.runs.max(1) {
        lint.push(timed(&args.gigmcp, &["catalog", "lint", registry_arg]).await?);
        build.push(
            timed(
                &args.gigmcp,
                &[
                    "catalog",
                    "build",
                    registry_arg,
                    "--key-file",
                    key.to_str().unwrap_or_default(),
                    "--out",
                    out.to_str().unwrap_or_default(),
                    "--generated",
                    "2026-06-11T00:00:00Z",
                ],
            )
            .await?,
        );
    }
    let raw = std::fs::read(out.join("index.json"))?;
    let signature = std::fs::read_to_string(out.join("index.json.sig"))?;
    let public = gigmcp_catalog::PublicKey::parse(&std::fs::read_to_string(&key)?.trim()[64..])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut open = Vec::new();
    for _ in 0..(args.runs.max(1) * 4) {
        let started = Instant::now();
        let index = gigmcp_catalog::Index::open(&raw, &signature, &public).map_err(|e| anyhow::anyhow!("{e}"))?;
        open.push(started.elapsed());
        if index.servers.len() != args.entries || index.toolspecs.len() != args.entries {
            bail!("the index holds {} entries, not {}", index.servers.len(), args.entries);
        }
    }
    Ok(Formats {
        entries: args.entries,
        lint: median(lint),
        build: median(build),
        index_bytes: raw.len(),
        open: median(open),
    })
}

const MANIFEST: &str = "schemaVersion: 1\nname: bench\nversion: 1.0.0\nsource: {repo: example.test/bench, tag: v1.0.0}\n\
image:\n  ref: registry.example.test/bench\n  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n  \
entrypoint: /app/server\n  builder: toolpack\ntier: sealed\nentitlements:\n  egress: [bench.test]\ncredentials:\n  - id: bench_key\n    \
type: api_key\n    provider: bench\n    inject: {header: Authorization, format: 'Bearer {token}'}\ntools:\n  - {name: small, default: true}\n";

const TOOLSPEC: &str = "schemaVersion: 1\nname: bench\nversion: 1.0.0\nbaseUrl: https://bench.test\ntools:\n  - name: small\n    \
description: The upstream's small answer.\n    method: GET\n    path: /small\n";

struct Latencies {
    direct: Vec<u64>,
    toolpack: Vec<u64>,
    failures: usize,
    first_error: Option<String>,
}

async fn toolpack(args: &CatalogArgs, workdir: &Path) -> Result<Latencies> {
    let ca = test_ca()?;
    let ca_file = workdir.join("upstream-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem)?;
    // Port 443: a toolspec's base URL has no port. This namespace is the benchmark's own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:443").await?;
    tokio::spawn(serve_upstream(listener, Arc::new(ca.server), Bytes::new()));

    let registry = workdir.join("toolpack-registry");
    let entry = registry.join("manifests/bench");
    std::fs::create_dir_all(&entry)?;
    std::fs::write(entry.join("1.0.0.yaml"), MANIFEST)?;
    std::fs::write(entry.join("1.0.0.toolspec.yaml"), TOOLSPEC)?;
    let key = workdir.join("toolpack-key.hex");
    let published = workdir.join("toolpack-index");
    let public = {
        let out = tokio::process::Command::new(&args.gigmcp)
            .args(["catalog", "keygen", "--out", key.to_str().unwrap_or_default()])
            .output()
            .await?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("public: ")
            .to_owned()
    };
    timed(
        &args.gigmcp,
        &[
            "catalog",
            "build",
            registry.to_str().unwrap_or_default(),
            "--key-file",
            key.to_str().unwrap_or_default(),
            "--out",
            published.to_str().unwrap_or_default(),
        ],
    )
    .await?;

    let master_key = gateway::master_key()?;
    let spec = gateway::Spec {
        name: "gigmcp",
        profile: "bench",
        per_session: false,
        env: vec![
            ("GIG_MASTER_KEY", master_key.clone()),
            ("GIG_INSTANCE", args.instance.clone()),
            ("GIG_SANDBOX_CIDR", args.sandbox_cidr.clone()),
            ("GIG_SANDBOX_UID_BASE", args.sandbox_uid_base.to_string()),
            ("GIG_EGRESS_RESOLVE", format!("{HOST}=127.0.0.1")),
            ("GIG_EGRESS_ALLOW_ADDRS", "127.0.0.1/32".to_owned()),
            ("GIG_EGRESS_EXTRA_CA", ca_file.display().to_string()),
            (
                "GIG_REGISTRY_INDEX_URL",
                format!("file://{}", published.join("index.json").display()),
            ),
            ("GIG_REGISTRY_PUBKEY", public),
            ("GIG_INSTALL", "bench".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ],
        upstream: None,
    };
    let mut gw = gateway::start(&args.gigmcp, workdir, spec).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gateway::cli(&args.gigmcp, &gw.data, &["server", "list"])
        .await?
        .contains("catalog bench@1.0.0")
    {
        if Instant::now() > deadline {
            bail!("GIG_INSTALL did not install the toolpack: {}", gateway::tail(&gw.log));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway::cli_with_input(
        &args.gigmcp,
        &gw.data,
        Some(&master_key),
        &["credential", "set", "bench", "bench_key"],
        SECRET,
    )
    .await?;
    gateway::cli(&args.gigmcp, &gw.data, &["profile", "add-server", "bench", "bench"]).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut session = crate::client::HttpSession::open(gw.target.clone())
        .await
        .map_err(|e| anyhow::anyhow!("MCP session: {e}"))?;
    let mut direct = Client::open(
        TcpStream::connect("127.0.0.1:443").await?,
        None,
        HOST,
        &ca.ca_pem,
        format!("Bearer {SECRET}"),
    )
    .await
    .context("direct")?;
    let mut result = Latencies {
        direct: Vec::new(),
        toolpack: Vec::new(),
        failures: 0,
        first_error: None,
    };
    let mut id = 0;
    let per_round = args.calls.div_ceil(args.rounds.max(1));
    for round in 0..=args.rounds.max(1) {
        // Round 0 warms both paths up; it is not recorded.
        let n = if round == 0 { args.warmup } else { per_round };
        for _ in 0..n {
            let started = Instant::now();
            match direct.get("/small").await {
                Ok((StatusCode::OK, 2)) if round > 0 => result.direct.push(started.elapsed().as_nanos() as u64),
                Ok((StatusCode::OK, 2)) => {}
                other => {
                    result.failures += 1;
                    result.first_error.get_or_insert(format!("direct: {other:?}"));
                }
            }
        }
        for _ in 0..n {
            id += 1;
            let started = Instant::now();
            let reply = session.call_tool(id, "bench_small", "{}").await;
            let took = started.elapsed().as_nanos() as u64;
            let ok = reply.as_ref().is_ok_and(|r| {
                r.pointer("/result/isError") == Some(&serde_json::Value::Bool(false))
                    && r.pointer("/result/content/0/text").and_then(|t| t.as_str()) == Some("ok")
            });
            if ok && round > 0 {
                result.toolpack.push(took);
            } else if !ok {
                result.failures += 1;
                result.first_error.get_or_insert(format!("toolpack: {reply:?}"));
            }
        }
        eprintln!("[bench] catalog toolpack round {round}/{} done", args.rounds);
    }
    let _ = session.delete().await;
    procs::terminate(&mut gw.child, Duration::from_secs(10)).await;
    Ok(result)
}

async fn measure(args: CatalogArgs) -> Result<bool> {
    let workdir = std::env::temp_dir().join(format!("gigmcp-bench-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let _cleanup = RemoveOnDrop(workdir.clone());
    let formats = formats(&args, &workdir).await?;
    let calls = toolpack(&args, &workdir).await?;
    let passed = calls.failures == 0 && !calls.direct.is_empty() && !calls.toolpack.is_empty();

    let mut out = String::new();
    out.push_str("\n## Catalog\n\n");
    let _ = writeln!(
        out,
        "Measured {} by `gigmcp-bench catalog` (release build; {} CPUs allowed).\n",
        crate::egress::now_utc(),
        procs::allowed_cpus().len()
    );
    out.push_str("### Formats (a generated registry)\n\n");
    let _ = writeln!(
        out,
        "{} entries, each a toolpack of 9 tools with 4 params; the index with its toolspecs is {:.1} MiB. Median \
         of {} runs; `lint` and `build` are whole `gigmcp` processes.\n",
        formats.entries,
        formats.index_bytes as f64 / 1048576.0,
        args.runs
    );
    out.push_str("| step | time |\n|---|---|\n");
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let _ = writeln!(out, "| `gigmcp catalog lint` | {} |", ms(formats.lint));
    let _ = writeln!(
        out,
        "| `gigmcp catalog build` (lint, index, signature) | {} |",
        ms(formats.build)
    );
    let _ = writeln!(
        out,
        "| verify the signature, parse strictly and validate every entry (`Index::open`, in process) | {} |",
        ms(formats.open)
    );
    out.push_str("\n### A toolpack call against the same HTTPS request made directly\n\n");
    let _ = writeln!(
        out,
        "`tools/call` of a toolpack's `GET /small` through Gig'MCP (MCP over HTTP, the engine in its sandbox, the \
         egress proxy injecting the credential, TLS to the upstream) and the same request straight to the upstream \
         over a kept-alive TLS connection, {} calls each in {} interleaved rounds after {} warm-up calls, every \
         answer checked; failures: {}{}.\n",
        calls.toolpack.len(),
        args.rounds,
        args.warmup,
        calls.failures,
        calls
            .first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    if passed {
        out.push_str("| path | p50 | p90 | p99 |\n|---|---|---|---|\n");
        for (name, samples) in [
            ("direct HTTPS", &calls.direct),
            ("toolpack through Gig'MCP", &calls.toolpack),
        ] {
            let _ = writeln!(
                out,
                "| {name} | {:.3} ms | {:.3} ms | {:.3} ms |",
                quantile_ms(samples, 0.5),
                quantile_ms(samples, 0.9),
                quantile_ms(samples, 0.99)
            );
        }
        let _ = writeln!(
            out,
            "\nAdded by the gateway at p50: {:.3} ms ({:.1}× the direct call).",
            quantile_ms(&calls.toolpack, 0.5) - quantile_ms(&calls.direct, 0.5),
            quantile_ms(&calls.toolpack, 0.5) / quantile_ms(&calls.direct, 0.5)
        );
    }
    print!("{out}");
    std::fs::write(&args.out, out).with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(passed)
}
