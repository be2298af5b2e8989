//! `keysrv conversation`, `keysrv member`, `keysrv key`.

use keysrv::cli::{ConversationCommand, HistoryArg, KeyCommand, MemberCommand, RoleArg};
use keysrv_client::{History, KeyObject, Role};
use serde_json::{Value, json};

use super::{Ctx, Failure, Output, rfc3339, table};

fn history_str(h: History) -> &'static str {
    match h {
        History::Shared => "shared",
        History::SinceJoin => "since_join",
        _ => "unknown",
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
        _ => "unknown",
    }
}

pub async fn conversation(ctx: &Ctx, command: ConversationCommand) -> Result<Output, Failure> {
    let client = ctx.session()?.client;
    match command {
        ConversationCommand::Create(args) => {
            let history = match args.history {
                HistoryArg::Shared => History::Shared,
                HistoryArg::SinceJoin => History::SinceJoin,
            };
            let created = client.create_conversation(&args.members, history, args.idempotency_key.as_deref()).await?;
            let created_at = rfc3339(created.key.created_at);
            let json = json!({
                "conversation_id": created.conversation_id,
                "objectid": created.key.objectid,
                "history": history_str(history),
                "created_at": created_at,
            });
            let text = table(&[
                ("conversation_id", created.conversation_id.clone()),
                ("objectid", created.key.objectid.clone()),
                ("history", history_str(history).into()),
                ("created_at", created_at),
            ]);
            Ok(Output::new(json, text))
        }
        ConversationCommand::Show(args) => {
            let c = client.conversation(&args.conversation_id).await?;
            let members: Vec<Value> = c
                .members
                .iter()
                .map(|m| json!({ "jid": m.jid, "role": role_str(m.role), "joined_at": rfc3339(m.joined_at) }))
                .collect();
            let mut text = table(&[
                ("conversation_id", c.conversation_id.clone()),
                ("owner", c.owner.clone()),
                ("history", history_str(c.history).into()),
                ("current_objectid", c.current_objectid.clone()),
                ("created_at", rfc3339(c.created_at)),
            ]);
            text.push_str("members:\n");
            let width = c.members.iter().map(|m| m.jid.len()).max().unwrap_or(0);
            for m in &c.members {
                text.push_str(&format!("  {:<width$}  {:<6}  {}\n", m.jid, role_str(m.role), rfc3339(m.joined_at)));
            }
            let json = json!({
                "conversation_id": c.conversation_id,
                "owner": c.owner,
                "history": history_str(c.history),
                "current_objectid": c.current_objectid,
                "created_at": rfc3339(c.created_at),
                "members": members,
            });
            Ok(Output::new(json, text))
        }
        ConversationCommand::Delete(args) => {
            client.delete_conversation(&args.conversation_id).await?;
            Ok(Output::new(
                json!({ "conversation_id": args.conversation_id, "deleted": true }),
                format!("Deleted conversation {} and every key of it", args.conversation_id),
            ))
        }
    }
}

pub async fn member(ctx: &Ctx, command: MemberCommand) -> Result<Output, Failure> {
    let client = ctx.session()?.client;
    match command {
        MemberCommand::Add(args) => {
            let role = match args.role {
                RoleArg::Member => Role::Member,
                RoleArg::Admin => Role::Admin,
            };
            let m = client.put_member(&args.conversation_id, &args.jid, role).await?;
            let json = json!({
                "conversation_id": args.conversation_id,
                "jid": m.jid,
                "role": role_str(m.role),
                "joined_at": rfc3339(m.joined_at),
            });
            let text = table(&[
                ("conversation_id", args.conversation_id.clone()),
                ("jid", m.jid.clone()),
                ("role", role_str(m.role).into()),
                ("joined_at", rfc3339(m.joined_at)),
            ]);
            Ok(Output::new(json, text))
        }
        MemberCommand::Remove(args) => {
            let current = client.remove_member(&args.conversation_id, &args.jid).await?;
            let json = json!({
                "conversation_id": args.conversation_id,
                "jid": args.jid,
                "current_objectid": current,
            });
            let text = table(&[
                ("conversation_id", args.conversation_id.clone()),
                ("removed", args.jid.clone()),
                ("current_objectid", current.clone()),
            ]);
            Ok(Output::new(json, text))
        }
    }
}

/// A key's description; the key itself only when asked for.
fn key_output(key: &KeyObject, show_key: bool) -> Output {
    let mut json = json!({
        "objectid": key.objectid,
        "conversation_id": key.conversation_id,
        "alg": "A256GCM",
        "created_at": rfc3339(key.created_at),
    });
    let mut rows = vec![
        ("objectid", key.objectid.clone()),
        ("conversation_id", key.conversation_id.clone()),
        ("alg", "A256GCM".into()),
        ("created_at", rfc3339(key.created_at)),
    ];
    if show_key {
        let b64 = key.key.to_base64();
        json["key"] = json!(b64.as_str());
        rows.push(("key", b64.as_str().to_owned()));
    } else {
        rows.push(("key", "(not shown; --show-key prints it)".into()));
    }
    Output::new(json, table(&rows))
}

pub async fn key(ctx: &Ctx, command: KeyCommand) -> Result<Output, Failure> {
    let client = ctx.session()?.client;
    match command {
        KeyCommand::Current(args) => {
            let key = client.current_key(&args.conversation_id).await?;
            Ok(key_output(&key, args.show.show_key))
        }
        KeyCommand::Rotate(args) => {
            let key = client.rotate(&args.conversation_id, args.idempotency_key.as_deref()).await?;
            Ok(key_output(&key, args.show.show_key))
        }
        KeyCommand::Get(args) => {
            let key = client.key(&args.objectid).await?;
            Ok(key_output(&key, args.show.show_key))
        }
    }
}
