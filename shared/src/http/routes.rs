//! The route table: the one list of routes that the local server mounts, the
//! Lambda functions serve, template.yaml declares and docs/openapi.yaml
//! documents (a test keeps the four in step).

use http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    CreateConversation,
    GetConversation,
    DeleteConversation,
    GetCurrentKey,
    RotateKey,
    GetKey,
    BatchGetKeys,
    PutMember,
    DeleteMember,
    CreateFile,
    GetFile,
    DeleteFile,
}

impl Route {
    pub const ALL: [Route; 12] = [
        Route::CreateConversation,
        Route::GetConversation,
        Route::DeleteConversation,
        Route::GetCurrentKey,
        Route::RotateKey,
        Route::GetKey,
        Route::BatchGetKeys,
        Route::PutMember,
        Route::DeleteMember,
        Route::CreateFile,
        Route::GetFile,
        Route::DeleteFile,
    ];

    pub fn method(self) -> Method {
        match self {
            Route::CreateConversation | Route::RotateKey | Route::BatchGetKeys | Route::CreateFile => Method::POST,
            Route::GetConversation | Route::GetCurrentKey | Route::GetKey | Route::GetFile => Method::GET,
            Route::PutMember => Method::PUT,
            Route::DeleteConversation | Route::DeleteMember | Route::DeleteFile => Method::DELETE,
        }
    }

    /// The path template, in the `{param}` syntax shared by axum, API Gateway and OpenAPI.
    pub fn path(self) -> &'static str {
        match self {
            Route::CreateConversation => "/v1/conversations",
            Route::GetConversation | Route::DeleteConversation => "/v1/conversations/{conversation_id}",
            Route::GetCurrentKey => "/v1/conversations/{conversation_id}/keys/current",
            Route::RotateKey => "/v1/conversations/{conversation_id}/keys",
            Route::GetKey => "/v1/keys/{objectid}",
            Route::BatchGetKeys => "/v1/keys/batch",
            Route::PutMember | Route::DeleteMember => "/v1/conversations/{conversation_id}/members/{jid}",
            Route::CreateFile => "/v1/conversations/{conversation_id}/files",
            Route::GetFile | Route::DeleteFile => "/v1/files/{file_id}",
        }
    }

    /// The operation's name: the Lambda binary, the OpenAPI operationId.
    pub fn name(self) -> &'static str {
        match self {
            Route::CreateConversation => "create_conversation",
            Route::GetConversation => "get_conversation",
            Route::DeleteConversation => "delete_conversation",
            Route::GetCurrentKey => "get_current_key",
            Route::RotateKey => "rotate_key",
            Route::GetKey => "get_key",
            Route::BatchGetKeys => "batch_get_keys",
            Route::PutMember => "put_member",
            Route::DeleteMember => "delete_member",
            Route::CreateFile => "create_file",
            Route::GetFile => "get_file",
            Route::DeleteFile => "delete_file",
        }
    }

    /// Routes that move or delete file bytes: their Lambda functions link
    /// the S3 client (`keysrv_functions::run_with_files`); the others do not,
    /// which keeps their packages small.
    pub fn touches_file_bytes(self) -> bool {
        matches!(self, Route::CreateFile | Route::GetFile | Route::DeleteFile | Route::DeleteConversation)
    }

    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }
}
