//! `ferroserve serve`: builds the runtime, finds the engines, opens the
//! registry, starts the controller that serves registry and file models,
//! and runs the HTTP and gRPC servers until SIGTERM/SIGINT; traces still
//! buffered are sent before it exits.

use std::sync::Arc;

use anyhow::Context;
use ferroserve_backend::Engines;
use ferroserve_jobs::{JobOptions, JobService};
use ferroserve_monitor::{Monitor, MonitorOptions};
use ferroserve_server::auth::{Auth, JwtVerifier, KeyRing};
use ferroserve_server::grpc::{GrpcListen, GrpcOptions};
use ferroserve_server::shutdown::Shutdown;
use ferroserve_server::tls::TlsSource;
use ferroserve_server::{AppState, ServerConfig};
use ferroserve_serving::cache::ResultCache;
use ferroserve_serving::guard::idempotency::IdempotencyStore;
use ferroserve_serving::guard::rate_limit::RateLimiter;
use ferroserve_serving::lifecycle::{audit_alerts, registry_window_pool, Controller, Lifecycle};
use ferroserve_serving::redis_link::RedisLink;
use ferroserve_serving::repository::{self, ServingDefaults};
use ferroserve_serving::{ModelManager, ModelSpec, Pipeline};

use crate::config::{ServeConfig, ServeFlags};
use crate::otlp::Traces;

