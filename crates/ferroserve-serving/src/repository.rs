//! Reads a model repository in Triton's layout,
//! `DIR/<name>/<version>/model.onnx`, with an optional `DIR/<name>/config.toml`
//! (engine, batching knobs, version policy) and `features.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferroserve_backend::{EngineChoice, ModelSource};
use ferroserve_batcher::BatcherConfig;
use ferroserve_core::FeatureSchema;

use crate::error::{Result, ServingError};
use crate::manager::ModelSpec;
use crate::model_config::{ModelServingConfig, VersionPolicy};

/// Name of the ONNX file inside a version folder.
pub const MODEL_FILE: &str = "model.onnx";
/// Name of the per-model configuration file.
pub const CONFIG_FILE: &str = "config.toml";
/// Name of the feature schema file (beside a model file, or in a model folder).
pub const SCHEMA_FILE: &str = "features.json";

/// Serving defaults applied to every model unless its config overrides them.
#[derive(Debug, Clone)]
pub struct ServingDefaults {
    /// Engine used when a model does not ask for one.
    pub engine: EngineChoice,
    /// Intra-op threads per engine session.
    pub intra_op_threads: usize,
    /// Batching knobs.
    pub batching: BatcherConfig,
}

/// Lists the model versions of a Triton-layout repository to serve.
pub fn scan(dir: &Path, defaults: &ServingDefaults) -> Result<Vec<ModelSpec>> {
    let mut specs = Vec::new();
    for model_dir in sorted_dirs(dir)? {
        let name = file_name(&model_dir)?;
        let config = read_config(&model_dir)?;
        let protection = config.protection();
        protection.validate().map_err(|e| {
            ServingError::Repository(format!("model '{name}': config.toml: {}", e.message))
        })?;
        let batching = defaults
            .batching
            .with_overrides(&config.batching)
            .map_err(|e| {
                ServingError::Repository(format!(
                    "{}: [batching] {}",
                    model_dir.join(CONFIG_FILE).display(),
                    e.message
                ))
            })?;
        config.cache.validate().map_err(|e| {
            ServingError::Repository(format!(
                "{}: [cache] {}",
                model_dir.join(CONFIG_FILE).display(),
                e.message
            ))
        })?;
        let schema = read_schema(&model_dir.join(SCHEMA_FILE))?;
        let mut versions: Vec<(u64, PathBuf)> = Vec::new();
        for version_dir in sorted_dirs(&model_dir)? {
            let label = file_name(&version_dir)?;
            let Ok(number) = label.parse::<u64>() else {
                continue;
            };
            let file = version_dir.join(MODEL_FILE);
            if !file.is_file() {
                return Err(ServingError::Repository(format!(
                    "{} has no {MODEL_FILE}",
                    version_dir.display()
                )));
            }
            versions.push((number, file));
        }
        if versions.is_empty() {
            return Err(ServingError::Repository(format!(
                "{} has no version folder (expected {}/1/{MODEL_FILE})",
                model_dir.display(),
                model_dir.display()
            )));
        }
        versions.sort_by_key(|(n, _)| *n);
        let chosen: Vec<(u64, PathBuf)> = match &config.version_policy {
            VersionPolicy::Serving => versions.split_off(versions.len().saturating_sub(1)),
            VersionPolicy::Latest(n) => versions.split_off(versions.len().saturating_sub(*n)),
            VersionPolicy::All => versions,
            VersionPolicy::Specific(wanted) => {
                for w in wanted {
                    if !versions.iter().any(|(n, _)| i64::try_from(*n) == Ok(*w)) {
                        return Err(ServingError::Repository(format!(
                            "model '{name}': version_policy names version {w}, which is not in {}",
                            model_dir.display()
                        )));
                    }
                }
                versions
                    .into_iter()
                    .filter(|(n, _)| i64::try_from(*n).is_ok_and(|n| wanted.contains(&n)))
                    .collect()
            }
        };
        for (number, file) in chosen {
            let version_schema = read_schema(&file.with_file_name(SCHEMA_FILE))?;
            specs.push(ModelSpec {
                name: name.clone(),
                version: number.to_string(),
                source: ModelSource::File(file),
                engine: config.engine.unwrap_or(defaults.engine),
                intra_op_threads: config.intra_op_threads.unwrap_or(defaults.intra_op_threads),
                batching: batching.clone(),
                schema: version_schema.or_else(|| schema.clone()),
                request_timeout: None,
                cache: config.cache,
                protection: protection.clone(),
            });
        }
    }
    Ok(specs)
}

