//! Many servers as one: the routing table from exposed names and URIs to servers, list cursors that span
//! servers, and honest merging of the servers' `initialize` results.
//!
//! Names are routed through the table, never by splitting on `_`: server names, prefixes and tool names all
//! may contain it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use gigmcp_types::names::{MAX_EXPOSED_NAME, Prefix, ServerName};

/// The lists MCP pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    pub fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => Self::Tools,
            "prompts/list" => Self::Prompts,
            "resources/list" => Self::Resources,
            "resources/templates/list" => Self::ResourceTemplates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The field of the result holding the items.
    pub fn field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The server capability that says the list exists.
    pub fn capability(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources | Self::ResourceTemplates => "resources",
        }
    }
}

/// Where a gateway list cursor points: a server, and that server's own cursor.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    pub s: String,
    pub c: Option<Value>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok()
    }
}

/// Which server serves each exposed name and URI.
#[derive(Default, Debug)]
pub struct Routes {
    tools: HashMap<String, (ServerName, String)>,
    prompts: HashMap<String, (ServerName, String)>,
    resources: HashMap<String, ServerName>,
    templates: Vec<(UriTemplate, ServerName)>,
    /// Tools and prompts a policy plugin removed from a server's list, by exposed name: a call to one is
    /// still "unknown" to the client, but audited as a denial naming the plugins.
    hidden: HashMap<(ListKind, String), Hidden>,
}

/// A name an mcp-filter plugin hid from a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden {
    pub server: ServerName,
    /// The name as the server knows it.
    pub name: String,
    /// The plugins that changed the list it was removed from.
    pub by: Vec<String>,
}

/// A name the table could not take because another server already exposes it.
#[derive(Debug, PartialEq)]
pub struct Collision {
    pub name: String,
    pub holder: ServerName,
}

impl Routes {
    fn names(&mut self, kind: ListKind) -> Option<&mut HashMap<String, (ServerName, String)>> {
        match kind {
            ListKind::Tools => Some(&mut self.tools),
            ListKind::Prompts => Some(&mut self.prompts),
            _ => None,
        }
    }

    /// Forgets what one server exposed (its list changed, or it left the profile).
    pub fn forget_server(&mut self, server: &ServerName) {
        self.tools.retain(|_, (s, _)| s != server);
        self.prompts.retain(|_, (s, _)| s != server);
        self.resources.retain(|_, s| s != server);
        self.templates.retain(|(_, s)| s != server);
        self.hidden.retain(|_, h| &h.server != server);
    }

    /// Records the names plugins removed from a page of `server`'s list.
    pub fn hide(&mut self, kind: ListKind, server: &ServerName, prefix: &Prefix, names: &[String], by: &[String]) {
        for name in names {
            self.hidden.insert(
                (kind, prefix.expose(name)),
                Hidden {
                    server: server.clone(),
                    name: name.clone(),
                    by: by.to_vec(),
                },
            );
        }
    }

