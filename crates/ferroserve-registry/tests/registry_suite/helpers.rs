//! Fixtures shared by the registry tests.

use std::collections::BTreeMap;

use ferroserve_core::{DataType, Dim, EngineChoice, ModelSignature, TensorSpec};
use ferroserve_registry::{AuditEvent, AuditFilter, Lineage, NewVersion, Registry, VersionMeta};

pub(crate) const ACTOR: &str = "alice";

pub(crate) fn digest(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub(crate) fn new_version(n: u8) -> NewVersion {
    NewVersion {
        artifact_digest: digest(n),
        artifact_size: 1234,
        format: "onnx".into(),
        engine_hint: Some(EngineChoice::Tract),
        signature: Some(ModelSignature {
            inputs: vec![TensorSpec::new(
                "x",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(4)],
            )],
            outputs: Vec::new(),
        }),
        meta: VersionMeta {
            params: BTreeMap::from([("max_depth".to_string(), "4".to_string())]),
            metrics: BTreeMap::from([("accuracy".to_string(), 0.97)]),
            lineage: Lineage {
                data_uri: Some("s3://data/iris.csv".into()),
                data_sha256: Some(digest(0xdd)),
                code_commit: Some("abc123".into()),
                run_id: Some("run-1".into()),
                parent_version: None,
            },
            model_card: Some("# Iris\nA forest.".into()),
            ..VersionMeta::default()
        },
    }
}

pub(crate) async fn model_with_ready_versions(reg: &Registry, name: &str, n: i64) {
    reg.create_model(name, "test model", BTreeMap::new(), ACTOR)
        .await
        .expect("create model");
    for i in 1..=n {
        let v = reg
            .create_version(name, new_version(i as u8), ACTOR)
            .await
            .expect("create version");
        reg.mark_version_ready(name, v.version, ACTOR)
            .await
            .expect("mark ready");
    }
}

/// How many audit events the registry holds.
pub(crate) async fn event_count(reg: &Registry) -> usize {
    let all = AuditFilter {
        limit: Some(10_000),
        ..AuditFilter::default()
    };
    reg.audit_events(&all).await.expect("audit events").len()
}

/// Every audit event of `model`, oldest first.
pub(crate) async fn model_events(reg: &Registry, model: &str) -> Vec<AuditEvent> {
    let filter = AuditFilter {
        model: Some(model.into()),
        limit: Some(10_000),
        ..AuditFilter::default()
    };
    reg.audit_events(&filter).await.expect("audit events")
}

pub(crate) async fn last_event(reg: &Registry, model: &str) -> AuditEvent {
    model_events(reg, model)
        .await
        .pop()
        .expect("at least one event")
}
