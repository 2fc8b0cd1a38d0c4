//! Who may do what: roles, the access each route needs, the principal a
//! request acts as, and model-name patterns that limit a principal to some
//! models. Authentication (keys, JWTs) lives in the server; this is the
//! vocabulary every layer shares, so a principal can travel with a call.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A principal's role. Each role grants a set of [`Access`] kinds; see
/// [`Role::grants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads metadata, the registry, the audit log, drift and every job.
    Reader,
    /// Runs inference over every protocol, reads model metadata, sends
    /// feedback, submits jobs and reads its own.
    Predictor,
    /// A reader that also changes the registry and serving: uploads,
    /// registrations, stages, aliases, tags, cards, profiles, serving
    /// configs, repository load/unload, fault injection.
    Deployer,
    /// Everything, including API keys and deletes.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Predictor, Role::Deployer, Role::Admin];

    /// The role's name (`reader`, `predictor`, `deployer`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Predictor => "predictor",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may use a route that needs `access`.
    pub fn grants(self, access: Access) -> bool {
        use Access::*;
        matches!(
            (self, access),
            (_, Open)
                | (Role::Admin, _)
                | (_, Metadata)
                | (Role::Reader | Role::Deployer, Read | Jobs)
                | (Role::Predictor, Infer | Jobs)
                | (Role::Deployer, Deploy)
        )
    }

    /// Whether this role reads every principal's jobs (else only its own).
    pub fn reads_all_jobs(self) -> bool {
        !matches!(self, Role::Predictor)
    }

    /// The weakest roles that grant `access`, for a 403's message.
    pub fn needed_for(access: Access) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.grants(access)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `reader`, `predictor`, `deployer`,
/// `admin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role '{}': expected reader, predictor, deployer or admin",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// What a route needs of its caller. Every route declares one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, with or without credentials (health probes, the OpenAPI
    /// document).
    Open,
    /// Model and server metadata and readiness.
    Metadata,
    /// Inference, feedback, submitting and cancelling one's own jobs.
    Infer,
    /// Reading the registry, serving state, audit log, drift and metrics.
    Read,
    /// Reading jobs: every job for readers, one's own for predictors.
    Jobs,
    /// Changing the registry and serving.
    Deploy,
    /// API keys and deletes.
    Admin,
}

impl Access {
    /// Every access, most open first.
    pub const ALL: [Access; 7] = [
        Access::Open,
        Access::Metadata,
        Access::Infer,
        Access::Read,
        Access::Jobs,
        Access::Deploy,
        Access::Admin,
    ];

    /// The access's name, as the OpenAPI document's `x-ferroserve-access`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Metadata => "metadata",
            Access::Infer => "infer",
            Access::Read => "read",
            Access::Jobs => "jobs",
            Access::Deploy => "deploy",
            Access::Admin => "admin",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model-name pattern: a name, or a name with `*` wildcards
/// (`fraud-*` matches `fraud-eu` and `fraud-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelPattern(String);

/// Longest model pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 128;

impl ModelPattern {
    /// The pattern, checked: 1 to [`MAX_PATTERN_BYTES`] bytes of letters,
    /// digits, `_`, `-`, `.` and `*`.
    pub fn new(text: &str) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text.len() <= MAX_PATTERN_BYTES
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*'));
        if ok {
            Ok(ModelPattern(text.to_owned()))
        } else {
            Err(format!(
                "model pattern '{text}' must be 1-{MAX_PATTERN_BYTES} characters of letters, \
                 digits, '_', '-', '.' and '*'"
            ))
        }
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `model` matches (each `*` matches any run of characters).
    pub fn matches(&self, model: &str) -> bool {
        glob_match(self.0.as_bytes(), model.as_bytes())
    }
}

impl TryFrom<String> for ModelPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ModelPattern::new(&text)
    }
}

impl From<ModelPattern> for String {
    fn from(p: ModelPattern) -> String {
        p.0
    }
}

