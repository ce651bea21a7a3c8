//! Requests to responses: the security rules (PROTOCOL_V2.md §2), the URL
//! layout (§1.1) and every endpoint of §3.0 rows 1–17, translated into
//! engine calls.
//!
//! Nothing here decides anything about jobs or boards: it checks who is
//! asking and what they may see, reads the request, calls the engine (under
//! its lock, through `net::update`, so v1 subscribers hear of every change),
//! and writes the answer in the Java server's shapes and words. Where the
//! Java server has a bug (§9), the right thing is done instead; the
//! documentation of `crate::server` lists those differences.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info};
use serde::Serialize;
use serde_json::value::RawValue;

use super::super::epochs::ChangeSignal;
use super::super::geometry::Link;
use super::super::net::{self, Shared};
use super::super::state::{
    AllocView, BoardInfo, BoardRef, JobView, Locate, Located, MachineView, ReportedBoard, Selector,
    V2Request, V2Shape, V2State,
};
use super::auth::{Auth, LoginFailure, Principal, SESSION_COOKIE, SessionInfo};
use super::config::{V2Config, V2Role};
use super::http::{Request, Response, accepts, form_pairs, media_type, names_type, percent_decode};
use super::proxy::{self, Accepted, Hub};
use super::wire::{self, to_json};

/// The CSRF header, as Spring Security names it.
const CSRF_HEADER: &str = "X-CSRF-TOKEN";
/// The realm in `WWW-Authenticate` challenges.
const REALM: &str = "SpallocService";
/// The largest page of `GET jobs`.
const LIMIT_LIMIT: i64 = 200;

/// The v2 service: everything a request needs.
pub(crate) struct Service {
    pub shared: Arc<Shared>,
    pub changes: Arc<ChangeSignal>,
    pub auth: Auth,
    pub config: V2Config,
    /// Whether requests arrive over TLS.
    pub secure: bool,
    /// The listening address, for URLs when a request has no usable `Host`.
    pub local: SocketAddr,
    /// The proxy websocket's hub, which takes over upgraded connections
    /// (`None` where connections cannot be taken over, as when fuzzing).
    pub proxy: Option<Arc<Hub>>,
}

/// What becomes of a request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response; the connection stays HTTP.
    Response(Response),
    /// An accepted upgrade to the proxy websocket: its `101` is to be sent
    /// and the connection handed to the proxy.
    Upgrade(Box<Accepted>),
}

impl From<Response> for Answer {
    fn from(r: Response) -> Answer {
        Answer::Response(r)
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("local", &self.local)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A short plain-text answer.
fn text(status: u16, body: &str) -> Response {
    Response::text(status, body)
}

fn json<T: Serialize>(status: u16, v: &T) -> Response {
    Response::json(status, to_json(v))
}

fn not_found(what: &str) -> Response {
    text(404, what)
}

fn bad(what: impl Into<String>) -> Response {
    Response::text(400, what)
}

fn method_not_allowed(allow: &'static str) -> Response {
    text(405, "method not allowed").with("Allow", allow)
}

/// Percent-encodes a path segment (a machine name).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes standard base64 (for Basic credentials).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The credentials a request carries in `Authorization`.
enum Credentials {
    None,
    Bearer(String),
    Basic(String, String),
    /// Present but unusable.
    Malformed,
}

fn credentials(req: &Request) -> Credentials {
    let Some(value) = req.header("authorization") else {
        return Credentials::None;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Credentials::Bearer(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let pair = base64_decode(rest)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                let (u, p) = s.split_once(':')?;
                Some((u.to_owned(), p.to_owned()))
            });
        if let Some((u, p)) = pair {
            return Credentials::Basic(u, p);
        }
    }
    Credentials::Malformed
}

/// Every `JSESSIONID` value the request's cookies hold.
fn session_cookies(req: &Request) -> Vec<&str> {
    req.headers_named("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k.trim() == SESSION_COOKIE).then_some(v.trim().trim_matches('"'))
        })
        .collect()
}

/// A query string's parameters (the first value of each name wins).
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// JAX-RS reads booleans leniently: `true` in any case, else false.
    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, Response> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| bad(format!("{name} must be an integer, not {v:?}"))),
        }
    }
}

/// Whether the method changes state (so needs a CSRF token on a session).
fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// Per-request facts the handlers share.
struct Ctx<'a> {
    req: &'a Request,
    peer: IpAddr,
    /// `scheme://host[:port]`.
    origin: String,
    query: Query,
    now: Instant,
}

impl Ctx<'_> {
    fn host(&self) -> String {
        self.peer.to_string()
    }
}

/// A job id from a path segment: `Err` with the response for a bad one.
fn job_id(segment: &str) -> Result<u64, Response> {
    let digits = segment.strip_prefix('-').unwrap_or(segment);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_found("not found"));
    }
    match segment.parse::<i64>() {
        Ok(n) if n <= 0 => Err(bad("job ID must be positive")),
        Ok(n) => u64::try_from(n).map_err(|_| not_found("not found")),
        Err(_) => Err(not_found("not found")),
    }
}