/// Runs the server.
pub fn run(flags: &ServeFlags) -> anyhow::Result<()> {
    let config = ServeConfig::load(flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.http_threads())
        .thread_name("ferroserve-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let export = config.traces.export();
    // The exporter's connection lives on the runtime.
    let traces = export
        .as_ref()
        .map(|export| runtime.block_on(async { Traces::start(export) }))
        .transpose()?;
    crate::logging::init_with_traces(config.log_format, &config.log_level, traces.as_ref());
    if let Some(export) = &export {
        tracing::info!(endpoint = %export.endpoint, sample_ratio = export.sample_ratio, "exporting traces over OTLP");
    }
    let result = runtime.block_on(serve(config));
    // After the server stopped, with the runtime still carrying the
    // exporter's connection: the last spans are sent.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    result
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let engines = Arc::new(Engines::discover(config.ort_library.as_deref()));
    tracing::info!(onnxruntime = %engines.ort_status(), "engines");
    let specs = model_specs(&config)?;
    let webhook_allow = config.webhook_allow_list()?;
    let lifecycle = crate::registry::open_and_recover(&config.registry_settings(), engines.clone())
        .await?
        .with_max_input_bytes(config.max_body_bytes)
        .with_webhook_allow(webhook_allow.clone());
    if specs.is_empty() && !config.no_example {
        crate::example::seed_registry(&lifecycle).await?;
    }
    warn_shadowed(&lifecycle, &specs).await;
    let tls = config
        .tls_files()?
        .map(TlsSource::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("cannot serve TLS: {e}"))?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let address = listener.local_addr().context("listener has no address")?;
    let grpc_listener = match config.grpc {
        GrpcListen::Off => None,
        GrpcListen::On(grpc) => Some(
            tokio::net::TcpListener::bind(grpc)
                .await
                .with_context(|| format!("cannot listen for gRPC on {grpc}"))?,
        ),
    };
    let server_config = ServerConfig {
        http: address,
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout(),
        drain_timeout: std::time::Duration::from_secs(config.drain_timeout_s),
        max_artifact_bytes: config.max_artifact_bytes,
        max_job_input_bytes: config.max_job_input_bytes,
        idempotency_request_id: config.idempotency.use_request_id,
        limits: config.http_limits()?,
    };
    if config.enable_fault_injection {
        tracing::warn!("fault injection is enabled: never run this server in production");
    }
    let manager = Arc::new(
        ModelManager::new(engines)
            .with_fault_injection(config.enable_fault_injection)
            .with_max_input_bytes(config.max_body_bytes),
    );
    let registry = lifecycle.registry().clone();
    let lifecycle = Arc::new(lifecycle);
    // On a shared registry, what an interrupted run left is tidied by the leader.
    crate::registry::spawn_recovery_on_leader(lifecycle.clone());
    let mut controller =
        Controller::new(lifecycle, manager.clone(), serving_defaults(&config), specs);
    if let Some(options) = config.monitoring.options() {
        let options = MonitorOptions {
            webhook_allow,
            ..options
        };
        controller = controller.with_monitor(Monitor::start(
            options,
            Some(audit_alerts(registry.clone())),
        ));
    }
    let controller = Arc::new(controller);
    if let (Some(monitor), Some(pool)) = (controller.monitor(), registry_window_pool(&registry)) {
        // Replicas on one registry pool their windows; the leader closes them.
        monitor.pool_windows(pool);
    }
    let redis = config
        .redis_settings()
        .map(RedisLink::start)
        .transpose()
        .context("invalid redis settings")?;
    // One pipeline for every front end and for the jobs.
    let pipeline = Pipeline::for_controller(&controller, server_config.request_timeout)
        .with_cache(Arc::new(
            ResultCache::new(config.cache_config(), redis.clone())
                .context("invalid cache settings")?,
        ))
        .with_rate_limiter(Arc::new(RateLimiter::new(
            config.rate_limit_config(),
            redis.clone(),
        )))
        .with_concurrency_limit(config.max_concurrent_requests);
    let pipeline = Arc::new(pipeline);
    // Job files live in the artifact store, where every replica finds them.
    let job_files = controller.lifecycle().artifacts().named("jobs");
    let lease = std::time::Duration::from_millis(config.job_lease_ms);
    let mut job_options = JobOptions::with_lease(
        config.data_dir.join("jobs"),
        job_files,
        config.max_running_jobs,
        lease,
        lease / 3,
    )?;
    job_options.quotas = config.job_quotas();
    let jobs = JobService::new(job_options, registry.clone(), pipeline.clone());
    let mut state = AppState::new(
        pipeline,
        server_config,
        ferroserve_server::telemetry::prometheus(),
    )
    .with_controller(controller.clone())
    .with_jobs(jobs.clone());
    if let Some(idempotency) = config.idempotency_config() {
        state = state.with_idempotency(Arc::new(IdempotencyStore::new(idempotency, redis)));
    }
    let poll = std::time::Duration::from_millis(config.registry_poll_ms);
    let state = Arc::new(state.with_auth(Arc::new(auth(&config, &registry, poll).await?)));
    if let Some(metrics_address) = config.metrics_http {
        let metrics = tokio::net::TcpListener::bind(metrics_address)
            .await
            .with_context(|| format!("cannot listen for metrics on {metrics_address}"))?;
        tracing::info!(address = %metrics_address, "serving /metrics without credentials");
        ferroserve_server::spawn_metrics_listener(metrics, state.clone());
    }
    let scheme = match &tls {
        Some(tls) => {
            tls.follow(TLS_FILES_POLL);
            "https"
        }
        None => {
            if !address.ip().is_loopback() {
                tracing::warn!(%address, "serving plain HTTP on a non-loopback address: credentials and data cross the network unencrypted; use --tls-cert and --tls-key");
            }
            "http"
        }
    };
    tracing::info!(%address, scheme, "ferroserve listening");
    // Printed for scripts and tests that start the server on port 0.
    println!("ferroserve listening on {scheme}://{address}");
    let shutdown = Shutdown::on_signal();
    let grpc = match grpc_listener {
        Some(grpc_listener) => Some(start_grpc(
            grpc_listener,
            &state,
            &config,
            tls.clone(),
            &shutdown,
        )?),
        None => None,
    };
    let startup = state.clone();
    let rollouts = state.rollouts.clone();
    tokio::spawn(async move {
        controller.start().await;
        startup.mark_started();
        tracing::info!(
            ready = startup.manager().all_ready(),
            "initial model loading finished"
        );
        report_leadership(controller.lifecycle().registry().leadership());
        controller.spawn_follower(poll);
        if let Some(rollouts) = rollouts {
            rollouts.spawn_driver();
        }
    });
    jobs.spawn_housekeeping(
        std::time::Duration::from_secs(config.job_retention_hours.saturating_mul(3600)),
        std::time::Duration::from_secs(3600),
    );
    // Jobs wait for their model to load, so they may start at once; then
    // every heartbeat, jobs whose runner is gone are taken up.
    jobs.spawn_lease_watch();
    let manager = state.manager().clone();
    let http =
        ferroserve_server::serve_http_until_drained(listener, state, tls, shutdown.wait()).await;
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "gRPC server failed"),
            Err(e) => tracing::error!(error = %e, "gRPC server stopped abnormally"),
        }
    }
    // Every front end has drained: the models can go.
    manager.close_all();
    http.context("HTTP server failed")?;
    jobs.shutdown(std::time::Duration::from_secs(config.drain_timeout_s))
        .await;
    tracing::info!("ferroserve stopped");
    Ok(())
}

