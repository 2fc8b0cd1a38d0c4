//! `inference.GRPCInferenceService`: each method reads who calls from its
//! metadata, hands the message to the module doing that job, and wraps
//! the answer. Every call runs in a request span.

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::access::{Incoming, Method};
use super::infer::infer;
use super::proto::grpc_inference_service_server::GrpcInferenceService;
use super::proto::*;
use super::stream::{serve_stream, AnswerStream};
use super::{model_info, models, repository};
use crate::health::server_ready;
use crate::state::SharedState;
use crate::trace_context::response_headers;

/// The inference service over the server's state.
pub struct InferenceService {
    state: SharedState,
    stream_in_flight: usize,
}

impl InferenceService {
    /// Serves `state`, with at most `stream_in_flight` requests of one
    /// stream served at once.
    pub fn new(state: SharedState, stream_in_flight: usize) -> Self {
        InferenceService {
            state,
            stream_in_flight,
        }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Answer<ServerLiveResponse> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Answer<ServerReadyResponse> {
        let ready = server_ready(&self.state);
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(&self, request: Request<ModelReadyRequest>) -> Answer<ModelReadyResponse> {
        let (incoming, message) = Incoming::split(request);
        models::model_ready(&self.state, &incoming, message)
            .await
            .map(Response::new)
    }

    async fn server_metadata(
        &self,
        request: Request<ServerMetadataRequest>,
    ) -> Answer<ServerMetadataResponse> {
        models::server_metadata(&self.state, &Incoming::split(request).0).map(Response::new)
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Answer<ModelMetadataResponse> {
        let (incoming, message) = Incoming::split(request);
        models::model_metadata(&self.state, &incoming, message)
            .await
            .map(Response::new)
    }

    async fn model_infer(&self, request: Request<ModelInferRequest>) -> Answer<ModelInferResponse> {
        let (incoming, message) = Incoming::split(request);
        let span = super::request_span(&incoming, Method::ModelInfer);
        let result = infer(&self.state, &incoming, Method::ModelInfer, message)
            .instrument(span.clone())
            .await;
        super::record_outcome(&span, result.as_ref().err());
        let inferred = result?;
        let mut metadata = inferred.metadata.into_headers();
        metadata.extend(
            response_headers(&span)
                .into_iter()
                .map(|(k, v)| (Some(k), v)),
        );
        let mut response = Response::new(inferred.response);
        *response.metadata_mut() = MetadataMap::from_headers(metadata);
        Ok(response)
    }

    type ModelStreamInferStream = AnswerStream;

    async fn model_stream_infer(
        &self,
        request: Request<Streaming<ModelInferRequest>>,
    ) -> Answer<AnswerStream> {
        let (mut incoming, message) = Incoming::split(request);
        // Credentials are checked when the stream opens; each request's
        // model when it comes.
        incoming.open_stream(&self.state, Method::ModelStreamInfer)?;
        let stream = serve_stream(self.state.clone(), incoming, message, self.stream_in_flight);
        Ok(Response::new(stream))
    }

    async fn model_config(
        &self,
        request: Request<ModelConfigRequest>,
    ) -> Answer<ModelConfigResponse> {
        let (incoming, message) = Incoming::split(request);
        model_info::model_config(&self.state, &incoming, message)
            .await
            .map(Response::new)
    }

    async fn model_statistics(
        &self,
        request: Request<ModelStatisticsRequest>,
    ) -> Answer<ModelStatisticsResponse> {
        let (incoming, message) = Incoming::split(request);
        model_info::model_statistics(&self.state, &incoming, message)
            .await
            .map(Response::new)
    }

    async fn repository_index(
        &self,
        request: Request<RepositoryIndexRequest>,
    ) -> Answer<RepositoryIndexResponse> {
        let (incoming, message) = Incoming::split(request);
        repository::index(&self.state, &incoming, message)
            .await
            .map(Response::new)
    }

    async fn repository_model_load(
        &self,
        request: Request<RepositoryModelLoadRequest>,
    ) -> Answer<RepositoryModelLoadResponse> {
        let (incoming, message) = Incoming::split(request);
        repository::load(&self.state, &incoming, message).await?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<RepositoryModelUnloadRequest>,
    ) -> Answer<RepositoryModelUnloadResponse> {
        let (incoming, message) = Incoming::split(request);
        repository::unload(&self.state, &incoming, message).await?;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}
