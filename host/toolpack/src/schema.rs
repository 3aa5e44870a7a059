//! A toolspec tool as an MCP tool: its description, and an input schema whose properties are its params in
//! declaration order. Params share one flat namespace whatever they are sent as (path, query, header, body).
//!
//! Property names some clients refuse (`filters[search]`, `$filter`, `include[]`) are exposed sanitized
//! (`filters_search`, `filter`, `include`) and mapped back to the wire name when the request is made.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use gigmcp_catalog::toolspec::{SpecParam, SpecTool};

/// A param as the engine handles it: the property the client sees, and the param it stands for.
#[derive(Debug, Clone)]
pub struct Property<'a> {
    pub name: String,
    pub param: &'a SpecParam,
}

fn is_safe(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The tool's properties: each param's name when clients accept it, otherwise a sanitized one (invalid
/// characters become `_`, trimmed, cut at 64, made unique with a numeric suffix).
pub fn properties(tool: &SpecTool) -> Vec<Property<'_>> {
    let mut taken: HashSet<String> = tool
        .params
        .iter()
        .filter(|p| is_safe(&p.name))
        .map(|p| p.name.clone())
        .collect();
    tool.params
        .iter()
        .map(|param| {
            if is_safe(&param.name) {
                return Property {
                    name: param.name.clone(),
                    param,
                };
            }
            let replaced: String = param
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let mut base: String = replaced.trim_matches('_').chars().take(60).collect();
            if base.is_empty() {
                base = "param".into();
            }
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            taken.insert(name.clone());
            Property { name, param }
        })
        .collect()
}

/// The MCP tool: `{name, description, inputSchema}`.
pub fn mcp_tool(tool: &SpecTool) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for property in properties(tool) {
        let param = property.param;
        let mut schema = json!({"type": param.kind});
        if !param.description.is_empty() {
            schema["description"] = Value::String(param.description.clone());
        }
        if param.kind == "array" {
            schema["items"] = json!({});
        }
        if param.required {
            required.push(Value::String(property.name.clone()));
        }
        props.insert(property.name, schema);
    }
    json!({
        "name": tool.name,
        "description": tool.description,
        "inputSchema": {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_sanitized_uniquely_and_the_schema_keeps_order() {
        let tool = SpecTool {
            name: "list".into(),
            description: "List.".into(),
            method: "GET".into(),
            path: "/x".into(),
            params: vec![
                crate::test_param("filters[search]", "query", "string", false),
                crate::test_param("filter", "query", "string", true),
                crate::test_param("$filter", "query", "string", false),
                crate::test_param("include[]", "query", "array", false),
                crate::test_param("[]", "query", "string", false),
            ],
            ..SpecTool::default()
        };
        let names: Vec<String> = properties(&tool).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["filters_search", "filter", "filter_2", "include", "param"]);
        let mcp = mcp_tool(&tool);
        let schema = &mcp["inputSchema"];
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5);
        assert_eq!(schema["required"], json!(["filter"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["include"]["items"], json!({}));
        assert_eq!(mcp["description"], "List.");
    }
}
