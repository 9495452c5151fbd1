//! When a call ends, and with which gRPC status: what the tracing, metrics and drain layers
//! each need to know, read the same way by all three.
//!
//! The status of a unary error is in the response headers (a trailers-only response); every
//! other status arrives in the trailers at the end of the body, so the body is wrapped to read
//! them. A body dropped before its end means the client went away: `CANCELLED`.

use std::{
    pin::Pin,
    task::{Context, Poll},
};
use tonic::Code;

/// Told a call's final status, exactly once.
pub trait OnStatus: Send + 'static {
    /// The call ended with `code`.
    fn on_status(self, code: Code);
}

/// The canonical name of a status code, as in the gRPC spec and metric labels.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// What a non-200 HTTP status means in gRPC (the spec's mapping for responses without
/// `grpc-status`).
fn code_of_http(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// Hands `watcher` the status of `result`: now, when the headers already carry it (or the
/// service failed), else when the body's trailers pass by or the body goes.
pub fn watch<B, E, W: OnStatus>(
    result: Result<http::Response<B>, E>,
    watcher: W,
) -> Result<http::Response<StatusBody<B, W>>, E> {
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            watcher.on_status(Code::Unknown);
            return Err(e);
        }
    };
    let code = status_in(response.headers()).or_else(|| {
        (response.status() != http::StatusCode::OK).then(|| code_of_http(response.status()))
    });
    let watcher = match code {
        Some(code) => {
            watcher.on_status(code);
            None
        }
        None => Some(watcher),
    };
    Ok(response.map(|inner| StatusBody {
        inner,
        watcher,
        ended: false,
    }))
}

/// A response body that reports the gRPC status in its trailers when they pass by.
pub struct StatusBody<B, W: OnStatus> {
    inner: B,
    watcher: Option<W>,
    ended: bool,
}

impl<B, W: OnStatus> StatusBody<B, W> {
    /// A body whose status is already known (or of no interest): nothing to report.
    pub fn settled(inner: B) -> Self {
        Self {
            inner,
            watcher: None,
            ended: false,
        }
    }
}

impl<B, W: OnStatus> std::fmt::Debug for StatusBody<B, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBody")
            .field("pending", &self.watcher.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: http_body::Body + Unpin, W: OnStatus + Unpin> http_body::Body for StatusBody<B, W> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(watcher) = this.watcher.take()
                {
                    watcher.on_status(status_in(trailers).unwrap_or(Code::Unknown));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(watcher) = this.watcher.take() {
                    watcher.on_status(Code::Internal);
                }
            }
            Poll::Ready(None) => this.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B, W: OnStatus> Drop for StatusBody<B, W> {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            // Ended without a grpc-status anywhere is a broken response; dropped before the
            // end, the client stopped waiting.
            watcher.on_status(if self.ended {
                Code::Unknown
            } else {
                Code::Cancelled
            });
        }
    }
}
