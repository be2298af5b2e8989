//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit statuses of the client commands, in `--help` and docs/CLI.md.
pub const EXIT_STATUS_HELP: &str = "\
Client commands talk to the keysrv API at KEYSRV_ADDR (default http://127.0.0.1:8080)
with the token in KEYSRV_TOKEN or, if that is unset, the one `keysrv login` stored
in $KEYSRV_CONFIG_DIR/token (default $XDG_CONFIG_HOME/keysrv/token, else ~/.keysrv/token).

Exit status:
  0  success
  1  any other failure (a server error, an unexpected response, local I/O)
  2  usage: bad arguments or input, or keysrv refused the request as invalid (400, 413)
  3  not found, or not visible to you (404: keysrv does not say which)
  4  not allowed: no token, a token keysrv rejects or that expired (401), or a role
     that does not allow it (403)
  5  retry later: keysrv or the network is unavailable (429, 502, 503, 504, no connection)
  6  conflict with the conversation's state, or an idempotency key reused (409)
  7  integrity: a message that does not open (wrong key, sender or recipient; tampered),
     or a file whose size or SHA-256 is not what its reference says

Errors go to stderr (with --json as one object: {\"error\": {\"exit_code\", \"kind\",
\"message\", \"status\", \"title\", \"detail\"}}). Tokens and keys never appear in them.";

#[derive(Parser, Debug)]
#[command(
    name = "keysrv",
    version,
    about = "keysrv: the key server for encrypted XMPP chat",
    long_about = "keysrv: the key server for encrypted XMPP chat.\n\n`server` and `token` run and feed a \
                  local keysrv; the other commands are a client of any keysrv's v1 API.",
    after_long_help = EXIT_STATUS_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// The keysrv API the client commands talk to.
    #[arg(long, global = true, env = "KEYSRV_ADDR", default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub addr: String,
    /// Print one JSON object per command on stdout (errors: one on stderr)
    /// instead of text. No effect on `server`.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the whole API in one process: on the embedded backend (SQLite,
    /// a local master key and the files in the data directory) by default,
    /// or on the AWS backends (`--backend aws`: DynamoDB, KMS or Secrets
    /// Manager, S3).
    Server(ServerArgs),
    /// Print an access token for a bare JID: a dev token signed with the
    /// data directory's dev key (the one `keysrv server` in dev mode
    /// trusts), or with `--backend aws` one from the Cognito user pool.
    Token(TokenArgs),
    /// Store an access token for the client commands.
    #[command(
        long_about = "Store an access token for the client commands, in a file only you can read \
                      ($KEYSRV_CONFIG_DIR/token, else $XDG_CONFIG_HOME/keysrv/token, else ~/.keysrv/token).\n\n\
                      Shows the token's `username` and expiry, read from the token without verifying \
                      its signature (keysrv verifies it on every request), and checks that keysrv \
                      accepts it unless --no-check. KEYSRV_TOKEN, when set, is used instead of the \
                      stored token.",
        after_long_help = EXIT_STATUS_HELP
    )]
    Login(LoginArgs),
    /// Remove the stored token.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Logout,
    /// Create, show and delete (crypto-shred) conversations.
    #[command(subcommand)]
    Conversation(ConversationCommand),
    /// Add members, change their role, remove them.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Fetch and rotate conversation keys (key bytes only with --show-key).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Encrypt a message with a conversation's current key: prints the
    /// `<message/>` stanza to send.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Seal(SealArgs),
    /// Decrypt a received `<message/>` stanza (live, carbon or archived)
    /// read from stdin: prints its body and file references.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Open(OpenArgs),
    /// Upload, download, show and delete files shared in a conversation.
    #[command(subcommand)]
    File(FileCommand),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYSRV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data directory (database, master key, dev signing key).
    #[arg(long, env = "KEYSRV_DATA_DIR", default_value = keysrv_shared::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Where rows and keys live: `embedded` (SQLite and a master key file in
    /// the data directory) or `aws` (DynamoDB and KMS or Secrets Manager,
    /// configured by KEYSRV_TABLE, KEYSRV_WRAPPING, KEYSRV_KMS_KEY_ID,
    /// KEYSRV_MASTER_KEY_SECRET_ID and the usual AWS_* variables).
    #[arg(long, env = "KEYSRV_BACKEND", default_value = keysrv_shared::config::DEFAULT_BACKEND, value_parser = ["embedded", "aws"])]
    pub backend: String,
    /// Expected token issuer (e.g. a Cognito user pool URL). Without it the
    /// server runs in dev mode and trusts its own dev signing key.
    #[arg(long, env = "KEYSRV_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// Where to fetch the issuer's signing keys (JWKS).
    #[arg(long, env = "KEYSRV_JWT_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Expected `client_id` (Cognito access tokens) or `aud`.
    #[arg(long, env = "KEYSRV_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// Open connections at most; at the cap a new connection closes the one
    /// idle longest. Default: 3/4 of the file descriptor limit (raised to
    /// its maximum at start), at most 16384.
    #[arg(long, env = "KEYSRV_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// Seconds a client has to send a request's head, from connecting or
    /// from the previous response (also the keep-alive idle timeout).
    #[arg(long, env = "KEYSRV_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request body to the API.
    #[arg(long, env = "KEYSRV_BODY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// Seconds between sweeps of stored file bytes that no file row names
    /// (there is one at start too). 0: never (another process sweeps the
    /// same storage, as on AWS, where the scheduled function does).
    #[arg(long, env = "KEYSRV_SWEEP_INTERVAL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub sweep_interval_secs: u64,
    /// Where to serve the metrics (Prometheus text format at `/metrics`),
    /// apart from the API: loopback by default; `off` serves none.
    #[arg(long, env = "KEYSRV_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
}

