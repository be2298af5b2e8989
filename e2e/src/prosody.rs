//! Prosody from Debian's package, one instance per test, with its own
//! config, port and data directory under a temporary directory.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{WAIT, unique};

pub const ROOM_SERVICE: &str = "conference.montague.lit";

/// The `prosody` executable; installed with apt-get when it is missing and
/// we are root (as CI is), else the test fails saying how to install it.
fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if on_path("prosody") && on_path("prosodyctl") {
            return;
        }
        let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        assert!(
            uid.is_ok_and(|u| u == "0"),
            "the end-to-end tests need Prosody: run `sudo apt-get install -y prosody` (or run as root to have the \
             tests install it)"
        );
        // Tests of other processes may install at the same time: wait for
        // dpkg's lock instead of failing on it.
        let install = || {
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "prosody"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .output()
                .expect("running apt-get")
        };
        let mut out = install();
        if !out.status.success() {
            let _ = Command::new("apt-get").args(["-o", "DPkg::Lock::Timeout=300", "update", "-qq"]).status();
            out = install();
        }
        assert!(
            out.status.success() && on_path("prosody"),
            "apt-get install -y prosody failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn on_path(exe: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(exe).is_file()))
}

pub struct Prosody {
    pub port: u16,
    root: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Prosody {
    pub fn start() -> Self {
        ensure_installed();
        let root = std::env::temp_dir().join(format!("keysrv-e2e-prosody-{}", unique()));
        std::fs::create_dir_all(root.join("data")).expect("prosody data dir");
        // Prosody warns (harmlessly) when its certificate directory is missing.
        std::fs::create_dir_all(root.join("certs")).expect("prosody certs dir");
        // Another process can take the free port between our probe and
        // Prosody's bind; Prosody then runs on without c2s, so retry.
        for _ in 0..5 {
            let port = free_port();
            let config = root.join("prosody.cfg.lua");
            std::fs::write(&config, config_text(&root, port)).expect("prosody config");
            let log = std::fs::File::create(root.join("stdout.log")).expect("log");
            let child = Command::new("prosody")
                .arg("--config")
                .arg(&config)
                .arg("-F")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("starting prosody");
            let mut p = Self { port, root: root.clone(), config, child: Some(child) };
            match p.wait_ready(port) {
                Ok(()) => return p,
                Err(Retry::PortTaken) => p.stop(),
                Err(Retry::Fatal(why)) => panic!("Prosody did not start: {why}\n{}", p.log()),
            }
        }
        panic!("Prosody could not bind a free port in 5 tries");
    }

    /// Ready once the log says c2s listens on our port and a connection
    /// succeeds (no blind sleep).
    fn wait_ready(&mut self, port: u16) -> Result<(), Retry> {
        let deadline = Instant::now() + WAIT;
        let listening = format!("Activated service 'c2s' on [127.0.0.1]:{port}");
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(Retry::Fatal(format!("prosody exited with {status}")));
            }
            let log = self.log();
            if log.contains("Failed to open server port") {
                return Err(Retry::PortTaken);
            }
            if log.contains(&listening) && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Retry::Fatal(format!("not listening on {port} after {WAIT:?}")));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Creates an account (`prosodyctl register`).
    pub fn register(&self, user: &str, host: &str, password: &str) {
        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config)
            .args(["register", user, host, password])
            .stdin(Stdio::null())
            .output()
            .expect("running prosodyctl");
        assert!(
            out.status.success(),
            "prosodyctl register {user} {host}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where Prosody keeps accounts, offline messages and archives.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.root.join("prosody.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.root.join("stdout.log")).unwrap_or_default());
        s
    }

    /// Stops Prosody (SIGTERM, so it closes its stores) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const LOG_TAIL: usize = 80;

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() && std::env::var_os("KEEP_PROSODY").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            // On a CI machine the files are gone with the machine: the end of
            // the log (debug level: every stanza in and out) goes with the
            // test's output.
            let log = self.log();
            // What led up to the test's end, not Prosody's own shutdown.
            let before_stop = log.find("Received SIGTERM").map_or(log.as_str(), |at| &log[..at]);
            let tail: Vec<&str> = before_stop.lines().rev().take(LOG_TAIL).collect();
            eprintln!("Prosody's log, last {} lines:", tail.len());
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
            eprintln!("Prosody's files are kept in {}", self.root.display());
        }
    }
}

enum Retry {
    PortTaken,
    Fatal(String),
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    l.local_addr().expect("addr").port()
}

fn lua_string(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("UTF-8 temp path"))
}

/// c2s only (s2s off), plaintext auth on loopback, offline storage, MAM,
/// carbons and a MUC service with archives; internal (file) storage.
fn config_text(root: &Path, port: u16) -> String {
    let path = |name: &str| lua_string(&root.join(name));
    format!(
        r#"-- Written by the keysrv end-to-end tests.
run_as_root = true
daemonize = false
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
admin_socket = {admin}
log = {{ debug = {log} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
modules_enabled = {{
    "roster"; "saslauth"; "disco"; "ping"; "posix";
    "carbons"; "mam"; "offline";
}}
modules_disabled = {{ "s2s" }}
-- Loopback only: the tests' clients log in without TLS.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"
default_archive_policy = true
archive_expires_after = "never"

VirtualHost "montague.lit"
VirtualHost "capulet.lit"

Component "{ROOM_SERVICE}" "muc"
    modules_enabled = {{ "muc_mam" }}
    -- Usable at once, members-only, and non-anonymous (PROTOCOL.md 9.4).
    muc_room_locking = false
    muc_room_default_members_only = true
    muc_room_default_public_jids = true
    muc_room_default_persistent = true
"#,
        pidfile = path("prosody.pid"),
        data = path("data"),
        certs = path("certs"),
        admin = path("admin.sock"),
        log = path("prosody.log"),
    )
}
