//! Reading the `--config` TOML file (documented in
//! `examples/ferroserve.toml`): plain settings at the top, the rest grouped
//! in sections (`[batching]`, `[cache]`, ...). Errors give the line and, for
//! a key written in the wrong place, the section it belongs to.

use serde_json::{Map, Value};

use super::ServeConfig;

/// Sections whose keys are free names (`[models]`: name = path), not fields.
const FREE_SECTIONS: &[&str] = &["models"];

/// Parses the text of a config file; the error is a message for the user.
pub(crate) fn parse(text: &str) -> Result<ServeConfig, String> {
    let err = match toml::from_str::<ServeConfig>(text) {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    let Some(span) = err.span() else {
        return Err(tidy(err.message()));
    };
    let (line_number, line) = line_at(text, span.start);
    let place = Place {
        section: section_at(text, span.start),
        key: key_of(line),
    };
    let message = explain(err.message(), &place, &schema()).unwrap_or_else(|| {
        let mut message = tidy(err.message());
        if let Some(section) = &place.section {
            message.push_str(&format!(" (in [{section}])"));
        }
        message
    });
    Err(format!("line {line_number}: {message}"))
}

/// Where the error is: the section header above it and the key on its line.
struct Place {
    section: Option<String>,
    key: Option<String>,
}

/// Every field the file accepts, with its default: the top level, and for
/// each section its own fields.
fn schema() -> Map<String, Value> {
    match serde_json::to_value(ServeConfig::default()) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// Fixed sections: those with fields of their own.
fn sections(schema: &Map<String, Value>) -> impl Iterator<Item = (&String, &Map<String, Value>)> {
    schema.iter().filter_map(|(name, value)| match value {
        Value::Object(fields) if !FREE_SECTIONS.contains(&name.as_str()) => Some((name, fields)),
        _ => None,
    })
}

/// A clearer message for a key in the wrong place or a section written as
/// a single value; `None` when serde's own message says it best.
fn explain(message: &str, place: &Place, schema: &Map<String, Value>) -> Option<String> {
    if let Some(key) = unknown_field(message) {
        let here = match &place.section {
            Some(section) => format!("in [{section}]"),
            None => "at top level".to_owned(),
        };
        let top_level = schema
            .get(key)
            .is_some_and(|v| !v.is_object() || FREE_SECTIONS.contains(&key));
        if top_level && place.section.is_some() {
            return Some(format!(
                "unknown field `{key}` {here}: `{key}` is a top-level setting; \
                 move it above the first [section] header"
            ));
        }
        let homes: Vec<String> = sections(schema)
            .filter(|(_, fields)| fields.contains_key(key))
            .map(|(name, _)| format!("[{name}]"))
            .collect();
        if !homes.is_empty() {
            return Some(format!(
                "unknown field `{key}` {here}; did you mean {} {key}? \
                 (write `{key} = ...` under the {} header; see examples/ferroserve.toml)",
                homes.join(" or "),
                homes[0]
            ));
        }
        return None;
    }
    if message.contains("expected struct") && place.section.is_none() {
        let key = place.key.as_deref()?;
        let fields = match schema.get(key) {
            Some(Value::Object(fields)) => fields,
            _ => return None,
        };
        let example = if fields.contains_key("enabled") {
            format!("[{key}]\nenabled = true")
        } else {
            format!(
                "[{key}]\n{} = ...",
                fields.keys().next().map_or("key", String::as_str)
            )
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        return Some(format!(
            "`{key}` is a section, not a single value; write it as\n{example}\n\
             (its fields: {}; see examples/ferroserve.toml)",
            names.join(", ")
        ));
    }
    None
}

/// The field named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(key, _)| key)
}

/// serde's message without Rust type names ("expected struct
/// CacheSettings" becomes "expected a table of settings").
fn tidy(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected struct ") {
        out.push_str(&rest[..at]);
        out.push_str("expected a table of settings");
        rest = &rest[at + "expected struct ".len()..];
        let name_len = rest
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        rest = &rest[name_len..];
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

/// The 1-based number and the text of the line holding byte `at`.
fn line_at(text: &str, at: usize) -> (usize, &str) {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    (text[..start].matches('\n').count() + 1, &text[start..end])
}

/// The `[section]` header in force at byte `at`, if any.
fn section_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[..start]
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let inner = line.strip_prefix('[')?.split(']').next()?;
            Some(inner.trim_matches(['[', ' ']).to_owned())
        })
        .next_back()
}