/// The longest lifetime `keysrv token` signs a dev token for.
pub const MAX_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The user's bare JID, e.g. romeo@montague.lit.
    pub jid: String,
    /// `embedded`: sign a dev token with the data directory's key. `aws`:
    /// create the user in the Cognito user pool if needed, sign in with
    /// USER_PASSWORD_AUTH and print the access token (KEYSRV_COGNITO_USER_POOL_ID,
    /// KEYSRV_COGNITO_CLIENT_ID and the AWS_* variables say where).
    #[arg(long, env = "KEYSRV_BACKEND", default_value = keysrv_shared::config::DEFAULT_BACKEND, value_parser = ["embedded", "aws"])]
    pub backend: String,
    /// Data directory holding the dev signing key.
    #[arg(long, env = "KEYSRV_DATA_DIR", default_value = keysrv_shared::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Lifetime in seconds (at most 30 days).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=MAX_TOKEN_TTL_SECS))]
    pub ttl: u64,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The access token, or `-` to read it from stdin (the default: that keeps
    /// it out of your shell history and the process list).
    #[arg(value_name = "TOKEN|-")]
    pub token: Option<String>,
    /// Store the token without asking keysrv whether it accepts it.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConversationCommand {
    /// Create a conversation owned by you, with its first key.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Create(ConversationCreateArgs),
    /// Show a conversation: owner, history policy, members, current objectid.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Show(ConversationIdArg),
    /// Delete a conversation and every key of it (owner only). Every message
    /// ever sealed in it becomes unreadable, for good.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Delete(ConversationIdArg),
}

#[derive(Args, Debug)]
pub struct ConversationCreateArgs {
    /// A member besides you (bare JID); repeat for more.
    #[arg(long = "member", value_name = "JID")]
    pub members: Vec<String>,
    /// Which keys members read: `shared` (the whole history) or
    /// `since_join` (only keys from when they joined; adding a member rotates).
    #[arg(long, value_enum, default_value = "shared")]
    pub history: HistoryArg,
    /// Makes retrying safe: a retry with the same key returns the first result.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistoryArg {
    Shared,
    #[value(name = "since_join", alias = "since-join")]
    SinceJoin,
}

// Every id (conversation, objectid, file) is base64url, so one in 64 begins
// with `-`: each id argument takes such a value as an id, not as a flag.
#[derive(Args, Debug)]
pub struct ConversationIdArg {
    #[arg(allow_hyphen_values = true)]
    pub conversation_id: String,
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a member, or change a member's role (owner and admins). Under
    /// `since_join` adding a member rotates the key.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Add(MemberAddArgs),
    /// Remove a member (owner and admins), or leave (your own JID). The key
    /// rotates in the same step.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Remove(MemberArgs),
}

#[derive(Args, Debug)]
pub struct MemberAddArgs {
    #[arg(allow_hyphen_values = true)]
    pub conversation_id: String,
    /// The member's bare JID.
    pub jid: String,
    #[arg(long, value_enum, default_value = "member")]
    pub role: RoleArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Member,
    Admin,
}

#[derive(Args, Debug)]
pub struct MemberArgs {
    #[arg(allow_hyphen_values = true)]
    pub conversation_id: String,
    /// The member's bare JID.
    pub jid: String,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// The conversation's current key (the one to send with).
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Current(KeyConversationArgs),
    /// Make a new current key (any member).
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Rotate(KeyRotateArgs),
    /// The key an objectid names, if you may read it.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Get(KeyGetArgs),
}

