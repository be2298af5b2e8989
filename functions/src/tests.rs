//! Each Lambda handler, invoked with an API Gateway HTTP API (payload v2)
//! event carrying JWT authorizer claims. The backends are the embedded ones,
//! or — with KEYSRV_TEST_BACKEND=aws and the emulator's environment (see the
//! Makefile's `unit-aws`) — DynamoDB and KMS on the local AWS emulator.
//!
//! Unit tests of the library rather than an integration test: an
//! integration test would make cargo link every Lambda binary (each with
//! the AWS SDK) just to run these.

use std::sync::atomic::{AtomicUsize, Ordering};

use keysrv_shared::config::Backend;
use keysrv_shared::http::Route;
use keysrv_shared::{App, Config};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

struct Fixture {
    app: App,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture() -> Fixture {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir =
        std::env::temp_dir().join(format!("keysrv-fn-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let config = if std::env::var("KEYSRV_TEST_BACKEND").as_deref() == Ok("aws") {
        let config = Config::from_env_with(&[("KEYSRV_BACKEND", "aws")])
            .expect("the emulator's environment (target/emulator/env)");
        assert!(matches!(config.backend, Backend::Aws(_)));
        config
    } else {
        Config {
            backend: Backend::Embedded { data_dir: dir.clone() },
            // File URLs name the server that serves them; none runs here.
            public_url: Some("http://127.0.0.1:9".into()),
            ..Config::default()
        }
    };
    Fixture { app: App::new(config).await.unwrap(), dir }
}

fn access_claims(jid: &str) -> Value {
    json!({"sub": "0000-1111", "username": jid, "token_use": "access", "client_id": "app-client", "scope": "keysrv/api"})
}

/// Builds the event API Gateway sends for `route`, as JSON, and parses it the
/// way the Lambda runtime does.
fn event(route: Route, params: &[(&str, &str)], claims: Value, body: Option<&str>) -> lambda_http::Request {
    let mut path = route.path().to_owned();
    for (k, v) in params {
        path = path.replace(&format!("{{{k}}}"), v);
    }
    let route_key = format!("{} {}", route.method(), route.path());
    let params: serde_json::Map<String, Value> = params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let mut e = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "authorization": "Bearer (verified by the gateway)"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "authorizer": {"jwt": {"claims": claims, "scopes": null}},
            "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api-id",
            "http": {"method": route.method().as_str(), "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"},
            "requestId": "req-1",
            "routeKey": route_key,
            "stage": "$default",
            "time": "28/Nov/2026:06:00:00 +0000",
            "timeEpoch": 1_795_845_600_000_i64
        },
        "isBase64Encoded": false
    });
    if !params.is_empty() {
        e["pathParameters"] = Value::Object(params);
    }
    if let Some(b) = body {
        e["body"] = json!(b);
    }
    lambda_http::request::from_str(&e.to_string()).expect("valid API Gateway v2 event")
}

async fn call(f: &Fixture, route: Route, params: &[(&str, &str)], jid: &str, body: Option<&str>) -> (u16, Value) {
    response(crate::handle(&f.app, route, event(route, params, access_claims(jid), body)).await)
}

fn response(r: Response<Body>) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = match r.body() {
        Body::Text(s) => serde_json::from_str(s).expect("JSON body"),
        Body::Empty => Value::Null,
        other => panic!("unexpected body {other:?}"),
    };
    (status, body)
}

const ROMEO: &str = "romeo@montague.lit";
const JULIET: &str = "juliet@capulet.lit";
const MERCUTIO: &str = "mercutio@verona.lit";

