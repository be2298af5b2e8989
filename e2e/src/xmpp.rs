//! A real XMPP client (tokio-xmpp, plaintext TCP to the local Prosody) that
//! sends stanzas given as XML text and hands back what it receives as XML
//! text, which is what `keysrv_client::stanza` consumes and produces.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::jid::Jid;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Event, Stanza};

use crate::WAIT;

pub const MAM_NS: &str = "urn:xmpp:mam:2";
const RSM_NS: &str = "http://jabber.org/protocol/rsm";
const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
/// A request whose session has received nothing at all for this long is
/// sent again on a new session (the same full JID, which replaces the old
/// one at Prosody). Prosody answers a request on loopback in milliseconds.
/// Under CPU load a tokio-xmpp 6.0 session three times stopped passing on
/// anything just after login: Prosody's debug log shows the answer to the
/// session's first request and then its answers to pings sent on the same
/// session, none of which came out of tokio-xmpp in 10 s. That is the test
/// client's fault, not what the tests check; each reconnection is printed
/// and kept in the session's trace.
const SILENCE: Duration = Duration::from_secs(4);
/// Reconnections per request before the test fails.
const RECONNECTS: usize = 2;
/// Prosody's default `max_archive_query_results`; asking for more gets no more.
const MAM_PAGE: usize = 50;

enum Command {
    Send(Box<Stanza>, oneshot::Sender<Result<(), String>>),
    Close(oneshot::Sender<()>),
}

/// One XMPP session (one resource).
pub struct Xmpp {
    /// The bound full JID.
    pub jid: String,
    /// What a reconnection needs.
    port: u16,
    password: String,
    commands: mpsc::UnboundedSender<Command>,
    incoming: mpsc::UnboundedReceiver<Result<Element, String>>,
    /// Received `<message/>`s not yet taken by a caller.
    messages: VecDeque<Element>,
    /// Every `<presence/>` received, in order.
    presences: Vec<Element>,
    /// Received `<iq/>`s not yet matched to a request.
    iqs: VecDeque<Element>,
    trace: Trace,
}

/// The XMPP task's last events (what it sent, each stanza it passed on, a
/// reconnection), printed when an answer does not come: it tells a stanza
/// the server never sent from one lost in the client.
#[derive(Clone, Default)]
struct Trace(Arc<Mutex<VecDeque<String>>>);

impl Trace {
    const KEEP: usize = 120;

    fn note(&self, event: String) {
        let mut events = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == Self::KEEP {
            events.pop_front();
        }
        events.push_back(event);
    }

    fn dump(&self) -> String {
        let events = self.0.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().map(|e| format!("\n  {e}")).collect()
    }
}

fn describe(stanza: &Stanza) -> String {
    match stanza {
        Stanza::Message(m) => format!("message id={:?}", m.id),
        Stanza::Iq(i) => format!("iq id={}", i.id()),
        Stanza::Presence(p) => format!("presence id={:?}", p.id),
    }
}

pub fn to_xml(e: &Element) -> String {
    String::from(e)
}

fn parse_stanza(xml: &str) -> Result<Stanza, String> {
    let el: Element = xml.parse().map_err(|e| format!("{e}: {xml}"))?;
    let stanza = match el.name() {
        "message" => Message::try_from(el).map(Stanza::from).map_err(|e| e.to_string()),
        "iq" => Iq::try_from(el).map(Stanza::from).map_err(|e| e.to_string()),
        "presence" => Presence::try_from(el).map(Stanza::from).map_err(|e| e.to_string()),
        other => Err(format!("<{other}> is not a stanza")),
    };
    stanza.map_err(|e| format!("{e}: {xml}"))
}

fn stanza_element(stanza: Stanza) -> Element {
    match stanza {
        Stanza::Message(m) => m.into(),
        Stanza::Iq(i) => i.into(),
        Stanza::Presence(p) => p.into(),
    }
}

pub fn next_id(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}", N.fetch_add(1, Ordering::Relaxed))
}

