//! Users, sessions, CSRF tokens, bearer tokens and the optional lockout, as
//! the Java server's Spring Security set-up behaves (PROTOCOL_V2.md §2).
//!
//! Passwords and tokens are kept only as hashes. The state behind the mutex
//! is small and is never held while a password is checked (a PBKDF2 check
//! takes milliseconds), so logins do not queue behind each other.
//! Sessions are bounded: expired ones go first, then the least recently
//! used anonymous ones (the temporary sessions a login page hands out),
//! then the least recently used of all.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::{debug, info};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use super::config::{Lockout, V2Config, V2Password, V2Role};
use super::password::{DEFAULT_ITERATIONS, PasswordHash, to_hex};

/// The session cookie's name, as the Java server's.
pub(crate) const SESSION_COOKIE: &str = "JSESSIONID";

/// A user as the server keeps them.
#[derive(Debug)]
struct User {
    role: V2Role,
    hash: PasswordHash,
}

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    /// `None` for the temporary session of a login page.
    user: Option<String>,
    last_used: Instant,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Session>,
    failures: HashMap<String, Failures>,
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub name: String,
    pub role: V2Role,
}

/// A session as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionInfo {
    pub id: String,
    pub csrf: String,
    pub user: Option<String>,
}

/// Why a login failed. The client is only ever told "computer says no";
/// the reason goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    UnknownUser,
    BadPassword,
    Locked,
}

/// Everything about who may do what.
#[derive(Debug)]
pub(crate) struct Auth {
    users: HashMap<String, User>,
    /// SHA-256 of each bearer token, to its user.
    tokens: HashMap<Vec<u8>, String>,
    /// Checked for unknown users too, so that a login takes as long whether
    /// or not the name exists.
    decoy: PasswordHash,
    state: Mutex<State>,
    session_timeout: Duration,
    max_sessions: usize,
    lockout: Option<Lockout>,
    rng: SystemRandom,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn token_digest(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Hashes the configured passwords and tokens.
    pub fn new(config: &V2Config) -> Result<Auth, String> {
        Auth::with_iterations(config, DEFAULT_ITERATIONS)
    }

    /// As [`Auth::new`], with fewer hash iterations for plain passwords
    /// (the fuzz target, which starts a server per input).
    pub fn with_iterations(config: &V2Config, iterations: u32) -> Result<Auth, String> {
        let rng = SystemRandom::new();
        let mut users = HashMap::new();
        let mut tokens = HashMap::new();
        for u in &config.users {
            let hash = match &u.password {
                V2Password::Plain(p) => PasswordHash::new(p, &rng, iterations)
                    .ok_or("cannot hash a password: no system randomness")?,
                V2Password::Hash(h) => PasswordHash::parse(h)?,
            };
            for t in &u.tokens {
                tokens.insert(token_digest(t), u.name.clone());
            }
            users.insert(u.name.clone(), User { role: u.role, hash });
        }
        let decoy = PasswordHash::new("decoy", &rng, iterations)
            .ok_or("cannot hash a password: no system randomness")?;
        Ok(Auth {
            users,
            tokens,
            decoy,
            state: Mutex::new(State::default()),
            session_timeout: config.session_timeout,
            max_sessions: config.max_sessions,
            lockout: config.lockout,
            rng,
        })
    }

    /// `bytes` random bytes in hex; `None` only if the operating system
    /// has no randomness to give, when no secure session can be made.
    fn random_hex(&self, bytes: usize) -> Option<String> {
        let mut buf = vec![0u8; bytes];
        self.rng.fill(&mut buf).ok()?;
        Some(to_hex(&buf))
    }

    /// A session id as Tomcat makes them: 32 upper-case hex digits (the
    /// Java client only accepts `[A-Z0-9]+`).
    fn new_session_id(&self) -> Option<String> {
        Some(self.random_hex(16)?.to_ascii_uppercase())
    }

    /// A CSRF token shaped like the UUIDs of Spring Security 5 (which both
    /// reference clients' patterns accept).
    fn new_csrf(&self) -> Option<String> {
        let h = self.random_hex(16)?;
        Some(format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        ))
    }

    /// The role of a user, if they exist.
    pub fn role(&self, name: &str) -> Option<V2Role> {
        self.users.get(name).map(|u| u.role)
    }