impl Service {
    /// The application root's URL for this request.
    fn origin(&self, req: &Request) -> String {
        let forwarded_https = req
            .header("x-forwarded-proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let scheme = if self.secure || forwarded_https {
            "https"
        } else {
            "http"
        };
        // The Host header is the client's; use it only if it is plainly a
        // host and port.
        let host = req
            .header("host")
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            })
            .map_or_else(|| self.local.to_string(), str::to_owned);
        format!("{scheme}://{host}")
    }

    fn base(&self, ctx: &Ctx<'_>) -> String {
        format!("{}{}", ctx.origin, self.config.base_path)
    }

    /// `{root}srv/spalloc/`.
    fn srv(&self, ctx: &Ctx<'_>) -> String {
        format!("{}srv/spalloc/", self.base(ctx))
    }

    fn job_url(&self, ctx: &Ctx<'_>, id: u64) -> String {
        format!("{}jobs/{id}", self.srv(ctx))
    }

    fn machine_url(&self, ctx: &Ctx<'_>, name: &str) -> String {
        format!("{}machines/{}", self.srv(ctx), encode_segment(name))
    }

    /// Answers one request. `peer` is recorded as a job's keepalive host.
    /// An upgrade to the proxy websocket is answered with its `101`, but
    /// nothing takes the connection over (see [`Service::answer`]).
    #[cfg(any(test, fuzzing))]
    pub fn handle(&self, req: &Request, peer: IpAddr) -> Response {
        match self.answer(req, peer) {
            Answer::Response(r) => r,
            Answer::Upgrade(a) => a.response,
        }
    }

    /// Answers one request, or accepts an upgrade to the proxy websocket,
    /// after which the connection is the proxy's.
    pub fn answer(&self, req: &Request, peer: IpAddr) -> Answer {
        let answer = self.route(req, peer);
        let status = match &answer {
            Answer::Response(r) => r.status,
            Answer::Upgrade(a) => a.response.status,
        };
        debug!("v2: {peer} {} {} -> {status}", req.method, req.path());
        answer
    }

    fn route(&self, req: &Request, peer: IpAddr) -> Answer {
        let now = self.shared.clock.now();
        let path = req.path();
        let Some(rest) = path.strip_prefix(self.config.base_path.as_str()) else {
            return not_found("not found").into();
        };
        // Spring Security's firewall refuses these outright.
        if path.contains("//") {
            return bad("the request was rejected because the URL contained \"//\"").into();
        }
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            if raw.contains("%2F") || raw.contains("%2f") {
                return bad("the request was rejected because the URL contained an encoded \"/\"")
                    .into();
            }
            let Some(s) = percent_decode(raw, false) else {
                return bad("the URL holds a malformed %-escape").into();
            };
            if s == "." || s == ".." {
                return bad("the request was rejected because the URL was not normalized").into();
            }
            segments.push(s);
        }
        // One trailing slash is accepted everywhere, as both clients send
        // one.
        if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let ctx = Ctx {
            req,
            peer,
            origin: self.origin(req),
            query: Query(form_pairs(req.query())),
            now,
        };
        let session = session_cookies(req)
            .into_iter()
            .find_map(|id| self.auth.session(id, now));
        let creds = credentials(req);

        // The CSRF check comes first, as Spring's filter does: a state
        // change on a session needs the session's token. Requests carrying
        // a bearer token are exempt.
        if is_unsafe(&req.method) && !matches!(creds, Credentials::Bearer(_)) {
            let form = is_form(req).then(|| form_pairs(&String::from_utf8_lossy(&req.body)));
            let token = req.header("x-csrf-token").map(str::to_owned).or_else(|| {
                form.as_ref()
                    .and_then(|f| f.iter().find(|(k, _)| k == "_csrf").map(|(_, v)| v.clone()))
            });
            let ok = match (&session, &token) {
                (Some(s), Some(t)) => Auth::csrf_ok(s, t),
                _ => false,
            };
            if !ok {
                debug!("v2: {peer}: CSRF token missing or not this session's");
                return text(
                    403,
                    "Forbidden: the CSRF token is missing, or is not the current session's",
                )
                .into();
            }
        }

        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let resp = match seg.as_slice() {
            ["system", "login.html"] => self.login_page(&ctx, session, &creds),
            ["system", "perform_login"] => self.perform_login(&ctx, session),
            ["system", "perform_logout"] => self.perform_logout(&ctx, session),
            ["system"] | ["system", ""] => {
                match self.authenticate(&ctx, session.as_ref(), &creds) {
                    Ok((who, cookie)) => with_cookie(
                        Response::html(200, system_page(&who.name, &self.config.base_path)),
                        cookie.as_ref(),
                        self.secure,
                    ),
                    Err(r) => r,
                }
            }
            ["srv", "spalloc", rest @ ..] => {
                let (who, cookie) = match self.authenticate(&ctx, session.as_ref(), &creds) {
                    Ok(x) => x,
                    Err(r) => return r.into(),
                };
                let session = cookie.clone().or(session);
                let resp = self.service(&ctx, &who, session.as_ref(), rest);
                with_cookie(resp, cookie.as_ref(), self.secure)
            }
            ["proxy", id] if self.config.proxy => {
                return self.proxy_upgrade(&ctx, session.as_ref(), &creds, id);
            }
            _ => not_found("not found"),
        };
        resp.into()
    }

    /// `proxy/{id}`: the upgrade to the proxy websocket, authenticated as
    /// any request (session, bearer token or Basic). The checks come in
    /// the Java server's order: who is asking (401), the upgrade headers
    /// (405, 400, 426), then the job, which must exist and be the caller's
    /// (or the caller an admin); a refusal there is an empty `200`, as
    /// Spring answers when a handshake interceptor says no. A job without
    /// boards is accepted, and its websocket closed at once with 1011.
    fn proxy_upgrade(
        &self,
        ctx: &Ctx<'_>,
        session: Option<&SessionInfo>,
        creds: &Credentials,
        id: &str,
    ) -> Answer {
        let (who, cookie) = match self.authenticate(ctx, session, creds) {
            Ok(x) => x,
            Err(r) => return r.into(),
        };
        let key = match proxy::check_upgrade(ctx.req) {
            Ok(k) => k,
            Err(r) => return with_cookie(r, cookie.as_ref(), self.secure).into(),
        };
        let id = id
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| id.parse::<u64>().ok())
            .flatten()
            .filter(|&n| n > 0);
        let visible = |id| {
            net::update(&self.shared, |c, _| {
                c.job_owner(id)
                    .is_some_and(|o| who.role >= V2Role::Admin || o == who.name)
            })
        };
        let Some(id) = id.filter(|&id| visible(id)) else {
            info!(
                "v2: {}: proxy for {:?} refused: no such job of {}",
                ctx.peer,
                ctx.req.path(),
                who.name
            );
            return with_cookie(Response::empty(200), cookie.as_ref(), self.secure).into();
        };
        let hosts = net::update(&self.shared, |c, _| {
            c.job_allocation(id).map(|a| a.connections)
        });
        Answer::Upgrade(Box::new(Accepted {
            response: with_cookie(proxy::switching(&key), cookie.as_ref(), self.secure),
            job: id,
            hosts,
            user: who.name,
        }))
    }

    /// The proxy websocket's URL for job `id`: `ws://` over plain HTTP
    /// (the Java server says `wss://` whatever it runs on), `wss://` over
    /// HTTPS.
    fn proxy_url(&self, ctx: &Ctx<'_>, id: u64) -> String {
        let origin = ctx
            .origin
            .strip_prefix("https://")
            .map(|h| format!("wss://{h}"))
            .or_else(|| {
                ctx.origin
                    .strip_prefix("http://")
                    .map(|h| format!("ws://{h}"))
            })
            .unwrap_or_else(|| ctx.origin.clone());
        format!("{origin}{}proxy/{id}", self.config.base_path)
    }

    /// Who is asking, from a bearer token, Basic credentials or the
    /// session; with the new session (to be sent as a cookie) when Basic
    /// credentials made one. `Err` is the 401 (or 302 to the login page)
    /// to send.
    fn authenticate(
        &self,
        ctx: &Ctx<'_>,
        session: Option<&SessionInfo>,
        creds: &Credentials,
    ) -> Result<(Principal, Option<SessionInfo>), Response> {
        match creds {
            Credentials::Bearer(token) => match self.auth.bearer(token) {
                Some(p) => Ok((p, None)),
                None => {
                    info!("v2: {}: bearer token refused", ctx.peer);
                    Err(text(401, "invalid bearer token\n").with(
                        "WWW-Authenticate",
                        format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
                    ))
                }
            },
            Credentials::Basic(user, password) => {
                if let Some(s) = session
                    && s.user.as_deref() == Some(user.as_str())
                {
                    // With a session, its saved login is used (Spring does
                    // not check Basic credentials again).
                    if let Some(role) = self.auth.role(user) {
                        return Ok((
                            Principal {
                                name: user.clone(),
                                role,
                            },
                            None,
                        ));
                    }
                }
                match self.auth.check_password(user, password, ctx.now) {
                    Ok(p) => {
                        let s = self
                            .auth
                            .new_session(Some(&p.name), self.shared.clock.now());
                        Ok((p, s))
                    }
                    Err(why) => {
                        info!(
                            "v2: {}: Basic login for {user:?} refused ({why:?})",
                            ctx.peer
                        );
                        Err(self.challenge())
                    }
                }
            }
            Credentials::Malformed => Err(self.challenge()),
            Credentials::None => {
                let user = session.and_then(|s| s.user.as_deref());
                match user.and_then(|u| self.auth.role(u).map(|r| (u, r))) {
                    Some((name, role)) => Ok((
                        Principal {
                            name: name.to_owned(),
                            role,
                        },
                        None,
                    )),
                    None => Err(self.entry_point(ctx)),
                }
            }
        }
    }

    /// What an unauthenticated request gets: browsers (asking for HTML,
    /// plain text or images by name) are sent to the login page, anything
    /// else gets 401 with both challenges.
    fn entry_point(&self, ctx: &Ctx<'_>) -> Response {
        let accept = ctx.req.header("accept");
        let browser = [
            "text/html",
            "application/xhtml+xml",
            "image/*",
            "text/plain",
        ]
        .iter()
        .any(|t| names_type(accept, t));
        if browser {
            return Response::redirect(format!("{}system/login.html", self.base(ctx)));
        }
        self.challenge()
    }

    fn challenge(&self) -> Response {
        text(
            401,
            "log in required, either with BASIC auth or HBP/EBRAINS bearer token (if they are enabled)\n",
        )
        .with("WWW-Authenticate", format!("Basic realm=\"{REALM}\""))
        .with(
            "WWW-Authenticate",
            format!(
                "Bearer realm=\"{REALM}\", scope=\"openid, profile, roles, email, team, group\""
            ),
        )
    }

    // ----- the login pages -----

    fn login_page(
        &self,
        ctx: &Ctx<'_>,
        session: Option<SessionInfo>,
        creds: &Credentials,
    ) -> Response {
        if !matches!(ctx.req.method.as_str(), "GET" | "HEAD") {
            return method_not_allowed("GET");
        }
        let (session, fresh) = match creds {
            // A bearer token logs the new session in (the Python client's
            // way of turning a token into a session).
            Credentials::Bearer(token) => match self.auth.bearer(token) {
                Some(p) => (self.auth.new_session(Some(&p.name), ctx.now), true),
                None => {
                    return text(401, "invalid bearer token\n").with(
                        "WWW-Authenticate",
                        format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
                    );
                }
            },
            _ => match session {
                Some(s) => (Some(s), false),
                None => (self.auth.new_session(None, ctx.now), true),
            },
        };
        let Some(session) = session else {
            return text(500, "no randomness for a session");
        };
        let failed = ctx.query.get("error").is_some();
        let page = login_page(&self.config.base_path, &session.csrf, failed);
        let resp = Response::html(200, page);
        if fresh {
            with_cookie(resp, Some(&session), self.secure)
        } else {
            resp
        }
    }

    fn perform_login(&self, ctx: &Ctx<'_>, session: Option<SessionInfo>) -> Response {
        if ctx.req.method != "POST" {
            return method_not_allowed("POST");
        }
        let mut fields = ctx.query.0.clone();
        if is_form(ctx.req) {
            fields.extend(form_pairs(&String::from_utf8_lossy(&ctx.req.body)));
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let (user, password) = (field("username"), field("password"));
        match self.auth.check_password(user, password, ctx.now) {
            Ok(p) => {
                let old = session.as_ref().map(|s| s.id.as_str());
                // Now, not when the request came: the check took a while.
                let Some(new) = self.auth.log_in(old, &p, self.shared.clock.now()) else {
                    return text(500, "no randomness for a session");
                };
                info!("v2: {} logged in from {}", p.name, ctx.peer);
                with_cookie(
                    Response::redirect(format!("{}system/", self.base(ctx))),
                    Some(&new),
                    self.secure,
                )
            }
            Err(why) => {
                // The reason is for the log only; a locked account looks
                // like a wrong password.
                let level = if why == LoginFailure::Locked {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "v2: login for {user:?} from {} refused ({why:?})",
                    ctx.peer
                );
                json(
                    401,
                    &wire::AuthFailure {
                        message: "computer says no",
                        timestamp: wire::instant_precise(unix_now()),
                    },
                )
            }
        }
    }

    fn perform_logout(&self, ctx: &Ctx<'_>, session: Option<SessionInfo>) -> Response {
        if !matches!(ctx.req.method.as_str(), "GET" | "POST") {
            return method_not_allowed("GET, POST");
        }
        if let Some(s) = &session {
            self.auth.invalidate(&s.id);
        }
        let resp = Response::redirect(format!("{}system/login.html", self.base(ctx)));
        if ctx.req.method == "POST" {
            // Only the POST form (through Spring's logout filter) clears
            // the cookie.
            resp.with(
                "Set-Cookie",
                format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly"),
            )
        } else {
            resp
        }
    }

    // ----- the REST service -----

    fn service(
        &self,
        ctx: &Ctx<'_>,
        who: &Principal,
        session: Option<&SessionInfo>,
        path: &[&str],
    ) -> Response {
        let method = ctx.req.method.as_str();
        let get = matches!(method, "GET" | "HEAD");
        match path {
            [] => {
                if !get {
                    return method_not_allowed("GET");
                }
                if !accepts(ctx.req.header("accept"), "application/json") {
                    return text(406, "Not Acceptable: this resource is application/json");
                }
                self.describe_service(ctx, who, session)
            }
            ["machines", rest @ ..] => {
                if who.role < V2Role::Reader {
                    return forbidden();
                }
                if !get {
                    return method_not_allowed("GET");
                }
                if !accepts(ctx.req.header("accept"), "application/json") {
                    return text(406, "Not Acceptable: this resource is application/json");
                }
                match rest {
                    [] => self.list_machines(ctx),
                    [name] => self.describe_machine(ctx, name),
                    [name, form] => self.where_is_on_machine(ctx, name, form),
                    _ => not_found("not found"),
                }
            }
            ["jobs"] => match method {
                "GET" | "HEAD" => {
                    if who.role < V2Role::Reader {
                        return forbidden();
                    }
                    if !accepts(ctx.req.header("accept"), "application/json") {
                        return text(406, "Not Acceptable: this resource is application/json");
                    }
                    self.list_jobs(ctx)
                }
                "POST" => {
                    if who.role < V2Role::User {
                        return forbidden();
                    }
                    self.create_job(ctx, who)
                }
                _ => method_not_allowed("GET, POST"),
            },
            ["jobs", id, rest @ ..] => {
                let id = match job_id(id) {
                    Ok(id) => id,
                    Err(r) => return r,
                };
                if who.role < V2Role::User {
                    return forbidden();
                }
                self.job(ctx, who, id, rest)
            }
            _ => not_found("not found"),
        }
    }

    fn describe_service(
        &self,
        ctx: &Ctx<'_>,
        who: &Principal,
        session: Option<&SessionInfo>,
    ) -> Response {
        let (major, minor, revision) = self.config.version_parts().unwrap_or((0, 0, 0));
        // A bearer request without a session gets one here, as Spring
        // saves the CSRF token into a new session.
        let (session, new) = match session {
            Some(s) => (Some(s.clone()), None),
            None => {
                let s = self.auth.new_session(Some(&who.name), ctx.now);
                (s.clone(), s)
            }
        };
        let srv = self.srv(ctx);
        let reader = who.role >= V2Role::Reader;
        let body = wire::ServiceDescription {
            version: wire::VersionInfo {
                major_version: major,
                minor_version: minor,
                revision,
            },
            jobs_ref: reader.then(|| format!("{srv}jobs")),
            machines_ref: reader.then(|| format!("{srv}machines")),
            csrf_header: session.as_ref().map(|_| CSRF_HEADER),
            csrf_token: session.map(|s| s.csrf),
        };
        with_cookie(json(200, &body), new.as_ref(), self.secure)
    }

    fn list_machines(&self, ctx: &Ctx<'_>) -> Response {
        let machines = net::update(&self.shared, |c, _| c.machines_v2());
        let body = wire::MachinesResponse {
            machines: machines
                .into_iter()
                .map(|m| wire::BriefMachine {
                    uri: self.machine_url(ctx, &m.name),
                    name: m.name,
                    tags: m.tags,
                    width: m.width,
                    height: m.height,
                    dead_boards: m.dead_boards.iter().map(board_coords).collect(),
                    dead_links: m.dead_links.iter().map(link_pair).collect(),
                })
                .collect(),
        };
        json(200, &body)
    }

    fn describe_machine(&self, ctx: &Ctx<'_>, name: &str) -> Response {
        let Some(view) = net::update(&self.shared, |c, _| c.machine_v2(name)) else {
            return not_found("no such machine");
        };
        let view = if ctx.query.flag("wait") {
            self.wait_for_change(|core| core.epochs.machine(name));
            match net::update(&self.shared, |c, _| c.machine_v2(name)) {
                Some(v) => v,
                None => return not_found("no such machine"),
            }
        } else {
            view
        };
        let url = self.machine_url(ctx, name);
        json(200, &machine_response(view, &url))
    }

    fn where_is_on_machine(&self, ctx: &Ctx<'_>, name: &str, form: &str) -> Response {
        let q = &ctx.query;
        let machine = name.to_owned();
        let query = match form {
            "logical-board" => (|| {
                Ok(Locate::Logical {
                    machine,
                    x: q.int("x", 0)?,
                    y: q.int("y", 0)?,
                    z: q.int("z", 0)?,
                })
            })(),
            "physical-board" => (|| {
                Ok(Locate::Physical {
                    machine,
                    cabinet: q.int("cabinet", 0)?,
                    frame: q.int("frame", 0)?,
                    board: q.int("board", 0)?,
                })
            })(),
            "chip" => (|| {
                Ok(Locate::Chip {
                    machine,
                    x: q.int("x", 0)?,
                    y: q.int("y", 0)?,
                })
            })(),
            "board-ip" => Ok(Locate::Address {
                machine,
                address: q.get("address").unwrap_or_default().to_owned(),
            }),
            _ => return not_found("not found"),
        };
        let query: Locate = match query {
            Ok(q) => q,
            Err(r) => return r,
        };
        let (known, found) = net::update(&self.shared, |c, _| {
            (c.machine_v2(name).is_some(), c.locate(&query))
        });
        match (known, found) {
            (false, _) => not_found("no such machine"),
            (true, None) => not_found("failed to locate board"),
            (true, Some(l)) => json(200, &self.where_is(ctx, &l)),
        }
    }

    fn where_is(&self, ctx: &Ctx<'_>, l: &Located) -> wire::WhereIsResponse {
        wire::WhereIsResponse {
            job_id: l.job.map(|(id, _)| id),
            job_ref: l.job.map(|(id, _)| self.job_url(ctx, id)),
            job_chip: l.job.map(|(_, c)| c),
            chip: Some(l.chip),
            logical_board_coordinates: Some(l.board),
            machine: Some(l.machine.clone()),
            machine_ref: Some(self.machine_url(ctx, &l.machine)),
            board_chip: Some(l.board_chip),
            physical_board_coordinates: l.physical.map(|(c, f, b)| (c, f, Some(b))),
        }
    }

    fn list_jobs(&self, ctx: &Ctx<'_>) -> Response {
        let q = &ctx.query;
        let (limit, start) = match (q.int("limit", 100), q.int("start", 0)) {
            (Ok(l), Ok(s)) => (l, s),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        if limit > LIMIT_LIMIT {
            return bad(format!("limit must not be bigger than {LIMIT_LIMIT}"));
        }
        if limit < 1 {
            return bad("limit must be at least 1");
        }
        if start < 0 {
            return bad("start must not be less than 0");
        }
        let deleted = q.flag("deleted");
        let page = |c: &super::super::state::Controller| -> Vec<u64> {
            let ids = c.job_ids(deleted);
            let from = usize::try_from(start).unwrap_or(usize::MAX).min(ids.len());
            let to = from
                .saturating_add(usize::try_from(limit).unwrap_or(0))
                .min(ids.len());
            ids[from..to].to_vec()
        };
        let mut ids = net::update(&self.shared, |c, _| page(c));
        if q.flag("wait") && !ids.is_empty() {
            let watched = ids.clone();
            self.wait_for_change(|core| {
                watched
                    .iter()
                    .map(|&id| core.epochs.job(id))
                    .max()
                    .unwrap_or(0)
            });
            ids = net::update(&self.shared, |c, _| page(c));
        }
        let full = i64::try_from(ids.len()).is_ok_and(|n| n == limit);
        let body = wire::ListJobsResponse {
            jobs: ids.iter().map(|&id| self.job_url(ctx, id)).collect(),
            prev: (start > 0).then(|| self.page_url(ctx, (start - limit).max(0))),
            next: full.then(|| self.page_url(ctx, start + limit)),
        };
        let mut links = Vec::new();
        if let Some(n) = &body.next {
            links.push(format!("<{n}>; rel=\"next\""));
        }
        if let Some(p) = &body.prev {
            links.push(format!("<{p}>; rel=\"prev\""));
        }
        let resp = json(200, &body);
        if links.is_empty() {
            resp
        } else {
            resp.with("Link", links.join(", "))
        }
    }

    /// This request's URL with `wait=false` and `start` replaced (added at
    /// the end if absent), as JAX-RS's `replaceQueryParam` builds it.
    fn page_url(&self, ctx: &Ctx<'_>, start: i64) -> String {
        let replaced = |name: &str| match name {
            "wait" => Some("false".to_owned()),
            "start" => Some(start.to_string()),
            _ => None,
        };
        let mut parts: Vec<String> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        for part in ctx.req.query().split('&').filter(|p| !p.is_empty()) {
            let raw_name = part.split_once('=').map_or(part, |(k, _)| k);
            let name = percent_decode(raw_name, true).unwrap_or_default();
            match replaced(&name) {
                Some(_) if done.contains(&name) => {}
                Some(value) => {
                    parts.push(format!("{name}={value}"));
                    done.push(name);
                }
                None => parts.push(part.to_owned()),
            }
        }
        for name in ["wait", "start"] {
            if !done.iter().any(|d| d == name) {
                parts.push(format!("{name}={}", replaced(name).unwrap_or_default()));
            }
        }
        format!("{}{}?{}", ctx.origin, ctx.req.path(), parts.join("&"))
    }

    /// Waits (without holding the engine) until `probe` gives something
    /// other than what it gave now, the bound passes, or the server stops.
    fn wait_for_change(&self, probe: impl Fn(&net::Core) -> u64) {
        let deadline = super::super::state::later(Instant::now(), self.config.wait_timeout);
        let (mine, mut seen) = {
            let core = self.shared.lock();
            (probe(&core), core.epochs.global())
        };
        while self.changes.wait_past(seen, deadline) {
            let core = self.shared.lock();
            if probe(&core) != mine {
                return;
            }
            seen = core.epochs.global();
        }
    }

    fn create_job(&self, ctx: &Ctx<'_>, who: &Principal) -> Response {
        if media_type(ctx.req.header("content-type").unwrap_or_default()) != "application/json" {
            return text(415, "Unsupported Media Type: send application/json");
        }
        if !accepts(ctx.req.header("accept"), "application/json") {
            return text(406, "Not Acceptable: this resource is application/json");
        }
        if ctx.req.body.iter().all(u8::is_ascii_whitespace) {
            return bad("request must be supplied");
        }
        let body: wire::CreateJobRequest = match wire::parse_body(&ctx.req.body) {
            Ok(b) => b,
            Err(e) => return bad(e),
        };
        let group = body.group.clone();
        let request = match self.validate(body, who) {
            Ok(r) => r,
            Err(message) => return bad(message),
        };
        if let Err(message) = self.account_group(&request.owner, group.as_deref()) {
            // The Java server's allocator throws these past its checks:
            // they come back as a server problem.
            return text(
                500,
                &format!("unexpected server problem: NoSuchGroup: {message}"),
            );
        }
        let host = ctx.host();
        let created = net::update(&self.shared, |c, now| c.create_job_v2(request, &host, now));
        match created {
            Ok(id) => {
                info!("v2: job {id} created by {}", who.name);
                let url = self.job_url(ctx, id);
                json(
                    201,
                    &wire::CreateJobResponse {
                        job_id: id,
                        job_ref: url.clone(),
                    },
                )
                .with("Location", url)
            }
            Err(why) => bad(why.message()),
        }
    }

    /// The group a job of `owner` is accounted to must be one of theirs
    /// and, when the request names none, theirs must be only one. An owner
    /// with no groups configured (or not configured at all) has one
    /// implicit group.
    fn account_group(&self, owner: &str, group: Option<&str>) -> Result<(), String> {
        let groups = self
            .config
            .users
            .iter()
            .find(|u| u.name == owner)
            .map_or(&[][..], |u| u.groups.as_slice());
        match group {
            Some(g) if !groups.is_empty() && !groups.iter().any(|m| m == g) => Err(format!(
                "group {g} does not exist or {owner} is not a member of it"
            )),
            None if groups.len() > 1 => Err(
                "User is a member of more than one group, so the group must be selected in the request"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Applies the Java server's checks and defaults to a create request,
    /// in its order, with its messages.
    fn validate(
        &self,
        mut r: wire::CreateJobRequest,
        who: &Principal,
    ) -> Result<V2Request, String> {
        let (min, max) = (self.config.keepalive_min, self.config.keepalive_max);
        let keepalive = match &r.keepalive_interval {
            None | Some(serde_json::Value::Null) => {
                return Err("keepalive-interval is required".into());
            }
            Some(serde_json::Value::String(s)) => wire::parse_duration(s).ok_or_else(|| {
                format!("keepalive-interval {s:?} is not an ISO-8601 duration such as \"PT60S\"")
            })?,
            Some(serde_json::Value::Number(n)) => {
                let secs = n.as_f64().unwrap_or(f64::NAN);
                if !secs.is_finite() || secs.abs() > 1e12 {
                    return Err("keepalive-interval is out of range".into());
                }
                #[allow(clippy::cast_possible_truncation)] // bounded just above
                let nanos = (secs * 1e9).round() as i128;
                nanos
            }
            Some(_) => {
                return Err(
                    "keepalive-interval must be an ISO-8601 duration such as \"PT60S\"".into(),
                );
            }
        };
        if let Some(n) = r.num_boards
            && n < 1
        {
            return Err("number of boards must be at least 1 if given".into());
        }
        if let Some(d) = &r.dimensions {
            if d.width < 1 {
                return Err(format!("triad width ({}) must be at least 1", d.width));
            }
            if d.height < 1 {
                return Err(format!("triad height ({}) must be at least 1", d.height));
            }
        }
        if let Some(b) = &r.board {
            check_board(b)?;
        }
        if r.tags
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t.trim().is_empty()))
        {
            return Err("tags must not be blank".into());
        }
        if r.max_dead_boards.is_some_and(|n| n < 0) {
            return Err("max-dead-boards may not be negative".into());
        }
        if r.machine_name.is_some() == r.tags.is_some() {
            return Err("either machine-name or tags must be supplied".into());
        }
        if r.machine_name.as_ref().is_some_and(|m| m.trim().is_empty()) {
            return Err("machine-name, if given, must be non-blank".into());
        }
        if r.num_boards.is_some() && (r.dimensions.is_some() || r.board.is_some()) {
            return Err("either specify num-boards or dimensions and/or board".into());
        }
        let in_range = |n: i128| {
            n >= i128::from(u64::try_from(min.as_nanos()).unwrap_or(u64::MAX))
                && n <= i128::from(u64::try_from(max.as_nanos()).unwrap_or(u64::MAX))
        };
        if !in_range(keepalive) {
            return Err(format!(
                "keepalive-interval must be {} to {} seconds",
                trim_secs(min.as_secs_f64()),
                trim_secs(max.as_secs_f64())
            ));
        }
        if r.owner.as_ref().is_some_and(|o| !o.trim().is_empty()) && who.role < V2Role::Admin {
            return Err("Only admin and NMPI users can specify an owner".into());
        }
        let groups = [
            r.group.is_some(),
            r.nmpi_collab.is_some(),
            r.nmpi_job_id.is_some(),
        ];
        if groups.iter().filter(|g| **g).count() > 1 {
            // The Java server says this and then makes the job anyway; this
            // server makes none.
            return Err("At most one of group, nmpiCollabId or nmpiJobId can be specified".into());
        }
        // Defaults, as the Java server applies them before storing the
        // request.
        let owner = match r.owner.as_deref().map(str::trim) {
            Some(o) if !o.is_empty() => o.to_owned(),
            _ => who.name.clone(),
        };
        r.owner = Some(owner.clone());
        let selector = match (&r.machine_name, &r.tags) {
            (Some(m), _) => Selector::Machine(m.clone()),
            (None, Some(t)) => Selector::Tags(t.clone()),
            (None, None) => Selector::Tags(vec!["default".into()]),
        };
        if r.tags.is_none() {
            r.tags = Some(Vec::new());
        }
        let max_dead_boards = r.max_dead_boards.unwrap_or(0);
        r.max_dead_boards = Some(max_dead_boards);
        let board = r.board.as_ref().map(board_ref);
        let shape = match (r.num_boards, r.dimensions, board) {
            (Some(n), _, _) => V2Shape::Boards(n),
            (None, Some(d), Some(b)) => V2Shape::DimensionsAt(d.width, d.height, b),
            (None, Some(d), None) => V2Shape::Dimensions(d.width, d.height),
            (None, None, Some(b)) => V2Shape::Board(b),
            (None, None, None) => V2Shape::Boards(1),
        };
        #[allow(clippy::cast_precision_loss)] // display only
        let secs = keepalive as f64 / 1e9;
        let keepalive = std::time::Duration::from_nanos(u64::try_from(keepalive).unwrap_or(0));
        let original = original_request(&r, secs);
        Ok(V2Request {
            owner,
            keepalive,
            selector,
            shape,
            max_dead_boards,
            original,
        })
    }

    /// Everything under `jobs/{id}`.
    fn job(&self, ctx: &Ctx<'_>, who: &Principal, id: u64, rest: &[&str]) -> Response {
        let method = ctx.req.method.as_str();
        let visible = net::update(&self.shared, |c, _| {
            c.job_owner(id)
                .is_some_and(|o| who.role >= V2Role::Admin || o == who.name)
        });
        if !visible {
            return not_found("no such job");
        }
        let accept = ctx.req.header("accept");
        let host = ctx.host();
        match (rest, method) {
            ([], "GET" | "HEAD") => {
                if !accepts(accept, "application/json") {
                    return text(406, "Not Acceptable: this resource is application/json");
                }
                // A destroyed job cannot change any more: no point waiting
                // (the Java server waits out the bound).
                let destroyed = || {
                    net::update(&self.shared, |c, _| {
                        c.job_view(id).is_none_or(|v| v.state == V2State::Destroyed)
                    })
                };
                if ctx.query.flag("wait") && !destroyed() {
                    self.wait_for_change(|core| core.epochs.job(id));
                }
                match net::update(&self.shared, |c, _| c.job_view(id)) {
                    Some(view) => json(200, &self.job_state(ctx, id, view)),
                    None => text(410, "no such job"),
                }
            }
            ([], "DELETE") => {
                let reason = ctx.query.get("reason").unwrap_or_default().to_owned();
                net::update(&self.shared, |c, now| {
                    c.destroy_job(Some(id), Some(reason), now)
                });
                Response::empty(204)
            }
            ([], _) => method_not_allowed("GET, DELETE"),
            (["keepalive"], "PUT") => {
                if media_type(ctx.req.header("content-type").unwrap_or_default()) != "text/plain" {
                    return text(415, "Unsupported Media Type: send text/plain");
                }
                if !accepts(accept, "text/plain") {
                    return text(406, "Not Acceptable: this resource is text/plain");
                }
                // A destroyed job's keepalive is accepted and does nothing.
                net::update(&self.shared, |c, now| c.keepalive_v2(id, &host, now));
                Response::text(200, "ok")
            }
            (["keepalive"], _) => method_not_allowed("PUT"),
            (["machine"], "GET" | "HEAD") => {
                if !accepts(accept, "application/json") {
                    return text(406, "Not Acceptable: this resource is application/json");
                }
                let alloc = net::update(&self.shared, |c, now| {
                    c.keepalive_v2(id, &host, now);
                    c.job_allocation(id)
                });
                match alloc {
                    Some(a) => json(200, &self.sub_machine(ctx, id, a)),
                    None => Response::empty(204),
                }
            }
            (["machine"], _) => method_not_allowed("GET"),
            (["machine", "power"], "GET" | "HEAD") => {
                if !accepts(accept, "application/json") {
                    return text(406, "Not Acceptable: this resource is application/json");
                }
                let alloc = net::update(&self.shared, |c, now| {
                    c.keepalive_v2(id, &host, now);
                    c.job_allocation(id)
                });
                match alloc {
                    Some(a) => json(
                        200,
                        &wire::PowerResponse {
                            power: if a.power_on { "ON" } else { "OFF" },
                        },
                    ),
                    None => Response::empty(204),
                }
            }
            (["machine", "power"], "POST") => {
                if media_type(ctx.req.header("content-type").unwrap_or_default())
                    != "application/json"
                {
                    return text(415, "Unsupported Media Type: send application/json");
                }
                let body: wire::PowerRequest = match wire::parse_body(&ctx.req.body) {
                    Ok(b) => b,
                    Err(e) => return bad(e),
                };
                let on = match body.power.as_deref() {
                    Some("ON") => true,
                    Some("OFF") => false,
                    Some(other) => {
                        return bad(format!("power must be \"ON\" or \"OFF\", not {other:?}"));
                    }
                    None => return bad("power must be specified"),
                };
                if net::update(&self.shared, |c, now| c.power_v2(id, on, &host, now)) {
                    Response::empty(202)
                } else {
                    Response::empty(204)
                }
            }
            (["machine", "power"], _) => method_not_allowed("GET, POST"),
            (["chip"], "GET" | "HEAD") => {
                if !accepts(accept, "application/json") {
                    return text(406, "Not Acceptable: this resource is application/json");
                }
                let (x, y) = match (ctx.query.int("x", 0), ctx.query.int("y", 0)) {
                    (Ok(x), Ok(y)) => (x, y),
                    (Err(r), _) | (_, Err(r)) => return r,
                };
                let found = net::update(&self.shared, |c, now| {
                    c.keepalive_v2(id, &host, now);
                    c.locate_in_job(id, x, y)
                });
                match found {
                    Some(l) => json(200, &self.where_is(ctx, &l)),
                    None => Response::empty(204),
                }
            }
            (["chip"], _) => method_not_allowed("GET"),
            (["report-issue"], "POST") => self.report_issue(ctx, who, id),
            (["report-issue"], _) => method_not_allowed("POST"),
            (["memory" | "fast-data-read" | "fast-data-write" | "router"], _) => text(
                501,
                "the virtual server has no boards to read, write or route: not implemented",
            ),
            _ => not_found("not found"),
        }
    }

    fn job_state(&self, ctx: &Ctx<'_>, id: u64, v: JobView) -> wire::JobStateResponse {
        let url = self.job_url(ctx, id);
        let destroyed = v.state == V2State::Destroyed;
        wire::JobStateResponse {
            state: v.state.name(),
            owner: Some(v.owner),
            start_time: wire::instant(v.start_time),
            finish_time: v.finish_time.map(wire::instant),
            reason: v.reason,
            keepalive_host: v.keepalive_host.filter(|_| !destroyed),
            keepalive_ref: format!("{url}/keepalive"),
            machine_ref: format!("{url}/machine"),
            power_ref: format!("{url}/machine/power"),
            chip_ref: format!("{url}/chip"),
            proxy_ref: (self.config.proxy && matches!(v.state, V2State::Power | V2State::Ready))
                .then(|| self.proxy_url(ctx, id)),
            original_request: v.v2_request.and_then(|r| RawValue::from_string(r).ok()),
            keep_alive_time: v.keepalive_time.filter(|_| !destroyed).map(wire::instant),
        }
    }

    fn sub_machine(&self, ctx: &Ctx<'_>, id: u64, a: AllocView) -> wire::SubMachineResponse {
        wire::SubMachineResponse {
            width: a.width,
            height: a.height,
            depth: a.depth,
            machine_ref: self.machine_url(ctx, &a.machine),
            machine_name: a.machine,
            connections: a.connections,
            boards: a.boards,
            power: format!("{}/machine/power", self.job_url(ctx, id)),
        }
    }

    fn report_issue(&self, ctx: &Ctx<'_>, who: &Principal, id: u64) -> Response {
        if media_type(ctx.req.header("content-type").unwrap_or_default()) != "application/json" {
            return text(415, "Unsupported Media Type: send application/json");
        }
        if !accepts(ctx.req.header("accept"), "application/json") {
            return text(406, "Not Acceptable: this resource is application/json");
        }
        let body: wire::IssueReportRequest = match wire::parse_body(&ctx.req.body) {
            Ok(b) => b,
            Err(e) => return bad(e),
        };
        let Some(boards) = body.boards else {
            return bad("boards must be given");
        };
        let mut reported = Vec::with_capacity(boards.len());
        for b in &boards {
            let r = match b {
                wire::ReportedBoard {
                    chip: Some((x, y)), ..
                } => ReportedBoard::Chip(*x, *y),
                wire::ReportedBoard {
                    x: Some(x),
                    y: Some(y),
                    z: Some(z),
                    ..
                } => ReportedBoard::Triad(*x, *y, *z),
                wire::ReportedBoard {
                    cabinet: Some(c),
                    frame: Some(f),
                    board: Some(n),
                    ..
                } => ReportedBoard::Physical(*c, *f, *n),
                wire::ReportedBoard {
                    address: Some(a), ..
                } => ReportedBoard::Address(a.clone()),
                _ => {
                    return bad(
                        "each board must be given by chip, by x, y and z, by cabinet, frame and board, or by address",
                    );
                }
            };
            reported.push(r);
        }
        let issue = body.issue.unwrap_or_default();
        let action = net::update(&self.shared, |c, _| {
            c.report_issue(id, &who.name, &issue, &reported)
        });
        match action {
            Some(action) => json(200, &wire::IssueReportResponse { action }),
            // Destroyed: nothing of it can be reported.
            None => json(
                200,
                &wire::IssueReportResponse {
                    action: format!("job {id} is not running"),
                },
            ),
        }
    }
}

fn forbidden() -> Response {
    text(403, "computer says no")
}

fn is_form(req: &Request) -> bool {
    media_type(req.header("content-type").unwrap_or_default())
        == "application/x-www-form-urlencoded"
}

/// Adds the session cookie for a new session.
fn with_cookie(resp: Response, session: Option<&SessionInfo>, secure: bool) -> Response {
    match session {
        None => resp,
        Some(s) => resp.with(
            "Set-Cookie",
            format!(
                "{SESSION_COOKIE}={}; Path=/;{} HttpOnly",
                s.id,
                if secure { " Secure;" } else { "" }
            ),
        ),
    }
}

fn check_board(b: &wire::SpecificBoard) -> Result<(), String> {
    let triad = b.x.is_some() && b.y.is_some() && b.z.is_some();
    let physical = b.cabinet.is_some() && b.frame.is_some() && b.board.is_some();
    if !(triad || physical || b.address.is_some()) {
        return Err("at least one way of identifying a board must be given".into());
    }
    for (name, v, max) in [
        ("X coordinate", b.x, None),
        ("Y coordinate", b.y, None),
        ("Z coordinate", b.z, Some(2)),
        ("cabinet number", b.cabinet, Some(31)),
        ("frame number", b.frame, Some(31)),
        ("board number", b.board, Some(23)),
    ] {
        if let Some(v) = v
            && (v < 0 || max.is_some_and(|m| v > m))
        {
            return Err(match (name, max) {
                ("Z coordinate", _) => format!("Z coordinate ({v}) must be 0, 1, or 2"),
                (_, Some(m)) => format!("{name} ({v}) must be in range 0-{m}"),
                (_, None) => format!("{name} ({v}) must be at least 0"),
            });
        }
    }
    if let Some(a) = &b.address
        && a.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(format!("'{a}' is a bad IPv4 address"));
    }
    Ok(())
}

/// Which board a request names: triad, then physical, then address.
fn board_ref(b: &wire::SpecificBoard) -> BoardRef {
    match (b.x, b.y, b.z, b.cabinet, b.frame, b.board) {
        (Some(x), Some(y), Some(z), ..) => BoardRef::Triad(x, y, z),
        (_, _, _, Some(c), Some(f), Some(n)) => BoardRef::Physical(c, f, n),
        _ => BoardRef::Address(b.address.clone().unwrap_or_default()),
    }
}

fn trim_secs(s: f64) -> String {
    let t = format!("{s}");
    t.strip_suffix(".0").map_or(t.clone(), str::to_owned)
}

/// The request as stored, in the Java class's field order, nulls written,
/// and the keepalive in Jackson's seconds form.
fn original_request(r: &wire::CreateJobRequest, keepalive_secs: f64) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct Stored<'a> {
        owner: &'a Option<String>,
        group: &'a Option<String>,
        nmpi_collab: &'a Option<String>,
        nmpi_job_id: &'a Option<i64>,
        keepalive_interval: Box<RawValue>,
        num_boards: &'a Option<i64>,
        dimensions: &'a Option<wire::Dimensions>,
        board: &'a Option<wire::SpecificBoard>,
        machine_name: &'a Option<String>,
        tags: &'a Option<Vec<String>>,
        max_dead_boards: &'a Option<i64>,
    }
    let stored = Stored {
        owner: &r.owner,
        group: &r.group,
        nmpi_collab: &r.nmpi_collab,
        nmpi_job_id: &r.nmpi_job_id,
        keepalive_interval: wire::jackson_seconds(keepalive_secs),
        num_boards: &r.num_boards,
        dimensions: &r.dimensions,
        board: &r.board,
        machine_name: &r.machine_name,
        tags: &r.tags,
        max_dead_boards: &r.max_dead_boards,
    };
    String::from_utf8(to_json(&stored)).unwrap_or_else(|_| "{}".into())
}

