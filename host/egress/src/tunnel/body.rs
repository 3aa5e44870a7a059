//! The bodies through a tunnel: the request's counted on its way up (`Counted`), the response's scrubbed,
//! counted and audited on its way back (`OutBody`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::activity::Activity;
use super::record::RequestRecord;
use crate::scrub::Scrubber;

/// The request body on its way up, counted.
pub(super) struct Counted {
    pub(super) inner: Incoming,
    pub(super) count: Arc<AtomicU64>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body to the jail: a refusal's text, or the upstream's body, scrubbed when secrets went into
/// the request, counted, and audited when it ends (or is dropped).
pub(super) enum OutBody {
    Full(Option<Bytes>),
    Upstream {
        inner: Incoming,
        scrubber: Option<Scrubber>,
        /// The second piece of the last scrubbed chunk, sent on the next poll.
        queued: Option<Bytes>,
        record: Option<Box<RequestRecord>>,
        /// The tunnel's: a body still flowing keeps an HTTP/2 tunnel from being idle.
        activity: Arc<Activity>,
    },
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            OutBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Upstream {
                inner,
                scrubber,
                queued,
                record,
                activity,
            } => loop {
                if let Some(data) = queued.take() {
                    if let Some(r) = record {
                        r.bytes_down += data.len() as u64;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                match Pin::new(&mut *inner).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Some(Ok(frame))) => {
                        activity.touch();
                        let frame = match frame.into_data() {
                            Ok(data) => match scrubber {
                                Some(s) => {
                                    let (held, rest) = s.push(data);
                                    if held.is_empty() {
                                        rest
                                    } else {
                                        *queued = (!rest.is_empty()).then_some(rest);
                                        held
                                    }
                                }
                                None => data,
                            },
                            // Trailers could carry a reflected secret too: dropped when scrubbing.
                            Err(frame) if scrubber.is_none() => return Poll::Ready(Some(Ok(frame))),
                            Err(_) => continue,
                        };
                        if frame.is_empty() {
                            continue;
                        }
                        if let Some(r) = record {
                            r.bytes_down += frame.len() as u64;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                    Poll::Ready(None) => {
                        let rest = scrubber.as_mut().map(Scrubber::finish).unwrap_or_default();
                        *scrubber = None;
                        if let Some(r) = record.take() {
                            let mut r = r;
                            r.bytes_down += rest.len() as u64;
                            r.record();
                        }
                        return Poll::Ready((!rest.is_empty()).then(|| Ok(Frame::data(rest))));
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutBody::Full(bytes) => bytes.is_none(),
            OutBody::Upstream { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            OutBody::Full(None) => SizeHint::with_exact(0),
            OutBody::Upstream {
                inner, scrubber: None, ..
            } => inner.size_hint(),
            OutBody::Upstream { .. } => SizeHint::default(),
        }
    }
}

impl Drop for OutBody {
    fn drop(&mut self) {
        // A body dropped before its end (the jail went away, a HEAD request) is audited with what went.
        if let OutBody::Upstream { record: Some(r), .. } = self {
            r.record();
        }
    }
}