    /// The live session with this id, refreshed, if there is one.
    pub fn session(&self, id: &str, now: Instant) -> Option<SessionInfo> {
        let mut state = lock(&self.state);
        let s = state.sessions.get_mut(id)?;
        if now.saturating_duration_since(s.last_used) > self.session_timeout {
            state.sessions.remove(id);
            debug!("session expired");
            return None;
        }
        s.last_used = now;
        Some(SessionInfo {
            id: id.to_owned(),
            csrf: s.csrf.clone(),
            user: s.user.clone(),
        })
    }

    /// Starts a session, for `user` or anonymous; `None` only without
    /// system randomness.
    pub fn new_session(&self, user: Option<&str>, now: Instant) -> Option<SessionInfo> {
        let id = self.new_session_id()?;
        let session = Session {
            csrf: self.new_csrf()?,
            user: user.map(str::to_owned),
            last_used: now,
        };
        let info = SessionInfo {
            id: id.clone(),
            csrf: session.csrf.clone(),
            user: session.user.clone(),
        };
        let mut state = lock(&self.state);
        self.make_room(&mut state, now);
        state.sessions.insert(id, session);
        Some(info)
    }

    /// Drops sessions until there is room for one more.
    fn make_room(&self, state: &mut State, now: Instant) {
        if state.sessions.len() < self.max_sessions {
            return;
        }
        let timeout = self.session_timeout;
        state
            .sessions
            .retain(|_, s| now.saturating_duration_since(s.last_used) <= timeout);
        while state.sessions.len() >= self.max_sessions {
            let victim = state
                .sessions
                .iter()
                .min_by_key(|(_, s)| (s.user.is_some(), s.last_used))
                .map(|(id, _)| id.clone());
            let Some(victim) = victim else {
                return;
            };
            state.sessions.remove(&victim);
        }
    }

    /// Ends a session.
    pub fn invalidate(&self, id: &str) {
        lock(&self.state).sessions.remove(id);
    }

    /// The user a bearer token logs in as.
    pub fn bearer(&self, token: &str) -> Option<Principal> {
        let name = self.tokens.get(&token_digest(token))?;
        let role = self.role(name)?;
        Some(Principal {
            name: name.clone(),
            role,
        })
    }

    /// Checks a user's password, counting failures toward the lockout.
    pub fn check_password(
        &self,
        name: &str,
        password: &str,
        now: Instant,
    ) -> Result<Principal, LoginFailure> {
        let Some(user) = self.users.get(name) else {
            let _ = self.decoy.verify(password);
            return Err(LoginFailure::UnknownUser);
        };
        let locked = self.lockout.is_some()
            && lock(&self.state)
                .failures
                .get(name)
                .and_then(|f| f.locked_until)
                .is_some_and(|t| now < t);
        let good = user.hash.verify(password);
        let mut state = lock(&self.state);
        if good && !locked {
            state.failures.remove(name);
            return Ok(Principal {
                name: name.to_owned(),
                role: user.role,
            });
        }
        if let Some(lockout) = self.lockout {
            let f = state.failures.entry(name.to_owned()).or_default();
            if f.locked_until.is_some_and(|t| now >= t) {
                // The lock has run out: start counting afresh.
                *f = Failures::default();
            }
            f.count = f.count.saturating_add(1);
            if f.count >= lockout.failures {
                // An attempt while locked extends the lock, as the Java
                // server intends.
                f.locked_until = now.checked_add(lockout.duration);
                if !locked {
                    info!(
                        "v2: account {name:?} locked after {} failed logins",
                        f.count
                    );
                }
            }
        }
        Err(if locked {
            LoginFailure::Locked
        } else {
            LoginFailure::BadPassword
        })
    }

    /// Logs `name` in on the session `old` (if any): the session gets a new
    /// id and a new CSRF token, so that neither a fixed session id nor the
    /// login page's token can be used afterwards.
    pub fn log_in(
        &self,
        old: Option<&str>,
        principal: &Principal,
        now: Instant,
    ) -> Option<SessionInfo> {
        if let Some(old) = old {
            self.invalidate(old);
        }
        self.new_session(Some(&principal.name), now)
    }

    /// Whether `token` is the CSRF token of session `session`.
    pub fn csrf_ok(session: &SessionInfo, token: &str) -> bool {
        same_secret(&session.csrf, token)
    }

