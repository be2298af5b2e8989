//! Who may do what: pure functions over the domain's data, so the rules can
//! be read (and tested) in one place.

use crate::error::{Conflict, Invalid, NotAllowed, Result};

use super::model::{History, Member, Role, StoredFile, StoredKey};

/// May this member read what was created at `seq` under `history`?
/// Membership is checked by the caller of this function: a removed member
/// has no `Member` at all.
fn may_read(member: &Member, history: History, seq: u64) -> bool {
    match history {
        History::Shared => true,
        History::SinceJoin => seq >= member.joined_seq,
    }
}

pub fn may_read_key(member: &Member, key: &StoredKey) -> bool {
    may_read(member, key.history, key.seq)
}

/// Files follow the history rules of keys: under `since_join` a member sees
/// only files registered since it joined.
pub fn may_read_file(member: &Member, file: &StoredFile) -> bool {
    may_read(member, file.history, file.seq)
}

/// The uploader, the owner and admins delete a file.
pub fn check_delete_file(actor: &Member, file: &StoredFile) -> Result<()> {
    if actor.jid == file.uploader || actor.role.manages_members() { Ok(()) } else { Err(NotAllowed::DeleteFile.into()) }
}

/// Checks that `actor` may give `target` (absent when not yet a member) the
/// role `role`.
pub fn check_put_member(actor: &Member, target: Option<&Member>, role: Role) -> Result<()> {
    if !actor.role.manages_members() {
        return Err(NotAllowed::ManageMembers.into());
    }
    if let Some(t) = target {
        if t.role == Role::Owner {
            return Err(Conflict::OwnerRole.into());
        }
        if t.role == Role::Admin && role != Role::Admin && actor.role != Role::Owner {
            return Err(NotAllowed::DemoteAdmin.into());
        }
    }
    if role == Role::Admin && actor.role != Role::Owner {
        return Err(NotAllowed::GrantAdmin.into());
    }
    if role == Role::Owner {
        return Err(Invalid::Role.into());
    }
    Ok(())
}

/// Checks that `actor` may remove `target`: anyone may leave, owners and
/// admins remove others, only the owner removes admins, nobody removes the owner.
pub fn check_remove_member(actor: &Member, target: &Member) -> Result<()> {
    if target.role == Role::Owner {
        return Err(Conflict::OwnerRemoval.into());
    }
    if actor.jid == target.jid {
        return Ok(());
    }
    if !actor.role.manages_members() {
        return Err(NotAllowed::RemoveOthers.into());
    }
    if target.role == Role::Admin && actor.role != Role::Owner {
        return Err(NotAllowed::RemoveAdmin.into());
    }
    Ok(())
}

pub fn check_delete_conversation(actor: &Member) -> Result<()> {
    if actor.role == Role::Owner { Ok(()) } else { Err(NotAllowed::DeleteConversation.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bare_jid::BareJid;
    use crate::domain::model::WrappedKey;
    use crate::error::Error;
    use crate::ids::{ConversationId, ObjectId};
    use crate::timestamp::Timestamp;

    fn member(jid: &str, role: Role, joined_seq: u64) -> Member {
        Member { jid: BareJid::normalize(jid).unwrap(), role, joined_at: Timestamp::from_millis(0), joined_seq }
    }

    fn key(history: History, seq: u64) -> StoredKey {
        let c = ConversationId::generate().unwrap();
        StoredKey {
            objectid: ObjectId::generate(&c).unwrap(),
            conversation_id: c,
            seq,
            history,
            created_at: Timestamp::from_millis(0),
            wrapped: WrappedKey { scheme: "x".into(), blob: vec![] },
        }
    }

    #[test]
    fn since_join_hides_older_keys() {
        let m = member("a@b.c", Role::Member, 5);
        assert!(!may_read_key(&m, &key(History::SinceJoin, 4)));
        assert!(may_read_key(&m, &key(History::SinceJoin, 5)));
        assert!(may_read_key(&m, &key(History::Shared, 1)));
    }

    #[test]
    fn role_rules() {
        let owner = member("o@x.y", Role::Owner, 1);
        let admin = member("a@x.y", Role::Admin, 1);
        let plain = member("m@x.y", Role::Member, 1);
        assert!(check_put_member(&owner, None, Role::Admin).is_ok());
        assert!(matches!(check_put_member(&admin, None, Role::Admin), Err(Error::NotAllowed(_))));
        assert!(check_put_member(&admin, None, Role::Member).is_ok());
        assert!(matches!(check_put_member(&plain, None, Role::Member), Err(Error::NotAllowed(_))));
        assert!(matches!(check_put_member(&admin, Some(&owner), Role::Member), Err(Error::Conflict(_))));
        assert!(matches!(check_remove_member(&owner, &owner), Err(Error::Conflict(_))));
        assert!(check_remove_member(&plain, &plain).is_ok());
        assert!(matches!(check_remove_member(&plain, &admin), Err(Error::NotAllowed(_))));
        assert!(matches!(check_remove_member(&admin, &admin.clone()), Ok(())));
        assert!(matches!(check_remove_member(&admin, &member("b@x.y", Role::Admin, 1)), Err(Error::NotAllowed(_))));
        assert!(check_remove_member(&admin, &plain).is_ok());
        assert!(check_delete_conversation(&owner).is_ok());
        assert!(matches!(check_delete_conversation(&admin), Err(Error::NotAllowed(_))));
    }
}