fn board_coords(b: &BoardInfo) -> wire::BoardCoords {
    let (x, y, z) = b.board;
    wire::BoardCoords {
        x,
        y,
        z,
        cabinet: b.physical.map(|p| p.0),
        frame: b.physical.map(|p| p.1),
        board: b.physical.map(|p| p.2),
        address: b.address.clone(),
    }
}

/// The Java server's name for a board-to-board link (its `Direction`).
fn direction(link: Link) -> &'static str {
    match link {
        Link::East => "SE",
        Link::NorthEast => "E",
        Link::North => "N",
        Link::West => "NW",
        Link::SouthWest => "W",
        Link::South => "S",
    }
}

fn link_pair(l: &((BoardInfo, Link), (BoardInfo, Link))) -> (wire::LinkEnd, wire::LinkEnd) {
    let ((a, la), (b, lb)) = l;
    (
        wire::LinkEnd {
            board: board_coords(a),
            direction: direction(*la),
        },
        wire::LinkEnd {
            board: board_coords(b),
            direction: direction(*lb),
        },
    )
}

fn machine_response(m: MachineView, url: &str) -> wire::MachineResponse {
    wire::MachineResponse {
        down_boards: m.dead_boards.iter().map(board_coords).collect(),
        down_links: m.dead_links.iter().map(link_pair).collect(),
        name: m.name,
        tags: m.tags,
        width: m.width,
        height: m.height,
        lookup_by_physical_board: format!("{url}/physical-board"),
        lookup_by_logical_board: format!("{url}/logical-board"),
        lookup_by_chip: format!("{url}/chip"),
        lookup_by_address: format!("{url}/board-ip"),
    }
}

