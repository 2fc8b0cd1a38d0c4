//! Who may call which gRPC method: every method has the [`Access`] of its
//! HTTP counterpart in the route table (inference like `POST .../infer`,
//! metadata, readiness, configuration and statistics like model metadata,
//! the repository calls like `/v2/repository/...`, liveness and server
//! readiness open), and model-scoped calls also need the principal's model
//! patterns to allow the model. Credentials come from the same metadata
//! keys as HTTP headers (`authorization`, `x-api-key`) and go through the
//! same [`Auth`](crate::auth::Auth).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use ferroserve_core::{Access, InferError, Principal};
use tonic::Status;

use super::errors::status_of;
use crate::auth::{may_access, may_span_all_models, may_use, AuthFailure};
use crate::client::ClientId;
use crate::inference::Requester;
use crate::state::AppState;

/// Every method served, by its full gRPC path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `ServerLive`.
    ServerLive,
    /// `ServerReady`.
    ServerReady,
    /// `ModelReady`.
    ModelReady,
    /// `ServerMetadata`.
    ServerMetadata,
    /// `ModelMetadata`.
    ModelMetadata,
    /// `ModelInfer`.
    ModelInfer,
    /// `ModelStreamInfer` (checked again for each request of the stream).
    ModelStreamInfer,
    /// `ModelConfig`.
    ModelConfig,
    /// `ModelStatistics`.
    ModelStatistics,
    /// `RepositoryIndex`.
    RepositoryIndex,
    /// `RepositoryModelLoad`.
    RepositoryModelLoad,
    /// `RepositoryModelUnload`.
    RepositoryModelUnload,
    /// `grpc.health.v1.Health/Check` and `Watch` of a model (the server's
    /// own health is open).
    ModelHealth,
}

/// Which models a call touches.
#[derive(Debug, Clone, Copy)]
pub enum Models<'a> {
    /// One model, named in the message.
    One(&'a str),
    /// Every model (statistics or the index of all of them).
    All,
    /// None in particular (server metadata).
    NoneInParticular,
}

impl Method {
    /// Every method, for tables and tests.
    pub const ALL: [Method; 13] = [
        Method::ServerLive,
        Method::ServerReady,
        Method::ModelReady,
        Method::ServerMetadata,
        Method::ModelMetadata,
        Method::ModelInfer,
        Method::ModelStreamInfer,
        Method::ModelConfig,
        Method::ModelStatistics,
        Method::RepositoryIndex,
        Method::RepositoryModelLoad,
        Method::RepositoryModelUnload,
        Method::ModelHealth,
    ];

    /// The full method path, as in error messages and logs.
    pub fn path(self) -> &'static str {
        match self {
            Method::ServerLive => "/inference.GRPCInferenceService/ServerLive",
            Method::ServerReady => "/inference.GRPCInferenceService/ServerReady",
            Method::ModelReady => "/inference.GRPCInferenceService/ModelReady",
            Method::ServerMetadata => "/inference.GRPCInferenceService/ServerMetadata",
            Method::ModelMetadata => "/inference.GRPCInferenceService/ModelMetadata",
            Method::ModelInfer => "/inference.GRPCInferenceService/ModelInfer",
            Method::ModelStreamInfer => "/inference.GRPCInferenceService/ModelStreamInfer",
            Method::ModelConfig => "/inference.GRPCInferenceService/ModelConfig",
            Method::ModelStatistics => "/inference.GRPCInferenceService/ModelStatistics",
            Method::RepositoryIndex => "/inference.GRPCInferenceService/RepositoryIndex",
            Method::RepositoryModelLoad => "/inference.GRPCInferenceService/RepositoryModelLoad",
            Method::RepositoryModelUnload => {
                "/inference.GRPCInferenceService/RepositoryModelUnload"
            }
            Method::ModelHealth => "/grpc.health.v1.Health/Check",
        }
    }

    /// What the caller's role must grant: the access of the HTTP route
    /// doing the same.
    pub fn access(self) -> Access {
        match self {
            Method::ServerLive | Method::ServerReady => Access::Open,
            Method::ModelReady
            | Method::ServerMetadata
            | Method::ModelMetadata
            | Method::ModelConfig
            | Method::ModelStatistics
            | Method::ModelHealth => Access::Metadata,
            Method::ModelInfer | Method::ModelStreamInfer => Access::Infer,
            Method::RepositoryIndex => Access::Read,
            Method::RepositoryModelLoad | Method::RepositoryModelUnload => Access::Deploy,
        }
    }
}

