//! Putting a sealed element into a `<message/>` and getting it out of a
//! received one (live, from offline storage, as a carbon or from MAM).

use crate::chat::ChatKind;
use crate::wire::{self, EncryptedElement, WireError};
use crate::xml::{self, Element};

/// XEP-0380 Explicit Message Encryption.
pub const EME_NS: &str = "urn:xmpp:eme:0";
/// The `name` of the EME marker.
pub const EME_NAME: &str = "keysrv";
/// XEP-0334 Message Processing Hints.
pub const HINTS_NS: &str = "urn:xmpp:hints";
/// XEP-0280 Message Carbons.
pub const CARBONS_NS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 Stanza Forwarding.
pub const FORWARD_NS: &str = "urn:xmpp:forward:0";
/// XEP-0313 Message Archive Management.
pub const MAM_NS: &str = "urn:xmpp:mam:2";
/// XEP-0045 MUC user namespace (carries an occupant's real JID).
pub const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0203 Delayed Delivery.
pub const DELAY_NS: &str = "urn:xmpp:delay";
/// The namespaces a `<message/>` may arrive in.
const STANZA_NS: [&str; 4] = ["jabber:client", "jabber:server", "jabber:component:accept", ""];

/// The largest `<message/>` [`message_stanza`] builds (bytes). Servers
/// commonly refuse stanzas over 64 KiB (65,536 bytes) and add to a message
/// on its way (the sender's full JID, stanza ids, a delay stamp, a carbon or
/// archive wrapper); 60,000 leaves them 5,536 bytes. See `docs/PROTOCOL.md`
/// 9.9.
pub const MAX_STANZA_BYTES: usize = 60_000;

/// The `<body>` for clients that do not understand `jabber:encrypted`.
pub const FALLBACK_BODY: &str =
    "This message is encrypted with keysrv (jabber:encrypted) and your client cannot display it.";

/// The `type` of an outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// One-to-one.
    Chat,
    /// To a multi-user chat room.
    GroupChat,
    Normal,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::GroupChat => "groupchat",
            Self::Normal => "normal",
        }
    }
}

impl From<MessageType> for ChatKind {
    fn from(t: MessageType) -> Self {
        Self::of_type(t.as_str())
    }
}

/// Every child an outgoing message needs, in order: the `<encrypted>`
/// element, the XEP-0380 marker, the fallback `<body>` and the
/// `<store xmlns='urn:xmpp:hints'/>` hint. Each child declares its namespace,
/// so the text can be parsed into any XML library's elements on its own.
pub fn message_children(encrypted_element: &str) -> String {
    format!(
        "{encrypted_element}<encryption xmlns='{EME_NS}' namespace='{}' name='{EME_NAME}'/><body \
         xmlns='jabber:client'>{FALLBACK_BODY}</body><store xmlns='{HINTS_NS}'/>",
        wire::NS
    )
}

/// A whole `<message/>` stanza carrying `encrypted_element`:
/// `<message xmlns='jabber:client' to='…' type='…' id='…'>` + [`message_children`].
/// Fails with [`WireError::TooLarge`] over [`MAX_STANZA_BYTES`].
pub fn message_stanza(
    to: &str,
    message_type: MessageType,
    id: &str,
    encrypted_element: &str,
) -> Result<String, WireError> {
    let to = xml::escape_attr(to).map_err(|e| WireError::InvalidJid(e.0))?;
    let id = xml::escape_attr(id).map_err(|e| WireError::InvalidContent(e.0))?;
    let stanza = format!(
        "<message xmlns='jabber:client' to='{to}' type='{}' id='{id}'>{}</message>",
        message_type.as_str(),
        message_children(encrypted_element)
    );
    if stanza.len() > MAX_STANZA_BYTES {
        return Err(WireError::TooLarge { bytes: stanza.len(), max: MAX_STANZA_BYTES });
    }
    Ok(stanza)
}

/// How a received message reached the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Directly (live, or pushed from offline storage).
    Direct,
    /// A XEP-0280 carbon of a message one of the account's other devices
    /// sent. `wrapper_from` must be the account's own bare JID (check with
    /// [`ReceivedMessage::check_carbon`]).
    CarbonSent { wrapper_from: Option<String> },
    /// A XEP-0280 carbon of a message another device of the account received.
    CarbonReceived { wrapper_from: Option<String> },
    /// A XEP-0313 archive result: `archive` is the wrapper's `from` (absent
    /// for the account's own archive, the room for a MUC archive).
    Archived { archive: Option<String>, queryid: Option<String>, archive_id: Option<String> },
}

