//! Sessions kept between requests, connections and runs.
//!
//! Within a process, every client of one service and user shares one
//! record: the session cookie and CSRF token (so a job's keepalive thread
//! does not log in again), the password once it is known (so it is asked
//! for at most once), and a refused login (so it is never tried again).
//! Between runs, the cookie and CSRF token (never the password) are kept
//! in a file only the user may read, under the user's cache directory.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use log::{debug, warn};
use serde_json::{Value, json};

use super::settings::Secret;

/// The largest session file read.
const MAX_FILE: u64 = 64 * 1024;

/// A logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The `JSESSIONID` cookie's value.
    pub cookie: Secret,
    /// The header to send the CSRF token in, and the token.
    pub csrf: Option<(String, Secret)>,
}

/// What a process knows about one service and user.
#[derive(Debug, Default, Clone)]
pub(crate) struct Record {
    pub session: Option<Session>,
    /// The password, once known.
    pub password: Option<Secret>,
    /// Why a login was refused, once one was, and a fingerprint of the
    /// password that was refused: that password is never sent again (a
    /// different one, say a corrected one, may be tried once).
    pub refused: Option<(String, u64)>,
}

/// A fingerprint of a password, to recognise one already refused. It
/// stays in memory.
pub(crate) fn fingerprint(password: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in password.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn store() -> &'static Mutex<HashMap<String, Record>> {
    static STORE: OnceLock<Mutex<HashMap<String, Record>>> = OnceLock::new();
    STORE.get_or_init(Mutex::default)
}

/// The key of a service and user.
pub(crate) fn key(service: &str, user: &str) -> String {
    format!("{service}\n{user}")
}

/// This process's record for `key`.
pub(crate) fn get(key: &str) -> Record {
    store()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
        .unwrap_or_default()
}

/// Changes this process's record for `key`.
pub(crate) fn update(key: &str, f: impl FnOnce(&mut Record)) {
    let mut map = store().lock().unwrap_or_else(PoisonError::into_inner);
    f(map.entry(key.to_owned()).or_default());
}

/// The file that caches `key`'s session in `dir`: named by a hash of the
/// service and user, so that neither shows in a directory listing.
fn file_for(dir: &Path, key: &str) -> PathBuf {
    // FNV-1a, 64 bits: a name, not a secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    dir.join(format!("v2-session-{h:016x}.json"))
}

/// Whether only the owner may read or write `meta`'s file.
#[cfg(unix)]
pub(crate) fn is_private(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 == 0
}

#[cfg(not(unix))]
pub(crate) fn is_private(_meta: &fs::Metadata) -> bool {
    true
}

/// The session cached in `dir` for `key`, if there is a usable one.
pub(crate) fn load(dir: &Path, key: &str) -> Option<Session> {
    let path = file_for(dir, key);
    let file = File::open(&path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || !is_private(&meta) {
        warn!(
            "ignoring the session cache {}: others may read it",
            path.display()
        );
        return None;
    }
    let mut text = String::new();
    file.take(MAX_FILE).read_to_string(&mut text).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    // The file must be for this service and user: a hash can collide.
    if v.get("key")?.as_str()? != key {
        return None;
    }
    let cookie = Secret::new(v.get("cookie")?.as_str()?);
    let csrf = match (v.get("csrf-header"), v.get("csrf-token")) {
        (Some(Value::String(h)), Some(Value::String(t))) => Some((h.clone(), Secret::new(t))),
        _ => None,
    };
    debug!("using the cached session in {}", path.display());
    Some(Session { cookie, csrf })
}

/// Caches `session` (or, with `None`, forgets the cached one) for `key` in
/// `dir`, in a file only the user may read, written whole or not at all.
pub(crate) fn save(dir: &Path, key: &str, session: Option<&Session>) {
    let path = file_for(dir, key);
    let Some(session) = session else {
        let _ = fs::remove_file(&path);
        return;
    };
    if let Err(e) = write_private(dir, &path, session, key) {
        debug!("cannot cache the session in {}: {e}", path.display());
    }
}

fn write_private(dir: &Path, path: &Path, session: &Session, key: &str) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let doc = json!({
        "key": key,
        "cookie": session.cookie.expose(),
        "csrf-header": session.csrf.as_ref().map(|(h, _)| h.as_str()),
        "csrf-token": session.csrf.as_ref().map(|(_, t)| t.expose()),
    });
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&temp)?;
        // A file left by someone else with wider permissions: narrow them.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(doc.to_string().as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates `dir` (and its parents) with only the user allowed in.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_sessions_are_private_and_checked() {
        let dir = std::env::temp_dir().join(format!("spalloc-session-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let k = key("http://h/", "alice");
        let s = Session {
            cookie: Secret::new("C00KIE"),
            csrf: Some(("X-CSRF-TOKEN".into(), Secret::new("tok"))),
        };
        assert_eq!(load(&dir, &k), None);
        save(&dir, &k, Some(&s));
        assert_eq!(load(&dir, &k), Some(s.clone()));
        // Another user's key does not read it.
        assert_eq!(load(&dir, &key("http://h/", "bob")), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = file_for(&dir, &k);
            let mode = fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = fs::metadata(&dir).expect("dir").permissions().mode();
            assert_eq!(dmode & 0o777, 0o700);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
            assert_eq!(load(&dir, &k), None, "a readable cache is not trusted");
        }
        save(&dir, &k, None);
        assert_eq!(load(&dir, &k), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
