//! The caller's token: `KEYSRV_TOKEN`, else the one `keysrv login` stored.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keysrv::cli::LoginArgs;
use keysrv_client::{Client, Error, Zeroizing};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Ctx, EXIT_NOT_ALLOWED, Failure, Output, rfc3339, table};

/// Tokens are a few kB at most; anything much larger is not one.
const MAX_TOKEN_BYTES: u64 = 64 << 10;

/// Where `login` keeps the token: `$KEYSRV_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/keysrv`, else `~/.keysrv`.
pub fn config_dir() -> Result<PathBuf, Failure> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("KEYSRV_CONFIG_DIR") {
        return Ok(dir);
    }
    if let Some(xdg) = var("XDG_CONFIG_HOME") {
        return Ok(xdg.join("keysrv"));
    }
    let home = var("HOME")
        .or_else(|| var("USERPROFILE"))
        .ok_or_else(|| Failure::usage("cannot tell where to keep the token: set KEYSRV_CONFIG_DIR (or HOME)"))?;
    Ok(home.join(".keysrv"))
}

fn token_path() -> Result<PathBuf, Failure> {
    Ok(config_dir()?.join("token"))
}

/// The token to call keysrv with.
pub fn current_token(ctx: &Ctx) -> Result<Zeroizing<String>, Failure> {
    if let Some(t) = std::env::var_os("KEYSRV_TOKEN").filter(|t| !t.is_empty()) {
        let t = t.into_string().map_err(|_| Failure::usage("KEYSRV_TOKEN is not valid UTF-8"))?;
        return Ok(Zeroizing::new(t.trim().to_owned()));
    }
    let path = token_path()?;
    match read_token_file(&path) {
        Ok(Some(token)) => {
            if loosely_protected(&path) {
                ctx.warn(format!("{} can be read by other users: chmod 600 it", path.display()));
            }
            Ok(token)
        }
        Ok(None) => {
            Err(Failure::new(EXIT_NOT_ALLOWED, "unauthorized", "no token: run `keysrv login`, or set KEYSRV_TOKEN"))
        }
        Err(e) => Err(Failure::io(format!("reading {}", path.display()), &e)),
    }
}

fn read_token_file(path: &Path) -> io::Result<Option<Zeroizing<String>>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_TOKEN_BYTES).read_to_string(&mut text)?;
    let token = text.trim();
    Ok((!token.is_empty()).then(|| Zeroizing::new(token.to_owned())))
}

