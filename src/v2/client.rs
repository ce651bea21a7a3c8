//! [`RestClient`]: a typed, blocking client of the v2 service, one method
//! per endpoint of PROTOCOL_V2.md §3.0 rows 1–17, logged in and staying
//! logged in.

use std::path::Path;
use std::time::Duration;

use log::{debug, warn};
use serde_json::{Map, Value, json};

use super::http::{self, Request, Response, Transport};
use super::session::{self, Session};
use super::settings::{CredentialSource, Secret, V2Settings};
use super::tunnel::{ProxyClient, Target};
use super::types::{self, BoardLocation, IssueBoard, JobAllocation, JobInfo, Machine, ServiceInfo};
use super::url::{Url, encode};
use crate::error::{Error, InvalidArgument, ProtocolError, Result};
use crate::interrupt::InterruptHandle;
use crate::types::{CreateJobOptions, JobRequest};

/// How much longer than the server's own wait (30 s) a long-poll may take
/// before the server counts as stalled.
const LONG_POLL_SLACK: Duration = Duration::from_secs(30);
/// The server's longest wait for a long-poll.
pub(crate) const SERVER_WAIT: Duration = Duration::from_secs(30);
/// The most of an error body kept in a message.
const MESSAGE_CHARS: usize = 500;
/// The most jobs `list_job_ids` reads, across pages.
const MAX_JOBS: usize = 100_000;
/// The largest page of the jobs list the server gives.
const PAGE: u32 = 200;
/// The versions of the Java server whose REST API this client speaks.
const MIN_VERSION: [u64; 3] = [6, 0, 0];
const MAX_VERSION_EXCLUSIVE: [u64; 3] = [8, 0, 0];

/// How the client proves who it is.
#[derive(Debug, Clone)]
enum Auth {
    /// A bearer token on every request.
    Bearer(Secret, CredentialSource),
    /// Form login as `user`, sessions kept by cookie.
    Password { user: String },
    /// Nothing to log in with.
    Anonymous,
}

/// What a request that may need a login came back with.
enum Sent {
    Answer(Response),
    /// The service does not know us (any more); with `csrf`, it refused a
    /// state change, which may only mean the CSRF token is stale.
    NotLoggedIn {
        csrf: bool,
    },
}

/// A logged-in connection to a v2 spalloc service (the Java server's REST
/// API), with one typed method per endpoint.
///
/// [`connect`](Self::connect) takes the application root (for example
/// `https://spinnaker.cs.man.ac.uk/spalloc/`) and [`V2Settings`], logs in
/// (or reuses a cached session, or sends a bearer token) and reads the
/// service description. An expired session is renewed once per request
/// when the password is at hand; a refused login is never retried.
///
/// Status codes become the crate's errors: a refused request (400, 404,
/// 410, 403 for a missing role, 500 with the server's message) is
/// [`Error::Server`] with the server's text; a gateway or service that is
/// unavailable (other 5xx) is [`Error::Http`], a transport error;
/// credentials that do not work are [`Error::Login`].
///
/// # Example
/// ```no_run
/// use spalloc::v2::{RestClient, V2Settings};
///
/// let settings = V2Settings::default().login("alice", "s3cret");
/// let mut client = RestClient::connect("https://spalloc.example.org/spalloc/", &settings, None, None)?;
/// for machine in client.machines()? {
///     println!("{}: {}x{} triads", machine.name, machine.width, machine.height);
/// }
/// # Ok::<(), spalloc::Error>(())
/// ```
pub struct RestClient {
    root: Url,
    srv: Url,
    transport: Transport,
    /// More connections to the same server, for long listings
    /// ([`send_all`](Self::send_all)); opened when first needed.
    siblings: Vec<Transport>,
    auth: Auth,
    key: String,
    session: Option<Session>,
    settings: V2Settings,
    /// The password in the URL, if any.
    url_password: Option<Secret>,
    info: ServiceInfo,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("root", &self.root.to_string())
            .field("user", &self.user())
            .field("version", &self.info.version)
            .finish_non_exhaustive()
    }
}

/// A JSON request body, or none.
enum Body {
    None,
    Json(Value),
    Text(&'static str),
    Form(String),
}

/// The most connections a long listing is shared out over.
const CONNECTIONS: usize = 2;
/// The fewest requests worth a connection of their own.
const SHARE: usize = 64;

impl RestClient {
    /// Connects to the service at `url` (its application root), logs in and
    /// reads the service description; `timeout` limits connecting and each
    /// request (`None`: no limit), and `interrupt` can cut any of them
    /// short.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that cannot be used or a
    /// password that would go over plain HTTP to another host;
    /// [`Error::Login`] if the credentials are refused or missing;
    /// [`Error::Config`] for an unusable `ca_file` or token file;
    /// transport errors.
    pub fn connect(
        url: &str,
        settings: &V2Settings,
        timeout: Option<Duration>,
        interrupt: Option<&InterruptHandle>,
    ) -> Result<RestClient> {
        let given = Url::parse(url).map_err(InvalidArgument::ServiceUrl)?;
        if given.password.is_some() {
            warn!(
                "the service URL holds a password, which other users may see (in process \
                 lists, shell history or the configuration): set SPALLOC_PASSWORD instead"
            );
        }
        let root = given.as_directory();
        let srv = root.join("srv/spalloc/");
        let auth = match bearer_token(settings)? {
            Some((token, source)) => Auth::Bearer(token, source),
            None => match settings.user.clone().or_else(|| given.user.clone()) {
                Some(user) => Auth::Password { user },
                None => Auth::Anonymous,
            },
        };
        let tls = match root.secure {
            true => Some(http::tls_config(settings.ca_file.as_deref())?),
            false => None,
        };
        let transport = Transport::new(&root, tls, interrupt)?;
        let key = session::key(
            &root.to_string(),
            match &auth {
                Auth::Password { user } => user,
                _ => "",
            },
        );
        let mut client = RestClient {
            root,
            srv,
            transport,
            siblings: Vec::new(),
            auth,
            key,
            session: None,
            settings: settings.clone(),
            url_password: given.password.map(Secret::new),
            info: ServiceInfo {
                version: String::new(),
                jobs_ref: None,
                machines_ref: None,
            },
            timeout,
        };
        client.start()?;
        Ok(client)
    }

    /// The service's application root, without credentials.
    pub fn url(&self) -> String {
        self.root.to_string()
    }

