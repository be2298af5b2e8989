mod client;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keysrv::cli::{Cli, Command, ServerArgs, TokenArgs};
use keysrv::jwt::{DevIssuer, Verifier};
use keysrv::listener::{self, ConnectionLimits};
use keysrv::{logging, server};
use keysrv_shared::bare_jid::BareJid;
use keysrv_shared::{App, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => run_server(args).await,
        Command::Token(args) => print_token(args, cli.global.json).await,
        command => return client::run(&cli.global, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keysrv: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(args: ServerArgs) -> Result<(), Box<dyn std::error::Error>> {
    // clap read these two (they are flags too); the rest is read once, here.
    let data_dir = args.data_dir.to_string_lossy();
    let config = Config::from_env_with(&[("KEYSRV_BACKEND", &args.backend), ("KEYSRV_DATA_DIR", &data_dir)])?;
    let _log_guard = logging::init(config.log.clone());
    let verifier = match (&args.issuer, &args.jwks_url, &args.audience) {
        (Some(iss), Some(jwks), Some(aud)) => Verifier::from_jwks_url(jwks, iss, aud).await?,
        (None, None, None) => {
            // Dev mode trusts a key file: anyone who can read it mints tokens
            // for any JID. Never on the network, never with real backends.
            if args.backend != "embedded" || !args.listen.ip().is_loopback() {
                return Err("dev-mode tokens are only for the embedded backend on a loopback address: \
                            set KEYSRV_JWT_ISSUER, KEYSRV_JWT_JWKS_URL and KEYSRV_JWT_AUDIENCE"
                    .into());
            }
            eprintln!(
                "keysrv: dev mode: tokens are signed by {}/jwt-signing-key.pem; get one with `keysrv token <jid>`",
                args.data_dir.display()
            );
            Verifier::dev(&DevIssuer::load_or_create(&args.data_dir)?)
        }
        _ => {
            return Err(
                "set all three of KEYSRV_JWT_ISSUER, KEYSRV_JWT_JWKS_URL and KEYSRV_JWT_AUDIENCE, or none".into()
            );
        }
    };
    let nofile = listener::raise_nofile_limit();
    let limits = ConnectionLimits {
        max_connections: args
            .max_connections
            .map_or_else(ConnectionLimits::default_max_connections, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        header_timeout: Duration::from_secs(args.header_timeout_secs),
        shutdown_grace: Duration::from_secs(10),
    };
    tracing::info!(nofile, max_connections = limits.max_connections, "connection limits");
    let app = App::new(config).await?;
    let server = server::Server {
        app: std::sync::Arc::new(app),
        verifier,
        body_timeout: Duration::from_secs(args.body_timeout_secs),
    };
    if args.metrics_listen != "off" {
        let addr: std::net::SocketAddr =
            args.metrics_listen.parse().map_err(|e| format!("KEYSRV_METRICS_LISTEN={:?}: {e}", args.metrics_listen))?;
        server::serve_metrics(addr).await.map_err(|e| {
            format!("the metrics listener on {addr}: {e} (set KEYSRV_METRICS_LISTEN to another address, or \"off\")")
        })?;
    }
    server::run(server, args.listen, limits, Duration::from_secs(args.sweep_interval_secs)).await?;
    Ok(())
}

async fn print_token(args: TokenArgs, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    // A token is a claim of identity: only the canonical spelling (another
    // spelling is another user to the identity provider, and keysrv refuses
    // its tokens).
    let jid = BareJid::canonical(&args.jid).map_err(|e| format!("{:?}: {e}", args.jid))?;
    let token = if args.backend == "aws" {
        keysrv::cognito::UserPool::from_env().await?.access_token(jid.as_str()).await?
    } else {
        DevIssuer::load_or_create(&args.data_dir)?.access_token(jid.as_str(), args.ttl)?
    };
    if json {
        println!("{}", serde_json::json!({ "jid": jid.as_str(), "token": token }));
    } else {
        println!("{token}");
    }
    Ok(())
}