/// Keeps the `ferroserve_leader` gauge on whether this replica leads.
fn report_leadership(mut leadership: ferroserve_registry::Leadership) {
    tokio::spawn(async move {
        loop {
            let leads = if leadership.is_leader() { 1.0 } else { 0.0 };
            metrics::gauge!(ferroserve_core::telemetry::LEADER).set(leads);
            leadership.changed().await;
        }
    });
}

/// Starts the gRPC server on `listener` with TLS when HTTP has it, and
/// prints its address (for scripts and tests that start on port 0).
fn start_grpc(
    listener: tokio::net::TcpListener,
    state: &Arc<AppState>,
    config: &ServeConfig,
    tls: Option<Arc<TlsSource>>,
    shutdown: &Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let address = listener
        .local_addr()
        .context("gRPC listener has no address")?;
    let mut options = GrpcOptions::for_state(state);
    options.max_message_bytes = config.grpc_max_message_bytes();
    if tls.is_none() && !address.ip().is_loopback() {
        tracing::warn!(%address, "serving plain gRPC on a non-loopback address: credentials and data cross the network unencrypted; use --tls-cert and --tls-key");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%address, scheme, "ferroserve gRPC listening");
    println!("ferroserve gRPC listening on {address}");
    Ok(tokio::spawn(ferroserve_server::grpc::serve(
        listener,
        state.clone(),
        options,
        tls,
        shutdown.wait(),
    )))
}

/// How often the TLS files are checked for changes.
const TLS_FILES_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Who may call: the registry's API keys (with an admin key made on first
/// start), JWTs when an identity provider is configured, and the anonymous
/// role; keys and JWKS are re-read in the background.
async fn auth(
    config: &ServeConfig,
    registry: &ferroserve_registry::Registry,
    poll: std::time::Duration,
) -> anyhow::Result<Auth> {
    crate::credentials::ensure_admin_key(registry, &config.data_dir).await?;
    let keys = KeyRing::load(registry.clone())
        .await
        .context("cannot read the API keys")?;
    keys.follow(poll);
    let mut auth = Auth::new(config.auth.anonymous_role()?).with_keys(keys);
    if let Some(settings) = config.auth.jwt() {
        let jwt = JwtVerifier::load(settings)
            .await
            .map_err(|e| anyhow::anyhow!("invalid JWT settings: {e}"))?;
        jwt.follow();
        auth = auth.with_jwt(jwt);
    }
    match auth.anonymous_role() {
        Some(role) => tracing::info!(%role, "callers without credentials have this role"),
        None => tracing::info!("callers without credentials may use the health probes only"),
    }
    Ok(auth)
}

/// Warns about each model file named like a registry model: the file is
/// served and the registry's versions of that name are not (the model's
/// serving status says so too).
async fn warn_shadowed(lifecycle: &Lifecycle, specs: &[ModelSpec]) {
    let names: std::collections::BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    for name in names {
        if lifecycle.registry().get_model(name).await.is_ok() {
            tracing::warn!(
                model = name,
                "a model file given at start has the name of a registry model: the file is served and the registry's versions of '{name}' are not; rename one of them to serve both"
            );
        }
    }
}

fn serving_defaults(config: &ServeConfig) -> ServingDefaults {
    ServingDefaults {
        engine: config.engine,
        intra_op_threads: config.intra_op_threads,
        batching: config.batcher_config(),
    }
}

/// The models served from files: `--model` and the model repository.
/// Registry models are served beside them (a registry model named like one
/// of these is left to the file).
fn model_specs(config: &ServeConfig) -> anyhow::Result<Vec<ModelSpec>> {
    let defaults = serving_defaults(config);
    let mut specs = Vec::new();
    for (name, path) in &config.models {
        specs.push(repository::single_file(name, path, &defaults)?);
    }
    if let Some(dir) = &config.model_repository {
        specs.extend(repository::scan(dir, &defaults)?);
    }
    let mut seen = std::collections::HashSet::new();
    for spec in &specs {
        if !seen.insert((spec.name.as_str(), spec.version.as_str())) {
            anyhow::bail!(
                "model '{}' version {} is configured twice",
                spec.name,
                spec.version
            );
        }
    }
    Ok(specs)
}
