//! Every route × every kind of caller → the expected status, with the side
//! effect checked: a refused request changes nothing, an accepted one does
//! what it says.

use keysrv_shared::http::Route;
use keysrv_tests::reqwest::Method;
use keysrv_tests::serde_json::{Value, json};
use keysrv_tests::*;

jids! { OWNER = "owner", ADMIN = "admin", MEMBER = "member", REMOVED = "removed", TARGET = "target" }
jids! { NEWBIE = "newbie", STRANGER = "stranger" }

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    NoToken,
    BadSignature,
    Expired,
    WrongAudience,
    IdToken,
    NonMember,
    Removed,
    Member,
    Admin,
    Owner,
}

impl Caller {
    const ALL: [Caller; 10] = [
        Caller::NoToken,
        Caller::BadSignature,
        Caller::Expired,
        Caller::WrongAudience,
        Caller::IdToken,
        Caller::NonMember,
        Caller::Removed,
        Caller::Member,
        Caller::Admin,
        Caller::Owner,
    ];

    fn label(self) -> &'static str {
        match self {
            Caller::NoToken => "no token",
            Caller::BadSignature => "bad sig",
            Caller::Expired => "expired",
            Caller::WrongAudience => "wrong aud",
            Caller::IdToken => "id token",
            Caller::NonMember => "non-member",
            Caller::Removed => "removed",
            Caller::Member => "member",
            Caller::Admin => "admin",
            Caller::Owner => "owner",
        }
    }

    fn token_fails(self) -> bool {
        matches!(
            self,
            Caller::NoToken | Caller::BadSignature | Caller::Expired | Caller::WrongAudience | Caller::IdToken
        )
    }

    fn is_member(self) -> bool {
        matches!(self, Caller::Member | Caller::Admin | Caller::Owner)
    }
}

fn expected(route: Route, caller: Caller) -> u16 {
    if caller.token_fails() {
        return 401;
    }
    match route {
        Route::CreateConversation => 201,
        Route::BatchGetKeys => 200,
        _ if !caller.is_member() => 404,
        Route::GetConversation | Route::GetCurrentKey | Route::GetKey => 200,
        Route::RotateKey => 201,
        Route::DeleteConversation => {
            if caller == Caller::Owner {
                204
            } else {
                403
            }
        }
        Route::PutMember | Route::DeleteMember => {
            if caller == Caller::Member {
                403
            } else {
                200
            }
        }
        Route::CreateFile => 201,
        Route::GetFile => 200,
        // The fixture's file is the owner's: a plain member may not delete it.
        Route::DeleteFile => {
            if caller == Caller::Member {
                403
            } else {
                204
            }
        }
    }
}

/// A conversation with an owner, an admin, a plain member, a removed member
/// and a plain member to remove.
struct Fixture {
    cid: String,
    first_key: Key,
    /// A file the owner registered.
    file_id: String,
}

async fn fixture(s: &TestServer, owner: &str) -> Fixture {
    let c = s.create_conversation(owner, &[*ADMIN, *MEMBER, *REMOVED, *TARGET], "shared").await;
    s.put_member(owner, &c.conversation_id, *ADMIN, "admin").await;
    s.remove_member(owner, &c.conversation_id, *REMOVED).await;
    let body = keysrv_tests::serde_json::to_vec(&json!({"content_type": "text/plain", "size": 5})).expect("json");
    let file = s.send(Method::POST, &files_path(&c.conversation_id), owner, &[], Some(body)).await;
    assert_eq!(file.status, 201, "registering the fixture's file: {}", String::from_utf8_lossy(&file.raw));
    let file_id = file.body["file_id"].as_str().expect("file_id").to_owned();
    Fixture { cid: c.conversation_id, first_key: Key { objectid: c.objectid, key: c.key }, file_id }
}

fn request(route: Route, f: &Fixture) -> (Method, String, Option<Value>) {
    match route {
        Route::CreateConversation => (Method::POST, CONVERSATIONS.into(), Some(json!({"members": [*MEMBER]}))),
        Route::GetConversation => (Method::GET, conversation_path(&f.cid), None),
        Route::DeleteConversation => (Method::DELETE, conversation_path(&f.cid), None),
        Route::GetCurrentKey => (Method::GET, current_key_path(&f.cid), None),
        Route::RotateKey => (Method::POST, rotate_path(&f.cid), None),
        Route::GetKey => (Method::GET, key_path(&f.first_key.objectid), None),
        Route::BatchGetKeys => (Method::POST, BATCH.into(), Some(json!({"objectids": [f.first_key.objectid]}))),
        Route::PutMember => (Method::PUT, member_path(&f.cid, *NEWBIE), Some(json!({"role": "member"}))),
        Route::DeleteMember => (Method::DELETE, member_path(&f.cid, *TARGET), None),
        Route::CreateFile => {
            (Method::POST, files_path(&f.cid), Some(json!({"content_type": "image/png", "size": 1024})))
        }
        Route::GetFile => (Method::GET, file_path(&f.file_id), None),
        Route::DeleteFile => (Method::DELETE, file_path(&f.file_id), None),
    }
}

