//! One handler per route: authenticate the caller from its claims, parse the
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
use super::routes::Route;

/// Serves `route`. Errors become problem+json here and nowhere else.
pub async fn handle(app: &App, route: Route, req: ApiRequest) -> Response<Bytes> {
    let result = match route {
        Route::CreateConversation => create_conversation(app, req).await,
        Route::GetConversation => get_conversation(app, req).await,
        Route::DeleteConversation => delete_conversation(app, req).await,
        Route::GetCurrentKey => get_current_key(app, req).await,
        Route::RotateKey => rotate_key(app, req).await,
        Route::GetKey => get_key(app, req).await,
        Route::BatchGetKeys => batch_get_keys(app, req).await,
        Route::PutMember => put_member(app, req).await,
        Route::DeleteMember => delete_member(app, req).await,
        Route::CreateFile => create_file(app, req).await,
        Route::GetFile => get_file(app, req).await,
        Route::DeleteFile => delete_file(app, req).await,
    };
    result.unwrap_or_else(|e| problem::from_error(&e))
}

async fn create_conversation(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let body: CreateConversationRequest = req.json()?;
    let members = body.members.iter().map(|m| bare_jid::parse(m)).collect::<Result<Vec<_>>>()?;
    let key = app.keys.create_conversation(&caller, members, body.history, req.idempotency_key()?).await?;
    let out = CreatedConversation { conversation_id: key.conversation_id.to_string(), key: KeyObject::from(&key) };
    Ok(json(StatusCode::CREATED, &out))
}

async fn get_conversation(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let view = app.keys.conversation(&caller, req.param("conversation_id")?).await?;
    Ok(json(StatusCode::OK, &ConversationObject::from(&view)))
}

async fn delete_conversation(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    app.keys.delete_conversation(&caller, req.param("conversation_id")?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn get_current_key(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let key = app.keys.current_key(&caller, req.param("conversation_id")?).await?;
    Ok(json(StatusCode::OK, &KeyObject::from(&key)))
}

async fn rotate_key(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let key = app.keys.rotate_key(&caller, req.param("conversation_id")?, req.idempotency_key()?).await?;
    Ok(json(StatusCode::CREATED, &KeyObject::from(&key)))
}

async fn get_key(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let key = app.keys.key(&caller, req.param("objectid")?).await?;
    Ok(json(StatusCode::OK, &KeyObject::from(&key)))
}

async fn batch_get_keys(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let body: BatchGetKeysRequest = req.json()?;
    let (keys, missing) = app.keys.keys(&caller, &body.objectids).await?;
    Ok(json(StatusCode::OK, &BatchKeys { keys: keys.iter().map(KeyObject::from).collect(), missing }))
}

async fn put_member(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let target = bare_jid::parse(req.param("jid")?)?;
    let body: PutMemberRequest = req.json()?;
    let member = app.keys.put_member(&caller, req.param("conversation_id")?, &target, body.role).await?;
    Ok(json(StatusCode::OK, &MemberObject::from(&member)))
}

async fn delete_member(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let target = bare_jid::parse(req.param("jid")?)?;
    let objectid = app.keys.remove_member(&caller, req.param("conversation_id")?, &target).await?;
    Ok(json(StatusCode::OK, &CurrentObjectId { current_objectid: objectid.to_string() }))
}

async fn create_file(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let body: CreateFileRequest = req.json()?;
    let grant = app.keys.create_file(&caller, req.param("conversation_id")?, &body.content_type, body.size).await?;
    Ok(json(StatusCode::CREATED, &FileObject::from(grant)))
}

async fn get_file(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
    let caller = req.claims.caller(&app.config.caller_claim)?;
    let grant = app.keys.file(&caller, req.param("file_id")?).await?;
    Ok(json(StatusCode::OK, &FileObject::from(grant)))
}

async fn delete_file(app: &App, req: ApiRequest) -> Result<Response<Bytes>> {
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
