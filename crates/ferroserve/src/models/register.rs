//! `models register`: turns the flags into a registration request (lineage
//! from `--data`, the feature schema beside the model, card and profile
//! files), then uploads the artifact and registers it.

use std::path::Path;

use anyhow::{bail, Context};
use ferroserve_backend::EngineChoice;
use ferroserve_core::FeatureSchema;
use ferroserve_registry::{Lineage, ModelVersion, VersionMeta};
use ferroserve_serving::lifecycle::RegisterVersion;

use super::args::RegisterArgs;
use super::files::{file_sha256, file_uri, read_json};
use super::store::{Changed, ModelStore};

/// Reads every file the flags name and checks the model file, so that a
/// mistake fails before anything is uploaded. The artifact digest is left
/// empty for [`register`] to fill in.
pub fn request(args: &RegisterArgs) -> anyhow::Result<RegisterVersion> {
    if !args.path.is_file() {
        bail!("model file {} does not exist", args.path.display());
    }
    let schema_path = match &args.schema {
        Some(path) => Some(path.clone()),
        None if args.no_schema => None,
        None => Some(args.path.with_file_name("features.json")).filter(|p| p.is_file()),
    };
    let (data_uri, data_sha256) = match &args.data {
        Some(data) => {
            let (uri, sha256) = data_source(data)?;
            (Some(uri), sha256)
        }
        None => (None, None),
    };
    let model_card = match &args.card {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--card: cannot read {}", path.display()))?,
        ),
        None => None,
    };
    let feature_schema = schema_path
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--schema: cannot read {}", path.display()))?;
            FeatureSchema::from_json(&text).with_context(|| format!("--schema {}", path.display()))
        })
        .transpose()?;
    Ok(RegisterVersion {
        artifact_digest: String::new(),
        description: args.description.clone(),
        engine: args.engine.filter(|e| *e != EngineChoice::Auto),
        meta: VersionMeta {
            feature_schema,
            params: args.params.iter().cloned().collect(),
            metrics: args.metrics.iter().cloned().collect(),
            lineage: Lineage {
                data_uri,
                data_sha256,
                code_commit: args.commit.clone(),
                run_id: args.run_id.clone(),
                parent_version: args.parent_version,
            },
            model_card,
            reference_profile: args
                .profile
                .as_deref()
                .map(|p| read_json(p, "--profile"))
                .transpose()?,
            tags: args.tags.iter().cloned().collect(),
        },
        stage: args.stage,
    })
}

/// Uploads the model file and registers it with `request`.
pub fn register(
    store: &dyn ModelStore,
    args: &RegisterArgs,
    mut request: RegisterVersion,
) -> anyhow::Result<Changed<ModelVersion>> {
    let artifact = store.upload(&args.path)?;
    request.artifact_digest = artifact.sha256;
    store.register(&args.name, &request).with_context(|| {
        format!(
            "cannot register {} as model '{}'",
            args.path.display(),
            args.name
        )
    })
}

/// `data_uri` and `data_sha256` of `--data`: a local file gets its
/// absolute `file://` URI and digest; a folder only its URI; any other
/// URI (`s3://...`) is recorded as given.
fn data_source(data: &str) -> anyhow::Result<(String, Option<String>)> {
    let local = data.strip_prefix("file://").unwrap_or(data);
    let path = Path::new(local);
    if path.exists() {
        let absolute = std::fs::canonicalize(path)
            .with_context(|| format!("--data: cannot resolve {}", path.display()))?;
        let sha256 = if absolute.is_file() {
            Some(file_sha256(&absolute).context("--data")?)
        } else {
            None
        };
        return Ok((file_uri(&absolute), sha256));
    }
    if data.starts_with("file://") || !is_uri(data) {
        bail!("--data {data}: no such file, and not a URI such as s3://bucket/key");
    }
    Ok((data.to_owned(), None))
}

/// Whether `text` starts with a URI scheme and `://`.
fn is_uri(text: &str) -> bool {
    match text.split_once("://") {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_data_gets_a_file_uri_and_a_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("train.csv");
        std::fs::write(&path, "abc").expect("write");
        let (uri, sha256) = data_source(path.to_str().expect("utf-8")).expect("local file");
        let absolute = std::fs::canonicalize(&path).expect("exists");
        assert_eq!(uri, format!("file://{}", absolute.display()));
        assert_eq!(
            sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let (uri, sha256) = data_source(&uri).expect("file URI");
        assert!(uri.starts_with("file:///") && sha256.is_some());
        let (_, sha256) = data_source(dir.path().to_str().expect("utf-8")).expect("folder");
        assert_eq!(sha256, None);
    }

    #[test]
    fn remote_data_is_recorded_as_given() {
        let (uri, sha256) = data_source("s3://bucket/iris.csv").expect("URI");
        assert_eq!((uri.as_str(), sha256), ("s3://bucket/iris.csv", None));
    }

    #[test]
    fn missing_data_is_an_error() {
        for data in ["no/such/file.csv", "file:///no/such/file.csv", "://x"] {
            let err = data_source(data).unwrap_err().to_string();
            assert!(err.contains("no such file"), "{data}: {err}");
        }
    }
}
