//! The `keysrv` client commands, run as a user would (the real binary, a
//! spawned `keysrv server` on the embedded backend with dev tokens): output,
//! `--json` fields, exit statuses, the token file, files.
//!
//! The binary is `$KEYSRV_BIN`, else the one cargo built for this test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Server, unique};

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const MERCUTIO: &str = "mercutio@montague.lit";

fn keysrv_bin() -> PathBuf {
    std::env::var_os("KEYSRV_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keysrv")), PathBuf::from)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    raw: Vec<u8>,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    fn error_json(&self) -> Value {
        serde_json::from_str(&self.stderr).unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A user of the CLI: its own config directory (and home), talking to
/// `addr`, with `token` in KEYSRV_TOKEN when set.
struct User {
    addr: String,
    home: PathBuf,
    token: Option<String>,
}

impl User {
    fn new(addr: &str) -> Self {
        let home = std::env::temp_dir().join(format!("keysrv-cli-test-{}", unique()));
        std::fs::create_dir_all(&home).expect("home");
        Self { addr: addr.to_owned(), home, token: None }
    }

    fn with_token(addr: &str, token: String) -> Self {
        let mut user = Self::new(addr);
        user.token = Some(token);
        user
    }

    fn config_dir(&self) -> PathBuf {
        self.home.join("config")
    }

    fn run_in(&self, dir: &Path, args: &[&str], stdin: &[u8]) -> Out {
        let mut cmd = Command::new(keysrv_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("KEYSRV_") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("XDG_CONFIG_HOME")
            .env("HOME", &self.home)
            .env("KEYSRV_ADDR", &self.addr)
            .env("KEYSRV_CONFIG_DIR", self.config_dir())
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = &self.token {
            cmd.env("KEYSRV_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("running keysrv");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin).expect("writing stdin");
        drop(input);
        let out = child.wait_with_output().expect("keysrv output");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            raw: out.stdout,
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_in(&self.home, args, b"")
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.run_in(&self.home, args, stdin.as_bytes())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("no string field {name:?} in {v}"))
}

// ---------------------------------------------------------------------------

#[test]
fn every_command_has_help() {
    let user = User::new("http://127.0.0.1:9");
    let commands: &[&[&str]] = &[
        &[],
        &["login"],
        &["logout"],
        &["conversation"],
        &["conversation", "create"],
        &["conversation", "show"],
        &["conversation", "delete"],
        &["member"],
        &["member", "add"],
        &["member", "remove"],
        &["key"],
        &["key", "current"],
        &["key", "rotate"],
        &["key", "get"],
        &["seal"],
        &["open"],
        &["file"],
        &["file", "upload"],
        &["file", "download"],
        &["file", "show"],
        &["file", "delete"],
        &["server"],
        &["token"],
    ];
    for c in commands {
        let mut args = c.to_vec();
        args.push("--help");
        let out = user.run(&args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stdout.contains("Usage: keysrv"), "{args:?}: {out:?}");
    }
    let root = user.run(&["--help"]);
    for code in 0..=7 {
        assert!(root.stdout.contains(&format!("\n  {code}  ")), "exit status {code} is documented: {root:?}");
    }
    assert!(user.run(&["key", "get", "--help"]).stdout.contains("--show-key"));
}

#[test]
fn usage_errors_exit_2() {
    let user = User::new("http://127.0.0.1:9");
    for args in [&["conversation"][..], &["key", "get"], &["seal", "--to", JULIET], &["bogus"], &["file", "download"]] {
        assert_eq!(user.run(args).code, 2, "{args:?}");
    }
    let out = user.run_stdin(&["login", "-"], "not a token");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not a JWT"), "{out:?}");
    assert!(!out.stderr.contains("not a token"), "the token is not echoed back: {out:?}");
}

/// Ids are base64url, so one in 32 begins with `-` or `_`; one in 64 with `-`,
/// which an argument parser would otherwise take for a flag (a CI run failed
/// that way on a freshly created conversation).
#[test]
fn ids_that_begin_with_a_hyphen_are_ids_not_flags() {
    let server = Server::start();
    let romeo = User::with_token(&server.url, server.token(ROMEO));
    let file = romeo.home.join("note.txt");
    std::fs::write(&file, b"hello").unwrap();
    let file = file.to_str().unwrap();
    let id = "-q3hV8dK2mTzR0pLxW7bNg";
    let commands: [&[&str]; 13] = [
        &["conversation", "show", id],
        &["conversation", "delete", id],
        &["member", "add", id, JULIET],
        &["member", "remove", id, JULIET],
        &["key", "current", id],
        &["key", "rotate", id],
        &["key", "get", id],
        &["seal", "--conversation", id, "--to", JULIET, "hi"],
        &["file", "upload", id, file],
        &["file", "download", id],
        &["file", "show", id],
        &["file", "delete", id],
        &["seal", "--conversation", "Yq3hV8dK2mTzR0pLxW7bNg", "--to", JULIET, "--file-id", id],
    ];
    for args in commands {
        let out = romeo.run(args);
        assert_eq!(out.code, 3, "{args:?} is a 404, not a usage error: {out:?}");
    }
    // A real flag in an id's place is still a flag.
    let out = romeo.run(&["conversation", "show", "--help"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Usage"), "{out:?}");
}

#[test]
fn no_token_or_a_rejected_one_exits_4() {
    let server = Server::start();
    let user = User::new(&server.url);
    let out = user.run(&["conversation", "show", "Yq3hV8dK2mTzR0pLxW7bNg"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("keysrv login"), "{out:?}");

    // A token keysrv did not sign: login refuses to store it.
    let good = server.token(ROMEO);
    let (signed, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{signed}.c2lnbmF0dXJl");
    let out = user.run_stdin(&["login"], &forged);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(!user.config_dir().join("token").exists());
    assert!(!out.stderr.contains(&forged) && !out.stdout.contains(&forged), "{out:?}");

    let with_bad = User::with_token(&server.url, forged);
    let out = with_bad.run(&["--json", "conversation", "create", "--member", JULIET]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.error_json()["error"]["status"], 401);
}

#[test]
fn login_stores_a_private_token_and_logout_removes_it() {
    let server = Server::start();
    let user = User::new(&server.url);
    let token = server.token(ROMEO);
    let out = user.run_stdin(&["login"], &format!("{token}\n")).ok();
    assert!(out.stdout.contains(ROMEO) && out.stdout.contains("unverified"), "{out:?}");
    assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token), "{out:?}");
    let path = user.config_dir().join("token");
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let out = user.run_stdin(&["--json", "login", "-"], &token).ok();
    let v = out.json();
    assert_eq!(field(&v, "username"), ROMEO);
    assert_eq!(field(&v, "token_file"), path.to_str().unwrap());
    assert!(field(&v, "expires_at").ends_with('Z'));
    assert_eq!((v["claims_verified"].as_bool(), v["accepted_by_server"].as_bool()), (Some(false), Some(true)));

    // The stored token is used.
    user.run(&["conversation", "create", "--member", JULIET]).ok();

    let v = user.run(&["--json", "logout"]).ok().json();
    assert_eq!(v["removed"], true);
    assert!(!path.exists());
    assert_eq!(user.run(&["--json", "logout"]).ok().json()["removed"], false);
    assert_eq!(user.run(&["conversation", "create", "--member", JULIET]).code, 4);
}

#[test]
fn create_seal_open_round_trip() {
    let server = Server::start();
    let romeo = User::new(&server.url);
    romeo.run_stdin(&["login"], &server.token(ROMEO)).ok();
    let juliet = User::with_token(&server.url, server.token(JULIET));
    let mercutio = User::with_token(&server.url, server.token(MERCUTIO));

    let created = romeo.run(&["--json", "conversation", "create", "--member", JULIET]).ok().json();
    let id = field(&created, "conversation_id").to_owned();
    let first = field(&created, "objectid").to_owned();
    assert_eq!(field(&created, "history"), "shared");
    assert!(first.starts_with(&format!("{id}.")));

    // Plain text output.
    let show = romeo.run(&["conversation", "show", &id]).ok();
    assert!(show.stdout.contains(&format!("owner             {ROMEO}")), "{show:?}");
    let v = romeo.run(&["conversation", "show", &id, "--json"]).ok().json();
    assert_eq!(field(&v, "current_objectid"), first);
    assert_eq!(v["members"].as_array().map(Vec::len), Some(2));

    let sealed = romeo.run(&["seal", "--conversation", &id, "--to", JULIET, "But, soft! what light"]).ok();
    let stanza = sealed.stdout.trim().to_owned();
    assert!(stanza.starts_with(&format!("<message xmlns='jabber:client' to='{JULIET}' type='chat' id='")));
    assert!(stanza.contains(&format!("objectid='{first}'")) && !stanza.contains("soft"), "{stanza}");

    let opened = juliet.run_stdin(&["open", "--from", ROMEO], &stanza).ok();
    assert!(opened.stdout.ends_with("\nBut, soft! what light\n"), "{opened:?}");
    assert!(opened.stdout.starts_with(&format!("From: {ROMEO}\nTo: {JULIET}\nDate: ")), "{opened:?}");
    let v = juliet.run_stdin(&["open", "--json", "--from", ROMEO], &stanza).ok().json();
    assert_eq!(field(&v, "body"), "But, soft! what light");
    assert_eq!((field(&v, "from"), field(&v, "to"), field(&v, "objectid")), (ROMEO, JULIET, first.as_str()));
    assert!(v["files"].as_array().is_some_and(Vec::is_empty) && v["time"].is_string());

    // Sealed with --json, from stdin, as the stanza a server delivers.
    let v = romeo
        .run_stdin(&["seal", "--json", "--conversation", &id, "--to", JULIET, "--id", "m1", "-"], "two\nlines\n")
        .ok()
        .json();
    assert_eq!((field(&v, "id"), field(&v, "from"), field(&v, "type")), ("m1", ROMEO, "chat"));
    let delivered = field(&v, "stanza").replacen("<message ", &format!("<message from='{ROMEO}/orchard' "), 1);
    let v = juliet.run_stdin(&["open", "--json"], &delivered).ok().json();
    assert_eq!(field(&v, "body"), "two\nlines");
    // The stanza and the command line disagreeing about the sender.
    assert_eq!(juliet.run_stdin(&["open", "--from", MERCUTIO], &delivered).code, 2);

    // Not a member: 3. Tampered: 7. Not a stanza: 2.
    assert_eq!(mercutio.run_stdin(&["open", "--from", ROMEO], &stanza).code, 3);
    let element_at = stanza.find("objectid='").unwrap();
    let payload_at = element_at + stanza[element_at..].find("'>").unwrap() + 2;
    let flip = if &stanza[payload_at + 10..payload_at + 11] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flip}{}", &stanza[..payload_at + 10], &stanza[payload_at + 11..]);
    let out = juliet.run_stdin(&["open", "--json", "--from", ROMEO], &tampered);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.error_json()["error"]["kind"], "decrypt");
    assert_eq!(juliet.run_stdin(&["open", "--from", ROMEO], "<iq/>").code, 2);
    // Opened as if someone else sent it: the AAD does not match.
    assert_eq!(juliet.run_stdin(&["open", "--from", MERCUTIO], &stanza).code, 7);

    // Keys: described, the key itself only on request.
    let v = juliet.run(&["--json", "key", "get", &first]).ok().json();
    assert_eq!(
        (field(&v, "objectid"), field(&v, "conversation_id"), field(&v, "alg")),
        (first.as_str(), id.as_str(), "A256GCM")
    );
    assert!(v.get("key").is_none(), "{v}");
    let text = juliet.run(&["key", "get", &first]).ok();
    assert!(text.stdout.contains("--show-key"), "{text:?}");
    let v = juliet.run(&["--json", "key", "get", &first, "--show-key"]).ok().json();
    assert_eq!(field(&v, "key").len(), 44);
    let rotated = juliet.run(&["--json", "key", "rotate", &id]).ok().json();
    let second = field(&rotated, "objectid").to_owned();
    assert_ne!(second, first);
    assert_eq!(field(&romeo.run(&["--json", "key", "current", &id]).ok().json(), "objectid"), second);

    // Members: a role a member lacks is 4, a conflict 6; with --json the
    // kind is keysrv's problem type, for scripts to branch on.
    assert_eq!(juliet.run(&["member", "add", &id, MERCUTIO]).code, 4);
    assert_eq!(romeo.run(&["member", "remove", &id, ROMEO]).code, 6);
    let out = juliet.run(&["--json", "member", "add", &id, MERCUTIO]);
    let e = out.error_json();
    assert_eq!((out.code, e["error"]["kind"].as_str()), (4, Some("role-required")), "{out:?}");
    assert_eq!(e["error"]["type"].as_str(), Some("urn:keysrv:problem:role-required"));
    let out = romeo.run(&["--json", "member", "remove", &id, ROMEO]);
    assert_eq!((out.code, out.error_json()["error"]["kind"].as_str()), (6, Some("owner-cannot-leave")), "{out:?}");
    let v = romeo.run(&["--json", "member", "add", &id, "Mercutio@Montague.LIT", "--role", "admin"]).ok().json();
    assert_eq!((field(&v, "jid"), field(&v, "role")), (MERCUTIO, "admin"));
    // Mercutio reads the key now, but a one-to-one message under a
    // conversation of three is refused (PROTOCOL 5, rule 12): 7.
    assert_eq!(field(&mercutio.run(&["--json", "key", "get", &first]).ok().json(), "objectid"), first);
    let out = mercutio.run_stdin(&["open", "--json", "--from", ROMEO], &stanza);
    assert_eq!((out.code, out.error_json()["error"]["kind"].as_str()), (7, Some("conversation-mismatch")), "{out:?}");
    // Nor does `seal` write one.
    let out = romeo.run(&["--json", "seal", "--conversation", &id, "--to", JULIET, "Not for Mercutio"]);
    assert_eq!((out.code, out.error_json()["error"]["kind"].as_str()), (7, Some("conversation-mismatch")), "{out:?}");
    let v = romeo.run(&["--json", "member", "remove", &id, MERCUTIO]).ok().json();
    assert_ne!(field(&v, "current_objectid"), second);
    assert_eq!(mercutio.run_stdin(&["open", "--from", ROMEO], &stanza).code, 3);

    // Crypto-shred: owner only, then gone.
    assert_eq!(juliet.run(&["conversation", "delete", &id]).code, 4);
    assert_eq!(romeo.run(&["--json", "conversation", "delete", &id]).ok().json()["deleted"], true);
    let out = juliet.run(&["--json", "conversation", "show", &id]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.is_empty());
    let e = out.error_json();
    assert_eq!((e["error"]["exit_code"].as_u64(), e["error"]["status"].as_u64()), (Some(3), Some(404)));
    assert_eq!(field(&e["error"], "kind"), "not-found");
    assert_eq!(juliet.run_stdin(&["open", "--from", ROMEO], &stanza).code, 3);
}

#[test]
fn unreachable_keysrv_exits_5() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let user = User::with_token(&addr, "a.b.c".into());
    let out = user.run(&["--json", "conversation", "show", "Yq3hV8dK2mTzR0pLxW7bNg"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.error_json()["error"]["kind"], "retry-later");
}

#[test]
fn file_upload_download_round_trip() {
    let server = Server::start();
    let romeo = User::with_token(&server.url, server.token(ROMEO));
    let juliet = User::with_token(&server.url, server.token(JULIET));
    let mercutio = User::with_token(&server.url, server.token(MERCUTIO));
    let id =
        field(&romeo.run(&["--json", "conversation", "create", "--member", JULIET]).ok().json(), "conversation_id")
            .to_owned();

    let photo: Vec<u8> = (0..150_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let source = romeo.home.join("orchard map.png");
    std::fs::write(&source, &photo).unwrap();
    let up = romeo.run(&["--json", "file", "upload", &id, source.to_str().unwrap()]).ok().json();
    let file_id = field(&up, "file_id").to_owned();
    let reference = &up["file_ref"];
    assert_eq!(field(reference, "id"), file_id);
    assert_eq!(field(reference, "name"), "orchard map.png");
    assert_eq!(field(reference, "media_type"), "image/png");
    assert_eq!(reference["size"], 150_000);
    assert_eq!(field(reference, "sha256").len(), 44);
    let text =
        romeo.run(&["file", "upload", &id, source.to_str().unwrap(), "--content-type", "application/x-map"]).ok();
    assert!(text.stdout.starts_with("file_id ") && text.stdout.contains("application/x-map"), "{text:?}");

    // Attached to a message; the receiver gets the same reference.
    let reference_arg = reference.to_string();
    let sealed = romeo
        .run(&["--json", "seal", "--conversation", &id, "--to", JULIET, "--file-ref", &reference_arg, "The map"])
        .ok()
        .json();
    let opened = juliet.run_stdin(&["--json", "open", "--from", ROMEO], field(&sealed, "stanza")).ok().json();
    assert_eq!(&opened["files"][0], reference);
    // A file alone, by id (a warning: no hash).
    let out = romeo.run(&["--json", "seal", "--conversation", &id, "--to", JULIET, "--file-id", &file_id]).ok();
    assert!(out.json()["warnings"][0].as_str().is_some_and(|w| w.contains("SHA-256")), "{out:?}");

    // Saved under its name (never a path), checked, not overwritten.
    let downloads = juliet.home.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let got = opened["files"][0].to_string();
    let v = juliet.run_in(&downloads, &["--json", "file", "download", "--file-ref", &got], b"").ok().json();
    assert_eq!((v["size"].as_u64(), v["sha256_checked"].as_bool()), (Some(150_000), Some(true)));
    assert_eq!(std::fs::read(downloads.join("orchard map.png")).unwrap(), photo);
    assert_eq!(juliet.run_in(&downloads, &["file", "download", "--file-ref", &got], b"").code, 2);
    juliet.run_in(&downloads, &["file", "download", "--file-ref", &got, "--force"], b"").ok();
    let hostile = got.replace("orchard map.png", "../../evil.png");
    juliet.run_in(&downloads, &["file", "download", "--file-ref", &hostile], b"").ok();
    assert!(downloads.join("evil.png").exists() && !juliet.home.join("evil.png").exists());

    // To stdout, by id and hash.
    let sha = field(reference, "sha256");
    let out = juliet.run(&["file", "download", &file_id, "--sha256", sha, "-o", "-"]).ok();
    assert_eq!(out.raw, photo);

    // The wrong hash: 7, and nothing left behind.
    let wrong = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let out = juliet.run_in(&downloads, &["--json", "file", "download", &file_id, "--sha256", wrong, "-o", "x"], b"");
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.error_json()["error"]["kind"], "hash-mismatch");
    let left: Vec<_> = std::fs::read_dir(&downloads).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only the two good downloads: {left:?}");
    assert_eq!(juliet.run(&["file", "download", "--file-ref", &got, "--size", "3", "-o", "-"]).code, 2);

    // Metadata, and who may see it.
    let v = juliet.run(&["--json", "file", "show", &file_id]).ok().json();
    assert_eq!(
        (field(&v, "uploader"), field(&v, "content_type"), field(&v, "conversation_id")),
        (ROMEO, "image/png", id.as_str())
    );
    assert!(!v.to_string().contains("http"), "no download URL: {v}");
    assert_eq!(mercutio.run(&["file", "show", &file_id]).code, 3);
    assert_eq!(mercutio.run(&["file", "download", "--file-ref", &got, "-o", "-"]).code, 3);
    assert_eq!(mercutio.run(&["file", "upload", &id, source.to_str().unwrap()]).code, 3);

    assert_eq!(romeo.run(&["--json", "file", "delete", &file_id]).ok().json()["deleted"], true);
    assert_eq!(juliet.run(&["file", "show", &file_id]).code, 3);
}

/// `keysrv token` mints a claim of identity: only the canonical spelling of
/// a JID, on either backend (`--backend aws` refuses before it creates a
/// Cognito user), and a lifetime that cannot overflow.
#[test]
fn token_refuses_non_canonical_jids_and_absurd_lifetimes() {
    let user = User::new("http://127.0.0.1:1");
    let data_dir = user.home.join("data");
    let data = data_dir.to_str().expect("utf-8 path");
    let ok = user.run(&["token", "--data-dir", data, JULIET]).ok();
    assert_eq!(ok.stdout.trim().split('.').count(), 3, "a JWT: {ok:?}");
    for backend in ["embedded", "aws"] {
        for jid in
            ["JULIET@capulet.lit", "juliet@capulet.lit.", "jul\u{ad}iet@capulet.lit", "\u{ff2a}uliet@capulet.lit"]
        {
            let out = user.run(&["token", "--backend", backend, "--data-dir", data, jid]);
            assert_ne!(out.code, 0, "{backend} {jid:?}: {out:?}");
            assert!(out.stderr.contains("canonical") || out.stderr.contains("invisible"), "{backend} {jid:?}: {out:?}");
            assert!(!out.stderr.contains("panicked"), "{out:?}");
        }
    }
    for ttl in ["18446744073709551615", "0", "99999999999"] {
        let out = user.run(&["token", "--data-dir", data, "--ttl", ttl, JULIET]);
        assert_eq!(out.code, 2, "--ttl {ttl} is a usage error: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
}