    /// Every name of `kind` plugins hid, with what hid it, by exposed name.
    pub fn all_hidden(&self, kind: ListKind) -> Vec<(String, Hidden)> {
        let mut all: Vec<(String, Hidden)> = self
            .hidden
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, exposed), hidden)| (exposed.clone(), hidden.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The hidden tool or prompt behind an exposed name, if a plugin hid one.
    pub fn hidden(&self, kind: ListKind, exposed: &str) -> Option<&Hidden> {
        self.hidden.get(&(kind, exposed.to_owned()))
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Rewrites one page of a server's list for the client and records its routes. Items whose exposed name
    /// another server already holds are dropped and reported: collisions are refused when a profile is edited,
    /// so one here means a server changed its names since.
    pub fn admit_page(
        &mut self,
        kind: ListKind,
        server: &ServerName,
        prefix: &Prefix,
        items: Vec<Value>,
    ) -> (Vec<Value>, Vec<Collision>) {
        let mut admitted = Vec::with_capacity(items.len());
        let mut collisions = Vec::new();
        for mut item in items {
            match kind {
                ListKind::Tools | ListKind::Prompts => {
                    let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_owned) else {
                        continue;
                    };
                    let exposed = prefix.expose(&name);
                    if exposed.len() > MAX_EXPOSED_NAME {
                        tracing::warn!(%server, "hiding {name:?}: its exposed name is over {MAX_EXPOSED_NAME} characters");
                        continue;
                    }
                    let table = self.names(kind).expect("named kind");
                    match table.get(&exposed) {
                        Some((holder, _)) if holder != server => {
                            collisions.push(Collision {
                                name: exposed,
                                holder: holder.clone(),
                            });
                            continue;
                        }
                        _ => {
                            table.insert(exposed.clone(), (server.clone(), name));
                        }
                    }
                    item["name"] = Value::String(exposed);
                }
                ListKind::Resources => {
                    if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                        self.resources.entry(uri.to_owned()).or_insert_with(|| server.clone());
                    }
                }
                ListKind::ResourceTemplates => {
                    if let Some(template) = item.get("uriTemplate").and_then(Value::as_str) {
                        let known = self.templates.iter().any(|(t, s)| t.source == template && s == server);
                        if !known {
                            self.templates.push((UriTemplate::parse(template), server.clone()));
                        }
                    }
                }
            }
            admitted.push(item);
        }
        (admitted, collisions)
    }

    /// The server and upstream name behind an exposed tool or prompt name.
    pub fn resolve_name(&self, kind: ListKind, exposed: &str) -> Option<(ServerName, String)> {
        let table = match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            _ => return None,
        };
        table.get(exposed).cloned()
    }

    /// The server behind a resource URI: an exact listed URI first, then the first matching template.
    pub fn resolve_uri(&self, uri: &str) -> Option<ServerName> {
        self.resources.get(uri).cloned().or_else(|| {
            self.templates
                .iter()
                .find(|(t, _)| t.matches(uri))
                .map(|(_, s)| s.clone())
        })
    }
}

/// An RFC 6570 URI template, enough to tell whether a URI could have come from it.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    /// `{var}` matches up to the next `/`, `?` or `#`; `{+var}`, `{#var}` and friends match anything.
    Simple,
    Reserved,
}

