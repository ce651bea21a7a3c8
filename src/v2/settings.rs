//! How to reach a v2 service: credentials and where they came from, TLS,
//! the session cache. Plain data, built with or without the `v2` feature,
//! so that [`ServerOptions`](crate::ServerOptions) and the configuration
//! always carry them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A password, token or session cookie: compared and cloned like a string,
/// but never shown. `Debug` prints `Secret(…)`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for sending it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s)
    }
}

/// Where a credential came from, for `spalloc config` and for messages
/// (never the credential itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// Set in code.
    Code,
    /// An environment variable.
    Environment(&'static str),
    /// A configuration file.
    Config(PathBuf),
    /// The `user[:password]@` of the service URL.
    Url,
    /// A token file.
    TokenFile(PathBuf),
    /// Asked for on the terminal.
    Prompt,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Code => f.write_str("set by the program"),
            CredentialSource::Environment(var) => write!(f, "environment variable {var}"),
            CredentialSource::Config(path) => write!(f, "config file {}", path.display()),
            CredentialSource::Url => f.write_str("the service URL"),
            CredentialSource::TokenFile(path) => write!(f, "token file {}", path.display()),
            CredentialSource::Prompt => f.write_str("asked on the terminal"),
        }
    }
}

/// Asks for the password of `user` at `service` (a URL without
/// credentials), for example on a terminal without echo; `None` if there is
/// no way to ask. It is called only when a login is needed (no valid
/// session is cached), at most once per process for a service and user.
#[derive(Clone)]
pub struct PasswordPrompt(pub Arc<PromptFn>);

/// The function a [`PasswordPrompt`] holds: given the user and the service
/// URL, the password or `None`.
pub type PromptFn = dyn Fn(&str, &str) -> Option<Secret> + Send + Sync + std::panic::RefUnwindSafe;

impl fmt::Debug for PasswordPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordPrompt")
    }
}

impl PartialEq for PasswordPrompt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The settings that only a v2 service uses: who to log in as and how.
///
/// The credentials are tried in this order: a bearer token
/// ([`token`](Self::token), else the [`token_file`](Self::token_file)),
/// then the user name and password (asking through
/// [`prompt`](Self::prompt) if no password is given and no session is
/// cached). [`ServerOptions::from_config`](crate::ServerOptions::from_config)
/// fills them from the configuration, over which the environment
/// (`OIDC_BEARER_TOKEN`, `SPALLOC_USER`, `SPALLOC_PASSWORD`) wins; a
/// `user[:password]@` in the service URL comes last.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct V2Settings {
    /// The login name. Defaults to `None`.
    pub user: Option<String>,
    /// Where [`user`](Self::user) came from.
    pub user_source: Option<CredentialSource>,
    /// The password. Defaults to `None`.
    pub password: Option<Secret>,
    /// Where [`password`](Self::password) came from.
    pub password_source: Option<CredentialSource>,
    /// A bearer (OpenID Connect) token, sent instead of logging in.
    /// Defaults to `None`.
    pub token: Option<Secret>,
    /// Where [`token`](Self::token) came from.
    pub token_source: Option<CredentialSource>,
    /// A file holding a bearer token; refused unless only its owner may
    /// read it. Defaults to `None`.
    pub token_file: Option<PathBuf>,
    /// A PEM file of certificate authorities to trust besides the usual
    /// public ones (a site's private CA). Defaults to `None`.
    pub ca_file: Option<PathBuf>,
    /// Allow a password or token to go over plain `http://` to a host that
    /// is not this machine. Defaults to `false`.
    pub allow_plain_http: bool,
    /// The directory where sessions are cached between runs, in files only
    /// the user may read; `None` caches them in this process only.
    /// Defaults to `None`; [`ServerOptions::from_config`](crate::ServerOptions::from_config)
    /// sets the user's cache directory.
    pub session_cache: Option<PathBuf>,
    /// How to ask for a password when one is needed and not given.
    /// Defaults to `None`.
    pub prompt: Option<PasswordPrompt>,
}

impl V2Settings {
    /// Sets the user name and password (from code).
    pub fn login(mut self, user: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.user = Some(user.into());
        self.user_source = Some(CredentialSource::Code);
        self.password = Some(password.into());
        self.password_source = Some(CredentialSource::Code);
        self
    }

    /// Sets the bearer token (from code).
    pub fn token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self.token_source = Some(CredentialSource::Code);
        self
    }

    /// Sets [`ca_file`](Self::ca_file).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Sets [`allow_plain_http`](Self::allow_plain_http).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Sets [`session_cache`](Self::session_cache).
    pub fn session_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.session_cache = dir;
        self
    }

    /// Sets [`prompt`](Self::prompt).
    pub fn prompt(
        mut self,
        prompt: impl Fn(&str, &str) -> Option<Secret>
        + Send
        + Sync
        + std::panic::RefUnwindSafe
        + 'static,
    ) -> Self {
        self.prompt = Some(PasswordPrompt(Arc::new(prompt)));
        self
    }

    /// Applies the environment over these settings: `OIDC_BEARER_TOKEN`,
    /// `SPALLOC_USER` and `SPALLOC_PASSWORD`, when set and not empty.
    pub fn apply_environment(&mut self) {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(t) = var("OIDC_BEARER_TOKEN") {
            self.token = Some(Secret::new(t));
            self.token_source = Some(CredentialSource::Environment("OIDC_BEARER_TOKEN"));
        }
        if let Some(u) = var("SPALLOC_USER") {
            self.user = Some(u);
            self.user_source = Some(CredentialSource::Environment("SPALLOC_USER"));
        }
        if let Some(p) = var("SPALLOC_PASSWORD") {
            self.password = Some(Secret::new(p));
            self.password_source = Some(CredentialSource::Environment("SPALLOC_PASSWORD"));
        }
    }

    /// Which credential will be used and where it came from, as `spalloc
    /// config` shows it: `bearer token from …`, `user alice (from …),
    /// password from …`, and so on. Never the secret.
    pub fn describe_credentials(&self, service: Option<&str>) -> String {
        let url = service.and_then(|s| super::url::Url::parse(s).ok());
        let url_user = url.as_ref().and_then(|u| u.user.as_deref());
        let url_password = url.as_ref().is_some_and(|u| u.password.is_some());
        if let Some(source) = &self.token_source
            && self.token.is_some()
        {
            return format!("bearer token from {source}");
        }
        if let Some(file) = &self.token_file {
            return format!("bearer token from token file {}", file.display());
        }
        let (user, user_source) = match (&self.user, url_user) {
            (Some(u), _) => (
                Some(u.as_str()),
                self.user_source.clone().unwrap_or(CredentialSource::Code),
            ),
            (None, Some(u)) => (Some(u), CredentialSource::Url),
            (None, None) => (None, CredentialSource::Code),
        };
        let Some(user) = user else {
            return "none (set SPALLOC_USER and SPALLOC_PASSWORD, `user` in the configuration, or OIDC_BEARER_TOKEN)".into();
        };
        let password = match (&self.password, url_password) {
            (Some(_), _) => format!(
                "password from {}",
                self.password_source
                    .clone()
                    .unwrap_or(CredentialSource::Code)
            ),
            (None, true) => "password from the service URL".into(),
            (None, false) if self.prompt.is_some() => {
                "password asked on the terminal when no session is cached".into()
            }
            (None, false) => "no password (a cached session only)".into(),
        };
        format!("user {user} (from {user_source}), {password}")
    }
}