/// The key assigned on `line` (`key = value`), unquoted.
fn key_of(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty()).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn error(text: &str) -> String {
        parse(text).expect_err("invalid")
    }

    #[test]
    fn a_section_field_at_top_level_names_its_section() {
        let err = error("http = \"127.0.0.1:1\"\nmax_batch_size = 8\n");
        assert!(err.starts_with("line 2: "), "{err}");
        assert!(
            err.contains("did you mean [batching] max_batch_size"),
            "{err}"
        );
        let err = error("[cache]\nenabled = true\nmax_queue_size = 4\n");
        assert!(err.contains("in [cache]; did you mean [batching]"), "{err}");
    }

    #[test]
    fn a_top_level_field_under_a_section_is_explained() {
        let err = error("[batching]\nmax_batch_size = 8\nlog_level = \"debug\"\n");
        assert!(err.starts_with("line 3: "), "{err}");
        assert!(err.contains("top-level setting"), "{err}");
    }

    #[test]
    fn a_section_given_as_a_value_shows_the_section_form() {
        let err = error("cache = true\n");
        assert!(err.contains("`cache` is a section"), "{err}");
        assert!(err.contains("[cache]\nenabled = true"), "{err}");
        assert!(!err.contains("CacheSettings"), "{err}");
        let err = error("[rate_limit]\nper_client = 5\n");
        assert!(!err.contains("struct"), "{err}");
        assert!(err.contains("expected a table of settings"), "{err}");
    }

    #[test]
    fn typos_keep_the_list_of_known_fields() {
        let err = error("htp = \"x\"\n");
        assert!(err.contains("unknown field `htp`"), "{err}");
        assert!(err.contains("`http`"), "{err}");
        let err = error("[models]\niris = 3\n");
        assert!(err.starts_with("line 2: "), "{err}");
    }

    #[test]
    fn syntax_errors_pass_through() {
        assert!(error("http = \n").contains("line 1"));
    }

    #[test]
    fn tidy_removes_rust_type_names() {
        assert_eq!(
            tidy("invalid type: integer `5`, expected struct Limit"),
            "invalid type: integer `5`, expected a table of settings"
        );
    }

    const EXAMPLE: &str = include_str!("../../../../examples/ferroserve.toml");

    /// Every field of the file and its sections, as `section.field`.
    fn field_names() -> Vec<String> {
        let defaults = serde_json::to_value(ServeConfig::default()).expect("serializable");
        let mut names = Vec::new();
        for (key, value) in defaults.as_object().expect("a table") {
            match value.as_object() {
                Some(fields) if key != "models" => {
                    names.extend(fields.keys().map(|field| format!("{key}.{field}")))
                }
                _ => names.push(key.clone()),
            }
        }
        names
    }

    #[test]
    fn the_example_file_shows_every_field_at_its_default() {
        let example = parse(EXAMPLE).expect("the example parses");
        assert_eq!(
            serde_json::to_value(&example).expect("serializable"),
            serde_json::to_value(ServeConfig::default()).expect("serializable"),
            "the example's values must be the defaults it documents"
        );
        for name in field_names() {
            let field = name.rsplit('.').next().expect("a name");
            let shown = EXAMPLE.lines().any(|line| {
                let line = line.trim_start_matches(['#', ' ']);
                line.starts_with(&format!("{field} =")) || line == format!("[{field}]")
            });
            assert!(shown, "examples/ferroserve.toml does not show `{name}`");
        }
    }

    #[test]
    fn every_commented_out_example_setting_parses() {
        let fields = field_names();
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| {
                let bare = line.trim_start_matches(['#', ' ']);
                let is_setting = fields.iter().any(|name| {
                    let field = name.rsplit('.').next().expect("a name");
                    bare.starts_with(&format!("{field} ="))
                }) || bare.starts_with("iris_file =");
                if is_setting {
                    bare
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = parse(&uncommented).expect("every setting parses");
        assert_eq!(config.http_threads, Some(3));
        assert_eq!(config.max_concurrent_requests, Some(256));
        assert_eq!(
            config.registry_url.as_deref(),
            Some("postgres://ferroserve@localhost/ferroserve")
        );
        assert_eq!(
            config.models.0["iris_file"],
            PathBuf::from("examples/iris/model.onnx")
        );
        let per_client = config.rate_limit.per_client.expect("set");
        assert_eq!((per_client.requests_per_s, per_client.burst), (50.0, 100));
        assert!(config.rate_limit.per_model.is_some());
        assert_eq!(config.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
    }
}