/// Every method's path and access, in [`Method::ALL`] order.
pub fn access_table() -> Vec<(&'static str, Access)> {
    Method::ALL.iter().map(|m| (m.path(), m.access())).collect()
}

/// Who is calling, from a request's metadata (as HTTP headers) and peer.
pub(crate) struct Incoming {
    pub(crate) headers: HeaderMap,
    pub(crate) peer: Option<SocketAddr>,
    /// For a stream: its method and the principal authenticated and
    /// granted the method's access when it opened, so each of its
    /// requests only has its model checked.
    opened: Option<(Method, Option<Arc<Principal>>)>,
}

impl Incoming {
    /// The caller of `request` and its message (the metadata is moved,
    /// not copied).
    pub(crate) fn split<T>(request: tonic::Request<T>) -> (Incoming, T) {
        let peer = request.remote_addr();
        let (metadata, _, message) = request.into_parts();
        let incoming = Incoming {
            headers: metadata.into_headers(),
            peer,
            opened: None,
        };
        (incoming, message)
    }

    /// Opens a stream of `method` calls: authenticates the caller and
    /// checks the method's access once, for every request of the stream.
    pub(crate) fn open_stream(&mut self, state: &AppState, method: Method) -> Result<(), Status> {
        let principal = self
            .principal(state, method, Models::NoneInParticular)
            .map_err(|failure| self.refusal(failure, method))?;
        self.opened = Some((method, principal));
        Ok(())
    }

    /// The caller when it may call `method` on `models`: authenticated by
    /// the server's [`Auth`](crate::auth::Auth), its role granting the
    /// method's access, its model patterns allowing the models. Refusals
    /// are counted and logged like HTTP's, and answered `UNAUTHENTICATED`
    /// or `PERMISSION_DENIED`. The request is taken to start now (each
    /// request of a stream on its own).
    pub(crate) fn authorize(
        &self,
        state: &AppState,
        method: Method,
        models: Models<'_>,
    ) -> Result<Requester, Status> {
        let principal = match &self.opened {
            Some((opened, principal)) if *opened == method => principal
                .as_ref()
                .map_or(Ok(()), |principal| may_models(principal, models, method))
                .map(|()| principal.clone()),
            _ => self.principal(state, method, models),
        }
        .map_err(|failure| self.refusal(failure, method))?;
        Ok(Requester {
            client: ClientId::from_principal(principal.as_deref(), self.peer),
            principal,
            start: Instant::now(),
        })
    }

    fn refusal(&self, failure: AuthFailure, method: Method) -> Status {
        status_of(&failure.into_error(self.peer, "gRPC", method.path()))
    }

    fn principal(
        &self,
        state: &AppState,
        method: Method,
        models: Models<'_>,
    ) -> Result<Option<Arc<Principal>>, AuthFailure> {
        // Open methods stay open whatever credentials come with them.
        if method.access() == Access::Open {
            return Ok(None);
        }
        let principal = state.auth.authenticate(&self.headers)?;
        may_access(&principal, method.access(), &route_of(method))?;
        may_models(&principal, models, method)?;
        Ok(Some(principal))
    }
}

/// How a method is named in refusals and the audit of them.
fn route_of(method: Method) -> String {
    format!("gRPC {}", method.path())
}

/// Whether `principal`'s model patterns allow `models`.
fn may_models(
    principal: &Principal,
    models: Models<'_>,
    method: Method,
) -> Result<(), AuthFailure> {
    match models {
        Models::One(model) => may_use(principal, model),
        Models::All => may_span_all_models(principal, &route_of(method)),
        Models::NoneInParticular => Ok(()),
    }
}

/// The model a message names, refused when empty.
pub(crate) fn named_model<'a>(name: &'a str, field: &str) -> Result<&'a str, Status> {
    if name.is_empty() {
        return Err(status_of(&InferError::invalid(format!(
            "field {field} must name a model"
        ))));
    }
    Ok(name)
}