#[tokio::test]
async fn every_route_serves_api_gateway_events() {
    let f = fixture().await;
    let (s, created) =
        call(&f, Route::CreateConversation, &[], ROMEO, Some(&json!({"members": [JULIET]}).to_string())).await;
    assert_eq!(s, 201, "{created}");
    let cid = created["conversation_id"].as_str().unwrap().to_owned();
    let oid = created["key"]["objectid"].as_str().unwrap().to_owned();
    let key = created["key"]["key"].as_str().unwrap().to_owned();

    let (s, conv) = call(&f, Route::GetConversation, &[("conversation_id", &cid)], JULIET, None).await;
    assert_eq!((s, conv["owner"].as_str()), (200, Some(ROMEO)));

    let (s, k) = call(&f, Route::GetKey, &[("objectid", &oid)], JULIET, None).await;
    assert_eq!((s, k["key"].as_str()), (200, Some(key.as_str())));

    let (s, cur) = call(&f, Route::GetCurrentKey, &[("conversation_id", &cid)], JULIET, None).await;
    assert_eq!((s, cur["objectid"].as_str()), (200, Some(oid.as_str())));

    let (s, rotated) = call(&f, Route::RotateKey, &[("conversation_id", &cid)], JULIET, None).await;
    assert_eq!(s, 201);
    assert_ne!(rotated["objectid"], json!(oid));

    let batch = json!({"objectids": [oid, rotated["objectid"], "unknown"]}).to_string();
    let (s, b) = call(&f, Route::BatchGetKeys, &[], JULIET, Some(&batch)).await;
    assert_eq!((s, b["keys"].as_array().map(Vec::len), b["missing"].clone()), (200, Some(2), json!(["unknown"])));

    let (s, m) =
        call(&f, Route::PutMember, &[("conversation_id", &cid), ("jid", MERCUTIO)], ROMEO, Some(r#"{"role":"admin"}"#))
            .await;
    assert_eq!((s, m["role"].as_str()), (200, Some("admin")));

    let (s, d) = call(&f, Route::DeleteMember, &[("conversation_id", &cid), ("jid", MERCUTIO)], ROMEO, None).await;
    assert_eq!(s, 200);
    assert_ne!(d["current_objectid"], rotated["objectid"]);
    let (s, _) = call(&f, Route::GetKey, &[("objectid", &oid)], MERCUTIO, None).await;
    assert_eq!(s, 404, "a removed member reads nothing");

    let file = json!({"content_type": "image/png", "size": 1234}).to_string();
    let (s, up) = call(&f, Route::CreateFile, &[("conversation_id", &cid)], JULIET, Some(&file)).await;
    assert_eq!((s, up["upload"]["method"].as_str(), up["size"].as_u64()), (201, Some("PUT"), Some(1234)), "{up}");
    assert_eq!(up["upload"]["headers"]["content-type"], json!("image/png"));
    if std::env::var("KEYSRV_TEST_BACKEND").as_deref() == Ok("aws") {
        assert_eq!(up["upload"]["headers"]["x-amz-server-side-encryption"], json!("aws:kms"), "{up}");
        let url = up["upload"]["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3B"), "{url}");
    }
    let fid = up["file_id"].as_str().unwrap().to_owned();
    let (s, down) = call(&f, Route::GetFile, &[("file_id", &fid)], ROMEO, None).await;
    assert_eq!((s, down["download"]["method"].as_str()), (200, Some("GET")), "{down}");
    let (s, _) = call(&f, Route::GetFile, &[("file_id", &fid)], MERCUTIO, None).await;
    assert_eq!(s, 404, "a removed member gets no file");
    let (s, _) = call(&f, Route::DeleteFile, &[("file_id", &fid)], JULIET, None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&f, Route::GetFile, &[("file_id", &fid)], ROMEO, None).await;
    assert_eq!(s, 404);

    let (s, body) = call(&f, Route::DeleteConversation, &[("conversation_id", &cid)], ROMEO, None).await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, _) = call(&f, Route::GetKey, &[("objectid", &oid)], ROMEO, None).await;
    assert_eq!(s, 404, "crypto-shredded");
}

#[tokio::test]
async fn id_tokens_and_missing_claims_are_401_on_every_route() {
    let f = fixture().await;
    let id_token_claims =
        json!({"sub": "x", "aud": "app-client", "token_use": "id", "cognito:username": ROMEO, "username": ROMEO});
    for &route in Route::ALL {
        let params: &[(&str, &str)] =
            &[("conversation_id", "AAAAAAAAAAAAAAAAAAAAAA"), ("objectid", "x"), ("file_id", "x"), ("jid", JULIET)];
        let wanted: Vec<(&str, &str)> =
            params.iter().copied().filter(|(k, _)| route.path().contains(&format!("{{{k}}}"))).collect();
        for claims in [id_token_claims.clone(), json!({})] {
            let (s, body) = response(crate::handle(&f.app, route, event(route, &wanted, claims, Some("{}"))).await);
            assert_eq!(s, 401, "{} with {body}", route.name());
            assert_eq!(body["status"], json!(401));
        }
    }
}

