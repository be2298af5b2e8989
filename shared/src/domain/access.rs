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
    use crate::error::{Conflict, Error, Invalid, NotAllowed};
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

    /// Every (actor, target, requested role) of a PUT, against a table
    /// written out by hand: what each role may do to each other role.
    #[test]
    fn put_member_table() {
        use NotAllowed::*;
        use Role::{Admin as A, Member as M, Owner as O};
        // (actor, target (None: not a member yet), requested role) -> outcome.
        type Case = (Role, Option<Role>, Role, Result<(), &'static str>);
        let cases: &[Case] = &[
            (O, None, M, Ok(())),
            (O, None, A, Ok(())),
            (O, Some(M), A, Ok(())),
            (O, Some(M), M, Ok(())),
            (O, Some(A), M, Ok(())),
            (O, Some(A), A, Ok(())),
            (O, Some(O), M, Err("owner-role")),
            (O, Some(O), A, Err("owner-role")),
            (O, None, O, Err("invalid-role")),
            (A, None, M, Ok(())),
            (A, None, A, Err("grant-admin")),
            (A, Some(M), M, Ok(())),
            (A, Some(M), A, Err("grant-admin")),
            (A, Some(A), M, Err("demote-admin")),
            (A, Some(A), A, Err("grant-admin")),
            (A, Some(O), M, Err("owner-role")),
            (A, None, O, Err("invalid-role")),
            (M, None, M, Err("manage")),
            (M, None, A, Err("manage")),
            (M, Some(M), M, Err("manage")),
            (M, Some(A), M, Err("manage")),
            (M, Some(O), A, Err("manage")),
        ];
        for (actor, target, role, want) in cases {
            let a = member("actor@x.y", *actor, 1);
            let t = target.map(|r| member("target@x.y", r, 1));
            let got = match check_put_member(&a, t.as_ref(), *role) {
                Ok(()) => Ok(()),
                Err(Error::Conflict(Conflict::OwnerRole)) => Err("owner-role"),
                Err(Error::Invalid(Invalid::Role)) => Err("invalid-role"),
                Err(Error::NotAllowed(GrantAdmin)) => Err("grant-admin"),
                Err(Error::NotAllowed(DemoteAdmin)) => Err("demote-admin"),
                Err(Error::NotAllowed(ManageMembers)) => Err("manage"),
                Err(other) => panic!("{actor:?} {target:?} {role:?}: {other}"),
            };
            assert_eq!(got, *want, "{actor:?} puts {target:?} as {role:?}");
        }
    }

    /// Every (actor, target) of a removal, and leaving, against a table.
    #[test]
    fn remove_member_table() {
        use Role::{Admin as A, Member as M, Owner as O};
        let cases: &[(Role, Role, bool, Result<(), &str>)] = &[
            // (actor, target, actor is the target, outcome)
            (O, O, true, Err("owner")),
            (O, A, false, Ok(())),
            (O, M, false, Ok(())),
            (A, O, false, Err("owner")),
            (A, A, true, Ok(())),
            (A, A, false, Err("remove-admin")),
            (A, M, false, Ok(())),
            (M, O, false, Err("owner")),
            (M, A, false, Err("remove-others")),
            (M, M, false, Err("remove-others")),
            (M, M, true, Ok(())),
        ];
        for (actor, target, same, want) in cases {
            let a = member("actor@x.y", *actor, 1);
            let t = if *same { a.clone() } else { member("target@x.y", *target, 1) };
            let got = match check_remove_member(&a, &t) {
                Ok(()) => Ok(()),
                Err(Error::Conflict(Conflict::OwnerRemoval)) => Err("owner"),
                Err(Error::NotAllowed(NotAllowed::RemoveAdmin)) => Err("remove-admin"),
                Err(Error::NotAllowed(NotAllowed::RemoveOthers)) => Err("remove-others"),
                Err(other) => panic!("{actor:?} {target:?}: {other}"),
            };
            assert_eq!(got, *want, "{actor:?} removes {target:?} (self: {same})");
        }
    }

    #[test]
    fn who_deletes_what_and_who_reads_what() {
        let uploader = member("up@x.y", Role::Member, 1);
        let c = ConversationId::generate().unwrap();
        let f = |history, seq| StoredFile {
            file_id: crate::ids::FileId::generate(&c).unwrap(),
            conversation_id: c.clone(),
            storage_key: crate::ids::StorageKey::generate().unwrap(),
            uploader: uploader.jid.clone(),
            media_type: crate::media_type::MediaType::parse("text/plain").unwrap(),
            size: 1,
            seq,
            history,
            created_at: Timestamp::from_millis(0),
        };
        let file = f(History::Shared, 3);
        for (actor, ok) in [
            (uploader.clone(), true),
            (member("o@x.y", Role::Owner, 1), true),
            (member("a@x.y", Role::Admin, 1), true),
            (member("m@x.y", Role::Member, 1), false),
        ] {
            assert_eq!(check_delete_file(&actor, &file).is_ok(), ok, "{actor:?}");
        }
        for (role, ok) in [(Role::Owner, true), (Role::Admin, false), (Role::Member, false)] {
            assert_eq!(check_delete_conversation(&member("x@x.y", role, 1)).is_ok(), ok, "{role:?}");
        }
        let late = member("late@x.y", Role::Member, 5);
        assert!(!may_read_file(&late, &f(History::SinceJoin, 4)));
        assert!(may_read_file(&late, &f(History::SinceJoin, 5)));
        assert!(may_read_file(&late, &f(History::SinceJoin, 6)));
        assert!(may_read_file(&late, &f(History::Shared, 1)));
        assert!(may_read_key(&late, &key(History::SinceJoin, 6)));
    }
}
