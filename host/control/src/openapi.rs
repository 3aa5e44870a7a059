//! The API's route table: each entry is both an axum route and an OpenAPI 3.1 operation, so the document
//! served at `/api/openapi.json` cannot miss a route or describe one that does not exist. Schemas come from
//! the request and response types themselves (`#[derive(JsonSchema)]`, JSON Schema 2020-12, which is what
//! OpenAPI 3.1 uses).

use std::sync::Arc;

use axum::Router;
use axum::routing::MethodRouter;
use http::Method;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::ControlState;

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn subschema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One operation of the API: where it is, what it takes and what it answers.
pub struct Operation {
    pub method: Method,
    /// An axum path: `/api/profiles/{slug}`; OpenAPI writes path parameters the same way.
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    query: Option<SchemaFn>,
    body: Option<SchemaFn>,
    /// `application/octet-stream` instead of JSON (plugin upload).
    binary_body: bool,
    status: u16,
    response: Option<SchemaFn>,
    /// The success response is a stream of server-sent events, described by this text.
    event_stream: Option<&'static str>,
    /// The success response carries an `ETag` header.
    etag: bool,
    /// Takes an `If-Match` header; a write against another entity tag is refused with 412.
    if_match: bool,
    /// OpenAPI links from the success response: (target operationId, parameter, runtime expression).
    links: Vec<(&'static str, &'static str, &'static str)>,
    /// Answered without a session (`security: []`; the route must be in `api::PUBLIC_ROUTES`).
    pub public: bool,
    /// The success response is a redirect (303, `Location`) for a browser to follow, described by this text.
    redirect: Option<&'static str>,
}

impl Operation {
    fn new(method: Method, path: &'static str, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self {
            method,
            path,
            id,
            summary,
            tag,
            query: None,
            body: None,
            binary_body: false,
            status: 200,
            response: None,
            event_stream: None,
            etag: false,
            if_match: false,
            links: Vec::new(),
            public: false,
            redirect: None,
        }
    }

    /// The route answers without a session (health checks, the login page).
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    pub fn get(path: &'static str, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self::new(Method::GET, path, id, tag, summary)
    }

    pub fn post(path: &'static str, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self::new(Method::POST, path, id, tag, summary)
    }

    pub fn put(path: &'static str, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self::new(Method::PUT, path, id, tag, summary)
    }

    pub fn patch(path: &'static str, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self::new(Method::PATCH, path, id, tag, summary)
    }

    pub fn delete(path: &'static str, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self::new(Method::DELETE, path, id, tag, summary)
    }

    /// Query parameters: the properties of `Q` (a flat struct).
    pub fn query<Q: JsonSchema>(mut self) -> Self {
        self.query = Some(subschema::<Q>);
        self
    }

    /// A JSON request body.
    pub fn body<B: JsonSchema>(mut self) -> Self {
        self.body = Some(subschema::<B>);
        self
    }

    /// A raw request body (`application/octet-stream`).
    pub fn binary_body(mut self) -> Self {
        self.binary_body = true;
        self
    }

    /// The success response: `status` with a JSON body of type `R`.
    pub fn returns<R: JsonSchema>(mut self, status: u16) -> Self {
        self.status = status;
        self.response = Some(subschema::<R>);
        self
    }

    /// Where the success response leads: `operation` takes its `parameter` from `expression` (like
    /// `$response.body#/slug`). Lets clients, and stateful testers, follow from a created object to its uses.
    pub fn link(mut self, operation: &'static str, parameter: &'static str, expression: &'static str) -> Self {
        self.links.push((operation, parameter, expression));
        self
    }

    /// The success response is `text/event-stream`: server-sent events, as `description` says.
    pub fn event_stream(mut self, description: &'static str) -> Self {
        self.status = 200;
        self.response = None;
        self.event_stream = Some(description);
        self
    }

    /// The success response carries the object's entity tag in `ETag`.
    pub fn etag(mut self) -> Self {
        self.etag = true;
        self
    }

    /// A conditional write: an `If-Match` header with the entity tag it was made against (refused with 412 if
    /// the object has changed since); the success response carries the new tag.
    pub fn if_match(mut self) -> Self {
        self.if_match = true;
        self.etag = true;
        self
    }