impl UriTemplate {
    pub fn parse(source: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                parts.push(Part::Literal(rest[open..].to_owned()));
                rest = "";
                break;
            };
            let expr = &rest[open + 1..open + close];
            parts.push(if expr.starts_with(['+', '#', '/', '?', '&', ';', '.']) {
                Part::Reserved
            } else {
                Part::Simple
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Self {
            source: source.to_owned(),
            parts,
        }
    }

    pub fn matches(&self, uri: &str) -> bool {
        fn go(parts: &[Part], uri: &str) -> bool {
            match parts.split_first() {
                None => uri.is_empty(),
                Some((Part::Literal(lit), rest)) => uri.strip_prefix(lit.as_str()).is_some_and(|u| go(rest, u)),
                Some((part, rest)) => {
                    let limit = match part {
                        Part::Simple => uri.find(['/', '?', '#']).unwrap_or(uri.len()),
                        _ => uri.len(),
                    };
                    (0..=limit)
                        .rev()
                        .any(|n| uri.is_char_boundary(n) && go(rest, &uri[n..]))
                }
            }
        }
        go(&self.parts, uri)
    }
}

/// The gateway's `initialize` result: the version agreed with the client, and only the capabilities some
/// server of the profile has. List-changed is advertised for tools, prompts and resources because the
/// gateway itself changes those lists when the profile is edited.
pub fn merge_initialize(version: &str, inits: &[(ServerName, Value)]) -> Value {
    let mut capabilities = Map::new();
    capabilities.insert("tools".into(), json!({"listChanged": true}));
    let has = |name: &str| {
        inits
            .iter()
            .any(|(_, init)| init["capabilities"].get(name).is_some_and(|c| !c.is_null()))
    };
    if has("prompts") {
        capabilities.insert("prompts".into(), json!({"listChanged": true}));
    }
    if has("resources") {
        let subscribe = inits
            .iter()
            .any(|(_, init)| init["capabilities"]["resources"]["subscribe"] == json!(true));
        capabilities.insert("resources".into(), json!({"listChanged": true, "subscribe": subscribe}));
    }
    if has("logging") {
        capabilities.insert("logging".into(), json!({}));
    }
    if has("completions") {
        capabilities.insert("completions".into(), json!({}));
    }
    let instructions: Vec<String> = inits
        .iter()
        .filter_map(|(name, init)| {
            init.get("instructions")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(|text| format!("## {name}\n{text}"))
        })
        .collect();
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": {"name": "gigmcp", "title": "Gig'MCP", "version": env!("CARGO_PKG_VERSION")},
    });
    if !instructions.is_empty() {
        result["instructions"] = Value::String(instructions.join("\n\n"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str) -> ServerName {
        ServerName::parse(name).unwrap()
    }

    #[test]
    fn names_route_through_the_table_not_by_splitting() {
        let mut routes = Routes::default();
        let a = server("a_b");
        let (items, collisions) = routes.admit_page(
            ListKind::Tools,
            &a,
            &Prefix::parse("a_b").unwrap(),
            vec![json!({"name": "c_d"})],
        );
        assert!(collisions.is_empty());
        assert_eq!(items[0]["name"], "a_b_c_d");
        assert_eq!(routes.resolve_name(ListKind::Tools, "a_b_c_d"), Some((a, "c_d".into())));
        assert_eq!(routes.resolve_name(ListKind::Tools, "c_d"), None);
    }

    #[test]
    fn a_colliding_name_is_reported_not_silently_rerouted() {
        let mut routes = Routes::default();
        let (a, b) = (server("a"), server("b"));
        routes.admit_page(
            ListKind::Tools,
            &a,
            &Prefix::parse("a").unwrap(),
            vec![json!({"name": "b_x"})],
        );
        let (items, collisions) = routes.admit_page(
            ListKind::Tools,
            &b,
            &Prefix::parse("a_b").unwrap(),
            vec![json!({"name": "x"})],
        );
        assert!(items.is_empty());
        assert_eq!(
            collisions,
            vec![Collision {
                name: "a_b_x".into(),
                holder: a.clone()
            }]
        );
        assert_eq!(routes.resolve_name(ListKind::Tools, "a_b_x").unwrap().0, a);
    }

    #[test]
    fn uris_route_exactly_then_by_template() {
        let mut routes = Routes::default();
        let (a, b) = (server("a"), server("b"));
        routes.admit_page(
            ListKind::Resources,
            &a,
            &Prefix::parse("").unwrap(),
            vec![json!({"uri": "test://static/1"})],
        );
        routes.admit_page(
            ListKind::ResourceTemplates,
            &b,
            &Prefix::parse("").unwrap(),
            vec![json!({"uriTemplate": "test://static/{id}/x{?q}"})],
        );
        assert_eq!(routes.resolve_uri("test://static/1"), Some(a));
        assert_eq!(routes.resolve_uri("test://static/2/x?q=1"), Some(b.clone()));
        assert_eq!(routes.resolve_uri("test://static/2/y"), None);
        routes.forget_server(&b);
        assert_eq!(routes.resolve_uri("test://static/2/x"), None);
    }

    #[test]
    fn templates_match_like_rfc6570() {
        let t = UriTemplate::parse("file:///{+path}");
        assert!(t.matches("file:///a/b/c.txt"));
        let t = UriTemplate::parse("users://{id}/profile");
        assert!(t.matches("users://42/profile"));
        assert!(!t.matches("users://4/2/profile"));
        assert!(!t.matches("users://42/profile/x"));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            s: "srv".into(),
            c: Some(json!("abc")),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("%%%"), None);
    }

    #[test]
    fn capabilities_are_only_what_some_server_has() {
        let inits = vec![
            (server("a"), json!({"capabilities": {"tools": {}}})),
            (
                server("b"),
                json!({"capabilities": {"prompts": {}, "resources": {"subscribe": true}}, "instructions": "hi"}),
            ),
        ];
        let merged = merge_initialize("2025-06-18", &inits);
        let caps = &merged["capabilities"];
        assert!(caps.get("prompts").is_some());
        assert_eq!(caps["resources"]["subscribe"], true);
        assert!(caps.get("logging").is_none());
        assert!(caps.get("completions").is_none());
        assert!(merged["instructions"].as_str().unwrap().contains("## b\nhi"));
        let merged = merge_initialize("2025-06-18", &inits[..1]);
        assert!(merged["capabilities"].get("resources").is_none());
    }
}