/// What the client needs from a received `<message/>`: the original
/// message's addresses and type (carbon and MAM wrappers removed), its
/// `<encrypted>` element and the occupant's real JID in group chats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub delivery: Delivery,
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    /// `chat`, `groupchat`, `normal`, … (`normal` when absent).
    pub message_type: String,
    /// The `jabber:encrypted` element, if the message carries one.
    pub encrypted: Option<EncryptedElement>,
    /// `<x xmlns='http://jabber.org/protocol/muc#user'><item jid='…'/></x>`:
    /// the sender's real JID, as a non-anonymous room's archive gives it.
    pub muc_real_jid: Option<String>,
    /// The XEP-0203 delay stamp (of the MAM result, else of the message).
    pub delay: Option<String>,
}

fn single<'a>(parent: &'a Element, ns: &str, name: &str) -> Result<Option<&'a Element>, WireError> {
    let mut it = parent.elements().filter(|e| e.is(ns, name));
    let first = it.next();
    if it.next().is_some() {
        return Err(WireError::Malformed(format!("more than one <{name} xmlns='{ns}'>")));
    }
    Ok(first)
}

fn forwarded_message<'a>(wrapper: &'a Element, what: &str) -> Result<&'a Element, WireError> {
    let fwd = single(wrapper, FORWARD_NS, "forwarded")?
        .ok_or_else(|| WireError::Malformed(format!("{what} without <forwarded>")))?;
    fwd.elements()
        .find(|e| e.name == "message" && STANZA_NS.contains(&e.ns.as_str()))
        .ok_or_else(|| WireError::Malformed(format!("{what} without a forwarded <message>")))
}

/// Whether `from` is exactly the bare JID `bare` (after normalization, and
/// without a resource).
fn is_bare(from: Option<&str>, bare: &str) -> bool {
    from.is_some_and(|f| !f.contains('/') && wire::bare_jid(f).is_ok_and(|b| b == bare))
}

fn delay_of(e: &Element) -> Option<String> {
    e.child(DELAY_NS, "delay").and_then(|d| d.attr("stamp")).map(str::to_owned)
}

impl ReceivedMessage {
    /// Parses a received `<message/>` stanza's XML, unwrapping a carbon or a
    /// MAM result to the original message.
    pub fn parse(stanza: &str) -> Result<Self, WireError> {
        let outer = xml::parse(stanza).map_err(|e| WireError::Malformed(e.0))?;
        if outer.name != "message" || !STANZA_NS.contains(&outer.ns.as_str()) {
            return Err(WireError::Malformed(format!("<{}> is not a <message/>", outer.name)));
        }
        let wrapper_from = outer.attr("from").map(str::to_owned);
        let mut delay = None;
        let (delivery, msg) = if let Some(sent) = single(&outer, CARBONS_NS, "sent")? {
            (Delivery::CarbonSent { wrapper_from }, forwarded_message(sent, "carbon")?)
        } else if let Some(received) = single(&outer, CARBONS_NS, "received")? {
            (Delivery::CarbonReceived { wrapper_from }, forwarded_message(received, "carbon")?)
        } else if let Some(result) = single(&outer, MAM_NS, "result")? {
            delay = result.child(FORWARD_NS, "forwarded").and_then(delay_of);
            let delivery = Delivery::Archived {
                archive: wrapper_from,
                queryid: result.attr("queryid").map(str::to_owned),
                archive_id: result.attr("id").map(str::to_owned),
            };
            (delivery, forwarded_message(result, "MAM result")?)
        } else {
            (Delivery::Direct, &outer)
        };
        let encrypted = single(msg, wire::NS, "encrypted")?.map(EncryptedElement::from_element).transpose()?;
        let muc_real_jid = msg
            .elements()
            .filter(|x| x.is(MUC_USER_NS, "x"))
            .flat_map(|x| x.elements().filter(|i| i.is(MUC_USER_NS, "item")))
            .find_map(|i| i.attr("jid"))
            .map(str::to_owned);
        Ok(Self {
            delivery,
            from: msg.attr("from").map(str::to_owned),
            to: msg.attr("to").map(str::to_owned),
            id: msg.attr("id").map(str::to_owned),
            message_type: msg.attr("type").unwrap_or("normal").to_owned(),
            encrypted,
            muc_real_jid,
            delay: delay.or_else(|| delay_of(msg)),
        })
    }

