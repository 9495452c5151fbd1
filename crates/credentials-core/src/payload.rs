//! Payload.
