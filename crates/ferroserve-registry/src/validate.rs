//! Naming rules for models, aliases, tags, audit actions and job ids, and checks of
//! version fields.

use crate::error::{RegistryError, Result};
use crate::types::{NewVersion, VersionMeta};

const MAX_MODEL_NAME: usize = 128;
const MAX_ALIAS: usize = 64;
const MAX_TAG_KEY: usize = 256;
const MAX_TAG_VALUE: usize = 4096;
const MAX_ACTION: usize = 64;
const MAX_JOB_ID: usize = 128;

/// Checks a model name: 1-128 characters of `[A-Za-z0-9_.-]`.
pub fn model_name(name: &str) -> Result<()> {
    check_chars(
        "model name",
        name,
        MAX_MODEL_NAME,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        "A-Z, a-z, 0-9, '_', '.', '-'",
    )
}

/// Checks an API key's name: 1-128 characters of `[A-Za-z0-9_.@-]`.
pub fn key_name(name: &str) -> Result<()> {
    check_chars(
        "API key name",
        name,
        MAX_MODEL_NAME,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'),
        "A-Z, a-z, 0-9, '_', '.', '-', '@'",
    )
}

/// Checks an alias name: 1-64 characters of `[A-Za-z0-9_-]`, starting with a
/// letter, and not `latest` (which names the newest ready version).
pub fn alias_name(alias: &str) -> Result<()> {
    let what = "alias name";
    check_chars(
        what,
        alias,
        MAX_ALIAS,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'),
        "A-Z, a-z, 0-9, '_', '-'",
    )?;
    if !alias.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(RegistryError::invalid_name(
            what,
            alias,
            "it must start with a letter",
        ));
    }
    if alias.eq_ignore_ascii_case("latest") {
        return Err(RegistryError::invalid_name(
            what,
            alias,
            "'latest' is reserved for the newest ready version",
        ));
    }
    Ok(())
}

/// Checks a job id: 1-128 characters of `[A-Za-z0-9_.-]` (a UUID fits), so
/// that it can stand in a URL path unescaped.
pub fn job_id(id: &str) -> Result<()> {
    check_chars(
        "job id",
        id,
        MAX_JOB_ID,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        "A-Z, a-z, 0-9, '_', '.', '-'",
    )
}

/// Checks the action name of an audit event: 1-64 characters of `[a-z_]`.
pub fn audit_action(action: &str) -> Result<()> {
    check_chars(
        "audit action",
        action,
        MAX_ACTION,
        |c| matches!(c, 'a'..='z' | '_'),
        "a-z, '_'",
    )
}

/// Checks that `name` has 1 to `max` bytes, each `allowed` (described by
/// `allowed_text` in the message).
fn check_chars(
    what: &'static str,
    name: &str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_text: &str,
) -> Result<()> {
    if name.is_empty() || name.len() > max {
        return Err(RegistryError::invalid_name(
            what,
            name,
            format!("it must have 1 to {max} characters"),
        ));
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Err(RegistryError::invalid_name(
            what,
            name,
            format!("character {c:?} is not allowed (use {allowed_text})"),
        ));
    }
    Ok(())
}

/// Checks a tag key and value.
pub fn tag(key: &str, value: &str) -> Result<()> {
    if key.trim().is_empty() || key.len() > MAX_TAG_KEY {
        return Err(RegistryError::invalid_name(
            "tag key",
            key,
            format!("it must have 1 to {MAX_TAG_KEY} characters and not be blank"),
        ));
    }
    if value.len() > MAX_TAG_VALUE {
        return Err(RegistryError::Invalid(format!(
            "value of tag '{key}' has {} bytes; at most {MAX_TAG_VALUE} are allowed",
            value.len()
        )));
    }
    Ok(())
}

/// Checks that `s` is a sha256 digest in lowercase hex.
pub fn sha256_hex(field: &str, s: &str) -> Result<()> {
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{field} '{s}' is not a sha256 digest (64 lowercase hex characters)"
        )))
    }
}

/// Checks the fields of a version to register.
pub(crate) fn new_version(v: &NewVersion) -> Result<()> {
    sha256_hex("artifact_digest", &v.artifact_digest)?;
    if v.artifact_size < 0 {
        return Err(RegistryError::Invalid(format!(
            "artifact_size {} is negative",
            v.artifact_size
        )));
    }
    if v.format.trim().is_empty() {
        return Err(RegistryError::Invalid(
            "format is empty (expected e.g. \"onnx\")".into(),
        ));
    }
    version_meta(&v.meta)
}

/// Checks the descriptive fields of a version.
pub(crate) fn version_meta(meta: &VersionMeta) -> Result<()> {
    if let Some((k, m)) = meta.metrics.iter().find(|(_, m)| !m.is_finite()) {
        return Err(RegistryError::Invalid(format!(
            "metric '{k}' is {m}; metrics must be finite numbers"
        )));
    }
    if let Some(d) = &meta.lineage.data_sha256 {
        sha256_hex("lineage.data_sha256", d)?;
    }
    if let Some(schema) = &meta.feature_schema {
        schema
            .check()
            .map_err(|e| RegistryError::Invalid(e.message))?;
    }
    for (k, val) in &meta.tags {
        tag(k, val)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert!(model_name("iris-v2.onnx_1").is_ok());
        assert!(model_name("").is_err());
        assert!(model_name(&"a".repeat(129)).is_err());
        assert!(model_name(&"a".repeat(128)).is_ok());
        let e = model_name("ir is").expect_err("space is not allowed");
        assert!(e.to_string().contains("' '"), "{e}");
        assert!(model_name("a/b").is_err());
    }

    #[test]
    fn alias_names() {
        assert!(alias_name("champion").is_ok());
        assert!(alias_name("c-2_b").is_ok());
        assert!(alias_name("2nd").is_err());
        assert!(alias_name("x y").is_err());
        assert!(alias_name("Latest").is_err());
        assert!(alias_name("a.b").is_err());
        assert!(alias_name("").is_err());
    }

    #[test]
    fn audit_actions() {
        assert!(audit_action("serving_swapped").is_ok());
        assert!(audit_action(&"a".repeat(64)).is_ok());
        assert!(audit_action(&"a".repeat(65)).is_err());
        assert!(audit_action("").is_err());
        let e = audit_action("Serving").expect_err("upper case");
        assert!(e.to_string().contains("'S'"), "{e}");
        assert!(audit_action("serving-failed").is_err());
    }

    #[test]
    fn job_ids() {
        assert!(job_id("0b6d3f4e-2c1a-4f7e-9a59-5d1f0c9e8b21").is_ok());
        assert!(job_id(&"a".repeat(128)).is_ok());
        assert!(job_id(&"a".repeat(129)).is_err());
        assert!(job_id("").is_err());
        let e = job_id("a/b").expect_err("slash is not allowed");
        assert_eq!(
            e.to_string(),
            "job id 'a/b' is invalid: character '/' is not allowed \
             (use A-Z, a-z, 0-9, '_', '.', '-')"
        );
    }

    #[test]
    fn digests() {
        assert!(sha256_hex("d", &"a1".repeat(32)).is_ok());
        assert!(sha256_hex("d", &"A1".repeat(32)).is_err());
        assert!(sha256_hex("d", "abc").is_err());
    }
}
