//! The embedded backend's file server: the upload and download URLs that
//! `LocalFileStore` signs, served by `keysrv server` itself (on AWS, S3
//! serves them). No bearer token: the signed URL is the credential, checked
//! before anything is read or stored. Bytes stream through in chunks, so
//! memory stays flat whatever the file's size.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use keysrv_shared::adapters::local_files::{BLOB_PATH, LocalFileStore, SignedQuery};
use keysrv_shared::domain::model::StoredFile;
use keysrv_shared::error::{Invalid, Timeout};
use keysrv_shared::http::problem;
use keysrv_shared::ids::StorageKey;
use keysrv_shared::{App, Error};

/// The blob routes, for any router to merge (they need only the app).
pub fn routes<S>(app: Arc<App>) -> Router<S> {
    Router::new().route(&format!("{BLOB_PATH}/{{storage_key}}"), put(upload).get(download)).with_state(app)
}

async fn upload(State(app): State<Arc<App>>, Path(key): Path<String>, req: Request) -> Response {
    match store_upload(&app, &key, req).await {
        Ok(file) => {
            tracing::info!(target: "audit", action = "file_upload", file_id = file.file_id.as_str(), outcome = "applied");
            let mut resp = StatusCode::OK.into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            // The body may be unread: the connection cannot carry another request.
            let mut resp = refused("file_upload", &e);
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

async fn store_upload(app: &App, key: &str, req: Request) -> Result<StoredFile, Error> {
    let files = local_files(app)?;
    let query = SignedQuery::parse(req.uri().query())?;
    let headers = req.headers();
    let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) else {
        return Err(Invalid::UploadLength.into());
    };
    let media_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let key = files.verify("PUT", key, &query, Some(length), media_type)?;
    let body = req.into_body();
    // An upload started under a valid URL must end by the URL's expiry plus
    // the grace: cut off then, it stores nothing (the writer removes its
    // temporary file when dropped).
    let grace = app.config.limits.upload_grace;
    let now = keysrv_shared::timestamp::Timestamp::now().millis() / 1000;
    let left = Duration::from_secs(u64::try_from(query.expires - now).unwrap_or(0)) + grace;
    // The registration is checked before the bytes are stored and again
    // after: a deletion or crypto-shred that ran meanwhile takes them too.
    let accepted = app.keys.accept_upload(&query.file_id, &key, |file| {
        let size = file.size;
        let key = &key;
        async move {
            let mut writer = files.writer(key, size).await?;
            let mut body = body.into_data_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Invalid::UploadBody(e.to_string()))?;
                writer.write(&chunk).await?;
            }
            writer.finish().await
        }
    });
    match tokio::time::timeout(left, accepted).await {
        Ok(result) => result,
        Err(_) => Err(Timeout::Upload { grace_secs: grace.as_secs() }.into()),
    }
}

async fn download(State(app): State<Arc<App>>, Path(key): Path<String>, req: Request) -> Response {
    match open_download(&app, &key, req.uri().query().map(str::to_owned)).await {
        Ok((file, body)) => {
            tracing::info!(target: "audit", action = "file_download", file_id = file.file_id.as_str(), outcome = "released");
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(file.media_type.as_str()) {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // Members' files must not run as pages of this origin.
            h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
            resp
        }
        Err(e) => refused("file_download", &e),
    }
}

async fn open_download(app: &App, key: &str, query: Option<String>) -> Result<(StoredFile, Body), Error> {
    let files = local_files(app)?;
    let query = SignedQuery::parse(query.as_deref())?;
    let key = files.verify("GET", key, &query, None, None)?;
    let file = registered(app, &query, &key).await?;
    let reader = files.reader(&key, file.size).await?;
    // The status line is sent before the bytes are read: a chunk that fails
    // its integrity check ends the body early, which the client sees as a
    // short read of the declared Content-Length.
    let chunks = futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        match reader.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(reader))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "file download failed");
                Some((Err(std::io::Error::other("stored file failed its integrity check")), None))
            }
        }
    });
    Ok((file, Body::from_stream(chunks)))
}

fn local_files(app: &App) -> Result<&LocalFileStore, Error> {
    app.local_files.as_deref().ok_or(Error::NotFound)
}

/// The file the URL was issued for, if it is still registered under this
/// storage key.
async fn registered(app: &App, query: &SignedQuery, key: &StorageKey) -> Result<StoredFile, Error> {
    match app.keys.registered_file(&query.file_id).await? {
        Some(file) if &file.storage_key == key => Ok(file),
        _ => Err(Error::NotFound),
    }
}

fn refused(action: &str, e: &Error) -> Response {
    tracing::info!(target: "audit", action, outcome = "denied", reason = %e);
    problem::from_error(e).map(Body::from).into_response()
}
