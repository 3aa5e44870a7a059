//! JSON-RPC 2.0 messages, kept as JSON so that whatever the gateway does not model passes through unchanged.

use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// One JSON-RPC message, classified.
#[derive(Debug)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        body: Map<String, Value>,
    },
    Notification {
        method: String,
        body: Map<String, Value>,
    },
    Response {
        id: Value,
        body: Map<String, Value>,
    },
}

impl Message {
    /// Classifies a parsed JSON value; anything that is not a JSON-RPC 2.0 object is an invalid request.
    pub fn classify(value: Value) -> Result<Self, String> {
        let Value::Object(body) = value else {
            return Err("a JSON-RPC message must be a JSON object (batches are not supported)".into());
        };
        if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err("\"jsonrpc\" must be \"2.0\"".into());
        }
        let id = body.get("id").cloned();
        if let Some(id) = &id
            && !(id.is_string() || id.is_i64() || id.is_u64())
        {
            return Err("\"id\" must be a string or an integer".into());
        }
        match (body.get("method"), id) {
            (Some(Value::String(method)), Some(id)) => Ok(Self::Request {
                id,
                method: method.clone(),
                body,
            }),
            (Some(Value::String(method)), None) => Ok(Self::Notification {
                method: method.clone(),
                body,
            }),
            (Some(_), _) => Err("\"method\" must be a string".into()),
            (None, Some(id)) if body.contains_key("result") || body.contains_key("error") => {
                Ok(Self::Response { id, body })
            }
            (None, _) => Err("a message needs \"method\", or \"id\" with \"result\" or \"error\"".into()),
        }
    }
}

pub fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut body = json!({"jsonrpc": "2.0", "method": method});
    if let Some(params) = params {
        body["params"] = params;
    }
    body
}

/// A stable key for a request id (ids may be strings or numbers; `1` and `"1"` differ).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind_and_rejects_the_rest() {
        assert!(matches!(
            Message::classify(json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
            Ok(Message::Request { .. })
        ));
        assert!(matches!(
            Message::classify(json!({"jsonrpc":"2.0","method":"x"})),
            Ok(Message::Notification { .. })
        ));
        assert!(matches!(
            Message::classify(json!({"jsonrpc":"2.0","id":"a","result":{}})),
            Ok(Message::Response { .. })
        ));
        for bad in [
            json!([]),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1}),
            json!({"jsonrpc":"2.0","method":3}),
        ] {
            assert!(Message::classify(bad.clone()).is_err(), "{bad} accepted");
        }
    }
}
