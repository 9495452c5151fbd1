//! The codec of the generated servers: prost's, except that a request which does not decode is
//! the client's mistake. tonic-prost answers `INTERNAL` for it (gRPC's status-code guide treats
//! a parse failure as a broken peer), so anyone could raise the servers' INTERNAL alert with a
//! few bad bytes; here it is `INVALID_ARGUMENT`, naming the field where decoding stopped.
//! Clients keep prost's own codec: a response that does not decode is the server's fault.

use prost::Message;
use std::marker::PhantomData;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};

/// Encodes responses with prost; decodes requests with prost, mapping failures to
/// `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct RequestCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder { _type: PhantomData }
    }
}

/// Decodes one request message; see [`RequestCodec`].
#[derive(Debug, Clone)]
pub struct RequestDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| malformed(&e))
    }
}

/// `INVALID_ARGUMENT` for a request that does not decode. The message keeps prost's wording
/// (message and field names, and what was wrong: never a byte of the input), and the
/// `google.rpc.BadRequest` detail names the field's path when prost located it.
fn malformed(error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    let located = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let message = format!("malformed request: {located}");
    match field_path(located) {
        Some((field, description)) => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(field, description),
        ),
        None => Status::invalid_argument(message),
    }
}

/// Splits prost's `Inner.field: Outer.field: description` (innermost first; prost exposes the
/// location only in its `Display`) into the proto field path, outermost first
/// (`outer_field.inner_field`), and the description. `None` when no field is named.
fn field_path(located: &str) -> Option<(String, &str)> {
    let mut fields = Vec::new();
    let mut rest = located;
    while let Some((segment, tail)) = rest.split_once(": ") {
        let Some((message, field)) = segment.split_once('.') else {
            break;
        };
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !(ident(message) && ident(field)) {
            break;
        }
        fields.push(field);
        rest = tail;
    }
    if fields.is_empty() {
        return None;
    }
    fields.reverse();
    Some((fields.join("."), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::v1::CreateCredentialRequest;

    fn decode_error(bytes: &[u8]) -> prost::DecodeError {
        CreateCredentialRequest::decode(bytes).expect_err("malformed")
    }

    #[test]
    fn the_field_path_comes_outermost_first() {
        assert_eq!(
            field_path(
                "CredentialValue.secret: CreateCredentialRequest.value: invalid string value: data is not UTF-8 encoded"
            ),
            Some((
                "value.secret".to_owned(),
                "invalid string value: data is not UTF-8 encoded"
            ))
        );
        assert_eq!(field_path("invalid varint"), None);
        assert_eq!(
            field_path("invalid wire type: Varint (expected LengthDelimited)"),
            None
        );
    }

    #[test]
    fn malformed_requests_are_invalid_argument_naming_the_field() {
        // value (6) { secret (1): 0xff }: invalid UTF-8 one level down, inside the oneof
        // `kind`, which is as far as prost locates it.
        let nested = decode_error(&[0x32, 3, 0x0a, 1, 0xff]);
        let status = malformed(&nested);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violation = &details.bad_request().expect("BadRequest").field_violations[0];
        assert_eq!(violation.field, "value.kind", "{status:?}");
        assert!(
            status.message().contains("CreateCredentialRequest.value"),
            "{status:?}"
        );

        // A stray byte that is not even a valid key: no field to name, still the client's.
        let unlocated = malformed(&decode_error(&[0xff]));
        assert_eq!(unlocated.code(), Code::InvalidArgument);
        assert!(unlocated.get_error_details().bad_request().is_none());
    }
}