impl fmt::Display for ModelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of bytes;
/// linear in practice (the usual greedy matcher with one backtrack point).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: the server's anonymous role applies.
    Anonymous,
    /// An API key, by its id.
    ApiKey {
        /// The key's id (not its token).
        id: String,
    },
    /// A JSON Web Token from an identity provider.
    Jwt,
}

/// Who a request acts as: a name for the audit log and rate limits, a
/// role, and the models it may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: Arc<str>,
    role: Role,
    models: Arc<[ModelPattern]>,
    credential: Credential,
}

impl Principal {
    /// A principal named `name` with `role`, limited to models matching
    /// one of `models` (every model when empty).
    pub fn new(
        name: impl Into<Arc<str>>,
        role: Role,
        models: Vec<ModelPattern>,
        credential: Credential,
    ) -> Self {
        Principal {
            name: name.into(),
            role,
            models: models.into(),
            credential,
        }
    }

    /// A caller without credentials, given the server's anonymous role.
    pub fn anonymous(role: Role) -> Self {
        Principal::new("anonymous", role, Vec::new(), Credential::Anonymous)
    }

    /// The name the audit log records (a key's name, a JWT's subject, or
    /// `anonymous`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as shared text.
    pub fn shared_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The principal's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// How it authenticated.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Whether it authenticated at all.
    pub fn is_anonymous(&self) -> bool {
        self.credential == Credential::Anonymous
    }

    /// The model patterns it is limited to (empty: every model).
    pub fn model_patterns(&self) -> &[ModelPattern] {
        &self.models
    }

    /// Whether it may act on every model.
    pub fn all_models(&self) -> bool {
        self.models.is_empty()
    }

    /// Whether it may act on `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.all_models() || self.models.iter().any(|p| p.matches(model))
    }

    /// Whether it may use a route needing `access`.
    pub fn may(&self, access: Access) -> bool {
        self.role.grants(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_readme_says() {
        use Access::*;
        let table = [
            (Role::Reader, [true, true, false, true, true, false, false]),
            (
                Role::Predictor,
                [true, true, true, false, true, false, false],
            ),
            (Role::Deployer, [true, true, false, true, true, true, false]),
            (Role::Admin, [true; 7]),
        ];
        for (role, expected) in table {
            let got: Vec<bool> = [Open, Metadata, Infer, Read, Jobs, Deploy, Admin]
                .into_iter()
                .map(|a| role.grants(a))
                .collect();
            assert_eq!(got, expected, "{role}");
        }
        assert!(!Role::Predictor.reads_all_jobs());
        assert_eq!(Role::needed_for(Deploy), vec![Role::Deployer, Role::Admin]);
    }

    #[test]
    fn roles_parse_case_insensitively_and_name_the_choices() {
        assert_eq!("Deployer".parse::<Role>().unwrap(), Role::Deployer);
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert!(
            err.contains("reader, predictor, deployer or admin"),
            "{err}"
        );
    }

    #[test]
    fn patterns_match_with_wildcards() {
        let p = ModelPattern::new("fraud-*").unwrap();
        assert!(p.matches("fraud-eu") && p.matches("fraud-"));
        assert!(!p.matches("fraud") && !p.matches("xfraud-eu"));
        let q = ModelPattern::new("*-v*-prod").unwrap();
        assert!(q.matches("iris-v2-prod") && !q.matches("iris-v2-dev"));
        assert!(ModelPattern::new("iris").unwrap().matches("iris"));
        assert!(!ModelPattern::new("iris").unwrap().matches("iris2"));
        assert!(ModelPattern::new("a/b").is_err() && ModelPattern::new("").is_err());
    }

    #[test]
    fn principals_are_limited_to_their_patterns() {
        let p = Principal::new(
            "ci",
            Role::Deployer,
            vec![ModelPattern::new("fraud-*").unwrap()],
            Credential::Jwt,
        );
        assert!(p.may_use("fraud-eu") && !p.may_use("iris"));
        assert!(Principal::anonymous(Role::Predictor).may_use("iris"));
        assert!(Principal::anonymous(Role::Predictor).is_anonymous());
    }
}
