//! The route table: the one declaration of the API's routes. Everything
//! else follows it — the local server mounts it, the Lambda functions serve
//! it, and template.yaml and docs/openapi.yaml are checked against it by
//! parsing (keysrv/tests/cli/route_parity.rs). A new route is one row here
//! and its handler in `handlers.rs`; the compiler and those tests point at
//! everything else it needs (a function in template.yaml with its policy,
//! the OpenAPI operation, the auth matrix's expectations).

use bytes::Bytes;
use http::{Method, Response};

use super::handlers;
use super::request::ApiRequest;
use crate::app::App;

macro_rules! routes {
    ($( $variant:ident $method:ident $path:literal $handler:ident $file_bytes:literal ;)+) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Route {
            $( $variant, )+
        }

        impl Route {
            pub const ALL: &'static [Route] = &[ $( Route::$variant, )+ ];

            pub fn method(self) -> Method {
                match self {
                    $( Route::$variant => Method::$method, )+
                }
            }

            /// The path template, in the `{param}` syntax shared by axum,
            /// API Gateway and OpenAPI.
            pub fn path(self) -> &'static str {
                match self {
                    $( Route::$variant => $path, )+
                }
            }

            /// The operation's name: its handler, its Lambda function's
            /// route, the OpenAPI operationId.
            pub fn name(self) -> &'static str {
                match self {
                    $( Route::$variant => stringify!($handler), )+
                }
            }

            /// Routes that move or delete file bytes: only their Lambda
            /// functions link the S3 client, which keeps the others small.
            pub fn touches_file_bytes(self) -> bool {
                match self {
                    $( Route::$variant => $file_bytes, )+
                }
            }
        }

        /// Serves `route`. Errors become problem+json here and nowhere else.
        pub async fn handle(app: &App, route: Route, req: ApiRequest) -> Response<Bytes> {
            let result = match route {
                $( Route::$variant => handlers::$handler(app, req).await, )+
            };
            result.unwrap_or_else(|e| super::problem::from_error(&e))
        }
    };
}

routes! {
//  variant             method  path                                                  handler (= name)     file bytes
    CreateConversation  POST    "/v1/conversations"                                   create_conversation  false;
    GetConversation     GET     "/v1/conversations/{conversation_id}"                 get_conversation     false;
    DeleteConversation  DELETE  "/v1/conversations/{conversation_id}"                 delete_conversation  true;
    GetCurrentKey       GET     "/v1/conversations/{conversation_id}/keys/current"    get_current_key      false;
    RotateKey           POST    "/v1/conversations/{conversation_id}/keys"            rotate_key           false;
    GetKey              GET     "/v1/keys/{objectid}"                                 get_key              false;
    BatchGetKeys        POST    "/v1/keys/batch"                                      batch_get_keys       false;
    PutMember           PUT     "/v1/conversations/{conversation_id}/members/{jid}"   put_member           false;
    DeleteMember        DELETE  "/v1/conversations/{conversation_id}/members/{jid}"   delete_member        false;
    CreateFile          POST    "/v1/conversations/{conversation_id}/files"           create_file          true;
    GetFile             GET     "/v1/files/{file_id}"                                 get_file             true;
    DeleteFile          DELETE  "/v1/files/{file_id}"                                 delete_file          true;
}

impl Route {
    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Route;

    #[test]
    fn names_and_method_path_pairs_are_unique() {
        let names: HashSet<_> = Route::ALL.iter().map(|r| r.name()).collect();
        let pairs: HashSet<_> = Route::ALL.iter().map(|r| (r.method(), r.path())).collect();
        assert_eq!(names.len(), Route::ALL.len());
        assert_eq!(pairs.len(), Route::ALL.len());
        for r in Route::ALL {
            assert_eq!(Route::from_name(r.name()), Some(*r));
        }
        assert_eq!(Route::from_name("nope"), None);
    }
}
