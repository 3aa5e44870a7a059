//! What goes to the client outside the reply of its request: the GET stream and the backlog kept while none
//! is open, and server→client requests, which get an id of this session (`gig-<n>`) so that the client's
//! answer finds its way back to the server and the server's own id.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::Session;
use crate::jsonrpc;
use crate::jsonrpc::id_key;
use crate::upstream::{Conn, Outbound};
use gigmcp_types::sync::lock;

/// Messages kept for a client that has no GET stream open; beyond this the oldest are dropped.
const BACKLOG_LIMIT: usize = 1000;

/// A session's messages for its client outside any reply, and the server→client requests it awaits answers to.
pub(super) struct Outbox {
    /// Server→client requests in flight, by the id this session gave them: the server's connection and id.
    outgoing: Mutex<HashMap<String, (Arc<Conn>, Value)>>,
    next_outgoing: AtomicU64,
    /// The client's GET stream, while one is open.
    stream: Mutex<Option<mpsc::UnboundedSender<Value>>>,
    /// What came while no GET stream was open.
    backlog: Mutex<VecDeque<Value>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            outgoing: Mutex::default(),
            next_outgoing: AtomicU64::new(1),
            stream: Mutex::default(),
            backlog: Mutex::default(),
        }
    }
}

impl Session {
    /// The client's answer to a server→client request: back to the server, with the server's id.
    pub async fn handle_response(&self, id: &Value, mut body: Map<String, Value>) {
        self.touch();
        let Some((conn, upstream_id)) = lock(&self.outbox.outgoing).remove(&id_key(id)) else {
            tracing::debug!(session = %self.id, "response to an unknown request {id}");
            return;
        };
        body.insert("id".into(), upstream_id);
        conn.notify(Value::Object(body)).await;
    }

    /// Gives a server→client request an id of this session and remembers where the answer goes. `None` when
    /// the client did not declare the capability the request needs: the server gets an error at once.
    fn register_server_request(&self, conn: Arc<Conn>, mut message: Value) -> Option<Value> {
        let upstream_id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
        let needed = match method {
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if let Some(capability) = needed
            && self.client_capabilities.get(capability).is_none_or(Value::is_null)
        {
            let error = jsonrpc::error(
                upstream_id,
                jsonrpc::METHOD_NOT_FOUND,
                format!("the client does not support {method}"),
            );
            tokio::spawn(async move { conn.notify(error).await });
            return None;
        }
        let id = format!("gig-{}", self.outbox.next_outgoing.fetch_add(1, Ordering::Relaxed));
        lock(&self.outbox.outgoing).insert(id_key(&json!(id)), (conn, upstream_id));
        message["id"] = Value::String(id);
        Some(message)
    }

    /// A message related to a request, ready for the client: server→client requests get an id of this
    /// session first (`None` when one was answered at once, for lack of the client's capability).
    pub fn deliverable(&self, out: Outbound) -> Option<Value> {
        match out {
            Outbound::Message(message) => Some(message),
            Outbound::ServerRequest { conn, message } => self.register_server_request(conn, message),
        }
    }

    /// A server→client request with no request in flight to carry it: sent on the GET stream.
    pub fn push_server_request(&self, conn: Arc<Conn>, message: Value) {
        if let Some(message) = self.register_server_request(conn, message) {
            self.push(message);
        }
    }

    /// Sends a message on the client's GET stream, or keeps it until one is opened.
    pub fn push(&self, message: Value) {
        let mut stream = lock(&self.outbox.stream);
        if let Some(tx) = stream.as_ref() {
            if let Err(e) = tx.send(message) {
                *stream = None;
                self.keep(e.0);
            }
        } else {
            self.keep(message);
        }
    }

    fn keep(&self, message: Value) {
        let mut backlog = lock(&self.outbox.backlog);
        if backlog.len() == BACKLOG_LIMIT {
            backlog.pop_front();
            tracing::warn!(session = %self.id, "client has no stream open; dropped its oldest queued message");
        }
        backlog.push_back(message);
    }

    /// Opens the GET stream (replacing any earlier one); messages kept meanwhile come first.
    pub fn open_stream(&self) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut stream = lock(&self.outbox.stream);
        for message in lock(&self.outbox.backlog).drain(..) {
            let _ = tx.send(message);
        }
        *stream = Some(tx);
        rx
    }
}