/// One cell of the matrix, with the state before its request.
struct Cell<'a> {
    route: Route,
    caller: Caller,
    f: &'a Fixture,
    before: Value,
    rows_before: RowCounts,
}

/// Checks what a response did beyond its status; returns a complaint.
async fn check_effect(s: &TestServer, owner: &str, cell: &Cell<'_>, r: &Resp) -> Option<String> {
    let Cell { route, caller, f, before, rows_before } = cell;
    let (route, caller, rows_before) = (*route, *caller, *rows_before);
    let now = s.get(&conversation_path(&f.cid), owner).await;
    let ct = r.header("content-type").unwrap_or_default();
    if r.header("cache-control") != Some("no-store") {
        return Some("no Cache-Control: no-store".into());
    }
    if r.status >= 400 {
        if !ct.starts_with("application/problem+json") || r.body["status"] != json!(r.status) {
            return Some(format!("not a problem+json response: {ct} {}", String::from_utf8_lossy(&r.raw)));
        }
        if r.status == 401 && r.header("www-authenticate") != Some("Bearer") {
            return Some("401 without WWW-Authenticate: Bearer".into());
        }
    }
    let read_only = matches!(
        route,
        Route::GetConversation | Route::GetCurrentKey | Route::GetKey | Route::BatchGetKeys | Route::GetFile
    );
    if r.status >= 400 || read_only {
        if now.status != 200 || &now.body != before {
            return Some(format!("a refused or read-only request changed the conversation: {}", now.body));
        }
        if s.row_counts() != rows_before {
            return Some(format!(
                "a refused or read-only request wrote rows: {:?} -> {:?}",
                rows_before,
                s.row_counts()
            ));
        }
        if r.status >= 400 {
            return None;
        }
    }
    let current = now.body["current_objectid"].clone();
    let has = |jid: &str| now.body["members"].as_array().is_some_and(|m| m.iter().any(|m| m["jid"] == json!(jid)));
    match route {
        Route::CreateConversation => {
            let rows = s.row_counts();
            (rows.conversations != rows_before.conversations + 1).then(|| format!("rows {rows_before:?} -> {rows:?}"))
        }
        Route::GetConversation => (r.body != *before).then(|| format!("view differs from the owner's: {}", r.body)),
        Route::GetCurrentKey | Route::GetKey => {
            let want_oid =
                if route == Route::GetKey { json!(f.first_key.objectid) } else { before["current_objectid"].clone() };
            let key = r.body["key"].as_str().map(decode_key);
            if r.body["objectid"] != want_oid {
                Some(format!("wrong key {}", r.body["objectid"]))
            } else if route == Route::GetKey && key.as_ref() != Some(&f.first_key.key) {
                Some("key bytes differ from the created key".into())
            } else {
                None
            }
        }
        Route::RotateKey => (current != r.body["objectid"] || current == before["current_objectid"])
            .then(|| format!("rotation did not become current: {current}")),
        Route::DeleteConversation => (now.status != 404).then(|| format!("conversation still there: {}", now.status)),
        Route::PutMember => (!has(*NEWBIE)).then(|| "new member not listed".to_owned()),
        Route::DeleteMember => {
            (has(*TARGET) || current != r.body["current_objectid"] || current == before["current_objectid"])
                .then(|| format!("target still listed or key not rotated: {}", now.body))
        }
        Route::CreateFile => {
            let rows = s.row_counts();
            (rows.files != rows_before.files + 1 || r.body["upload"]["method"] != json!("PUT"))
                .then(|| format!("rows {rows_before:?} -> {rows:?}, {}", r.body))
        }
        Route::GetFile => (r.body["file_id"] != json!(f.file_id) || r.body["download"]["method"] != json!("GET"))
            .then(|| format!("wrong file or no download URL: {}", r.body)),
        Route::DeleteFile => {
            let rows = s.row_counts();
            (rows.files + 1 != rows_before.files).then(|| format!("rows {rows_before:?} -> {rows:?}"))
        }
        Route::BatchGetKeys => {
            let keys = r.body["keys"].as_array().cloned().unwrap_or_default();
            let missing = r.body["missing"].as_array().cloned().unwrap_or_default();
            let released = keys.len() == 1
                && keys[0]["objectid"] == json!(f.first_key.objectid)
                && keys[0]["key"].as_str().map(decode_key).as_ref() == Some(&f.first_key.key)
                && missing.is_empty();
            let withheld = keys.is_empty() && missing == vec![json!(f.first_key.objectid)];
            match (caller.is_member(), released, withheld) {
                (true, true, _) | (false, _, true) => None,
                _ => Some(format!("batch released the wrong keys: {}", r.body)),
            }
        }
    }
}

