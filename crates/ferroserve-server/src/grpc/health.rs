//! `grpc.health.v1.Health`: the empty service name (or
//! `inference.GRPCInferenceService`) is the server, serving when the HTTP
//! readiness probe is ready, and open to anyone like that probe; any other
//! name is a model, serving when it is ready, and asks for the metadata
//! access of `ModelReady`. `Watch` checks once a second and sends each
//! change.

use std::pin::Pin;
use std::time::Duration;

use ferroserve_core::ErrorKind;
use futures::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::access::{Incoming, Method, Models};
use super::errors::status_of;
use crate::health::server_ready;
use crate::state::SharedState;

/// The service name that stands for the whole inference service.
const INFERENCE_SERVICE: &str = "inference.GRPCInferenceService";

/// How often `Watch` looks again.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The health service over the server's state.
pub struct HealthService {
    state: SharedState,
}

impl HealthService {
    /// Health of the server and models of `state`.
    pub fn new(state: SharedState) -> Self {
        HealthService { state }
    }

    /// The status of `service`: the server's, or a model's (`ServiceUnknown`
    /// for a model the server does not know).
    async fn status_of(&self, service: &str) -> Result<ServingStatus, Status> {
        if service.is_empty() || service == INFERENCE_SERVICE {
            return Ok(serving(server_ready(&self.state)));
        }
        match self.state.pipeline.find(service, None).await {
            Ok(_) => Ok(ServingStatus::Serving),
            Err(e) if e.kind == ErrorKind::Unavailable => Ok(ServingStatus::NotServing),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(ServingStatus::ServiceUnknown),
            Err(e) => Err(status_of(&e)),
        }
    }

    /// Refuses a caller who may not see the model `service` names.
    fn authorize(&self, incoming: &Incoming, service: &str) -> Result<(), Status> {
        if service.is_empty() || service == INFERENCE_SERVICE {
            return Ok(());
        }
        incoming.authorize(&self.state, Method::ModelHealth, Models::One(service))?;
        Ok(())
    }
}

fn serving(ready: bool) -> ServingStatus {
    if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

/// The changes of one watched service.
pub(crate) type WatchStream =
    Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let (incoming, HealthCheckRequest { service }) = Incoming::split(request);
        let service = &service;
        self.authorize(&incoming, service)?;
        match self.status_of(service).await? {
            ServingStatus::ServiceUnknown => Err(Status::not_found(format!(
                "unknown service '{service}': ask for '' (the server) or a model's name"
            ))),
            status => Ok(Response::new(response(status))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (incoming, HealthCheckRequest { service }) = Incoming::split(request);
        self.authorize(&incoming, &service)?;
        let watcher = HealthService {
            state: self.state.clone(),
        };
        // State: the service, the status last sent, and whether to wait
        // before looking (every time but the first).
        let changes = futures::stream::unfold(
            (watcher, service, None::<ServingStatus>, false),
            |(watcher, service, last, wait)| async move {
                if wait {
                    tokio::time::sleep(WATCH_INTERVAL).await;
                }
                loop {
                    match watcher.status_of(&service).await {
                        Ok(status) if Some(status) == last => {
                            tokio::time::sleep(WATCH_INTERVAL).await;
                        }
                        Ok(status) => {
                            let next = (watcher, service, Some(status), true);
                            return Some((Ok(response(status)), next));
                        }
                        Err(e) => return Some((Err(e), (watcher, service, last, true))),
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(changes)))
    }
}