#[derive(Args, Debug)]
pub struct ShowKeyArg {
    /// Also print the key itself (base64). Off by default so that keys do not
    /// end up in terminal scrollback, screen shares or logs by accident.
    #[arg(long)]
    pub show_key: bool,
}

#[derive(Args, Debug)]
pub struct KeyConversationArgs {
    #[arg(allow_hyphen_values = true)]
    pub conversation_id: String,
    #[command(flatten)]
    pub show: ShowKeyArg,
}

#[derive(Args, Debug)]
pub struct KeyRotateArgs {
    #[arg(allow_hyphen_values = true)]
    pub conversation_id: String,
    #[command(flatten)]
    pub show: ShowKeyArg,
    /// Makes retrying safe: a retry with the same key returns the first result.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct KeyGetArgs {
    #[arg(allow_hyphen_values = true)]
    pub objectid: String,
    #[command(flatten)]
    pub show: ShowKeyArg,
}

#[derive(Args, Debug)]
pub struct SealArgs {
    /// The conversation whose current key seals the message.
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub conversation: String,
    /// The sender's JID. Default: the `username` in your token.
    #[arg(long, value_name = "JID")]
    pub from: Option<String>,
    /// The recipient: the peer's JID, or the room's in a group chat.
    #[arg(long, value_name = "JID")]
    pub to: String,
    /// The message type.
    #[arg(long = "type", value_enum, default_value = "chat", value_name = "TYPE")]
    pub message_type: MessageTypeArg,
    /// The stanza's `id`. Default: random.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Attach a file by its id (media type and size are looked up; the
    /// receiver cannot check its hash: prefer --file-ref). Repeatable.
    #[arg(long, value_name = "FILE_ID", allow_hyphen_values = true)]
    pub file_id: Vec<String>,
    /// Attach a file by the reference `keysrv file upload` printed
    /// ({"id", "name", "media_type", "size", "sha256"}). Repeatable.
    #[arg(long, value_name = "JSON")]
    pub file_ref: Vec<String>,
    /// The message text, or `-` to read it from stdin (one trailing newline
    /// is dropped). May be left out when a file is attached.
    #[arg(value_name = "MESSAGE|-")]
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MessageTypeArg {
    Chat,
    Groupchat,
    Normal,
}

#[derive(Args, Debug)]
pub struct OpenArgs {
    /// The sender, if the stanza has no `from` (e.g. what `keysrv seal`
    /// printed); in a group chat, the occupant's real JID if the stanza does
    /// not carry it. Must agree with the stanza when both say.
    #[arg(long, value_name = "JID")]
    pub from: Option<String>,
    /// The recipient, if the stanza has no `to`. Must agree with the stanza
    /// when both say.
    #[arg(long, value_name = "JID")]
    pub to: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum FileCommand {
    /// Upload a file to a conversation (members). Prints its file_id and the
    /// reference to attach with `keysrv seal --file-ref`.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Upload(FileUploadArgs),
    /// Download a file and check its size, and its SHA-256 when given. Nothing
    /// is kept unless the checks pass.
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Download(FileDownloadArgs),
    /// Show a file's metadata (conversation, type, size, uploader).
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Show(FileIdArg),
    /// Delete a file (its uploader, the owner, admins).
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Delete(FileIdArg),
}

#[derive(Args, Debug)]
pub struct FileUploadArgs {
    #[arg(allow_hyphen_values = true)]
    pub conversation_id: String,
    pub path: PathBuf,
    /// The media type. Default: guessed from the extension, else
    /// application/octet-stream.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// The name receivers see and save under. Default: the file's name.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct FileDownloadArgs {
    /// The file's id (or give --file-ref).
    #[arg(required_unless_present = "file_ref", conflicts_with = "file_ref", allow_hyphen_values = true)]
    pub file_id: Option<String>,
    /// The file's reference, as `keysrv open --json` or `keysrv file upload
    /// --json` print it: its size and SHA-256 are checked.
    #[arg(long, value_name = "JSON")]
    pub file_ref: Option<String>,
    /// The expected SHA-256 (base64), e.g. from the message's <hash/>.
    #[arg(long, value_name = "BASE64")]
    pub sha256: Option<String>,
    /// The expected size in bytes.
    #[arg(long, value_name = "BYTES")]
    pub size: Option<u64>,
    /// Where to save it; `-` for stdout. Default: the reference's name (never
    /// a path) in the current directory, else the file id.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct FileIdArg {
    #[arg(allow_hyphen_values = true)]
    pub file_id: String,
}
