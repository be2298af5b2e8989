//! The client commands (`keysrv login`, `conversation`, `seal`, `file`, …):
//! a thin shell over keysrv-client. Output is text, or with `--json` one
//! object per command with stable field names (docs/CLI.md); failures map to
//! the exit statuses `cli::EXIT_STATUS_HELP` lists.

mod auth;
mod files;
mod messages;
mod resources;

use std::cell::RefCell;
use std::io::Write;
use std::process::ExitCode;

use keysrv::cli::{Command, GlobalArgs};
use keysrv_client::wire::WireError;
use keysrv_client::{Client, Error, Problem};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const EXIT_OTHER: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_FOUND: u8 = 3;
pub const EXIT_NOT_ALLOWED: u8 = 4;
pub const EXIT_RETRY_LATER: u8 = 5;
pub const EXIT_CONFLICT: u8 = 6;
pub const EXIT_INTEGRITY: u8 = 7;

/// Why a command failed: its exit status, a stable kind for `--json`, and a
/// message that never holds a token or a key.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    kind: &'static str,
    message: String,
    /// Boxed: a Problem is four strings, and every Result carries a Failure.
    problem: Option<Box<Problem>>,
}

impl Failure {
    pub fn new(code: u8, kind: &'static str, message: impl Into<String>) -> Self {
        Self { code, kind, message: message.into(), problem: None }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, "usage", message)
    }

    pub fn io(context: impl std::fmt::Display, e: &std::io::Error) -> Self {
        Self::new(EXIT_OTHER, "io", format!("{context}: {e}"))
    }

    fn report(&self, json: bool, warnings: Vec<String>) {
        if json {
            // keysrv's problem type when it answered with one (stable, for
            // scripts to branch on); else the kind of local failure.
            let kind = self.problem.as_ref().and_then(|p| p.name()).unwrap_or(self.kind);
            let mut error = json!({ "exit_code": self.code, "kind": kind, "message": self.message });
            if let Some(p) = &self.problem {
                error["status"] = json!(p.status);
                error["title"] = json!(p.title);
                error["detail"] = json!(p.detail);
                error["type"] = json!(p.kind);
            }
            let mut out = json!({ "error": error });
            if !warnings.is_empty() {
                out["warnings"] = json!(warnings);
            }
            eprintln!("{out}");
        } else {
            for w in warnings {
                eprintln!("keysrv: warning: {w}");
            }
            eprintln!("keysrv: {}", self.message);
        }
    }
}

/// The error's message followed by whatever its sources add (reqwest's
/// own message is "error sending request", the reason is further down).
fn message_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !message.contains(&part) {
            message.push_str(": ");
            message.push_str(&part);
        }
        source = s.source();
    }
    message
}

fn wire_failure(e: &WireError) -> (u8, &'static str) {
    let kind = e.kind();
    let code = match kind {
        "decrypt"
        | "envelope-mismatch"
        | "objectid-mismatch"
        | "unsupported-version"
        | "invalid-envelope"
        | "sender-not-member"
        | "conversation-mismatch"
        | "untrusted-wrapper" => EXIT_INTEGRITY,
        "key-exhausted" | "random" => EXIT_OTHER,
        _ => EXIT_USAGE,
    };
    (code, kind)
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let (code, kind) = match &e {
            Error::BadRequest(_) | Error::Config(_) => (EXIT_USAGE, "bad-request"),
            Error::NotFound(_) => (EXIT_NOT_FOUND, "not-found"),
            Error::Unauthorized(_) | Error::Token(_) => (EXIT_NOT_ALLOWED, "unauthorized"),
            Error::Forbidden(_) => (EXIT_NOT_ALLOWED, "forbidden"),
            Error::RetryLater { .. } | Error::Transport(_) => (EXIT_RETRY_LATER, "retry-later"),
            Error::Conflict(_) => (EXIT_CONFLICT, "conflict"),
            Error::HashMismatch { .. } => (EXIT_INTEGRITY, "hash-mismatch"),
            Error::SizeMismatch { .. } => (EXIT_INTEGRITY, "size-mismatch"),
            Error::Wire(w) => wire_failure(w),
            Error::Server(_) => (EXIT_OTHER, "server-error"),
            Error::Protocol(_) => (EXIT_OTHER, "protocol"),
            Error::Io(_) => (EXIT_OTHER, "io"),
            _ => (EXIT_OTHER, "error"),
        };
        let mut message = message_chain(&e);
        if matches!(e, Error::Unauthorized(_)) {
            message.push_str(" (log in again with `keysrv login`, or set KEYSRV_TOKEN)");
        }
        Self { code, kind, message, problem: e.problem().cloned().map(Box::new) }
    }
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Error::Wire(e).into()
    }
}

/// What a command prints: `json` with --json, else `text` (nothing when empty).
pub struct Output {
    pub json: Value,
    pub text: String,
}

impl Output {
    pub fn new(json: Value, text: impl Into<String>) -> Self {
        Self { json, text: text.into() }
    }

    /// Nothing more to print (the command wrote its output itself).
    pub fn none() -> Self {
        Self { json: Value::Null, text: String::new() }
    }
}

/// Aligned `name  value` lines.
pub fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::io("writing to stdout", &e)),
        _ => Ok(()),
    }
}

/// What every client command shares: where keysrv is, the output mode, and
/// the warnings to show at the end.
pub struct Ctx {
    pub addr: String,
    pub json: bool,
    warnings: RefCell<Vec<String>>,
}

/// An API client with the caller's token, and what the token says about
/// the caller (unverified).
pub struct Session {
    pub client: Client,
    pub username: Option<String>,
}

impl Ctx {
    pub fn warn(&self, warning: impl Into<String>) {
        self.warnings.borrow_mut().push(warning.into());
    }

    pub fn session(&self) -> Result<Session, Failure> {
        let token = auth::current_token(self)?;
        let username = auth::claims(&token).and_then(|c| c.username);
        let client = Client::with_token(&self.addr, token.as_str())?;
        Ok(Session { client, username })
    }
}

pub async fn run(global: &GlobalArgs, command: Command) -> ExitCode {
    let ctx = Ctx { addr: global.addr.clone(), json: global.json, warnings: RefCell::new(Vec::new()) };
    let result = match command {
        Command::Login(args) => auth::login(&ctx, args).await,
        Command::Logout => auth::logout(&ctx),
        Command::Conversation(c) => resources::conversation(&ctx, c).await,
        Command::Member(c) => resources::member(&ctx, c).await,
        Command::Key(c) => resources::key(&ctx, c).await,
        Command::Seal(args) => messages::seal(&ctx, args).await,
        Command::Open(args) => messages::open(&ctx, args).await,
        Command::File(c) => files::file(&ctx, c).await,
        Command::Server(_) | Command::Token(_) => Err(Failure::usage("not a client command")),
    };
    let warnings = ctx.warnings.take();
    let printed = match result {
        Ok(out) => print(&ctx, out, &warnings),
        Err(f) => Err(f),
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            f.report(ctx.json, warnings);
            ExitCode::from(f.code)
        }
    }
}

fn print(ctx: &Ctx, out: Output, warnings: &[String]) -> Result<(), Failure> {
    if ctx.json {
        if out.json.is_null() {
            return Ok(());
        }
        let mut obj = out.json;
        if !warnings.is_empty() {
            obj["warnings"] = json!(warnings);
        }
        return write_stdout(format!("{obj}\n").as_bytes());
    }
    for w in warnings {
        eprintln!("keysrv: warning: {w}");
    }
    let mut text = out.text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    write_stdout(text.as_bytes())
}