    /// The success response is a 303 redirect for a browser, to where `description` says.
    pub fn redirects(mut self, description: &'static str) -> Self {
        self.status = 303;
        self.response = None;
        self.redirect = Some(description);
        self
    }

    /// The success response has no body.
    pub fn no_content(mut self) -> Self {
        self.status = 204;
        self.response = None;
        self
    }
}

/// The route table.
#[derive(Default)]
pub struct Api {
    routes: Vec<(Operation, MethodRouter<Arc<ControlState>>)>,
}

impl Api {
    pub fn route(mut self, operation: Operation, handler: MethodRouter<Arc<ControlState>>) -> Self {
        self.routes.push((operation, handler));
        self
    }

    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.routes.iter().map(|(op, _)| op)
    }

    /// The axum router of every operation (methods of one path merged).
    pub fn router(self) -> Router<Arc<ControlState>> {
        let mut router = Router::new();
        for (op, handler) in self.routes {
            router = router.route(op.path, handler);
        }
        router
    }

    /// The OpenAPI 3.1 document of every operation.
    pub fn document(&self) -> Value {
        let settings = |s: SchemaSettings| {
            s.with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
        };
        // Requests are described as they are decoded (unknown fields refused), responses as they are written.
        let mut requests = settings(SchemaSettings::draft2020_12())
            .for_deserialize()
            .into_generator();
        let mut responses = settings(SchemaSettings::draft2020_12())
            .for_serialize()
            .into_generator();
        let error = subschema::<ErrorEnvelope>(&mut responses);
        let mut paths: Map<String, Value> = Map::new();
        for op in self.operations() {
            let mut parameters: Vec<Value> = path_parameters(op.path)
                .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
            if op.if_match {
                parameters.push(json!({
                    "name": "If-Match",
                    "in": "header",
                    "required": false,
                    "description": "The entity tag (ETag) the change was made against: a write to an object that has \
                        changed since is refused with 412 instead of undoing that change.",
                    "schema": {"type": "string"},
                }));
            }
            if let Some(query) = op.query {
                let schema = query(&mut requests);
                parameters.extend(query_parameters(&schema, &requests));
            }
            let mut operation = json!({
                "operationId": op.id,
                "summary": op.summary,
                "tags": [op.tag],
                "parameters": parameters,
                "security": if op.public { json!([]) } else { json!([{"session": []}]) },
            });
            if let Some(body) = op.body {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": body(&mut requests)}},
                });
            } else if op.binary_body {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}},
                });
            }
            let mut answers = Map::new();
            let success = match (op.response, op.event_stream) {
                (Some(response), _) => json!({
                    "description": "success",
                    "content": {"application/json": {"schema": response(&mut responses)}},
                }),
                (None, Some(events)) => json!({
                    "description": events,
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                }),
                (None, None) => match op.redirect {
                    Some(description) => json!({
                        "description": description,
                        "headers": {"Location": {"description": "where the browser goes", "schema": {"type": "string"}}},
                    }),
                    None => json!({"description": "success, no content"}),
                },
            };
            let mut success = success;
            if !op.links.is_empty() {
                // One link per target operation, with every parameter given for it.
                let mut links = Map::new();
                for (target, parameter, expression) in &op.links {
                    let link = links
                        .entry(capitalized(target))
                        .or_insert_with(|| json!({"operationId": target, "parameters": {}}));
                    link["parameters"][*parameter] = json!(expression);
                }
                success["links"] = Value::Object(links);
            }
            if op.etag {
                success["headers"] = json!({"ETag": {
                    "description": "The object's entity tag, for If-Match on a later change",
                    "schema": {"type": "string"},
                }});
            }
            answers.insert(op.status.to_string(), success);
            if op.if_match {
                answers.insert(
                    "412".into(),
                    json!({"description": "the object changed since the If-Match tag was read", "content": {"application/json": {"schema": error}}}),
                );
            }
            for (status, description) in ERROR_STATUSES {
                // A public route never asks for a session, nor waits for the identity provider.
                if op.public && matches!(status, 401 | 503) {
                    continue;
                }
                answers.insert(
                    status.to_string(),
                    json!({"description": description, "content": {"application/json": {"schema": error}}}),
                );
            }
            operation["responses"] = Value::Object(answers);
            let entry = paths
                .entry(op.path.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            entry[op.method.as_str().to_ascii_lowercase()] = operation;
        }
        let mut schemas = requests.take_definitions(true);
        schemas.extend(responses.take_definitions(true));
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Gig'MCP control plane",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Profiles, servers, credentials, plugins, users and the audit log. Authenticate with the \
                    gigmcp_session cookie; state-changing requests must carry the gateway's own Origin.",
            },
            "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": crate::session::COOKIE_NAME}},
            },
        })
    }
}