#[tokio::test]
async fn every_route_for_every_caller() {
    assert_eq!(Route::ALL.len(), 12, "a route was added: give it a row here");
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let bad = s.bad_tokens(*OWNER);
    assert_eq!(bad.len(), 4);
    let token_for = |caller: Caller| -> String {
        let bad_named = |label: &str| bad.iter().find(|(l, _)| *l == label).map(|(_, t)| t.clone()).expect(label);
        match caller {
            Caller::NoToken => NO_TOKEN.to_owned(),
            Caller::BadSignature => bad_named("bad signature"),
            Caller::Expired => bad_named("expired"),
            Caller::WrongAudience => bad_named("wrong audience"),
            Caller::IdToken => bad_named("id token"),
            Caller::NonMember => s.token(*STRANGER),
            Caller::Removed => s.token(*REMOVED),
            Caller::Member => s.token(*MEMBER),
            Caller::Admin => s.token(*ADMIN),
            Caller::Owner => owner.clone(),
        }
    };

    let mut table = Vec::new();
    let mut failures = Vec::new();
    for &route in Route::ALL {
        let mut row = Vec::new();
        for caller in Caller::ALL {
            // A fresh conversation per cell: several cells destroy or change it.
            let f = fixture(&s, &owner).await;
            let cell = Cell {
                route,
                caller,
                f: &f,
                before: s.conversation(&owner, &f.cid).await,
                rows_before: s.row_counts(),
            };
            let (method, path, body) = request(route, &f);
            let body = body.map(|b| keysrv_tests::serde_json::to_vec(&b).expect("json"));
            let r = s.send(method, &path, &token_for(caller), &[], body).await;
            let want = expected(route, caller);
            let complaint = if r.status != want {
                Some(format!("expected {want}, got {}: {}", r.status, String::from_utf8_lossy(&r.raw)))
            } else {
                check_effect(&s, &owner, &cell, &r).await
            };
            row.push(match &complaint {
                None => format!("{}", r.status),
                Some(_) if r.status != want => format!("{}!={want}", r.status),
                Some(_) => format!("{}*", r.status),
            });
            if let Some(c) = complaint {
                failures.push(format!("{} as {}: {c}", route.name(), caller.label()));
            }
            s.discard_conversation(&f.cid);
        }
        table.push((route.name(), row));
    }

    if !failures.is_empty() {
        let mut out = format!("{:<22}", "");
        for c in Caller::ALL {
            out.push_str(&format!("{:>11}", c.label()));
        }
        out.push('\n');
        for (name, row) in &table {
            out.push_str(&format!("{name:<22}"));
            for cell in row {
                out.push_str(&format!("{cell:>11}"));
            }
            out.push('\n');
        }
        panic!(
            "authorization matrix failed ('a!=b': got a, expected b; 'a*': right status, wrong effect)\n{out}\n{}",
            failures.join("\n")
        );
    }
}

