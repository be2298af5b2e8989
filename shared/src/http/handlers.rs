//! One handler per route (the route table in `routes.rs` dispatches to
//! them by name): authenticate the caller from its claims, parse the
//! input, call the key service, shape the output. Nothing else.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::app::App;
use crate::bare_jid;
use crate::error::Result;

use super::dto::{
    BatchGetKeysRequest, BatchKeys, ConversationObject, CreateConversationRequest, CreateFileRequest,
    CreatedConversation, CurrentObjectId, FileObject, KeyObject, MemberObject, PutMemberRequest,
};
use super::problem;
use super::request::ApiRequest;

pub(super) async fn create_conversation(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let body: CreateConversationRequest = req.json()?;
    let members = body.members.iter().map(|m| bare_jid::parse(m)).collect::<Result<Vec<_>>>()?;
    let key = app.keys.create_conversation(&caller, members, body.history, req.idempotency_key()?).await?;
    let out = CreatedConversation { conversation_id: key.conversation_id.to_string(), key: KeyObject::from(&key) };
    Ok(json(StatusCode::CREATED, &out))
}

pub(super) async fn get_conversation(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let view = app.keys.conversation(&caller, req.param("conversation_id")?).await?;
    Ok(json(StatusCode::OK, &ConversationObject::from(&view)))
}

pub(super) async fn delete_conversation(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    app.keys.delete_conversation(&caller, req.param("conversation_id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(super) async fn get_current_key(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let key = app.keys.current_key(&caller, req.param("conversation_id")?).await?;
    Ok(json(StatusCode::OK, &KeyObject::from(&key)))
}

pub(super) async fn rotate_key(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let key = app.keys.rotate_key(&caller, req.param("conversation_id")?, req.idempotency_key()?).await?;
    Ok(json(StatusCode::CREATED, &KeyObject::from(&key)))
}

pub(super) async fn get_key(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let key = app.keys.key(&caller, req.param("objectid")?).await?;
    Ok(json(StatusCode::OK, &KeyObject::from(&key)))
}

pub(super) async fn batch_get_keys(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let body: BatchGetKeysRequest = req.json()?;
    let (keys, missing) = app.keys.keys(&caller, &body.objectids).await?;
    Ok(json(StatusCode::OK, &BatchKeys { keys: keys.iter().map(KeyObject::from).collect(), missing }))
}

pub(super) async fn put_member(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let target = bare_jid::parse(req.param("jid")?)?;
    let body: PutMemberRequest = req.json()?;
    let member = app.keys.put_member(&caller, req.param("conversation_id")?, &target, body.role).await?;
    Ok(json(StatusCode::OK, &MemberObject::from(&member)))
}

pub(super) async fn delete_member(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let target = bare_jid::parse(req.param("jid")?)?;
    let objectid = app.keys.remove_member(&caller, req.param("conversation_id")?, &target).await?;
    Ok(json(StatusCode::OK, &CurrentObjectId { current_objectid: objectid.to_string() }))
}

pub(super) async fn create_file(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let body: CreateFileRequest = req.json()?;
    let grant = app.keys.create_file(&caller, req.param("conversation_id")?, &body.content_type, body.size).await?;
    Ok(json(StatusCode::CREATED, &FileObject::from(grant)))
}

pub(super) async fn get_file(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let grant = app.keys.file(&caller, req.param("file_id")?).await?;
    Ok(json(StatusCode::OK, &FileObject::from(grant)))
}

pub(super) async fn delete_file(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    app.keys.delete_file(&caller, req.param("file_id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Every response is `no-store`: most carry keys, and the rest describe who
/// may read them.
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = Response::new(Bytes::from(bytes));
            *resp.status_mut() = status;
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => problem::from_error(&crate::Error::Backend(crate::ports::BackendError::Internal(e.to_string()))),
    }
}

fn empty(status: StatusCode) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