    /// The user logged in as, when logged in by name.
    pub fn user(&self) -> Option<&str> {
        match &self.auth {
            Auth::Password { user } => Some(user),
            _ => None,
        }
    }

    /// The service description read at connection.
    pub fn service(&self) -> &ServiceInfo {
        &self.info
    }

    /// The limit on each request (`None`: none).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets the limit on each request.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Sets the largest response body accepted. Defaults to 16 MiB.
    pub fn set_max_body(&mut self, bytes: usize) {
        self.transport.max_body = bytes;
    }

    /// Checks the server's version against those whose REST API this
    /// client speaks (6.x and 7.x).
    ///
    /// # Errors
    /// [`Error::IncompatibleVersion`].
    pub fn check_version(&self) -> Result<()> {
        match crate::version::parse_version(&self.info.version) {
            Some(v) if v >= MIN_VERSION && v < MAX_VERSION_EXCLUSIVE => Ok(()),
            _ => Err(Error::IncompatibleVersion(self.info.version.clone())),
        }
    }

    /// Logs in, or finds a session that still works.
    fn start(&mut self) -> Result<()> {
        match self.auth.clone() {
            Auth::Bearer(_, source) => {
                self.check_plain_http()?;
                match self.fetch_root()? {
                    true => Ok(()),
                    false => Err(Error::Login(format!(
                        "the service at {} refused the bearer token (from {source})",
                        self.root
                    ))),
                }
            }
            Auth::Password { .. } => {
                // Not even a cached session's cookie goes over plain HTTP
                // to another host unless allowed.
                self.check_plain_http()?;
                let record = session::get(&self.key);
                let cached = record.session.or_else(|| {
                    let dir = self.settings.session_cache.as_deref()?;
                    session::load(dir, &self.key)
                });
                if let Some(s) = cached {
                    self.session = Some(s);
                    if self.fetch_root()? {
                        debug!("reusing a session with {}", self.root);
                        self.remember_session();
                        return Ok(());
                    }
                    debug!("the cached session has expired");
                    self.session = None;
                }
                self.login()
            }
            Auth::Anonymous => Err(Error::Login(format!(
                "no credentials for {}: set SPALLOC_USER and SPALLOC_PASSWORD (or `user` \
                 and `password` in the configuration), or OIDC_BEARER_TOKEN",
                self.root
            ))),
        }
    }

    /// Refuses to send a secret over plain HTTP to another host unless
    /// allowed.
    fn check_plain_http(&self) -> Result<()> {
        if self.root.secure || self.root.is_loopback() || self.settings.allow_plain_http {
            return Ok(());
        }
        Err(InvalidArgument::PlainHttp {
            host: self.root.host.clone(),
        }
        .into())
    }

    /// Keeps the session for this process and, if caching, for later runs.
    fn remember_session(&self) {
        let session = self.session.clone();
        session::update(&self.key, |r| r.session = session.clone());
        if let (Some(dir), Some(s)) = (&self.settings.session_cache, &session) {
            session::save(dir, &self.key, Some(s));
        }
    }