    /// The sender and recipient bare JIDs the AAD binds: in a `groupchat`
    /// message, the occupant's real JID and the room; otherwise the bare
    /// `from` and `to` of the original message (so a carbon or an archived
    /// copy opens exactly like the original). In a group chat without
    /// `muc_real_jid`, take the sender from the occupant's presence and call
    /// [`crate::wire::open_element`] yourself.
    pub fn parties(&self) -> Result<(String, String), WireError> {
        let from = self.from.as_deref().ok_or_else(|| WireError::MissingContext("no from".into()))?;
        if self.message_type == "groupchat" {
            let real = self.muc_real_jid.as_deref().ok_or_else(|| {
                WireError::MissingContext("a groupchat message without the occupant's real JID".into())
            })?;
            return Ok((wire::bare_jid(real)?, wire::bare_jid(from)?));
        }
        let to = self.to.as_deref().ok_or_else(|| WireError::MissingContext("no to".into()))?;
        Ok((wire::bare_jid(from)?, wire::bare_jid(to)?))
    }

    /// Whether the message is of a room or one-to-one (by its `type`).
    pub fn chat_kind(&self) -> ChatKind {
        ChatKind::of_type(&self.message_type)
    }

    /// For a carbon: fails with [`WireError::UntrustedWrapper`] unless the
    /// wrapper came from `own_jid`'s account itself, i.e. its `from` is the
    /// account's bare JID (XEP-0280 §11: anyone else can forge carbons; a
    /// full JID is a client, not the server acting for the account). Other
    /// deliveries pass.
    pub fn check_carbon(&self, own_jid: &str) -> Result<(), WireError> {
        match &self.delivery {
            Delivery::CarbonSent { wrapper_from } | Delivery::CarbonReceived { wrapper_from } => {
                let own = wire::bare_jid(own_jid)?;
                if is_bare(wrapper_from.as_deref(), &own) {
                    Ok(())
                } else {
                    Err(WireError::UntrustedWrapper("a carbon not from the account itself".into()))
                }
            }
            _ => Ok(()),
        }
    }

