//! A slixmpp client with the keysrv plugin (sdk/python/keysrv_slixmpp, on
//! the Python bindings), as a peer of the Rust devices: a Python process
//! (`e2e/peer/slixmpp_peer.py`) driven with one JSON command per line.
//!
//! The interpreter is `$KEYSRV_E2E_PYTHON`, else the workspace's
//! `.venv/bin/python`, which must have the bindings (`pip install
//! ./bindings`, done by `make sdk-test`) and slixmpp: a missing one fails
//! the test, saying so.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{PASSWORD, Proxy, WAIT, World};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("KEYSRV_E2E_PYTHON").map(PathBuf::from).unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// One slixmpp session with its own keysrv client behind its own proxy.
pub struct PyPeer {
    /// The account's bare JID.
    pub jid: String,
    pub proxy: Proxy,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PyPeer {
    /// Starts the peer as `full_jid` and waits until its XMPP session is
    /// bound (no presence sent yet).
    pub async fn start(world: &World, full_jid: &str) -> Self {
        let bare = full_jid.split('/').next().expect("JID").to_owned();
        let proxy = Proxy::start(world.keysrv.addr, world.ledger.clone()).await;
        let py = python();
        assert!(
            py.is_file(),
            "the slixmpp end-to-end tests need Python with the keysrv bindings at {} (run `make sdk-test`, or set \
             KEYSRV_E2E_PYTHON)",
            py.display()
        );
        let mut child = Command::new(&py)
            .arg(workspace().join("e2e/peer/slixmpp_peer.py"))
            .args(["--jid", full_jid, "--password", PASSWORD, "--port", &world.prosody.port.to_string()])
            .args(["--keysrv", &proxy.url, "--token", &world.keysrv.token(&bare)])
            .env("PYTHONPATH", workspace().join("sdk/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", py.display()));
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut peer = Self { jid: bare, proxy, child, stdin, lines };
        let ready = peer.read().await;
        assert_eq!(ready["ok"], true, "{full_jid}: the slixmpp peer did not start: {ready}");
        peer
    }

    async fn read(&mut self) -> Value {
        // Generous: a command may wait for messages itself (`WAIT`).
        let line = tokio::time::timeout(WAIT * 3, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: the slixmpp peer did not answer within {:?}", self.jid, WAIT * 3))
            .unwrap_or_else(|e| panic!("{}: reading from the slixmpp peer: {e}", self.jid))
            .unwrap_or_else(|| {
                panic!(
                    "{}: the slixmpp peer exited (is `keysrv` installed in its Python? run `make sdk-test`)",
                    self.jid
                )
            });
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.jid))
    }

    /// Sends a command; returns the answer, which must be `ok`.
    pub async fn call(&mut self, command: Value) -> Value {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.expect("writing to the slixmpp peer");
        self.stdin.flush().await.expect("flush");
        let answer = self.read().await;
        assert_eq!(answer["ok"], true, "{}: {command} failed: {answer}", self.jid);
        answer
    }

    pub async fn presence(&mut self) {
        self.call(json!({"cmd": "presence"})).await;
    }

    /// A ping round trip: once it returns, the server has handled every
    /// stanza this peer sent before (slixmpp's `send` only queues).
    pub async fn sync(&mut self) {
        self.call(json!({"cmd": "sync"})).await;
    }

    /// Seals and sends `body` to `to` through the plugin (creating and
    /// binding a conversation on the first message to a peer).
    pub async fn send(&mut self, to: &str, kind: &str, body: &str) -> Value {
        self.call(json!({"cmd": "send", "to": to, "type": kind, "body": body})).await
    }

    /// The next `n` messages the plugin opened (or failed to open).
    pub async fn received(&mut self, n: usize) -> Vec<Value> {
        let a = self.call(json!({"cmd": "received", "count": n, "timeout": WAIT.as_secs()})).await;
        a["messages"].as_array().expect("messages").clone()
    }

    /// Messages opened but not yet taken.
    pub async fn pending(&mut self) -> Vec<Value> {
        let a = self.call(json!({"cmd": "pending"})).await;
        a["messages"].as_array().expect("messages").clone()
    }

    pub async fn quit(mut self) {
        self.call(json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}