    /// `GET {srv}`: `false` if not logged in; otherwise reads the service
    /// description and the CSRF token.
    fn fetch_root(&mut self) -> Result<bool> {
        let url = self.srv.clone();
        let response = match self.send_once("GET", &url, &Body::None, "application/json")? {
            Sent::NotLoggedIn { .. } => return Ok(false),
            Sent::Answer(r) => check(r, "GET the service root", &[200])?,
        };
        let v = json_of(&response)?;
        let d = types::Doc::new("GET the service root", &v)?;
        let version = match v.get("version") {
            Some(Value::Object(o)) => {
                let part = |k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
                format!(
                    "{}.{}.{}",
                    part("major-version"),
                    part("minor-version"),
                    part("revision")
                )
            }
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        self.info = ServiceInfo {
            version,
            jobs_ref: d.opt_str("jobs-ref")?,
            machines_ref: d.opt_str("machines-ref")?,
        };
        if let (Some(header), Some(token), Some(s)) = (
            d.opt_str("csrf-header")?,
            d.opt_str("csrf-token")?,
            self.session.as_mut(),
        ) {
            // A header name the server picks goes out as a header: it must
            // be a token.
            if !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !token.bytes().any(|b| b.is_ascii_control())
            {
                s.csrf = Some((header, Secret::new(token)));
            }
        }
        Ok(true)
    }

    /// Logs in by the form (PROTOCOL_V2.md §2.2): exactly one attempt.
    fn login(&mut self) -> Result<()> {
        let Auth::Password { user } = self.auth.clone() else {
            return Err(Error::Login(format!(
                "the service at {} no longer accepts our credentials",
                self.root
            )));
        };
        let record = session::get(&self.key);
        self.check_plain_http()?;
        let password = match record
            .password
            .or_else(|| self.settings.password.clone())
            .or_else(|| self.url_password.clone())
        {
            Some(p) => p,
            None => match &self.settings.prompt {
                Some(prompt) => (prompt.0)(&user, &self.root.to_string()).ok_or_else(|| {
                    Error::Login(format!("no password given for {user} at {}", self.root))
                })?,
                None => {
                    return Err(Error::Login(format!(
                        "no password for {user} at {} (and no session cached): set \
                         SPALLOC_PASSWORD, or `password` in the configuration",
                        self.root
                    )));
                }
            },
        };
        if let Some((reason, refused)) = &record.refused
            && *refused == session::fingerprint(password.expose())
        {
            return Err(Error::Login(reason.clone()));
        }
        debug!("logging in to {} as {user}", self.root);
        // 1. The login page: a temporary session and its CSRF token.
        let page = self.root.join("system/login.html");
        let response = self.transport.send(
            &Request {
                method: "GET",
                target: &page.path,
                headers: vec![("Accept", "text/html".into())],
                body: Vec::new(),
            },
            self.timeout,
        )?;
        if response.status != 200 {
            return Err(unexpected(&response, "GET the login page"));
        }
        let temp = session_cookie(&response).ok_or_else(|| {
            Error::from(ProtocolError {
                command: Some("GET the login page".into()),
                field: Some("Set-Cookie".into()),
                expected: "a JSESSIONID session cookie".into(),
                got: None,
            })
        })?;
        let csrf = form_csrf(&response.body).ok_or_else(|| {
            Error::from(ProtocolError {
                command: Some("GET the login page".into()),
                field: Some("_csrf".into()),
                expected: "the login form's CSRF token".into(),
                got: None,
            })
        })?;
        // 2. The form.
        let form = format!(
            "_csrf={}&username={}&password={}&submit=submit",
            encode(&csrf),
            encode(&user),
            encode(password.expose())
        );
        let target = self.root.join("system/perform_login");
        let response = self.transport.send(
            &Request {
                method: "POST",
                target: &target.path,
                headers: vec![
                    (
                        "Accept",
                        "application/json, text/html;q=0.9, */*;q=0.8".into(),
                    ),
                    ("Content-Type", "application/x-www-form-urlencoded".into()),
                    ("Cookie", format!("JSESSIONID={}", temp.expose())),
                ],
                body: form.into_bytes(),
            },
            self.timeout,
        )?;
        let new_cookie = session_cookie(&response).filter(|c| *c != temp);
        let failed_redirect = response.status == 302
            && response
                .header("location")
                .is_some_and(|l| l.contains("error") || l.contains("login.html"));
        match (response.status, new_cookie) {
            (302, Some(cookie)) if !failed_redirect => {
                self.session = Some(Session { cookie, csrf: None });
            }
            (401, _) | (302, _) if response.status == 401 || failed_redirect => {
                let said = login_failure_message(&response);
                let reason = format!(
                    "the service at {} refused the login for user {user} ({said}); it is not \
                     tried again automatically, because the service may lock an account after \
                     repeated failures: check the user name and password and run again",
                    self.root
                );
                let print = session::fingerprint(password.expose());
                session::update(&self.key, |r| {
                    r.refused = Some((reason.clone(), print));
                    r.session = None;
                    r.password = None;
                });
                if let Some(dir) = &self.settings.session_cache {
                    session::save(dir, &self.key, None);
                }
                return Err(Error::Login(reason));
            }
            (302, None) => {
                return Err(ProtocolError {
                    command: Some("POST the login form".into()),
                    field: Some("Set-Cookie".into()),
                    expected: "a new JSESSIONID session cookie".into(),
                    got: None,
                }
                .into());
            }
            _ => return Err(unexpected(&response, "POST the login form")),
        }
        // 3. The service root, for the session's CSRF token.
        if !self.fetch_root()? {
            self.session = None;
            return Err(Error::Login(format!(
                "logged in to {} as {user}, but the service does not accept the session",
                self.root
            )));
        }
        session::update(&self.key, |r| {
            r.password = Some(password.clone());
            r.refused = None;
        });
        self.remember_session();
        Ok(())
    }

    /// Sends one request with the credentials; no renewal.
    fn send_once(
        &mut self,
        method: &'static str,
        url: &Url,
        body: &Body,
        accept: &str,
    ) -> Result<Sent> {
        self.send_once_with(method, url, body, accept, self.timeout)
    }

    fn send_once_with(
        &mut self,
        method: &'static str,
        url: &Url,
        body: &Body,
        accept: &str,
        timeout: Option<Duration>,
    ) -> Result<Sent> {
        let mut headers = self.credential_headers(method, accept);
        let bytes = match body {
            Body::None => Vec::new(),
            Body::Json(v) => {
                headers.push(("Content-Type", "application/json".into()));
                v.to_string().into_bytes()
            }
            Body::Text(t) => {
                headers.push(("Content-Type", "text/plain; charset=UTF-8".into()));
                t.as_bytes().to_vec()
            }
            Body::Form(f) => {
                headers.push(("Content-Type", "application/x-www-form-urlencoded".into()));
                f.clone().into_bytes()
            }
        };
        let response = self.transport.send(
            &Request {
                method,
                target: &url.path,
                headers,
                body: bytes,
            },
            timeout,
        )?;
        Ok(self.sent(method, url, response))
    }

    /// `Accept`, and the credentials: the bearer token, or the session
    /// cookie (and, on a request that changes something, the CSRF token).
    fn credential_headers(&self, method: &str, accept: &str) -> Vec<(&'static str, String)> {
        let mut headers: Vec<(&'static str, String)> = vec![("Accept", accept.to_owned())];
        match &self.auth {
            Auth::Bearer(token, _) => {
                headers.push(("Authorization", format!("Bearer {}", token.expose())));
            }
            _ => {
                if let Some(s) = &self.session {
                    headers.push(("Cookie", format!("JSESSIONID={}", s.cookie.expose())));
                    if method != "GET"
                        && let Some((h, t)) = &s.csrf
                    {
                        headers.push((csrf_header_name(h), t.expose().to_owned()));
                    }
                }
            }
        }
        headers
    }

    /// Whether `response` is an answer, or says the service does not know
    /// us (any more).
    fn sent(&self, method: &str, url: &Url, response: Response) -> Sent {
        debug!(
            "{method} {} -> {}",
            path_for_log(&url.path),
            response.status
        );
        let to_login = response.status == 302
            && response
                .header("location")
                .is_some_and(|l| l.contains("login"));
        let stale_csrf = response.status == 403
            && method != "GET"
            && self.session.is_some()
            && !matches!(self.auth, Auth::Bearer(..));
        if response.status == 401 || to_login || stale_csrf {
            return Sent::NotLoggedIn {
                csrf: response.status == 403,
            };
        }
        Sent::Answer(response)
    }

    /// Sends `GET` requests pipelined, a long list shared out over up to
    /// [`CONNECTIONS`] connections at once, and returns the responses in
    /// order.
    fn send_all(&mut self, requests: &[Request<'_>]) -> Result<Vec<Response>> {
        let ways = (requests.len() / SHARE).clamp(1, CONNECTIONS);
        if ways == 1 {
            return self.transport.send_all(requests, self.timeout);
        }
        while self.siblings.len() < ways - 1 {
            self.siblings.push(self.transport.sibling());
        }
        let timeout = self.timeout;
        let mut shares = requests.chunks(requests.len().div_ceil(ways));
        let first = shares.next().unwrap_or_default();
        std::thread::scope(|scope| {
            let others: Vec<_> = self
                .siblings
                .iter_mut()
                .zip(shares)
                .map(|(t, share)| scope.spawn(move || t.send_all(share, timeout)))
                .collect();
            let mut responses = self.transport.send_all(first, timeout);
            for other in others {
                let answered = other.join().unwrap_or_else(|_| {
                    Err(Error::Io(std::io::Error::other("a request thread failed")))
                });
                responses = match (responses, answered) {
                    (Ok(mut all), Ok(more)) => {
                        all.extend(more);
                        Ok(all)
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
            }
            responses
        })
    }

    /// `GET`s every URL, pipelined ([`send_all`](Self::send_all)), renewing the session
    /// once if it has expired; each answer is checked as
    /// [`get_json`](Self::get_json) checks one.
    fn get_json_all(
        &mut self,
        urls: &[Url],
        what: &str,
        ok: &[u16],
    ) -> Result<Vec<Result<(u16, Value)>>> {
        let mut answers = Vec::with_capacity(urls.len());
        let mut renewed = false;
        while answers.len() < urls.len() {
            let rest = &urls[answers.len()..];
            let headers = self.credential_headers("GET", "application/json");
            let requests: Vec<Request<'_>> = rest
                .iter()
                .map(|url| Request {
                    method: "GET",
                    target: &url.path,
                    headers: headers.clone(),
                    body: Vec::new(),
                })
                .collect();
            let responses = self.send_all(&requests)?;
            drop(requests);
            for (url, response) in rest.iter().zip(responses) {
                match self.sent("GET", url, response) {
                    Sent::Answer(r) => answers.push(json_answer(r, what, ok)),
                    Sent::NotLoggedIn { .. } if !renewed => {
                        renewed = true;
                        self.renew(false)?;
                        break;
                    }
                    Sent::NotLoggedIn { .. } => {
                        return Err(Error::Login(format!(
                            "the service at {} does not accept our session even after logging in again",
                            self.root
                        )));
                    }
                }
            }
        }
        Ok(answers)
    }

    /// Sends a request, renewing the session once if it has expired.
    fn call(
        &mut self,
        method: &'static str,
        url: &Url,
        body: Body,
        accept: &str,
        timeout: Option<Duration>,
    ) -> Result<Response> {
        let csrf = match self.send_once_with(method, url, &body, accept, timeout)? {
            Sent::Answer(r) => return Ok(r),
            Sent::NotLoggedIn { csrf } => csrf,
        };
        self.renew(csrf)?;
        match self.send_once_with(method, url, &body, accept, timeout)? {
            Sent::Answer(r) => Ok(r),
            Sent::NotLoggedIn { csrf: true } => Err(Error::Server(
                "the service refused the request (403: computer says no)".into(),
            )),
            Sent::NotLoggedIn { csrf: false } => Err(Error::Login(format!(
                "the service at {} does not accept our session even after logging in again",
                self.root
            ))),
        }
    }

    /// Renews an expired (or, with `csrf`, CSRF-stale) session: another
    /// client's newer session from this process, or (for `csrf`) the same
    /// session with a fresh CSRF token, or a new login.
    fn renew(&mut self, csrf: bool) -> Result<()> {
        if let Auth::Bearer(_, source) = &self.auth {
            return Err(Error::Login(format!(
                "the service at {} refused the bearer token (from {source}); it may have expired",
                self.root
            )));
        }
        let shared = session::get(&self.key).session;
        if shared.is_some() && shared != self.session {
            self.session = shared;
            if self.fetch_root()? {
                return Ok(());
            }
        }
        if csrf && self.session.is_some() && self.fetch_root()? {
            self.remember_session();
            return Ok(());
        }
        self.session = None;
        session::update(&self.key, |r| r.session = None);
        self.login()
    }

    fn get_json(&mut self, url: &Url, what: &str, ok: &[u16]) -> Result<(u16, Value)> {
        let r = self.call("GET", url, Body::None, "application/json", self.timeout)?;
        json_answer(r, what, ok)
    }

    fn job_url(&self, id: u64) -> Url {
        self.srv.join(&format!("jobs/{id}"))
    }

    fn machine_url(&self, name: &str) -> Url {
        self.srv.join(&format!("machines/{}", encode(name)))
    }

    /// `GET machines`: every machine in service.
    ///
    /// # Errors
    /// Transport errors, [`Error::Server`], or [`Error::Protocol`] naming
    /// the field of a malformed document.
    pub fn machines(&mut self) -> Result<Vec<Machine>> {
        let url = self.srv.join("machines");
        let (_, v) = self.get_json(&url, "GET machines", &[200])?;
        let d = types::Doc::new("GET machines", &v)?;
        d.array("machines")?
            .iter()
            .map(|m| types::machine("GET machines", m))
            .collect()
    }

    /// `GET machines/{name}`: one machine, or `None` if there is no such
    /// machine.
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn machine(&mut self, name: &str) -> Result<Option<Machine>> {
        let url = self.machine_url(name);
        match self.get_json(&url, "GET machines/NAME", &[200]) {
            Ok((_, v)) => Ok(Some(types::machine("GET machines/NAME", &v)?)),
            Err(Error::Server(m)) if m.eq_ignore_ascii_case("no such machine") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET machines/{name}?wait=true`: the machine once it changes, or
    /// after the server's wait (30 s); `Ok(None)` if `limit` runs out
    /// first (the connection is then closed).
    ///
    /// # Errors
    /// As for [`machine`](Self::machine); [`Error::Server`] if the machine
    /// is unknown.
    pub fn wait_for_machine(
        &mut self,
        name: &str,
        limit: Option<Duration>,
    ) -> Result<Option<Machine>> {
        let mut url = self.machine_url(name);
        url.path.push_str("?wait=true");
        match self.long_poll(&url, limit)? {
            Some(v) => Ok(Some(types::machine("GET machines/NAME", &v)?)),
            None => Ok(None),
        }
    }

    /// A `?wait=true` GET, cut short (as `None`) at `limit`.
    fn long_poll(&mut self, url: &Url, limit: Option<Duration>) -> Result<Option<Value>> {
        let stalled = SERVER_WAIT + LONG_POLL_SLACK + self.timeout.unwrap_or(Duration::ZERO);
        let (timeout, cut) = match limit {
            Some(l) if l < stalled => (Some(l), true),
            _ => (Some(stalled), false),
        };
        match self.call("GET", url, Body::None, "application/json", timeout) {
            Ok(r) => {
                let r = check(r, "GET (long-poll)", &[200])?;
                Ok(Some(json_of(&r)?))
            }
            Err(Error::Timeout(_)) if cut => {
                self.transport.disconnect();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn where_is(&mut self, url: Url, what: &str) -> Result<Option<BoardLocation>> {
        match self.get_json(&url, what, &[200, 204]) {
            Ok((204, _)) => Ok(None),
            Ok((_, v)) => Ok(Some(types::location(what, &v)?)),
            Err(Error::Server(m))
                if m.eq_ignore_ascii_case("failed to locate board")
                    || m.eq_ignore_ascii_case("no such machine") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET machines/{name}/logical-board`: the board at a logical
    /// coordinate, or `None` if there is none (or no such machine).
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn logical_board(
        &mut self,
        machine: &str,
        x: u32,
        y: u32,
        z: u32,
    ) -> Result<Option<BoardLocation>> {
        let mut url = self.machine_url(machine);
        url.path
            .push_str(&format!("/logical-board?x={x}&y={y}&z={z}"));
        self.where_is(url, "GET machines/NAME/logical-board")
    }

    /// `GET machines/{name}/physical-board`: the board at a physical
    /// position, or `None`.
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn physical_board(
        &mut self,
        machine: &str,
        cabinet: u32,
        frame: u32,
        board: u32,
    ) -> Result<Option<BoardLocation>> {
        let mut url = self.machine_url(machine);
        url.path.push_str(&format!(
            "/physical-board?cabinet={cabinet}&frame={frame}&board={board}"
        ));
        self.where_is(url, "GET machines/NAME/physical-board")
    }

    /// `GET machines/{name}/chip`: the board holding a chip (machine
    /// coordinates), or `None`.
    ///
    /// The Java server answers this one wrongly (PROTOCOL_V2.md,
    /// correction E2): [`Client::where_is`](crate::Client::where_is) works
    /// the board out from the chip and asks for it by logical coordinate
    /// instead.
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn chip(&mut self, machine: &str, x: u32, y: u32) -> Result<Option<BoardLocation>> {
        let mut url = self.machine_url(machine);
        url.path.push_str(&format!("/chip?x={x}&y={y}"));
        self.where_is(url, "GET machines/NAME/chip")
    }

    /// `GET machines/{name}/board-ip`: the board with an IP address, or
    /// `None`.
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn board_ip(&mut self, machine: &str, address: &str) -> Result<Option<BoardLocation>> {
        let mut url = self.machine_url(machine);
        url.path
            .push_str(&format!("/board-ip?address={}", encode(address)));
        self.where_is(url, "GET machines/NAME/board-ip")
    }

    /// `GET jobs`, every page: the ids of the jobs (with `deleted`, the
    /// destroyed ones the server still remembers too), newest first.
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn job_ids(&mut self, deleted: bool) -> Result<Vec<u64>> {
        let mut url = self
            .srv
            .join(&format!("jobs?deleted={deleted}&limit={PAGE}"));
        let mut ids = Vec::new();
        loop {
            let (_, v) = self.get_json(&url, "GET jobs", &[200])?;
            let page = types::job_page("GET jobs", &v)?;
            let empty = page.ids.is_empty();
            ids.extend(page.ids);
            match page.next {
                Some(next) if !empty && ids.len() < MAX_JOBS => {
                    url = self.root.follow(&self.srv, &next).ok_or_else(|| {
                        Error::from(ProtocolError {
                            command: Some("GET jobs".into()),
                            field: Some("next".into()),
                            expected: "a URL of this service".into(),
                            got: Some(format!("{next:?}")),
                        })
                    })?;
                }
                _ => break,
            }
        }
        ids.dedup();
        Ok(ids)
    }

    /// `GET jobs?wait=true`: returns once a job on the first page changes,
    /// or after the server's wait, or (`false`) when `limit` runs out.
    /// Jobs created meanwhile do not end the wait (the service has no
    /// event for them).
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn wait_for_jobs(&mut self, limit: Option<Duration>) -> Result<bool> {
        let url = self.srv.join(&format!("jobs?wait=true&limit={PAGE}"));
        Ok(self.long_poll(&url, limit)?.is_some())
    }

    /// `POST jobs`: creates a job and returns its id. The request is
    /// checked first ([`check_request`](super::check_request)): the
    /// v1-only options are refused, and a keepalive is required.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]; [`Error::Server`] with the server's
    /// reason if it refuses; transport errors.
    pub fn create_job(&mut self, request: &JobRequest, options: &CreateJobOptions) -> Result<u64> {
        let body = create_body(request, options)?;
        let url = self.srv.join("jobs");
        let r = self.call(
            "POST",
            &url,
            Body::Json(body),
            "application/json",
            self.timeout,
        )?;
        let r = check(r, "POST jobs", &[200, 201])?;
        let from_location = r.header("location").and_then(types::id_of_job_url);
        let from_body = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v.get("job-id").and_then(Value::as_u64));
        from_location.or(from_body).ok_or_else(|| {
            ProtocolError {
                command: Some("POST jobs".into()),
                field: Some("Location".into()),
                expected: "the new job's URL".into(),
                got: r.header("location").map(|l| format!("{l:?}")),
            }
            .into()
        })
    }

    /// Runs `f` with an interruption given `grace` to let a request in
    /// flight finish.
    pub(crate) fn with_interrupt_grace<T>(
        &mut self,
        grace: Duration,
        f: impl FnOnce(&mut RestClient) -> Result<T>,
    ) -> Result<T> {
        self.transport.set_grace(Some(grace));
        let result = f(self);
        self.transport.set_grace(None);
        result
    }

    /// `GET jobs/{id}`: the job, or `None` if the server does not know it
    /// (or will not show it to this user).
    ///
    /// # Errors
    /// As for [`machines`](Self::machines).
    pub fn job(&mut self, id: u64) -> Result<Option<JobInfo>> {
        let url = self.job_url(id);
        job_of(id, self.get_json(&url, "GET jobs/ID", &[200]))
    }

    /// [`job`](Self::job) of each of `ids`, in order, the requests
    /// pipelined (many written before their answers are read; a long list
    /// over two connections): a listing's worth of jobs costs a few round
    /// trips instead of one each.
    ///
    /// # Errors
    /// As for [`job`](Self::job): the first error of any of them.
    pub fn jobs(&mut self, ids: &[u64]) -> Result<Vec<Option<JobInfo>>> {
        let urls: Vec<Url> = ids.iter().map(|&id| self.job_url(id)).collect();
        let answers = self.get_json_all(&urls, "GET jobs/ID", &[200])?;
        ids.iter()
            .zip(answers)
            .map(|(&id, a)| job_of(id, a))
            .collect()
    }

    /// `GET jobs/{id}?wait=true`: the job once it changes or after the
    /// server's wait; `Ok(None)` if `limit` runs out first.
    ///
    /// # Errors
    /// As for [`machines`](Self::machines); [`Error::Server`] (`no such
    /// job`) if the job is unknown or vanishes.
    pub fn wait_for_job(&mut self, id: u64, limit: Option<Duration>) -> Result<Option<JobInfo>> {
        let mut url = self.job_url(id);
        url.path.push_str("?wait=true");
        match self.long_poll(&url, limit)? {
            Some(v) => Ok(Some(types::job_info("GET jobs/ID", id, &v)?)),
            None => Ok(None),
        }
    }

    /// `PUT jobs/{id}/keepalive`. The server answers `ok` even for a
    /// destroyed job.
    ///
    /// # Errors
    /// [`Error::Server`] (`no such job`), transport errors.
    pub fn keepalive(&mut self, id: u64) -> Result<()> {
        let mut url = self.job_url(id);
        url.path.push_str("/keepalive");
        let r = self.call(
            "PUT",
            &url,
            Body::Text("alive"),
            "text/plain, */*",
            self.timeout,
        )?;
        check(r, "PUT jobs/ID/keepalive", &[200, 204]).map(drop)
    }

    /// `DELETE jobs/{id}?reason=…`. Destroying a destroyed job is not an
    /// error.
    ///
    /// # Errors
    /// [`Error::Server`] (`no such job`), transport errors.
    pub fn delete_job(&mut self, id: u64, reason: Option<&str>) -> Result<()> {
        let mut url = self.job_url(id);
        url.path
            .push_str(&format!("?reason={}", encode(reason.unwrap_or_default())));
        let r = self.call("DELETE", &url, Body::None, "*/*", self.timeout)?;
        check(r, "DELETE jobs/ID", &[200, 202, 204]).map(drop)
    }

    /// `GET jobs/{id}/machine`: where the job's boards are, or `None` while
    /// it has none. Counts as a keepalive.
    ///
    /// # Errors
    /// As for [`job`](Self::job); [`Error::Server`] (`no such job`).
    pub fn job_machine(&mut self, id: u64) -> Result<Option<JobAllocation>> {
        let url = self.srv.join(&format!("jobs/{id}/machine"));
        allocation_of(self.get_json(&url, "GET jobs/ID/machine", &[200, 204]))
    }

    /// [`job_machine`](Self::job_machine) of each of `ids`, in order, the
    /// requests pipelined as [`jobs`](Self::jobs) pipelines them. Each
    /// counts as a keepalive of its job.
    ///
    /// # Errors
    /// As for [`job_machine`](Self::job_machine).
    pub fn job_machines(&mut self, ids: &[u64]) -> Result<Vec<Option<JobAllocation>>> {
        let urls: Vec<Url> = ids
            .iter()
            .map(|&id| self.srv.join(&format!("jobs/{id}/machine")))
            .collect();
        let answers = self.get_json_all(&urls, "GET jobs/ID/machine", &[200, 204])?;
        answers.into_iter().map(allocation_of).collect()
    }

    /// `GET jobs/{id}/machine/power`: whether every board is on; `None`
    /// while the job has none. Counts as a keepalive.
    ///
    /// # Errors
    /// As for [`job_machine`](Self::job_machine).
    pub fn power(&mut self, id: u64) -> Result<Option<bool>> {
        let url = self.srv.join(&format!("jobs/{id}/machine/power"));
        power_of(self.get_json(&url, "GET jobs/ID/machine/power", &[200, 204]))
    }

    /// [`power`](Self::power) of each of `ids`, in order, the requests
    /// pipelined as [`jobs`](Self::jobs) pipelines them. Each counts as a
    /// keepalive of its job.
    ///
    /// # Errors
    /// As for [`power`](Self::power).
    pub fn powers(&mut self, ids: &[u64]) -> Result<Vec<Option<bool>>> {
        let urls: Vec<Url> = ids
            .iter()
            .map(|&id| self.srv.join(&format!("jobs/{id}/machine/power")))
            .collect();
        let answers = self.get_json_all(&urls, "GET jobs/ID/machine/power", &[200, 204])?;
        answers.into_iter().map(power_of).collect()
    }

    /// `POST jobs/{id}/machine/power`: powers the boards on or off; `false`
    /// if the job has no boards to power. Counts as a keepalive.
    ///
    /// # Errors
    /// As for [`job_machine`](Self::job_machine).
    pub fn set_power(&mut self, id: u64, on: bool) -> Result<bool> {
        let mut url = self.job_url(id);
        url.path.push_str("/machine/power");
        let body = json!({"power": if on { "ON" } else { "OFF" }});
        let r = self.call("POST", &url, Body::Json(body), "*/*", self.timeout)?;
        let r = check(r, "POST jobs/ID/machine/power", &[200, 202, 204])?;
        Ok(r.status != 204)
    }

    /// `GET jobs/{id}/chip`: the board holding a chip given relative to
    /// the job, or `None` if the job has no boards or the chip is not on
    /// one of them. Counts as a keepalive.
    ///
    /// # Errors
    /// As for [`job_machine`](Self::job_machine).
    pub fn job_chip(&mut self, id: u64, x: u32, y: u32) -> Result<Option<BoardLocation>> {
        let mut url = self.job_url(id);
        url.path.push_str(&format!("/chip?x={x}&y={y}"));
        self.where_is(url, "GET jobs/ID/chip")
    }

    /// `POST jobs/{id}/report-issue`: reports a problem with some of the
    /// job's boards; returns what the service did about it (a board that
    /// is not the job's is reported there, not as an error).
    ///
    /// # Errors
    /// As for [`job_machine`](Self::job_machine).
    pub fn report_issue(
        &mut self,
        id: u64,
        issue: &str,
        boards: &[(String, IssueBoard)],
    ) -> Result<String> {
        let mut url = self.job_url(id);
        url.path.push_str("/report-issue");
        let boards: Vec<Value> = boards
            .iter()
            .map(|(machine, b)| {
                let mut o = Map::new();
                o.insert("machine".into(), json!(machine));
                match b {
                    IssueBoard::Chip(c) => {
                        o.insert("chip".into(), json!([c.x, c.y]));
                    }
                    IssueBoard::Logical(b) => {
                        o.insert("x".into(), json!(b.x));
                        o.insert("y".into(), json!(b.y));
                        o.insert("z".into(), json!(b.z));
                    }
                    IssueBoard::Physical(p) => {
                        o.insert("cabinet".into(), json!(p.cabinet));
                        o.insert("frame".into(), json!(p.frame));
                        o.insert("board".into(), json!(p.board));
                    }
                    IssueBoard::Address(a) => {
                        o.insert("address".into(), json!(a));
                    }
                }
                Value::Object(o)
            })
            .collect();
        let body = json!({"issue": issue, "boards": boards});
        let r = self.call(
            "POST",
            &url,
            Body::Json(body),
            "application/json",
            self.timeout,
        )?;
        let r = check(r, "POST jobs/ID/report-issue", &[200])?;
        let v = json_of(&r)?;
        types::Doc::new("POST jobs/ID/report-issue", &v)?.str("action")
    }

    /// Opens the proxy websocket of job `id` (its `proxy-ref`), with this
    /// client's credentials and TLS settings: channels to the UDP ports of
    /// the job's boards (PROTOCOL_V2.md §5).
    ///
    /// # Errors
    /// [`Error::JobUnknown`]; [`Error::Server`] if the job has no boards
    /// (it is queued, powering, or destroyed) or the service refuses the
    /// websocket; transport errors.
    pub fn proxy(&mut self, id: u64) -> Result<ProxyClient> {
        let Some(job) = self.job(id)? else {
            return Err(Error::JobUnknown { id });
        };
        let Some(given) = job.proxy_ref.as_deref() else {
            return Err(Error::Server(format!(
                "job {id} has no boards to proxy to (it is {}); wait until it is ready",
                job.state
            )));
        };
        // The service names `wss://` (or `ws://`): the same host and port
        // as ours, and always our scheme (§5.1).
        let as_http = given
            .strip_prefix("wss://")
            .map(|r| format!("https://{r}"))
            .or_else(|| given.strip_prefix("ws://").map(|r| format!("http://{r}")))
            .unwrap_or_else(|| given.to_owned());
        let Some(url) = self.root.follow(&self.root, &as_http) else {
            return Err(Error::Server(format!(
                "the service gave job {id} a proxy URL that is not on the service itself"
            )));
        };
        let mut headers = Vec::new();
        match &self.auth {
            Auth::Bearer(token, _) => {
                headers.push(("authorization", format!("Bearer {}", token.expose())));
            }
            _ => {
                if let Some(s) = &self.session {
                    headers.push(("cookie", format!("JSESSIONID={}", s.cookie.expose())));
                    if let Some((h, t)) = &s.csrf {
                        headers.push((csrf_header_name(h), t.expose().to_owned()));
                    }
                }
            }
        }
        ProxyClient::open_with(Target {
            job: id,
            url,
            headers,
            tls: self.transport.tls(),
            timeout: self.timeout,
            interrupt: self.transport.interrupt().cloned(),
        })
    }

    /// Closes the connection; the session stays cached.
    pub fn close(mut self) {
        self.transport.disconnect();
    }

    /// Logs out: ends the session on the server and forgets it here and in
    /// the cache.
    ///
    /// # Errors
    /// Transport errors.
    pub fn logout(mut self) -> Result<()> {
        if self.session.is_some() {
            let url = self.root.join("system/perform_logout");
            let _ = self.send_once("POST", &url, &Body::Form(String::new()), "*/*")?;
        }
        session::update(&self.key, |r| r.session = None);
        if let Some(dir) = &self.settings.session_cache {
            session::save(dir, &self.key, None);
        }
        Ok(())
    }
}

/// A bearer token: the one given, else the token file's (refused unless
/// private to the user).
fn bearer_token(settings: &V2Settings) -> Result<Option<(Secret, CredentialSource)>> {
    if let Some(t) = &settings.token {
        let source = settings
            .token_source
            .clone()
            .unwrap_or(CredentialSource::Code);
        return Ok(Some((t.clone(), source)));
    }
    let Some(path) = &settings.token_file else {
        return Ok(None);
    };
    read_token_file(path).map(|t| Some((t, CredentialSource::TokenFile(path.clone()))))
}

/// Reads a token file, which only its owner may read.
fn read_token_file(path: &Path) -> Result<Secret> {
    use std::io::Read;
    let bad = |message: String| Error::Config {
        path: path.to_owned(),
        key: Some("token_file".into()),
        message,
    };
    let file = std::fs::File::open(path)
        .map_err(|e| bad(format!("cannot read: {}", crate::error::plain(&e))))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(format!("cannot read: {}", crate::error::plain(&e))))?;
    if !meta.is_file() {
        return Err(bad("not a file".into()));
    }
    if !session::is_private(&meta) {
        return Err(bad(
            "others may read this token file: make it private (chmod 600) before it is used".into(),
        ));
    }
    let mut text = String::new();
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|_| bad("not a text file".into()))?;
    let token = text.trim();
    if token.is_empty() || token.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad("expected one token on one line".into()));
    }
    Ok(Secret::new(token))
}

/// A CSRF header name as a `&'static str` for the request: the usual one,
/// or (for another name) leaked once per distinct name, of which a server
/// has one.
fn csrf_header_name(name: &str) -> &'static str {
    if name.eq_ignore_ascii_case("X-CSRF-TOKEN") {
        return "X-CSRF-TOKEN";
    }
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return n;
    }
    if names.len() >= 16 {
        return "X-CSRF-TOKEN";
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The path of a request target for a log line: the query may hold a
/// reason or an address, which are not secrets, but keep logs short.
fn path_for_log(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

/// The `JSESSIONID` a response sets.
fn session_cookie(r: &Response) -> Option<Secret> {
    r.headers_named("set-cookie").find_map(|c| {
        let first = c.split(';').next()?.trim();
        let value = first.strip_prefix("JSESSIONID=")?;
        (!value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Secret::new(value))
    })
}

/// The `_csrf` hidden field of the login form, whatever the token's shape.
fn form_csrf(html: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(html);
    let at = text.find("name=\"_csrf\"")?;
    let tag_start = text[..at].rfind('<')?;
    let tag_end = at + text[at..].find('>')?;
    let tag = &text[tag_start..tag_end];
    let value = tag.split_once("value=\"")?.1;
    let token = value.split('"').next()?;
    (!token.is_empty() && !token.bytes().any(|b| b.is_ascii_control())).then(|| token.to_owned())
}

/// What a refused login's answer said: the JSON `message` (whatever the
/// content type), or its text, or the status.
fn login_failure_message(r: &Response) -> String {
    serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| match r.text(200) {
            t if t.is_empty() || t.starts_with('<') => format!("HTTP {}", r.status),
            t => t,
        })
}

fn is_no_such_job(m: &str) -> bool {
    m.trim().eq_ignore_ascii_case("no such job")
}

/// The response if its status is one of `ok`; otherwise the error it
/// means.
fn check(r: Response, what: &str, ok: &[u16]) -> Result<Response> {
    if ok.contains(&r.status) {
        return Ok(r);
    }
    Err(status_error(&r, what))
}

fn status_error(r: &Response, what: &str) -> Error {
    let text = r.text(MESSAGE_CHARS);
    // A JSON-quoted message (`"computer says no"`) is shown unquoted.
    let text = serde_json::from_str::<String>(&text).unwrap_or(text);
    match r.status {
        400 | 403 | 404 | 409 | 410 | 500 if !text.is_empty() && !text.starts_with('<') => {
            Error::Server(text)
        }
        403 => Error::Server("computer says no".into()),
        404 | 410 => Error::Server("no such job".into()),
        401 => Error::Login(format!(
            "{what}: the service wants credentials we do not have"
        )),
        _ => unexpected(r, what),
    }
}

/// An answer that is neither success nor a refusal of the request.
fn unexpected(r: &Response, what: &str) -> Error {
    let text = r.text(MESSAGE_CHARS);
    let message = if text.starts_with('<') || text.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {text}")
    };
    Error::Http {
        status: r.status,
        message,
    }
}

/// A job's description, or `None` for one the service does not show.
fn job_of(id: u64, answer: Result<(u16, Value)>) -> Result<Option<JobInfo>> {
    match answer {
        Ok((_, v)) => Ok(Some(types::job_info("GET jobs/ID", id, &v)?)),
        Err(Error::Server(m)) if is_no_such_job(&m) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A job's allocation, or `None` (204) while it has none.
fn allocation_of(answer: Result<(u16, Value)>) -> Result<Option<JobAllocation>> {
    match answer? {
        (204, _) => Ok(None),
        (_, v) => Ok(Some(types::allocation("GET jobs/ID/machine", &v)?)),
    }
}

/// Whether a job's boards are all on, or `None` (204) while it has none.
fn power_of(answer: Result<(u16, Value)>) -> Result<Option<bool>> {
    let v = match answer? {
        (204, _) => return Ok(None),
        (_, v) => v,
    };
    match v.get("power").and_then(Value::as_str) {
        Some("ON") => Ok(Some(true)),
        Some("OFF") => Ok(Some(false)),
        _ => Err(ProtocolError {
            command: Some("GET jobs/ID/machine/power".into()),
            field: Some("power".into()),
            expected: "\"ON\" or \"OFF\"".into(),
            got: v.get("power").map(Value::to_string),
        }
        .into()),
    }
}

/// The status and JSON body of a response whose status is one of `ok`
/// (`null` for a 204); otherwise the error it means.
fn json_answer(r: Response, what: &str, ok: &[u16]) -> Result<(u16, Value)> {
    let r = check(r, what, ok)?;
    if r.status == 204 {
        return Ok((204, Value::Null));
    }
    Ok((r.status, json_of(&r)?))
}

fn json_of(r: &Response) -> Result<Value> {
    Ok(serde_json::from_slice(&r.body)?)
}

/// The body of `POST jobs` for a request.
fn create_body(request: &JobRequest, options: &CreateJobOptions) -> Result<Value> {
    super::check_request(request, options)?;
    let mut o = Map::new();
    let keepalive = options.keepalive.map_or(60.0, crate::types::Number::as_f64);
    o.insert(
        "keepalive-interval".into(),
        json!(types::iso_duration(keepalive)),
    );
    match (&options.machine, &options.tags) {
        (Some(m), _) => {
            o.insert("machine-name".into(), json!(m));
        }
        (None, Some(tags)) => {
            o.insert("tags".into(), json!(tags));
        }
        (None, None) => {
            o.insert("tags".into(), json!(["default"]));
        }
    }
    match request {
        JobRequest::AnyBoard => {}
        JobRequest::Boards(n) => {
            o.insert("num-boards".into(), json!(n));
        }
        JobRequest::Triads { width, height } => {
            o.insert(
                "dimensions".into(),
                json!({"width": width, "height": height}),
            );
        }
        JobRequest::Board(b) => {
            o.insert("board".into(), json!({"x": b.x, "y": b.y, "z": b.z}));
        }
        JobRequest::Physical(p) => {
            o.insert(
                "board".into(),
                json!({"cabinet": p.cabinet, "frame": p.frame, "board": p.board}),
            );
        }
        JobRequest::Address(ip) => {
            o.insert("board".into(), json!({"address": ip.to_string()}));
        }
    }
    // "Any number" has no spelling on v2: the largest the server takes.
    let dead = options
        .max_dead_boards
        .map_or(i64::from(i32::MAX), i64::from);
    o.insert("max-dead-boards".into(), json!(dead));
    if let Some(group) = &options.group {
        o.insert("group".into(), json!(group));
    }
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_tokens_of_any_shape() {
        let page = br#"<form><input type="hidden" name="_csrf" value="T1By_YW5-kb20=" /></form>"#;
        assert_eq!(form_csrf(page).as_deref(), Some("T1By_YW5-kb20="));
        let page = br#"<input name="_csrf" type="hidden" value="0a1b-2c"/>"#;
        assert_eq!(form_csrf(page).as_deref(), Some("0a1b-2c"));
        assert_eq!(form_csrf(b"<html>no form</html>"), None);
    }

    #[test]
    fn create_bodies() {
        let mut o = CreateJobOptions::new("ignored");
        let b = create_body(&JobRequest::Boards(3), &o).expect("body");
        assert_eq!(
            b,
            json!({"keepalive-interval": "PT60S", "tags": ["default"], "num-boards": 3, "max-dead-boards": 0})
        );
        o.machine = Some("m".into());
        o.keepalive = Some(crate::types::Number::Int(45));
        let b =
            create_body(&JobRequest::Address("10.0.0.1".parse().expect("ip")), &o).expect("body");
        assert_eq!(
            b,
            json!({"keepalive-interval": "PT45S", "machine-name": "m", "board": {"address": "10.0.0.1"}, "max-dead-boards": 0})
        );
        o.require_torus = true;
        assert!(matches!(
            create_body(&JobRequest::Boards(3), &o),
            Err(Error::InvalidArgument(InvalidArgument::NotOnProtocol {
                option: "require_torus",
                ..
            }))
        ));
    }
}
