//! Secrets inside a serving config: the monitoring webhook's header values
//! and the credentials in its URL (user info, path and query, as in
//! Slack-style secret URLs). They are kept in the stored config, so alerts
//! can be delivered, but every read and every audit snapshot shows
//! [`REDACTED`] instead, and a client that sends the redacted form back
//! (GET, modify, PUT) keeps the stored value.

use serde_json::{Map, Value};

/// What a secret reads as.
pub const REDACTED: &str = "***";

/// `config` with the webhook's secrets replaced by [`REDACTED`]; any other
/// JSON value comes back unchanged.
pub fn redact_serving_config(config: &Value) -> Value {
    let mut config = config.clone();
    if let Some(webhook) = webhook_mut(&mut config) {
        if let Some(Value::String(url)) = webhook.get_mut("url") {
            *url = redacted_url(url);
        }
        if let Some(Value::Object(headers)) = webhook.get_mut("headers") {
            for value in headers.values_mut() {
                *value = Value::String(REDACTED.to_owned());
            }
        }
    }
    config
}

/// Puts the secrets of `stored` back where `config` holds their redacted
/// form: a header whose value is [`REDACTED`] takes the stored header of
/// that name, and a URL equal to the stored URL redacted takes the stored
/// URL. A redacted header with nothing stored is an error naming it.
pub fn restore_serving_config_secrets(
    config: &mut Value,
    stored: Option<&Value>,
) -> Result<(), String> {
    let stored_webhook = stored.and_then(|s| s.get("monitoring")?.get("webhook"));
    let Some(webhook) = webhook_mut(config) else {
        return Ok(());
    };
    if let (Some(Value::String(url)), Some(stored_url)) = (
        webhook.get_mut("url"),
        stored_webhook.and_then(|w| w.get("url")?.as_str()),
    ) {
        if url.contains(REDACTED) && *url == redacted_url(stored_url) {
            *url = stored_url.to_owned();
        }
    }
    let stored_headers = stored_webhook.and_then(|w| w.get("headers")?.as_object());
    if let Some(Value::Object(headers)) = webhook.get_mut("headers") {
        for (name, value) in headers.iter_mut() {
            if value.as_str() != Some(REDACTED) {
                continue;
            }
            let kept = stored_headers.and_then(|stored| {
                stored
                    .iter()
                    .find(|(stored_name, _)| stored_name.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            });
            *value = kept.ok_or_else(|| {
                format!(
                    "monitoring.webhook.headers.{name} is \"{REDACTED}\" (a hidden value) but no \
                     value of it is stored; send the real value"
                )
            })?;
        }
    }
    Ok(())
}

/// The URL with its user info, path, query and fragment replaced by
/// [`REDACTED`] when it has any; scheme, host and port stay.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.contains('@') || !(tail.is_empty() || tail == "/") {
        format!("{scheme}://{host}/{REDACTED}")
    } else {
        url.to_owned()
    }
}

/// A connection URL (database, Redis) for logs and errors: the password of
/// its user info and the values of password-like query parameters
/// (`password`, `pass`, `pwd`, `secret`, `token`, `sslpassword`) shown as
/// [`REDACTED`]; the rest stays, so the message still says where.
pub fn redacted_credentials(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                format!("{user}:{REDACTED}")
            } else {
                user.to_owned()
            };
            format!("{}{hidden}{}", &base[..scheme + 3], &base[at..])
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret_parameter(key) => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_parameter(key: &str) -> bool {
    ["password", "pass", "pwd", "secret", "token", "sslpassword"]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k))
}

fn webhook_mut(config: &mut Value) -> Option<&mut Map<String, Value>> {
    config
        .get_mut("monitoring")?
        .get_mut("webhook")?
        .as_object_mut()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> Value {
        json!({"serve": "production", "monitoring": {"webhook": {
            "url": "https://bot:pw@hooks.example.com:8443/services/T0/s3cr3t?k=v",
            "headers": {"Authorization": "Bearer s3cr3t", "X-Team": "search"},
            "max_attempts": 3
        }}})
    }

    #[test]
    fn connection_urls_lose_their_passwords_only() {
        assert_eq!(
            redacted_credentials("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redacted_credentials("postgres://u@h/db?password=s3cr3t&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
        assert_eq!(
            redacted_credentials("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redacted_credentials("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(
            redacted_credentials("redis://host:6379"),
            "redis://host:6379"
        );
    }

    #[test]
    fn redaction_hides_url_credentials_and_header_values() {
        let redacted = redact_serving_config(&config());
        let text = redacted.to_string();
        assert!(!text.contains("s3cr3t") && !text.contains("pw@"), "{text}");
        let webhook = &redacted["monitoring"]["webhook"];
        assert_eq!(webhook["url"], "https://hooks.example.com:8443/***");
        assert_eq!(
            webhook["headers"],
            json!({"Authorization": "***", "X-Team": "***"})
        );
        assert_eq!(webhook["max_attempts"], 3);
        assert_eq!(redacted["serve"], "production");
        assert_eq!(redacted_url("http://h:9/"), "http://h:9/");
        assert_eq!(redacted_url("http://h"), "http://h");
        assert_eq!(redacted_url("not a url"), REDACTED);
        let other = json!({"stage": "Production"});
        assert_eq!(redact_serving_config(&other), other);
    }

    #[test]
    fn a_redacted_config_sent_back_keeps_the_stored_secrets() {
        let stored = config();
        let mut sent = redact_serving_config(&stored);
        sent["monitoring"]["webhook"]["max_attempts"] = json!(5);
        sent["monitoring"]["webhook"]["headers"]["X-Team"] = json!("ads");
        restore_serving_config_secrets(&mut sent, Some(&stored)).unwrap();
        let webhook = &sent["monitoring"]["webhook"];
        assert_eq!(webhook["url"], stored["monitoring"]["webhook"]["url"]);
        assert_eq!(webhook["headers"]["Authorization"], "Bearer s3cr3t");
        assert_eq!(webhook["headers"]["X-Team"], "ads");
        assert_eq!(webhook["max_attempts"], 5);
    }

    #[test]
    fn a_redacted_header_with_nothing_stored_is_refused() {
        let mut sent = redact_serving_config(&config());
        let error = restore_serving_config_secrets(&mut sent, None).unwrap_err();
        assert!(
            error.contains("monitoring.webhook.headers.Authorization"),
            "{error}"
        );
        let mut plain = json!({"serve": "production"});
        restore_serving_config_secrets(&mut plain, None).unwrap();
    }
}
