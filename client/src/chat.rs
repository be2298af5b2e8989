//! Which conversation a chat may use (`docs/PROTOCOL.md` 5, rules 11–12,
//! and 9.3): the checks a receiver makes after a message opened, and a
//! sender before it seals, on the key's conversation and its members.
//!
//! Opening proves only that the message was sealed by someone holding the
//! key. These checks bind that key to the chat the message is shown in: a
//! member of a room must not be able to seal a "private" message with the
//! room's key (a reply under it would reach the whole room), and a holder
//! of one conversation's key must not be able to speak for someone who is
//! not in it.

use std::collections::BTreeSet;

use crate::format::{self, WireError};

/// What kind of chat a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// `chat` or `normal` (and any other type but `groupchat`): between
    /// exactly two accounts.
    OneToOne,
    /// `groupchat`: a room, whose recipient is the room's bare JID.
    Room,
}

impl ChatKind {
    /// The kind of a message of this `type`: `groupchat` is a room, every
    /// other type one-to-one (as [`crate::stanza::ReceivedMessage::parties`]
    /// reads it).
    pub fn of_type(message_type: &str) -> Self {
        if message_type == "groupchat" { Self::Room } else { Self::OneToOne }
    }
}

/// The member rules, given the key's conversation's members (any spelling;
/// compared normalized): the sender MUST be a member
/// ([`WireError::SenderNotMember`]); for a one-to-one message the members
/// MUST be exactly the sender and the recipient
/// ([`WireError::ConversationMismatch`]).
pub fn check_members<S: AsRef<str>>(
    kind: ChatKind,
    sender: &str,
    recipient: &str,
    conversation_id: &str,
    members: &[S],
) -> Result<(), WireError> {
    let sender = format::bare_jid(sender)?;
    let recipient = format::bare_jid(recipient)?;
    // keysrv returns canonical JIDs; one that is not cannot be anybody.
    let members: BTreeSet<String> = members.iter().filter_map(|m| format::bare_jid(m.as_ref()).ok()).collect();
    if !members.contains(&sender) {
        return Err(WireError::SenderNotMember { sender, conversation_id: conversation_id.to_owned() });
    }
    if kind == ChatKind::OneToOne {
        let parties: BTreeSet<String> = [sender, recipient].into_iter().collect();
        if members != parties {
            return Err(WireError::ConversationMismatch(format!(
                "a one-to-one message under conversation {conversation_id}, which has {} member(s) other than its \
                 two parties",
                members.difference(&parties).count() + parties.difference(&members).count()
            )));
        }
    }
    Ok(())
}

/// The room rule: a room message MUST be under the conversation the room is
/// bound to, when it is bound (`None`: not yet, and the first message that
/// passes every check binds it).
pub fn check_room_binding(room: &str, conversation_id: &str, bound_to: Option<&str>) -> Result<(), WireError> {
    match bound_to {
        Some(bound) if bound != conversation_id => Err(WireError::ConversationMismatch(format!(
            "room {room} uses conversation {bound}, not {conversation_id}"
        ))),
        _ => Ok(()),
    }
}

/// Every check a receiver makes on the key's conversation, in order: the
/// member rules, then (for a room) the binding. `members` are the members of
/// `conversation_id` (`GET /v1/conversations/{id}`); `room_bound_to` the
/// conversation the room (the recipient) is bound to, if any.
pub fn check_conversation<S: AsRef<str>>(
    kind: ChatKind,
    sender: &str,
    recipient: &str,
    conversation_id: &str,
    members: &[S],
    room_bound_to: Option<&str>,
) -> Result<(), WireError> {
    check_members(kind, sender, recipient, conversation_id, members)?;
    if kind == ChatKind::Room {
        check_room_binding(&format::bare_jid(recipient)?, conversation_id, room_bound_to)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROMEO: &str = "romeo@montague.lit";
    const JULIET: &str = "juliet@capulet.lit";
    const MERCUTIO: &str = "mercutio@montague.lit";
    const ROOM: &str = "verona@conference.montague.lit";

    #[test]
    fn one_to_one_needs_exactly_the_two_parties() {
        let one = ChatKind::OneToOne;
        assert_eq!(check_conversation(one, ROMEO, JULIET, "c", &[JULIET, ROMEO], None), Ok(()));
        assert_eq!(
            check_conversation(one, "Romeo@Montague.lit/x", JULIET, "c", &["romeo@montague.lit.", JULIET], None),
            Ok(())
        );
        let r = check_conversation(one, ROMEO, JULIET, "c", &[ROMEO, JULIET, MERCUTIO], None);
        assert!(matches!(r, Err(WireError::ConversationMismatch(_))), "{r:?}");
        let r = check_conversation(one, JULIET, ROMEO, "c", &[JULIET], None);
        assert!(matches!(r, Err(WireError::ConversationMismatch(_))), "{r:?}");
        let r = check_conversation(one, MERCUTIO, JULIET, "c", &[ROMEO, JULIET], None);
        assert_eq!(r, Err(WireError::SenderNotMember { sender: MERCUTIO.into(), conversation_id: "c".into() }));
        assert_eq!(check_conversation(one, ROMEO, ROMEO, "c", &[ROMEO], None), Ok(()), "notes to self");
    }

    #[test]
    fn a_room_needs_a_member_sender_and_its_own_conversation() {
        let room = ChatKind::Room;
        let members = [ROMEO, JULIET, MERCUTIO];
        assert_eq!(check_conversation(room, ROMEO, ROOM, "c", &members, None), Ok(()));
        assert_eq!(check_conversation(room, ROMEO, ROOM, "c", &members, Some("c")), Ok(()));
        let r = check_conversation(room, ROMEO, ROOM, "c", &members, Some("d"));
        assert!(matches!(r, Err(WireError::ConversationMismatch(_))), "{r:?}");
        let r = check_conversation(room, "tybalt@capulet.lit", ROOM, "c", &members, Some("d"));
        assert!(matches!(r, Err(WireError::SenderNotMember { .. })), "membership is checked first: {r:?}");
        assert_eq!(ChatKind::of_type("groupchat"), ChatKind::Room);
        for t in ["chat", "normal", "headline", ""] {
            assert_eq!(ChatKind::of_type(t), ChatKind::OneToOne, "{t}");
        }
    }
}
