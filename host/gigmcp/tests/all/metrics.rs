//! `/metrics` on its own listener (`GIG_METRICS_LISTEN`) and JSON logs (`GIG_LOG_FORMAT=json`), scraped from a
//! real gateway after real tool calls through the official Python SDK.

use serde_json::{Value, json};

use gigmcp_testkit::{TestGateway, call_tools_in, free_port};

/// The value of the sample `name{labels}` (labels as rendered), if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_calls_denials_sandboxes_and_plugins_on_their_own_listener() {
    let port = free_port();
    let metrics_at = format!("127.0.0.1:{port}");
    let gw = TestGateway::start_with(&[("GIG_METRICS_LISTEN", &metrics_at), ("GIG_LOG_FORMAT", "json")]);
    let token = gw.create_profile("m");
    gw.cli_ok(&["server", "add", "echo", "--builtin", "echo"]);
    gw.cli_ok(&["profile", "add-server", "m", "echo"]);
    let data = call_tools_in(
        None,
        &gw.url("m"),
        &token,
        &[
            ("echo_echo", json!({"message": "a"})),
            ("echo_echo", json!({"message": "b"})),
        ],
        false,
    );
    assert_eq!(data["results"][1]["is_error"], false, "{data}");
    gw.cli_ok(&["plugin", "config", "tool-filter", r#"{"deny": ["echo/echo"]}"#]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let data = call_tools_in(
        None,
        &gw.url("m"),
        &token,
        &[("echo_echo", json!({"message": "c"}))],
        false,
    );
    let denied = &data["results"][0];
    assert!(denied["is_error"] == true || denied.get("error").is_some(), "{data}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, content_type, text) = runtime.block_on(async {
        let response = reqwest::get(format!("http://{metrics_at}/metrics")).await.unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        (response.status(), content_type, response.text().await.unwrap())
    });
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let ok = r#"gigmcp_tool_calls_total{profile="m",server="echo",outcome="ok"}"#;
    assert_eq!(sample(&text, ok), Some(2.0), "{text}");
    let deny = r#"gigmcp_tool_calls_total{profile="m",server="echo",outcome="deny"}"#;
    assert_eq!(sample(&text, deny), Some(1.0), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(
            r#"gigmcp_denials_total{kind="mcp.tool_call",profile="m",server="echo",plugin="tool-filter"} 1"#
        )),
        "{text}"
    );
    let count = sample(
        &text,
        r#"gigmcp_tool_call_duration_seconds_count{profile="m",server="echo"}"#,
    )
    .unwrap();
    assert!(count >= 2.0, "{text}");
    let inf = sample(
        &text,
        r#"gigmcp_tool_call_duration_seconds_bucket{profile="m",server="echo",le="+Inf"}"#,
    );
    assert_eq!(inf, Some(count));
    assert_eq!(
        sample(&text, r#"gigmcp_sandbox_starts_total{server="echo"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"gigmcp_sandboxes_running{server="echo",profile="m"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, r#"gigmcp_plugin_calls_total{plugin="tool-filter"}"#).unwrap() >= 3.0,
        "{text}"
    );
    assert!(
        sample(&text, r#"gigmcp_plugin_fuel_total{plugin="tool-filter"}"#).unwrap() > 0.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"gigmcp_plugin_quarantined{plugin="tool-filter"}"#),
        Some(0.0)
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }

    // Not on the API's listener.
    let on_api = runtime.block_on(async {
        let response = reqwest::get(format!("http://{}/metrics", gw.addr)).await.unwrap();
        response.text().await.unwrap()
    });
    assert!(!on_api.contains("gigmcp_tool_calls_total"), "{on_api}");

    // `gigmcp health`, the image's health check: 0 while it answers, 1 for an address nothing answers on.
    let health = |listen: &str| {
        std::process::Command::new(gigmcp_testkit::gigmcp_bin())
            .arg("health")
            .env("GIG_LISTEN", listen)
            .output()
            .unwrap()
    };
    let up = health(&gw.addr);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let down = health(&format!("127.0.0.1:{}", free_port()));
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("does not answer"));

    // Every log line is a JSON object with a level and a message.
    let log = gw.log();
    assert!(log.lines().count() > 5, "{log}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            entry["level"].is_string() && entry["fields"]["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn a_bad_metrics_address_or_log_format_stops_start_up_naming_it() {
    for (name, value, needle) in [
        ("GIG_METRICS_LISTEN", "nope", "GIG_METRICS_LISTEN is invalid"),
        ("GIG_LOG_FORMAT", "yaml", "GIG_LOG_FORMAT is invalid"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(gigmcp_testkit::gigmcp_bin())
            .arg("serve")
            .env("GIG_DATA_DIR", dir.path())
            .env("GIG_MASTER_KEY", "11".repeat(32))
            .env(name, value)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
}