#[cfg(unix)]
fn loosely_protected(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn loosely_protected(_: &Path) -> bool {
    false
}

/// Writes the token where only the user can read it, replacing any other
/// in one step (a reader never sees half a token).
fn store_token(path: &Path, token: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let tmp = dir.join(format!(".token.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    match written.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// What a JWT says about itself, read without checking its signature (keysrv
/// checks it on every request; this is only for showing and defaults).
pub struct Claims {
    pub username: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
}

pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let payload: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    Some(Claims {
        username: payload.get("username").and_then(Value::as_str).map(str::to_owned),
        expires_at: payload
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok()),
    })
}

/// Reads the token from stdin, without echo when that is a terminal.
fn read_token_from_stdin() -> Result<Zeroizing<String>, Failure> {
    let stdin = io::stdin();
    let mut text = Zeroizing::new(String::new());
    let read = if stdin.is_terminal() {
        eprint!("Token (not shown): ");
        let echo_off = set_echo(false);
        let r = stdin.lock().read_line(&mut text);
        if echo_off {
            set_echo(true);
        }
        eprintln!();
        r
    } else {
        stdin.lock().take(MAX_TOKEN_BYTES).read_to_string(&mut text)
    };
    read.map_err(|e| Failure::io("reading the token from stdin", &e))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// Turns the terminal's echo on or off with stty(1), so a pasted token is not
/// shown; true if it worked.
#[cfg(unix)]
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(not(unix))]
fn set_echo(_: bool) -> bool {
    false
}

/// A conversation id that exists nowhere: keysrv answers 404 to a token it
/// accepts and 401 to one it does not (there is no "who am I" route).
const PROBE_CONVERSATION: &str = "keysrv-login-probe-AAAA";

pub async fn login(ctx: &Ctx, args: LoginArgs) -> Result<Output, Failure> {
    let token = match args.token.as_deref() {
        None | Some("-") => read_token_from_stdin()?,
        Some(t) => Zeroizing::new(t.trim().to_owned()),
    };
    if token.is_empty() {
        return Err(Failure::usage("no token given"));
    }
    let claims = claims(&token)
        .ok_or_else(|| Failure::usage("that is not a JWT (three base64url parts, the second a JSON object)"))?;
    let now = OffsetDateTime::now_utc();
    if let Some(exp) = claims.expires_at
        && exp <= now
    {
        return Err(Failure::new(EXIT_NOT_ALLOWED, "unauthorized", format!("the token expired at {}", rfc3339(exp))));
    }
    let checked = if args.no_check {
        false
    } else {
        let client = Client::with_token(&ctx.addr, token.as_str())?;
        match client.conversation(PROBE_CONVERSATION).await {
            Err(Error::NotFound(_)) | Ok(_) => true,
            Err(e @ Error::Unauthorized(_)) => {
                let mut f = Failure::from(e);
                f.message = format!("keysrv at {} does not accept the token: {}", ctx.addr, f.message);
                return Err(f);
            }
            Err(e) => {
                let mut f = Failure::from(e);
                f.message = format!(
                    "could not check the token with keysrv at {}: {} (--no-check stores it anyway)",
                    ctx.addr, f.message
                );
                return Err(f);
            }
        }
    };
    let path = token_path()?;
    store_token(&path, &token).map_err(|e| Failure::io(format!("storing the token in {}", path.display()), &e))?;
    if std::env::var_os("KEYSRV_TOKEN").is_some_and(|t| !t.is_empty()) {
        ctx.warn("KEYSRV_TOKEN is set and is used instead of the stored token");
    }
    let username = claims.username.clone().unwrap_or_default();
    let expires = claims.expires_at.map(rfc3339);
    let mut rows = vec![
        ("token_file", path.display().to_string()),
        (
            "username",
            format!("{} (unverified: read from the token)", if username.is_empty() { "-" } else { &username }),
        ),
        ("expires_at", expires.clone().map_or_else(|| "-".into(), |e| format!("{e} (unverified)"))),
    ];
    rows.push(("checked", if checked { format!("keysrv at {} accepts it", ctx.addr) } else { "no".into() }));
    let json = json!({
        "token_file": path.display().to_string(),
        "username": claims.username,
        "expires_at": expires,
        "claims_verified": false,
        "accepted_by_server": checked,
    });
    Ok(Output::new(json, table(&rows)))
}

pub fn logout(_ctx: &Ctx) -> Result<Output, Failure> {
    let path = token_path()?;
    let removed = match fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Failure::io(format!("removing {}", path.display()), &e)),
    };
    let text = if removed {
        format!("Removed {}", path.display())
    } else {
        format!("No stored token ({} does not exist)", path.display())
    };
    Ok(Output::new(json!({ "token_file": path.display().to_string(), "removed": removed }), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn claims_are_read_without_verifying() {
        let c = claims(&jwt(r#"{"username":"romeo@montague.lit","exp":1738315800}"#)).unwrap();
        assert_eq!(c.username.as_deref(), Some("romeo@montague.lit"));
        assert_eq!(c.expires_at.map(|t| t.unix_timestamp()), Some(1_738_315_800));
        let c = claims(&jwt("{}")).unwrap();
        assert!(c.username.is_none() && c.expires_at.is_none());
        for bad in ["", "a.b", "a.b.c.d", &jwt("[1]"), &jwt("not json"), "a.!!!.c"] {
            assert!(claims(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_token_file_is_private_and_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("keysrv-cli-auth-{}", std::process::id()));
        let path = dir.join("sub").join("token");
        store_token(&path, "first").unwrap();
        store_token(&path, "second").unwrap();
        assert_eq!(read_token_file(&path).unwrap().unwrap().as_str(), "second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
            assert!(!loosely_protected(&path));
        }
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        fs::remove_dir_all(&dir).unwrap();
        assert!(read_token_file(&path).unwrap().is_none());
    }
}
