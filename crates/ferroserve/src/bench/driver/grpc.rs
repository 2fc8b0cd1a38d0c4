//! The gRPC transports of `ferroserve bench`: `ModelInfer` calls (unary) or
//! requests over long-lived `ModelStreamInfer` streams, carrying requests
//! encoded once before the load starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes};
use ferroserve_server::grpc::proto::ModelStreamInferResponse;
use prost::Message;
use tokio::sync::mpsc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

use crate::bench::settings::parse_header;

const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
const MODEL_STREAM_INFER: &str = "/inference.GRPCInferenceService/ModelStreamInfer";

/// HTTP/2 connections to a gRPC server, each request on the next in turn,
/// and the metadata every request carries.
#[derive(Debug)]
pub struct Connections {
    channels: Vec<Channel>,
    next: AtomicUsize,
    metadata: MetadataMap,
}

impl Connections {
    /// `count` connections to `url` (`http://HOST:PORT`), opened on first
    /// use; the API key and the extra headers go as metadata.
    pub fn new(
        url: &str,
        count: usize,
        headers: &[String],
        token: Option<&str>,
    ) -> anyhow::Result<Connections> {
        if url.starts_with("https://") {
            bail!("--grpc-url {url}: the bench speaks plain-text gRPC (h2c) only");
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .with_context(|| format!("--grpc-url {url} is not a valid URL"))?
            .tcp_nodelay(true);
        let channels = (0..count).map(|_| endpoint.connect_lazy()).collect();
        Ok(Connections {
            channels,
            next: AtomicUsize::new(0),
            metadata: metadata(headers, token)?,
        })
    }

    fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        *request.metadata_mut() = self.metadata.clone();
        request
    }

    /// One `ModelInfer` call with the encoded request `body`.
    pub async fn unary(&self, body: Bytes) -> Result<(), String> {
        let mut client = tonic::client::Grpc::new(self.channel());
        client.ready().await.map_err(|_| "connect".to_string())?;
        let path = PathAndQuery::from_static(MODEL_INFER);
        client
            .unary(self.request(body), path, RawCodec)
            .await
            .map(drop)
            .map_err(|status| failure(&status))
    }
}

/// `authorization: Bearer TOKEN` (unless a header sets it) and the extra
/// `--header` entries, as gRPC metadata.
fn metadata(headers: &[String], token: Option<&str>) -> anyhow::Result<MetadataMap> {
    let mut map = MetadataMap::new();
    if let Some(token) = token {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .context("the API key is not a valid metadata value")?;
        map.insert("authorization", value);
    }
    for header in headers {
        let (name, value) = parse_header(header)?;
        let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("--header {name:?} is not a valid gRPC metadata key"))?;
        let value = MetadataValue::try_from(value.as_str())
            .with_context(|| format!("--header {name}: the value is not valid gRPC metadata"))?;
        map.insert(key, value);
    }
    Ok(map)
}

/// A failed call's kind: its gRPC status code, e.g. `ResourceExhausted`.
fn failure(status: &Status) -> String {
    format!("{:?}", status.code())
}

/// One open `ModelStreamInfer` stream, with one request in flight at most.
#[derive(Debug)]
struct OpenStream {
    requests: mpsc::Sender<Bytes>,
    answers: Streaming<Bytes>,
}

/// Streams to reuse: a request takes an idle one (or opens another), sends
/// its body, waits for the answer, and gives the stream back; so there are
/// as many streams as requests in flight at most.
#[derive(Debug)]
pub struct StreamPool {
    connections: Connections,
    idle: Mutex<Vec<OpenStream>>,
}

impl StreamPool {
    /// A pool of streams over `connections`.
    pub fn new(connections: Connections) -> StreamPool {
        StreamPool {
            connections,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `body` on a stream and reads its answer; a stream whose call
    /// failed or was dropped midway (client timeout) is not reused.
    pub async fn send(&self, body: Bytes) -> Result<(), String> {
        let idle = self.idle.lock().map_or(None, |mut idle| idle.pop());
        let mut stream = match idle {
            Some(stream) => {
                stream
                    .requests
                    .send(body)
                    .await
                    .map_err(|_| "stream closed".to_string())?;
                stream
            }
            None => self.open(body).await?,
        };
        let answer = match stream.answers.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => return Err("stream closed".to_string()),
            Err(status) => return Err(failure(&status)),
        };
        let outcome = stream_outcome(answer);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(stream);
        }
        outcome
    }

    /// Opens a stream whose first request is `first` (queued before the
    /// call starts, so a server that answers the headers only after the
    /// first message cannot hold it up).
    async fn open(&self, first: Bytes) -> Result<OpenStream, String> {
        let (requests, queued) = mpsc::channel::<Bytes>(1);
        requests
            .send(first)
            .await
            .map_err(|_| "other".to_string())?;
        let outgoing = futures::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|body| (body, queued))
        });
        let mut client = tonic::client::Grpc::new(self.connections.channel());
        client.ready().await.map_err(|_| "connect".to_string())?;
        let path = PathAndQuery::from_static(MODEL_STREAM_INFER);
        let answers = client
            .streaming(self.connections.request(outgoing), path, RawCodec)
            .await
            .map_err(|status| failure(&status))?
            .into_inner();
        Ok(OpenStream { requests, answers })
    }
}

/// A stream answer carries its error in `error_message` (the stream goes
/// on), as Triton's does.
fn stream_outcome(answer: Bytes) -> Result<(), String> {
    match ModelStreamInferResponse::decode(answer) {
        Ok(answer) if answer.error_message.is_empty() => Ok(()),
        Ok(_) => Err("stream error".to_string()),
        Err(_) => Err("other".to_string()),
    }
}

/// Messages as bytes both ways: requests are encoded once before the load,
/// answers are read whole, like the HTTP protocols' bodies.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_carries_the_key_and_the_extra_headers() {
        let map = metadata(&["X-Request-Id: r1".to_string()], Some("k")).unwrap();
        assert_eq!(map.get("authorization").unwrap(), "Bearer k");
        assert_eq!(map.get("x-request-id").unwrap(), "r1");
        assert!(metadata(&["bad key: v".to_string()], None).is_err());
    }

    #[test]
    fn stream_answers_with_an_error_message_are_failures() {
        let ok = ModelStreamInferResponse::default().encode_to_vec();
        assert_eq!(stream_outcome(Bytes::from(ok)), Ok(()));
        let failed = ModelStreamInferResponse {
            error_message: "input 'x': bad".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            stream_outcome(Bytes::from(failed)),
            Err("stream error".into())
        );
        assert!(stream_outcome(Bytes::from_static(&[0xff])).is_err());
    }

    #[test]
    fn tls_urls_are_refused() {
        let err = Connections::new("https://h:1", 1, &[], None).unwrap_err();
        assert!(err.to_string().contains("plain-text gRPC"), "{err}");
    }
}
