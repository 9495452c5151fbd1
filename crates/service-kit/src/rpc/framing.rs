//! The request's gRPC framing (a 5-byte header, compressed flag and length, before each message),
//! checked as the body streams by. tonic answers `INTERNAL` ("Unexpected EOF decoding stream.",
//! "Missing request message.") when a request body ends inside a message, or carries no message
//! for a method that takes one; both are the client's mistake, so this layer ends such a body
//! with an `INVALID_ARGUMENT` error, which tonic passes on as the call's status. The bytes are
//! only counted, never copied.

use super::takes_one_request;
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};
use tonic::Status;
use tower::{Layer, Service};

/// Wraps services in [`FramingService`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct FramingLayer;

impl<S> Layer<S> for FramingLayer {
    type Service = FramingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FramingService { inner }
    }
}

/// Passes each request on with its body wrapped in a [`FramedBody`].
#[derive(Debug, Clone)]
pub struct FramingService<S> {
    inner: S,
}

impl<S> Service<http::Request<tonic::body::Body>> for FramingService<S>
where
    S: Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let one = takes_one_request(request.uri().path());
        self.inner
            .call(request.map(|body| tonic::body::Body::new(FramedBody::new(body, one))))
    }
}

/// Where the body is in its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Inside a message header, `read` of its 5 bytes seen (the length's bytes kept).
    Header { read: usize, length: [u8; 4] },
    /// Inside a message, this many bytes still to come.
    Message { remaining: u64 },
}

const HEADER: usize = 5;

/// A request body that ends with `INVALID_ARGUMENT` instead of inside a message, or without a
/// message when the method takes exactly one.
#[derive(Debug)]
pub struct FramedBody {
    inner: tonic::body::Body,
    position: Position,
    messages: u64,
    needs_message: bool,
    ended: bool,
}

impl FramedBody {
    fn new(inner: tonic::body::Body, needs_message: bool) -> Self {
        Self {
            inner,
            position: Position::Header {
                read: 0,
                length: [0; 4],
            },
            messages: 0,
            needs_message,
            ended: false,
        }
    }

    /// Follows the framing through `data`.
    fn track(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.position {
                Position::Header { read, length } => {
                    let take = (HEADER - *read).min(data.len());
                    for (i, byte) in data[..take].iter().enumerate() {
                        // Byte 0 is the compressed flag; 1..5 the big-endian length.
                        if let Some(slot) = (*read + i).checked_sub(1) {
                            length[slot] = *byte;
                        }
                    }
                    *read += take;
                    data = &data[take..];
                    if *read == HEADER {
                        self.position = Position::Message {
                            remaining: u64::from(u32::from_be_bytes(*length)),
                        };
                        self.complete_if_done();
                    }
                }
                Position::Message { remaining } => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    *remaining -= take as u64;
                    data = &data[take..];
                    self.complete_if_done();
                }
            }
        }
    }

    fn complete_if_done(&mut self) {
        if self.position == (Position::Message { remaining: 0 }) {
            self.messages += 1;
            self.position = Position::Header {
                read: 0,
                length: [0; 4],
            };
        }
    }

    /// What is wrong with the body if it ends here.
    fn fault(&self) -> Option<&'static str> {
        match self.position {
            Position::Header { read: 0, .. } if self.needs_message && self.messages == 0 => {
                Some("the request carries no message")
            }
            Position::Header { read: 0, .. } => None,
            _ => Some("the request ends inside a message (truncated)"),
        }
    }
}

impl Body for FramedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.track(data.chunk());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(status)) => Poll::Ready(Some(Err(status))),
            None => {
                self.ended = true;
                Poll::Ready(
                    self.fault()
                        .map(|fault| Err(Status::invalid_argument(fault))),
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not at the inner body's end while a fault is still to be reported.
        self.ended || (self.inner.is_end_stream() && self.fault().is_none())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(chunks: &[&[u8]], needs_message: bool) -> FramedBody {
        let mut body = FramedBody::new(tonic::body::Body::empty(), needs_message);
        for chunk in chunks {
            body.track(chunk);
        }
        body
    }

    #[test]
    fn framing_is_followed_across_chunks() {
        // Two messages (3 bytes, then empty), split at every awkward place.
        let whole: &[u8] = &[0, 0, 0, 0, 3, 7, 8, 9, 0, 0, 0, 0, 0];
        for split in 0..whole.len() {
            let body = tracked(&[&whole[..split], &whole[split..]], true);
            assert_eq!((body.messages, body.fault()), (2, None), "split at {split}");
        }
        // Ends inside the header, inside the message, or before any message.
        assert!(tracked(&[&[0, 0, 0]], true).fault().is_some());
        assert!(tracked(&[&[0, 0, 0, 0, 10, 1, 2]], false).fault().is_some());
        assert!(tracked(&[], true).fault().is_some());
        // A stream of requests may carry none.
        assert_eq!(tracked(&[], false).fault(), None);
    }
}
