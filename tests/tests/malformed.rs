#![allow(clippy::unwrap_used)]
//! Requests whose bytes are not a valid protobuf message, sent by a real gRPC client to both
//! servers: a client's mistake, so `INVALID_ARGUMENT` naming the field, and never counted as
//! INTERNAL (which pages someone). The same for a request body whose gRPC framing is cut short
//! (it ends inside a message, or carries none), sent as raw HTTP/2 over the client's channel.

use bytes::{Buf, BufMut};
use hyper_util::rt::TokioIo;
use testkit::stack::ALL;
use tests::{Stack, StackOptions, http_get};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::{Channel, Endpoint, Uri},
};
use tonic_types::StatusExt;

/// Sends and receives raw message bytes: what a buggy or hostile client puts on the wire.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// One unary call of `path` with `body` as the request message.
async fn call(channel: &Channel, path: &'static str, body: Vec<u8>, token: Option<&str>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(body);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match grpc
        .unary::<_, Vec<u8>, _>(request, PathAndQuery::from_static(path), RawCodec)
        .await
    {
        Ok(_) => panic!("{path}: malformed bytes were accepted"),
        Err(status) => status,
    }
}

/// The gRPC status of a POST of `path` whose body is exactly `body` (framing included), sent
/// through `channel` as an HTTP/2 request.
async fn raw_post(channel: &Channel, path: &str, body: &'static [u8], token: Option<&str>) -> Code {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = tonic::codegen::http::Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from_static(body),
        )))
        .unwrap();
    let response = channel.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let trailers = body.collect().await.unwrap().trailers().cloned();
    let status = parts
        .headers
        .get("grpc-status")
        .or_else(|| trailers.as_ref().and_then(|t| t.get("grpc-status")))
        .expect("a grpc-status");
    Code::from_bytes(status.as_bytes())
}

/// Bodies whose framing is cut short: inside the 5-byte header, inside the message (the header
/// says 10 bytes, 2 follow), and no message at all.
const CUT_SHORT: [(&str, &[u8]); 3] = [
    ("inside the header", &[0, 0, 0]),
    ("inside the message", &[0, 0, 0, 0, 10, 0x0a, 0x01]),
    ("no message", &[]),
];

/// The three malformed encodings of string field `field`: invalid UTF-8, the wrong wire type
/// (a varint where a length-delimited value belongs), and a length running past the end.
fn malformed(field: u8) -> [(&'static str, Vec<u8>); 3] {
    let tag = |wire_type: u8| (field << 3) | wire_type;
    [
        ("invalid UTF-8", vec![tag(2), 2, 0xff, 0xfe]),
        ("wrong wire type", vec![tag(0), 1]),
        ("truncated", vec![tag(2), 10, b'a', b'b']),
    ]
}

fn assert_invalid(status: &Status, what: &str, message: &str, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert!(status.message().contains(message), "{what}: {status:?}");
    let violations = status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.clone())
        .unwrap_or_default();
    assert_eq!(
        violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        [field],
        "{what}: {status:?}"
    );
}

/// The `grpc_server_requests_total` samples of `text` for `method`, as `code value` pairs,
/// and every sample with code INTERNAL.
fn requests(text: &str, method: &str) -> (Vec<String>, Vec<String>) {
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("grpc_server_requests_total{"))
        .collect();
    let of_method = samples
        .iter()
        .filter(|l| l.contains(&format!("method=\"{method}\"")))
        .map(|l| {
            let code = l
                .split("code=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            format!("{code} {}", l.rsplit(' ').next().unwrap())
        })
        .collect();
    let internal = samples
        .iter()
        .filter(|l| l.contains("code=\"INTERNAL\""))
        .map(|l| (*l).to_owned())
        .collect();
    (of_method, internal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_argument_on_both_servers() {
    let admin = || vec!["--admin-addr".to_owned(), "127.0.0.1:0".to_owned()];
    let stack = Stack::start_with_options(StackOptions {
        api_args: admin(),
        kms_args: admin(),
        ..StackOptions::default()
    })
    .await;
    let token = stack.token(&["malformed-ws"], ALL);

    // credentials-api: both of its public services, with a valid token (so the request gets as
    // far as decoding).
    let api = Channel::from_shared(format!("http://{}", stack.api.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for (what, body) in malformed(2) {
        let status = call(
            &api,
            "/credentials.v1.CredentialsService/CreateCredential",
            body,
            Some(&token),
        )
        .await;
        assert_invalid(&status, what, "CreateCredentialRequest.name", "name");
    }
    for (what, body) in malformed(1) {
        let status = call(
            &api,
            "/credentials.v1.AccessService/AccessCredential",
            body,
            Some(&token),
        )
        .await;
        assert_invalid(
            &status,
            what,
            "AccessCredentialRequest.workspace_id",
            "workspace_id",
        );
    }
    for (what, body) in CUT_SHORT {
        let code = raw_post(
            &api,
            "/credentials.v1.CredentialsService/CreateCredential",
            body,
            Some(&token),
        )
        .await;
        assert_eq!(code, Code::InvalidArgument, "{what}");
    }
    // Health needs no token: the easiest place to send bad bytes.
    for (what, body) in malformed(1) {
        let status = call(&api, "/grpc.health.v1.Health/Check", body, None).await;
        assert_invalid(&status, what, "HealthCheckRequest.service", "service");
    }
    // Nothing was written.
    assert_eq!(
        testkit::stack::count(&stack.db, "credentials").await,
        0,
        "a malformed request wrote a row"
    );

    // The kms, over its socket.
    let socket = stack.kms.socket.clone();
    let kms = Endpoint::from_static("http://kms.local")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .unwrap();
    for (what, body) in malformed(1) {
        let status = call(
            &kms,
            "/kms.v1.KeyManagementService/GenerateDataKey",
            body,
            None,
        )
        .await;
        assert_invalid(&status, what, "GenerateDataKeyRequest.key_id", "key_id");
    }
    for (what, body) in CUT_SHORT {
        let code = raw_post(
            &kms,
            "/kms.v1.KeyManagementService/GenerateDataKey",
            body,
            None,
        )
        .await;
        assert_eq!(code, Code::InvalidArgument, "{what}");
    }

    // Counted as what they are, never as INTERNAL.
    let (_, api_text) = http_get(&stack.api.admin_addr().await, "/metrics").await;
    let (_, kms_text) = http_get(&stack.kms.admin_addr().await, "/metrics").await;
    for (text, method, count) in [
        (&api_text, "CreateCredential", 6),
        (&api_text, "AccessCredential", 3),
        (&kms_text, "GenerateDataKey", 6),
        (&api_text, "Check", 3),
    ] {
        let (of_method, internal) = requests(text, method);
        assert_eq!(
            of_method,
            [format!("INVALID_ARGUMENT {count}")],
            "{method}:\n{text}"
        );
        assert_eq!(internal, Vec::<String>::new(), "{method}");
    }
}