/// Escapes text for HTML.
fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The login form. The hidden CSRF field is on a line of its own, in
/// exactly the form both reference clients search for.
fn login_page(base: &str, csrf: &str, failed: bool) -> String {
    let note = if failed { "<p>Login failed.</p>\n" } else { "" };
    format!(
        "<!DOCTYPE html>\n<html>\n<head><title>Spalloc login (virtual server)</title></head>\n<body>\n\
         <h1>Spalloc login</h1>\n{note}<form name=\"f\" method=\"POST\" action=\"{base}system/perform_login\">\n\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\" />\n\
         <p><label>User: <input type=\"text\" name=\"username\" /></label></p>\n\
         <p><label>Password: <input type=\"password\" name=\"password\" /></label></p>\n\
         <p><input name=\"submit\" type=\"submit\" value=\"submit\" /></p>\n\
         </form>\n</body>\n</html>\n",
        html_escape(csrf)
    )
}

fn system_page(user: &str, base: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><title>Spalloc (virtual server)</title></head>\n<body>\n\
         <h1>Spalloc</h1>\n<p>Logged in as {}. This virtual server has no web interface; \
         the REST service is at <a href=\"{base}srv/spalloc/\">{base}srv/spalloc/</a>.</p>\n\
         <form method=\"POST\" action=\"{base}system/perform_logout\"></form>\n</body>\n</html>\n",
        html_escape(user)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            base64_decode("dGVzdDp0ZXN0").as_deref(),
            Some(&b"test:test"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("a b"), None);
        assert_eq!(encode_segment("my machine/1"), "my%20machine%2F1");
        assert_eq!(trim_secs(30.0), "30");
        assert_eq!(trim_secs(0.5), "0.5");
        assert_eq!(job_id("12").ok(), Some(12));
        assert_eq!(job_id("0").err().map(|r| r.status), Some(400));
        assert_eq!(job_id("-3").err().map(|r| r.status), Some(400));
        assert_eq!(job_id("x").err().map(|r| r.status), Some(404));
        assert_eq!(
            job_id("99999999999999999999").err().map(|r| r.status),
            Some(404)
        );
        let page = login_page("/spalloc/", "ab-12", false);
        assert!(page.contains("\n<input type=\"hidden\" name=\"_csrf\" value=\"ab-12\" />\n"));
    }
}