/// A model given as `NAME=PATH`: version 1, server defaults, and the
/// `features.json` beside the file when there is one.
pub fn single_file(name: &str, path: &Path, defaults: &ServingDefaults) -> Result<ModelSpec> {
    if name.is_empty() || name.contains('/') {
        return Err(ServingError::Repository(format!(
            "invalid model name {name:?}"
        )));
    }
    if !path.is_file() {
        return Err(ServingError::Repository(format!(
            "model file {} does not exist",
            path.display()
        )));
    }
    Ok(ModelSpec {
        name: name.to_string(),
        version: "1".to_string(),
        source: ModelSource::File(path.to_path_buf()),
        engine: defaults.engine,
        intra_op_threads: defaults.intra_op_threads,
        batching: defaults.batching.clone(),
        schema: read_schema(&path.with_file_name(SCHEMA_FILE))?,
        request_timeout: None,
        cache: Default::default(),
        protection: Default::default(),
    })
}

/// Reads a feature schema file if it exists.
pub fn read_schema(path: &Path) -> Result<Option<Arc<FeatureSchema>>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ServingError::repository_read(path, e))?;
    FeatureSchema::from_json(&text)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| ServingError::Repository(format!("{}: {}", path.display(), e.message)))
}

fn read_config(model_dir: &Path) -> Result<ModelServingConfig> {
    let path = model_dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(ModelServingConfig::default());
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| ServingError::repository_read(&path, e))?;
    ModelServingConfig::from_repository_toml(&text, &path)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| ServingError::repository_read(dir, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            ServingError::Repository(format!("{} is not a valid UTF-8 name", path.display()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ServingDefaults {
        ServingDefaults {
            engine: EngineChoice::Auto,
            intra_op_threads: 1,
            batching: BatcherConfig::default(),
        }
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(path, b"onnx").expect("write");
    }

    #[test]
    fn latest_version_by_default_and_config_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        touch(&dir.path().join("a/1/model.onnx"));
        touch(&dir.path().join("a/10/model.onnx"));
        touch(&dir.path().join("a/2/model.onnx"));
        touch(&dir.path().join("b/3/model.onnx"));
        std::fs::write(
            dir.path().join("b/config.toml"),
            "engine = \"tract\"\nversion_policy = { all = true }\n[batching]\nmax_batch_size = 4\n[cache]\nenabled = true\nttl_s = 60\n",
        )
        .expect("write");
        let specs = scan(dir.path(), &defaults()).expect("valid repository");
        let found: Vec<(String, String)> = specs
            .iter()
            .map(|s| (s.name.clone(), s.version.clone()))
            .collect();
        assert_eq!(
            found,
            vec![("a".into(), "10".into()), ("b".into(), "3".into())]
        );
        assert_eq!(specs[1].engine, EngineChoice::Tract);
        assert_eq!(specs[1].batching.max_batch_size, 4);
        assert_eq!(specs[1].cache.ttl_s, Some(60));
        assert_eq!(specs[0].cache, Default::default());
        assert_eq!(
            specs[1].batching.max_queue_size,
            BatcherConfig::default().max_queue_size
        );
    }

    #[test]
    fn layout_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/1")).expect("mkdir");
        let err = scan(dir.path(), &defaults()).unwrap_err().to_string();
        assert!(err.contains("has no model.onnx"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        touch(&dir.path().join("a/1/model.onnx"));
        std::fs::write(
            dir.path().join("a/config.toml"),
            "[batching]\nmax_batch_sise = 4\n",
        )
        .expect("write");
        let err = scan(dir.path(), &defaults()).unwrap_err().to_string();
        assert!(err.contains("max_batch_sise"), "{err}");

        std::fs::write(
            dir.path().join("a/config.toml"),
            "version_policy = { specific = [7] }\n",
        )
        .expect("write");
        let err = scan(dir.path(), &defaults()).unwrap_err().to_string();
        assert!(err.contains("names version 7"), "{err}");

        for (policy, why) in [
            ("{ latest = 0 }", "latest = 0 selects no version"),
            ("{ all = false }", "all = false selects no version"),
            ("{ specific = [] }", "specific = [] selects no version"),
        ] {
            std::fs::write(
                dir.path().join("a/config.toml"),
                format!("version_policy = {policy}\n"),
            )
            .expect("write");
            let err = scan(dir.path(), &defaults()).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("nothing to serve"),
                "{err}"
            );
        }
    }
}