/// Statuses any operation may answer with the error envelope.
const ERROR_STATUSES: &[(u16, &str)] = &[
    (400, "the request is malformed (the message says which part)"),
    (401, "no valid session"),
    (403, "not allowed: not an admin, or a cross-site request"),
    (404, "no such object, or not the caller's"),
    (405, "method not allowed"),
    (409, "conflicts with the current state"),
    (413, "the body is too large"),
    (415, "wrong content type"),
    (422, "refused by a validation"),
    (503, "the identity provider is not ready"),
];

/// The error envelope of every failed request.
#[derive(serde::Serialize, JsonSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(serde::Serialize, JsonSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code: `bad_request`, `not_found`, `forbidden`, ….
    pub code: String,
    /// What went wrong and what to do, for a human.
    pub message: String,
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// One query parameter per property of a flat struct's schema (resolved if it is a reference).
fn query_parameters(schema: &Schema, generator: &SchemaGenerator) -> Vec<Value> {
    let resolved = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .rsplit('/')
            .next()
            .and_then(|name| generator.definitions().get(name))
            .cloned()
            .unwrap_or(Value::Null),
        None => schema.as_value().clone(),
    };
    let required: Vec<&str> = resolved["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = resolved["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            // A query parameter is absent rather than null.
            let mut schema = schema.clone();
            if let Some(types) = schema["type"].as_array() {
                let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                schema["type"] = if types.len() == 1 {
                    types[0].clone()
                } else {
                    Value::Array(types)
                };
            }
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_of_the_api_is_in_the_document() {
        let api = crate::api::api();
        let doc = api.document();
        let mut ids = std::collections::HashSet::new();
        let mut count = 0;
        for op in api.operations() {
            count += 1;
            let entry = &doc["paths"][op.path][op.method.as_str().to_ascii_lowercase()];
            assert!(entry.is_object(), "{} {} is not in the document", op.method, op.path);
            assert!(ids.insert(op.id), "operationId {} is used twice", op.id);
            for name in path_parameters(op.path) {
                let declared = entry["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path");
                assert!(
                    declared,
                    "{} {}: path parameter {name} is not declared",
                    op.method, op.path
                );
            }
            assert!(entry["responses"]["400"].is_object());
            assert_eq!(
                entry["responses"]["401"].is_object(),
                !op.public,
                "{}: a 401 is documented exactly when a session is needed",
                op.path
            );
            assert_eq!(
                op.public,
                crate::api::PUBLIC_ROUTES.contains(&op.path),
                "{}: a public operation and api::PUBLIC_ROUTES (which the guard lets through) must agree",
                op.path
            );
            for (target, _, _) in &op.links {
                assert!(
                    api.operations().any(|o| o.id == *target),
                    "{}: link to unknown {target}",
                    op.id
                );
            }
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, count, "the document has operations the router does not");
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = crate::api::api().document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{reference}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{reference} does not resolve"
            );
        }
        // Requests are strict: unknown fields are refused, and the document says so.
        assert_eq!(
            doc["components"]["schemas"]["CreateProfile"]["additionalProperties"],
            false
        );
    }

    /// The dashboard's typed client is generated from `web/src/api/openapi.json`: a route or field changed here
    /// and not there would make the dashboard send requests the API refuses, typed as if they were right.
    #[test]
    fn the_dashboards_copy_of_the_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src/api/openapi.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed.trim_end() == crate::api::document_text(),
            "web/src/api/openapi.json is not the API's document: run `make web-api` (it rewrites the file and the \
             dashboard's types from it) and commit both"
        );
    }
}