#[tokio::test]
async fn non_members_get_the_unknown_id_404_and_bad_input_400() {
    let f = fixture().await;
    let (_, created) =
        call(&f, Route::CreateConversation, &[], ROMEO, Some(&json!({"members": [JULIET]}).to_string())).await;
    let oid = created["key"]["objectid"].as_str().unwrap().to_owned();
    let unknown = format!("{}.{}", &oid[..22], "BBBBBBBBBBBBBBBBBBBBBB");
    let (s1, hidden) = call(&f, Route::GetKey, &[("objectid", &oid)], MERCUTIO, None).await;
    let (s2, missing) = call(&f, Route::GetKey, &[("objectid", &unknown)], MERCUTIO, None).await;
    assert_eq!((s1, &hidden), (s2, &missing));
    assert_eq!(s1, 404);

    let (s, p) =
        call(&f, Route::CreateConversation, &[], ROMEO, Some(r#"{"members": ["juliet@capulet.lit/balcony"]}"#)).await;
    assert_eq!((s, p["status"].clone()), (400, json!(400)));
    let big = format!(r#"{{"members": ["{}"]}}"#, "a".repeat(70 * 1024));
    let (s, _) = call(&f, Route::CreateConversation, &[], ROMEO, Some(&big)).await;
    assert_eq!(s, 413);
}

/// The metrics of an invocation reach CloudWatch as an EMF log line: the
/// counters of what it did, with the function as the dimension.
#[tokio::test]
async fn each_invocation_logs_its_metrics_in_emf() {
    let f = fixture().await;
    let (s, created) = call(&f, Route::CreateConversation, &[], ROMEO, Some(r#"{"members": []}"#)).await;
    assert_eq!(s, 201);
    let objectid = created["key"]["objectid"].as_str().expect("objectid").to_owned();
    let _ = crate::emf_line("create_conversation");
    assert_eq!(call(&f, Route::GetKey, &[("objectid", &objectid)], ROMEO, None).await.0, 200);
    assert_eq!(call(&f, Route::GetKey, &[("objectid", &objectid)], MERCUTIO, None).await.0, 404);
    let line: Value = serde_json::from_str(&crate::emf_line("get_key")).expect("one JSON object");
    assert_eq!(line["Function"], json!("get_key"));
    assert!(line["KeyReleases"].as_u64() >= Some(1), "{line}");
    assert!(line["ProblemNotFound"].as_u64() >= Some(1), "{line}");
    assert!(line["StoreCalls"].as_u64() >= Some(2), "{line}");
    let meta = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(meta["Namespace"], json!("keysrv"));
    assert_eq!(meta["Dimensions"], json!([["Function"], []]));
    let names: Vec<&str> =
        meta["Metrics"].as_array().expect("metrics").iter().filter_map(|m| m["Name"].as_str()).collect();
    for name in
        ["KeyReleases", "StoreCalls", "KmsCalls", "KeyCacheHits", "WriteRetries", "FileGrants", "ProblemNotFound"]
    {
        assert!(names.contains(&name), "{name} is not declared: {names:?}");
    }
    assert!(line["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000_000));
}

/// Each function runs the binary that serves it (template.yaml's `Binary:`
/// is checked against this in keysrv's route parity test), and a binary
/// will not start as a function it does not serve.
#[test]
fn functions_select_their_binary() {
    use crate::{Function, select};
    for route in Route::ALL {
        let binary = if route.touches_file_bytes() { "keysrv_files" } else { "keysrv_api" };
        assert_eq!(select(binary, Some(route.name())), Ok(Function::Route(*route)));
        let other = if binary == "keysrv_api" { "keysrv_files" } else { "keysrv_api" };
        assert!(select(other, Some(route.name())).is_err(), "{} started as {other}", route.name());
    }
    assert_eq!(select("keysrv_files", Some("sweep_files")), Ok(Function::SweepFiles));
    assert!(select("keysrv_api", Some("sweep_files")).is_err());
    assert!(select("keysrv_api", Some("nope")).is_err());
    assert!(select("keysrv_api", None).is_err());
}