    /// For an archive result: fails with [`WireError::UntrustedWrapper`]
    /// unless it answers the query this client sent (`queryid`) and comes
    /// from the archive queried: `archive` is the JID the query went to
    /// (`None`: the account's own archive), and the wrapper's `from` must be
    /// absent (the account's own archive only) or that bare JID. A result
    /// from any other account is a forgery: anyone can send a `<message/>`
    /// holding a `<result/>`. Other deliveries pass.
    pub fn check_archive(&self, own_jid: &str, queryid: &str, archive: Option<&str>) -> Result<(), WireError> {
        let Delivery::Archived { archive: wrapper_from, queryid: got, .. } = &self.delivery else {
            return Ok(());
        };
        if got.as_deref() != Some(queryid) {
            return Err(WireError::UntrustedWrapper("an archive result that answers no query of ours".into()));
        }
        let own = wire::bare_jid(own_jid)?;
        let expected = match archive {
            Some(a) => wire::bare_jid(a)?,
            None => own.clone(),
        };
        let from_ok = match wrapper_from {
            None => expected == own,
            Some(_) => is_bare(wrapper_from.as_deref(), &expected),
        };
        if from_ok {
            Ok(())
        } else {
            Err(WireError::UntrustedWrapper(format!("an archive result not from {expected}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EL: &str = "<encrypted xmlns='jabber:encrypted' objectid='c.k'>AQID</encrypted>";

    #[test]
    fn outgoing_message_has_every_child() {
        let m = message_stanza("juliet@capulet.lit", MessageType::Chat, "m'1", EL).unwrap();
        assert_eq!(
            m,
            "<message xmlns='jabber:client' to='juliet@capulet.lit' type='chat' id='m&apos;1'><encrypted \
             xmlns='jabber:encrypted' objectid='c.k'>AQID</encrypted><encryption xmlns='urn:xmpp:eme:0' \
             namespace='jabber:encrypted' name='keysrv'/><body xmlns='jabber:client'>This message is encrypted with \
             keysrv (jabber:encrypted) and your client cannot display it.</body><store xmlns='urn:xmpp:hints'/></message>"
        );
        let r = ReceivedMessage::parse(&m).unwrap();
        assert_eq!(r.delivery, Delivery::Direct);
        assert_eq!(r.encrypted.unwrap().payload, vec![1, 2, 3]);
        assert_eq!(r.message_type, "chat");
    }

    #[test]
    fn direct_message_parties() {
        let m = format!(
            "<message xmlns='jabber:client' from='Romeo@montague.lit/orchard' to='juliet@capulet.lit/balcony' \
             type='chat'>{}<delay xmlns='urn:xmpp:delay' stamp='2025-01-31T09:30:00Z'/></message>",
            message_children(EL)
        );
        let r = ReceivedMessage::parse(&m).unwrap();
        assert_eq!(r.parties().unwrap(), ("romeo@montague.lit".into(), "juliet@capulet.lit".into()));
        assert_eq!(r.delay.as_deref(), Some("2025-01-31T09:30:00Z"));
    }

    #[test]
    fn carbons_unwrap_to_the_original() {
        let m = format!(
            "<message xmlns='jabber:client' from='romeo@montague.lit' to='romeo@montague.lit/phone' \
             type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message \
             xmlns='jabber:client' from='romeo@montague.lit/laptop' to='juliet@capulet.lit' \
             type='chat'>{EL}</message></forwarded></sent></message>"
        );
        let r = ReceivedMessage::parse(&m).unwrap();
        assert!(matches!(r.delivery, Delivery::CarbonSent { .. }));
        assert_eq!(r.parties().unwrap(), ("romeo@montague.lit".into(), "juliet@capulet.lit".into()));
        assert!(r.check_carbon("romeo@montague.lit/phone").is_ok());
        assert!(r.check_carbon("juliet@capulet.lit").is_err());
        let forged = m.replacen("from='romeo@montague.lit'", "from='tybalt@capulet.lit'", 1);
        assert!(ReceivedMessage::parse(&forged).unwrap().check_carbon("romeo@montague.lit").is_err());
    }

    #[test]
    fn mam_results_of_a_room_carry_the_real_jid() {
        let m = format!(
            "<message xmlns='jabber:client' from='verona@conference.montague.lit' to='juliet@capulet.lit/new'><result \
             xmlns='urn:xmpp:mam:2' queryid='q1' id='a1'><forwarded xmlns='urn:xmpp:forward:0'><delay \
             xmlns='urn:xmpp:delay' stamp='2025-01-31T09:30:00Z'/><message xmlns='jabber:client' \
             from='verona@conference.montague.lit/Romeo' type='groupchat'>{EL}<x \
             xmlns='http://jabber.org/protocol/muc#user'><item jid='romeo@montague.lit/orchard'/></x></message>\
             </forwarded></result></message>"
        );
        let r = ReceivedMessage::parse(&m).unwrap();
        assert_eq!(
            r.delivery,
            Delivery::Archived {
                archive: Some("verona@conference.montague.lit".into()),
                queryid: Some("q1".into()),
                archive_id: Some("a1".into())
            }
        );
        assert_eq!(r.delay.as_deref(), Some("2025-01-31T09:30:00Z"));
        assert_eq!(r.parties().unwrap(), ("romeo@montague.lit".into(), "verona@conference.montague.lit".into()));
        let anonymous = m.replace("<item jid='romeo@montague.lit/orchard'/>", "<item/>");
        assert!(matches!(ReceivedMessage::parse(&anonymous).unwrap().parties(), Err(WireError::MissingContext(_))));
    }

    #[test]
    fn plain_and_broken_messages() {
        let plain =
            ReceivedMessage::parse("<message xmlns='jabber:client' from='a@b/c' to='d@e'><body>hi</body></message>")
                .unwrap();
        assert!(plain.encrypted.is_none());
        assert!(ReceivedMessage::parse("<iq xmlns='jabber:client'/>").is_err());
        assert!(ReceivedMessage::parse(&format!("<message xmlns='jabber:client'>{EL}{EL}</message>")).is_err());
        assert!(
            ReceivedMessage::parse(
                "<message xmlns='jabber:client'><encrypted xmlns='jabber:encrypted'>AQID</encrypted></message>"
            )
            .is_err()
        );
    }
}