/// Credentials that are wrong in other ways: all 401, on a route the same
/// JID may use with a good token.
#[tokio::test]
async fn other_bad_credentials_are_unauthorized() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use keysrv::jwt::now_secs;

    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*MEMBER], "shared").await;
    let path = current_key_path(&c.conversation_id);
    s.get(&path, &owner).await.expect(200);

    // Claims the server accepts, signed with the key it trusts (the dev key,
    // or the emulator's Cognito key); each case below breaks one thing.
    let now = now_secs();
    let claims = s.access_claims(*OWNER);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        s.sign_trusted(&c)
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(keysrv_tests::serde_json::to_vec(v).expect("json"));
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": s.trusted_kid()})), b64(&claims));
    let good = with(&|_| {});
    // The unbroken claims do pass, so every 401 below is for what the case breaks.
    s.send(Method::GET, &path, NO_TOKEN, &[("authorization", format!("Bearer {good}").as_bytes())], None)
        .await
        .expect(200);
    let stripped = format!("{}.", good.rsplit_once('.').expect("jwt").0);
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut forged = claims.clone();
        forged["username"] = json!(*STRANGER);
        parts[1] = b64(&forged);
        parts.join(".")
    };

    let cases: Vec<(&str, String)> = vec![
        ("Basic credentials", "Basic b3duZXI6cGFzc3dvcmQ=".into()),
        ("Bearer without a token", "Bearer".into()),
        ("Bearer and spaces", "Bearer    ".into()),
        ("not a JWT", "Bearer not-a-jwt".into()),
        ("alg none", format!("Bearer {unsigned}")),
        ("signature stripped", format!("Bearer {stripped}")),
        ("claims changed after signing", format!("Bearer {tampered}")),
        ("wrong issuer", format!("Bearer {}", with(&|c| c["iss"] = json!("https://issuer.example")))),
        ("no exp", format!("Bearer {}", with(&|c| drop(c.as_object_mut().map(|o| o.remove("exp")))))),
        ("no iss", format!("Bearer {}", with(&|c| drop(c.as_object_mut().map(|o| o.remove("iss")))))),
        ("no audience", format!("Bearer {}", with(&|c| drop(c.as_object_mut().map(|o| o.remove("client_id")))))),
        ("no username", format!("Bearer {}", with(&|c| drop(c.as_object_mut().map(|o| o.remove("username")))))),
        ("no token_use", format!("Bearer {}", with(&|c| drop(c.as_object_mut().map(|o| o.remove("token_use")))))),
        ("username is a full JID", format!("Bearer {}", with(&|c| c["username"] = json!(format!("{}/phone", *OWNER))))),
        ("username is not a JID", format!("Bearer {}", with(&|c| c["username"] = json!("not a jid")))),
        ("not valid yet (nbf)", format!("Bearer {}", with(&|c| c["nbf"] = json!(now + 3600)))),
        ("iss is an array", format!("Bearer {}", with(&|c| c["iss"] = json!([claims["iss"].clone()])))),
        ("exp is fractional", format!("Bearer {}", with(&|c| c["exp"] = json!(now as f64 + 3600.5)))),
        ("exp is a string", format!("Bearer {}", with(&|c| c["exp"] = json!((now + 3600).to_string())))),
    ];
    let mut failures = Vec::new();
    for (what, header) in &cases {
        let r = s.send(Method::GET, &path, NO_TOKEN, &[("authorization", header.as_bytes())], None).await;
        let complaint = r.problem_complaint(401).or_else(|| {
            (r.header("www-authenticate") != Some("Bearer")).then(|| "no WWW-Authenticate: Bearer".to_owned())
        });
        failures.extend(complaint.map(|c| format!("{what}: {c}")));
    }
    assert!(failures.is_empty(), "bad credentials were not refused with 401:\n{}", failures.join("\n"));
}

/// One JID, one person: a validly signed token whose username is another
/// spelling of a member's JID belongs to another user of the identity
/// provider, and gets 401 — never the member's keys.
#[tokio::test]
async fn other_spellings_of_a_username_are_not_the_member() {
    let s = TestServer::start();
    let owner = s.token(*OWNER);
    let c = s.create_conversation(&owner, &[*MEMBER], "shared").await;
    let member = s.sign_trusted(&s.access_claims(*MEMBER));
    s.get(&current_key_path(&c.conversation_id), &member).await.expect(200);

    let (local, domain) = MEMBER.split_once('@').expect("a bare JID");
    let fullwidth_domain = domain.replacen('e', "\u{ff45}", 1);
    let spellings = [
        ("fullwidth localpart", format!("\u{ff4d}{}@{domain}", &local[1..])),
        ("upper-case localpart", format!("{}@{domain}", local.to_uppercase())),
        ("soft hyphen", format!("{}\u{ad}{}@{domain}", &local[..2], &local[2..])),
        ("zero-width space", format!("{}\u{200b}{}@{domain}", &local[..2], &local[2..])),
        ("zero-width joiner", format!("{}\u{200d}{}@{domain}", &local[..2], &local[2..])),
        ("fullwidth in the domain", format!("{local}@{fullwidth_domain}")),
        ("upper-case domain", format!("{local}@{}", domain.to_uppercase())),
        ("trailing dot", format!("{local}@{domain}.")),
    ];
    let mut failures = Vec::new();
    for (what, username) in &spellings {
        let token = s.sign_trusted(&{
            let mut claims = s.access_claims(*MEMBER);
            claims["username"] = json!(username);
            claims
        });
        for path in [current_key_path(&c.conversation_id), key_path(&c.objectid)] {
            let r = s.get(&path, &token).await;
            if let Some(complaint) = r.problem_complaint(401) {
                failures.push(format!("{what} ({username:?}) on {path}: {complaint}"));
            } else if !r.body["detail"].as_str().unwrap_or_default().contains("canonical") {
                failures.push(format!("{what}: the 401 does not say the username must be canonical: {}", r.body));
            }
        }
    }
    assert!(failures.is_empty(), "non-canonical usernames were let in:\n{}", failures.join("\n"));
}