impl Xmpp {
    /// Logs in as `full_jid` (SASL PLAIN over plaintext TCP, loopback only)
    /// and waits until the session is bound. Sends no presence.
    pub async fn connect(port: u16, full_jid: &str, password: &str) -> Self {
        let jid: Jid = full_jid.parse().unwrap_or_else(|e| panic!("JID {full_jid}: {e}"));
        let mut client = Client::new_plaintext(
            jid,
            password.to_owned(),
            DnsConfig::addr(&format!("127.0.0.1:{port}")),
            Timeouts::tight(),
        );
        let deadline = Instant::now() + WAIT;
        let bound = loop {
            match timeout_at(deadline, client.next()).await {
                Ok(Some(Event::Online { bound_jid, .. })) => break bound_jid.to_string(),
                Ok(Some(Event::Disconnected(e))) => panic!("{full_jid}: XMPP login failed: {e}"),
                Ok(Some(Event::Stanza(_))) => {}
                Ok(None) => panic!("{full_jid}: XMPP stream ended before login"),
                Err(_) => {
                    panic!("{full_jid}: no XMPP session within {WAIT:?} (login refused, or the server does not answer)")
                }
            }
        };
        let (commands, mut command_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let trace = Trace::default();
        let task_trace = trace.clone();
        // One task owns the client: tokio-xmpp's split halves share it behind
        // a lock its receiver only try-locks, which can stall reading while a
        // send waits.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    cmd = command_rx.recv() => match cmd {
                        Some(Command::Send(stanza, done)) => {
                            let what = describe(&stanza);
                            let r = client.send_stanza(*stanza).await.map(drop).map_err(|e| e.to_string());
                            task_trace.note(format!("sent {what}: {r:?}"));
                            let _ = done.send(r);
                        }
                        Some(Command::Close(done)) => {
                            let _ = client.send_end().await;
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    },
                    event = client.next() => match event {
                        Some(Event::Stanza(s)) => {
                            task_trace.note(format!("received {}", describe(&s)));
                            if incoming_tx.send(Ok(stanza_element(s))).is_err() {
                                return;
                            }
                        }
                        Some(Event::Online { resumed, .. }) => task_trace.note(format!("online again (resumed: {resumed})")),
                        Some(Event::Disconnected(e)) => {
                            task_trace.note(format!("disconnected: {e}"));
                            let _ = incoming_tx.send(Err(format!("disconnected: {e}")));
                        }
                        None => {
                            let _ = incoming_tx.send(Err("the XMPP stream ended".into()));
                            return;
                        }
                    },
                }
            }
        });
        Self {
            jid: bound,
            commands,
            incoming,
            messages: VecDeque::new(),
            presences: Vec::new(),
            iqs: VecDeque::new(),
            trace,
            port,
            password: password.to_owned(),
        }
    }

    /// Sends one stanza given as XML (with `xmlns='jabber:client'`).
    pub async fn send(&self, xml: &str) {
        let stanza = parse_stanza(xml).unwrap_or_else(|e| panic!("{}: cannot send: {e}", self.jid));
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Send(Box::new(stanza), tx)).expect("XMPP task gone");
        match tokio::time::timeout(WAIT, rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("{}: sending failed: {e}", self.jid),
            Ok(Err(_)) => panic!("{}: XMPP task gone", self.jid),
            Err(_) => panic!("{}: sending took more than {WAIT:?}", self.jid),
        }
    }

    /// Initial presence: the server starts routing to this resource (and
    /// pushes stored offline messages).
    pub async fn send_presence(&self) {
        self.send("<presence xmlns='jabber:client'/>").await;
    }

    /// Reads one incoming stanza into the queues; false at the deadline.
    async fn pump(&mut self, deadline: Instant) -> bool {
        match timeout_at(deadline, self.incoming.recv()).await {
            Err(_) => false,
            Ok(None) => panic!("{}: XMPP task gone", self.jid),
            Ok(Some(Err(e))) => panic!("{}: {e}", self.jid),
            Ok(Some(Ok(el))) => {
                match el.name() {
                    "message" => self.messages.push_back(el),
                    "presence" => self.presences.push(el),
                    _ => self.iqs.push_back(el),
                }
                true
            }
        }
    }

    /// Replaces a session that has gone silent (see [`SILENCE`]) with a new
    /// one for the same full JID. What was queued stays queued.
    async fn reconnect(&mut self) {
        let note = format!("nothing received for {SILENCE:?} with a request in flight: reconnecting");
        eprintln!("{}: {note}", self.jid);
        self.trace.note(note);
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
        let fresh = Self::connect(self.port, &self.jid, &self.password).await;
        self.commands = fresh.commands;
        self.incoming = fresh.incoming;
        let trace = fresh.trace;
        trace.note(format!("reconnected; the old session's last events:{}", self.trace.dump()));
        self.trace = trace;
    }

    /// Sends an `<iq/>` (its `id` must be set) and returns the server's
    /// answer; panics on `type='error'`.
    pub async fn iq(&mut self, id: &str, xml: &str) -> Element {
        self.send(xml).await;
        let mut deadline = Instant::now() + WAIT;
        let mut silent_since = Some(Instant::now());
        let mut reconnects = 0;
        loop {
            if let Some(i) = self.iqs.iter().position(|e| e.attr("id") == Some(id)) {
                let answer = self.iqs.remove(i).expect("index");
                assert_eq!(answer.attr("type"), Some("result"), "{}: iq {xml}\nanswered {}", self.jid, to_xml(&answer));
                return answer;
            }
            // Only a session that has passed on nothing since the request
            // is replaced: sending again after part of an answer came could
            // duplicate it.
            let wake = silent_since.map_or(deadline, |since| (since + SILENCE).min(deadline));
            if self.pump(wake).await {
                silent_since = None;
            } else if wake < deadline && reconnects < RECONNECTS {
                reconnects += 1;
                self.reconnect().await;
                self.send(xml).await;
                deadline = Instant::now() + WAIT;
                silent_since = Some(Instant::now());
            } else {
                panic!(
                    "{}: no answer to iq {id} within {WAIT:?} ({reconnects} reconnections); {} messages queued; \
                     the XMPP task's last events:{}",
                    self.jid,
                    self.messages.len(),
                    self.trace.dump()
                );
            }
        }
    }

    /// A round trip to the server. The server handles one session's stanzas
    /// in order, so once this returns it has processed everything sent
    /// before, and anything it routed to this session before is queued here.
    pub async fn sync(&mut self) {
        let id = next_id("ping");
        self.iq(&id, &format!("<iq xmlns='jabber:client' type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"))
            .await;
    }

    /// Waits for the first received message `pick` accepts and takes it out
    /// of the queue (others stay queued).
    pub async fn wait_message(&mut self, what: &str, pick: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.messages.iter().position(&pick) {
                return self.messages.remove(i).expect("index");
            }
            assert!(self.pump(deadline).await, "{}: no message ({what}) within {WAIT:?}", self.jid);
        }
    }

    /// Waits for `n` messages carrying `<encrypted xmlns='jabber:encrypted'>`
    /// and returns them as XML, in arrival order.
    pub async fn encrypted_messages(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let m = self.wait_message("encrypted", |m| m.has_child("encrypted", keysrv_client::wire::NS)).await;
            out.push(to_xml(&m));
        }
        out
    }

    /// Queued messages that nobody has taken, as XML (reads nothing new).
    pub fn queued_messages(&self) -> Vec<String> {
        self.messages.iter().map(to_xml).collect()
    }

    /// Waits for a presence `pick` accepts (also among those already seen).
    pub async fn wait_presence(&mut self, what: &str, pick: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + WAIT;
        let mut seen = 0;
        loop {
            if let Some(p) = self.presences[seen..].iter().find(|p| pick(p)) {
                return p.clone();
            }
            seen = self.presences.len();
            assert!(self.pump(deadline).await, "{}: no presence ({what}) within {WAIT:?}", self.jid);
        }
    }

    /// The real JID a non-anonymous room showed for `occupant`
    /// (`room@service/nick`) in its last presence.
    pub fn occupant_real_jid(&self, occupant: &str) -> Option<String> {
        self.presences
            .iter()
            .rev()
            .filter(|p| p.attr("from") == Some(occupant))
            .flat_map(|p| p.children().filter(|x| x.is("x", MUC_USER_NS)))
            .flat_map(|x| x.children().filter(|i| i.is("item", MUC_USER_NS)))
            .find_map(|i| i.attr("jid").map(str::to_owned))
    }

    /// Enters a MUC room as `nick` and waits for the room's self-presence
    /// (status 110).
    pub async fn join_room(&mut self, room: &str, nick: &str) {
        let occupant = format!("{room}/{nick}");
        self.send(&format!(
            "<presence xmlns='jabber:client' to='{occupant}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
        let p = self
            .wait_presence("room self-presence", |p| {
                p.attr("from") == Some(occupant.as_str())
                    && p.children()
                        .filter(|x| x.is("x", MUC_USER_NS))
                        .any(|x| x.children().any(|s| s.is("status", MUC_USER_NS) && s.attr("code") == Some("110")))
            })
            .await;
        assert_ne!(p.attr("type"), Some("error"), "{}: joining {room}: {}", self.jid, to_xml(&p));
    }

    /// Every message of an archive (own account: `archive` None; a room: its
    /// JID), optionally only those exchanged `with` a JID: a XEP-0313 query
    /// paged with XEP-0059 until the server says it is complete. Returns the
    /// `<message/>` wrappers holding each `<result/>`, in archive order.
    pub async fn mam_query(&mut self, archive: Option<&str>, with: Option<&str>) -> Vec<String> {
        let queryid = next_id("mam");
        let to = archive.map(|a| format!(" to='{a}'")).unwrap_or_default();
        let with = with.map(|w| format!("<field var='with'><value>{w}</value></field>")).unwrap_or_default();
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let id = next_id("mamq");
            let fin = self
                .iq(
                    &id,
                    &format!(
                        "<iq xmlns='jabber:client' type='set' id='{id}'{to}><query xmlns='{MAM_NS}' \
                         queryid='{queryid}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' \
                         type='hidden'><value>{MAM_NS}</value></field>{with}</x><set \
                         xmlns='{RSM_NS}'><max>{MAM_PAGE}</max>{after}</set></query></iq>"
                    ),
                )
                .await;
            // The server sends a page's results before the <iq/> that ends it,
            // so they are all queued by now.
            let mut page = 0;
            while let Some(i) = self
                .messages
                .iter()
                .position(|m| m.get_child("result", MAM_NS).and_then(|r| r.attr("queryid")) == Some(queryid.as_str()))
            {
                out.push(to_xml(&self.messages.remove(i).expect("index")));
                page += 1;
            }
            let fin = fin.get_child("fin", MAM_NS).unwrap_or_else(|| panic!("no <fin/> in {}", to_xml(&fin)));
            if fin.attr("complete") == Some("true") {
                return out;
            }
            let last = fin
                .get_child("set", RSM_NS)
                .and_then(|s| s.get_child("last", RSM_NS))
                .map(|l| l.text())
                .unwrap_or_else(|| panic!("incomplete archive page without <last/>: {}", to_xml(fin)));
            assert!(page > 0, "{}: an incomplete archive page with no results", self.jid);
            after = format!("<after>{last}</after>");
        }
    }

    /// Ends the stream cleanly (the server marks the resource offline).
    pub async fn close(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JULIET, PASSWORD, Prosody, ROMEO};

    /// The reconnection in [`Xmpp::iq`] really sends the request again, on a
    /// session that works. Juliet's session plays the stalled peer: it leaves
    /// the first copy of Romeo's request unanswered, as a session that passes
    /// nothing on would, and answers the second.
    #[test]
    fn a_silent_request_is_sent_again_on_a_new_session() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async {
            let prosody = Prosody::start();
            for jid in [ROMEO, JULIET] {
                let (user, host) = jid.split_once('@').expect("bare JID");
                prosody.register(user, host, PASSWORD);
            }
            let mut romeo = Xmpp::connect(prosody.port, &format!("{ROMEO}/orchard"), PASSWORD).await;
            let mut juliet = Xmpp::connect(prosody.port, &format!("{JULIET}/balcony"), PASSWORD).await;
            let responder = tokio::spawn(async move {
                let deadline = Instant::now() + SILENCE + WAIT;
                let mut copies = 0;
                loop {
                    if let Some(i) = juliet.iqs.iter().position(|e| e.attr("id") == Some("probe")) {
                        let request = juliet.iqs.remove(i).expect("index");
                        copies += 1;
                        if copies == 2 {
                            let from = request.attr("from").expect("from").to_owned();
                            juliet
                                .send(&format!("<iq xmlns='jabber:client' type='result' id='probe' to='{from}'/>"))
                                .await;
                            return copies;
                        }
                    }
                    assert!(juliet.pump(deadline).await, "Juliet saw {copies} copies of the request");
                }
            });
            let answer = romeo
                .iq(
                    "probe",
                    &format!(
                        "<iq xmlns='jabber:client' type='get' id='probe' to='{JULIET}/balcony'><ping \
                         xmlns='urn:xmpp:ping'/></iq>"
                    ),
                )
                .await;
            assert_eq!(answer.attr("type"), Some("result"));
            assert_eq!(responder.await.expect("responder"), 2);
            assert!(romeo.trace.dump().contains("reconnected"), "{}", romeo.trace.dump());
            assert_eq!(romeo.jid, format!("{ROMEO}/orchard"), "the same full JID");
            romeo.sync().await;
        });
    }
}
