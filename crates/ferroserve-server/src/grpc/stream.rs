//! `ModelStreamInfer`: one bidirectional stream, many requests. Up to
//! [`GrpcOptions::stream_in_flight`](super::GrpcOptions) requests of a
//! stream are served at once; the next request is read only when one of
//! them has been answered (so a client that sends faster than the model
//! answers is held back by HTTP/2 flow control, not buffered). Answers go
//! back in request order; a request that fails is answered with its
//! `error_message` and the stream goes on.

use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesOrdered, Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::access::{Incoming, Method};
use super::errors::size_limit_exhausted;
use super::infer::infer;
use super::proto::{ModelInferRequest, ModelInferResponse, ModelStreamInferResponse};
use crate::state::SharedState;

/// The answers of one stream.
pub(crate) type AnswerStream =
    Pin<Box<dyn Stream<Item = Result<ModelStreamInferResponse, Status>> + Send + 'static>>;

/// Serves the requests of `inbound` for the caller `incoming` describes
/// (already allowed to open the stream), at most `in_flight` at once.
pub(crate) fn serve_stream(
    state: SharedState,
    incoming: Incoming,
    inbound: Streaming<ModelInferRequest>,
    in_flight: usize,
) -> AnswerStream {
    let in_flight = in_flight.max(1);
    let (answers, receiver) = mpsc::channel(in_flight);
    tokio::spawn(drive(
        state,
        Arc::new(incoming),
        inbound,
        answers,
        in_flight,
    ));
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|answer| (answer, receiver)) },
    ))
}

type Answer = Result<ModelStreamInferResponse, Status>;

/// Reads requests while fewer than `in_flight` are being served, and sends
/// their answers in order, until the client closes its side and every
/// request is answered, or the client goes away.
async fn drive(
    state: SharedState,
    incoming: Arc<Incoming>,
    mut inbound: Streaming<ModelInferRequest>,
    answers: mpsc::Sender<Answer>,
    in_flight: usize,
) {
    let mut pending = FuturesOrdered::new();
    let mut reading = true;
    while reading || !pending.is_empty() {
        tokio::select! {
            next = inbound.message(), if reading && pending.len() < in_flight => match next {
                Ok(Some(message)) => pending.push_back(answer(state.clone(), incoming.clone(), message)),
                Ok(None) => reading = false,
                Err(status) => {
                    // The stream itself broke (a message over the size
                    // limit, a reset): say so and stop.
                    let _ = answers.send(Err(size_limit_exhausted(status))).await;
                    return;
                }
            },
            Some(answer) = pending.next(), if !pending.is_empty() => {
                if answers.send(Ok(answer)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The stream answer to one request: its response, or its error message
/// with the request's id, model and version so the client can match it.
async fn answer(
    state: SharedState,
    incoming: Arc<Incoming>,
    message: ModelInferRequest,
) -> ModelStreamInferResponse {
    let echo = ModelInferResponse {
        model_name: message.model_name.clone(),
        model_version: message.model_version.clone(),
        id: message.id.clone(),
        ..ModelInferResponse::default()
    };
    let span = super::request_span(&incoming, Method::ModelStreamInfer);
    let result = infer(&state, &incoming, Method::ModelStreamInfer, message)
        .instrument(span.clone())
        .await;
    super::record_outcome(&span, result.as_ref().err());
    match result {
        Ok(inferred) => ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(inferred.response),
        },
        Err(status) => ModelStreamInferResponse {
            error_message: status.message().to_owned(),
            infer_response: Some(echo),
        },
    }
}
