//! `ferroserve serve`: builds the runtime, finds the engines, decides which
//! models to serve, and runs the HTTP server until SIGTERM/SIGINT.

use std::sync::Arc;

use anyhow::Context;
use ferroserve_backend::Engines;
use ferroserve_server::{AppState, ServerConfig};
use ferroserve_serving::repository::{self, ServingDefaults};
use ferroserve_serving::{ModelManager, ModelSpec};

use crate::cli::ServeArgs;
use crate::config::ServeConfig;

/// Runs the server.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::load(&args)?;
    crate::logging::init(&config.log_format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.http_threads())
        .thread_name("ferroserve-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let engines = Engines::discover(config.ort_library.as_deref());
    tracing::info!(onnxruntime = %engines.ort_status(), "engines");
    let specs = model_specs(&config)?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let address = listener.local_addr().context("listener has no address")?;
    let server_config = ServerConfig {
        http: address,
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout(),
        drain_timeout: std::time::Duration::from_secs(config.drain_timeout_s),
    };
    let manager = Arc::new(ModelManager::new(Arc::new(engines)));
    let state = Arc::new(AppState::new(
        manager,
        server_config,
        ferroserve_server::telemetry::prometheus(),
    ));
    let names: Vec<String> = specs
        .iter()
        .map(|s| format!("{}/{}", s.name, s.version))
        .collect();
    tracing::info!(%address, models = ?names, "ferroserve listening");
    // Printed for scripts and tests that start the server on port 0.
    println!("ferroserve listening on http://{address}");
    ferroserve_server::spawn_model_loading(state.clone(), specs);
    ferroserve_server::serve(listener, state, ferroserve_server::shutdown::signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("ferroserve stopped");
    Ok(())
}

/// The models to serve: `--model` files and the repository, or the bundled
/// example when neither is given (unless `--no-example`).
fn model_specs(config: &ServeConfig) -> anyhow::Result<Vec<ModelSpec>> {
    let defaults = ServingDefaults {
        engine: config.engine,
        intra_op_threads: config.intra_op_threads,
        batching: config.batching.clone(),
    };
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
    if specs.is_empty() && !config.no_example {
        specs.push(crate::example::iris(&defaults)?);
    }
    if specs.is_empty() {
        tracing::warn!("no models configured (--no-example and no --model or --model-repository)");
    }
    Ok(specs)
}
