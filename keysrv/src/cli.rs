//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "keysrv", version, about = "keysrv: the key server for encrypted XMPP chat")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the whole API in one process on the embedded backends (SQLite and
    /// a local master key in the data directory).
    Server(ServerArgs),
    /// Print a dev-mode access token for a bare JID, signed with the data
    /// directory's dev key (the one `keysrv server` in dev mode trusts).
    Token(TokenArgs),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYSRV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data directory (database, master key, dev signing key).
    #[arg(long, env = "KEYSRV_DATA_DIR", default_value = ".keysrv")]
    pub data_dir: PathBuf,
    /// Where rows and keys live: `embedded` (SQLite and a master key file in
    /// the data directory) or `aws` (DynamoDB and KMS or Secrets Manager,
    /// configured by KEYSRV_TABLE, KEYSRV_WRAPPING, KEYSRV_KMS_KEY_ID,
    /// KEYSRV_MASTER_KEY_SECRET_ID and the usual AWS_* variables).
    #[arg(long, env = "KEYSRV_BACKEND", default_value = "embedded", value_parser = ["embedded", "aws"])]
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
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The user's bare JID, e.g. romeo@montague.lit.
    pub jid: String,
    /// `embedded`: sign a dev token with the data directory's key. `aws`:
    /// create the user in the Cognito user pool if needed, sign in with
    /// USER_PASSWORD_AUTH and print the access token (KEYSRV_COGNITO_USER_POOL_ID,
    /// KEYSRV_COGNITO_CLIENT_ID and the AWS_* variables say where).
    #[arg(long, env = "KEYSRV_BACKEND", default_value = "embedded", value_parser = ["embedded", "aws"])]
    pub backend: String,
    /// Data directory holding the dev signing key.
    #[arg(long, env = "KEYSRV_DATA_DIR", default_value = ".keysrv")]
    pub data_dir: PathBuf,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}