    /// How many sessions are kept (for tests).
    #[cfg(test)]
    fn session_count(&self) -> usize {
        lock(&self.state).sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::v2::config::V2User;

    fn auth(lockout: Option<Lockout>, max_sessions: usize) -> Auth {
        let config = V2Config::default()
            .users(vec![
                V2User::new("alice", "pw-alice").token("alice-token-1"),
                V2User::new("root", "pw-root").role(V2Role::Admin),
            ])
            .lockout(lockout)
            .max_sessions(max_sessions)
            .session_timeout(Duration::from_secs(60));
        match Auth::with_iterations(&config, 10) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn passwords_and_tokens() {
        let a = auth(None, 10);
        let now = Instant::now();
        assert_eq!(
            a.check_password("alice", "pw-alice", now).map(|p| p.role),
            Ok(V2Role::User)
        );
        assert_eq!(
            a.check_password("alice", "pw-root", now),
            Err(LoginFailure::BadPassword)
        );
        assert_eq!(
            a.check_password("bob", "x", now),
            Err(LoginFailure::UnknownUser)
        );
        assert_eq!(
            a.bearer("alice-token-1").map(|p| p.name),
            Some("alice".into())
        );
        assert_eq!(a.bearer("alice-token-2"), None);
        // Without a lockout, any number of failures leaves the account usable.
        for _ in 0..10 {
            let _ = a.check_password("alice", "wrong", now);
        }
        assert!(a.check_password("alice", "pw-alice", now).is_ok());
    }

    #[test]
    fn lockout_locks_extends_and_expires() {
        let a = auth(Some(Lockout::new(3, Duration::from_secs(100))), 10);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert!(a.check_password("alice", "no", at(0)).is_err());
        assert!(a.check_password("alice", "no", at(1)).is_err());
        // A success in between resets the count.
        assert!(a.check_password("alice", "pw-alice", at(2)).is_ok());
        for s in 3..6 {
            assert_eq!(
                a.check_password("alice", "no", at(s)),
                Err(LoginFailure::BadPassword)
            );
        }
        // Locked now: even the right password fails, and extends the lock.
        assert_eq!(
            a.check_password("alice", "pw-alice", at(50)),
            Err(LoginFailure::Locked)
        );
        assert_eq!(
            a.check_password("alice", "pw-alice", at(120)),
            Err(LoginFailure::Locked)
        );
        assert!(a.check_password("alice", "pw-alice", at(221)).is_ok());
        // Other users are not affected.
        assert!(a.check_password("root", "pw-root", at(50)).is_ok());
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let a = auth(None, 3);
        let t0 = Instant::now();
        let Some(s) = a.new_session(Some("alice"), t0) else {
            panic!("no session");
        };
        assert_eq!(s.id.len(), 32);
        assert!(
            s.id.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(s.csrf.len(), 36);
        assert!(Auth::csrf_ok(&s, &s.csrf.clone()));
        assert!(!Auth::csrf_ok(&s, "nope"));
        // Used within the timeout, it lives on; idle past it, it is gone.
        assert!(a.session(&s.id, t0 + Duration::from_secs(50)).is_some());
        assert!(a.session(&s.id, t0 + Duration::from_secs(100)).is_some());
        assert!(a.session(&s.id, t0 + Duration::from_secs(161)).is_none());

        // At the bound, anonymous sessions go first.
        let Some(kept) = a.new_session(Some("alice"), t0) else {
            panic!("no session");
        };
        let Some(anon1) = a.new_session(None, t0 + Duration::from_secs(1)) else {
            panic!("no session");
        };
        let _anon2 = a.new_session(None, t0 + Duration::from_secs(2));
        let _new = a.new_session(None, t0 + Duration::from_secs(3));
        assert_eq!(a.session_count(), 3);
        assert!(a.session(&kept.id, t0 + Duration::from_secs(4)).is_some());
        assert!(a.session(&anon1.id, t0 + Duration::from_secs(4)).is_none());

        // Logging in replaces the session and its token.
        let p = Principal {
            name: "alice".into(),
            role: V2Role::User,
        };
        let Some(after) = a.log_in(Some(&kept.id), &p, t0 + Duration::from_secs(5)) else {
            panic!("no session");
        };
        assert_ne!(after.id, kept.id);
        assert_ne!(after.csrf, kept.csrf);
        assert!(a.session(&kept.id, t0 + Duration::from_secs(6)).is_none());
        a.invalidate(&after.id);
        assert!(a.session(&after.id, t0 + Duration::from_secs(6)).is_none());
    }
}
