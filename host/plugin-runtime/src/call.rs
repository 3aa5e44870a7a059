//! One call into a plugin, whatever its kind: what the dispatcher asks ([`Hook`]) and what the WIT adapter
//! answers ([`Answer`]), in the gateway's own vocabulary.

use gigmcp_types::audit::AuditEvent;
use gigmcp_types::policy::{
    AuthOutcome, CallContext, Delivery, DenyReason, EgressDecision, EgressRequest, Grant, Identity, McpRequest,
    McpResponse, OutboundRequest, RequestAction, RequestOp, ResponseAction,
};

/// One call into a plugin, borrowing its inputs. A plain enum rather than a closure, so that the futures of
/// hook calls stay `Send` (async closures over borrowed arguments defeat the compiler's `Send` inference).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hook<'a> {
    ConfigSchema,
    Init {
        config: &'a str,
    },
    Egress {
        ctx: &'a CallContext,
        request: &'a EgressRequest,
    },
    Inject {
        ctx: &'a CallContext,
        request: &'a OutboundRequest,
        grants: &'a [Grant],
    },
    MapIdentity {
        ctx: &'a CallContext,
        identity: &'a Identity,
    },
    Route {
        events: &'a [AuditEvent],
    },
    OnRequest {
        ctx: &'a CallContext,
        request: &'a McpRequest,
    },
    OnResponse {
        ctx: &'a CallContext,
        response: &'a McpResponse,
    },
}

/// What a call answered; the variant matches the `Hook`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Schema(String),
    Init(Result<(), DenyReason>),
    Egress(EgressDecision),
    Inject(Result<Vec<RequestOp>, DenyReason>),
    MapIdentity(AuthOutcome),
    Route(Result<Vec<Delivery>, DenyReason>),
    OnRequest(RequestAction),
    OnResponse(ResponseAction),
}

macro_rules! answer_as {
    ($($method:ident: $variant:ident => $ty:ty),* $(,)?) => {
        impl Answer {
            $(
                pub(crate) fn $method(self) -> Result<$ty, crate::limits::CallFailure> {
                    match self {
                        Answer::$variant(value) => Ok(value),
                        other => Err(crate::limits::CallFailure::Malformed(format!("unexpected answer {other:?}"))),
                    }
                }
            )*
        }
    };
}

answer_as! {
    schema: Schema => String,
    init: Init => Result<(), DenyReason>,
    egress: Egress => EgressDecision,
    inject: Inject => Result<Vec<RequestOp>, DenyReason>,
    map_identity: MapIdentity => AuthOutcome,
    route: Route => Result<Vec<Delivery>, DenyReason>,
    on_request: OnRequest => RequestAction,
    on_response: OnResponse => ResponseAction,
}
