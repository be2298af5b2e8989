//! The routes the code serves, the Lambda binaries, template.yaml and
//! docs/openapi.yaml are the same set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keysrv::jwt::{DevIssuer, Verifier};
use keysrv::server::{Server, router};
use keysrv_shared::config::Backend;
use keysrv_shared::http::Route;
use keysrv_shared::{App, Config};

// The YAML reader of the IAM parity test (CloudFormation's short forms in
// long form), not a second one.
#[allow(dead_code)]
#[path = "../../../tests/src/template.rs"]
mod template;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn code_routes() -> BTreeSet<(String, String, String)> {
    Route::ALL.iter().map(|r| (r.method().to_string(), r.path().to_owned(), r.name().to_owned())).collect()
}

/// (METHOD, path, operationId) for every operation of docs/openapi.yaml.
fn openapi_routes() -> BTreeSet<(String, String, String)> {
    template::openapi_operations(&template::openapi()).into_iter().collect()
}

#[test]
fn openapi_documents_exactly_the_routes_in_the_code() {
    assert_eq!(openapi_routes(), code_routes());
}

/// (METHOD, path, route) for every HttpApi event of a function in
/// template.yaml, the route being the function's `KEYSRV_ROUTE`.
fn template_routes() -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for f in template::functions(&template::template()) {
        for (method, path) in &f.http_events {
            let route = f.route_var().unwrap_or_else(|| panic!("{}: an HttpApi event but no KEYSRV_ROUTE", f.resource));
            out.insert((method.clone(), path.clone(), route.to_owned()));
        }
    }
    out
}

#[test]
fn template_declares_exactly_the_routes_in_the_code() {
    let routes = template_routes();
    assert_eq!(routes.len(), Route::ALL.len(), "one function per route");
    assert_eq!(routes, code_routes());
}

/// Every route is served by exactly one function of template.yaml, which
/// names it in `KEYSRV_ROUTE` and has exactly the route's HttpApi event; the
/// functions build the binaries of functions/src/bin and no others.
#[test]
fn one_lambda_function_per_route() {
    let functions = template::functions(&template::template());
    for route in Route::ALL {
        let serving: Vec<&template::Function> =
            functions.iter().filter(|f| f.route_var() == Some(route.name())).collect();
        let [f] = serving.as_slice() else {
            panic!("{}: served by {} functions, not one: {serving:#?}", route.name(), serving.len());
        };
        assert_eq!(f.http_events, [(route.method().to_string(), route.path().to_owned())], "{}", f.resource);
    }
    // Not routes: Cognito's pre sign-up trigger, the scheduled sweep.
    let others: BTreeSet<(Option<&str>, &str)> =
        functions.iter().filter(|f| f.http_events.is_empty()).map(|f| (f.route_var(), f.binary.as_str())).collect();
    assert_eq!(others, BTreeSet::from([(None, "pre_sign_up"), (Some("sweep_files"), "keysrv_files")]));
    let built: BTreeSet<String> = functions.iter().map(|f| f.binary.clone()).collect();
    let bins: BTreeSet<String> = std::fs::read_dir(workspace().join("functions/src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(built, bins, "template.yaml builds exactly the binaries of functions/src/bin");
}

/// Only canonical bare JIDs can become Cognito usernames: the user pool runs
/// the pre sign-up trigger, and Cognito may invoke it.
#[test]
fn the_user_pool_runs_the_pre_sign_up_trigger() {
    let t = template::template();
    let resources = &t["Resources"];
    let get_att = |resource: &str| serde_json::json!({"Fn::GetAtt": [resource, "Arn"]});
    assert_eq!(
        resources["UserPool"]["Properties"]["LambdaConfig"]["PreSignUp"],
        get_att("PreSignUpFunction"),
        "UserPool.LambdaConfig.PreSignUp"
    );
    assert_eq!(
        resources["PreSignUpFunction"]["Metadata"]["BuildProperties"]["Binary"], "pre_sign_up",
        "PreSignUpFunction builds the pre_sign_up binary"
    );
    let permission = &resources["PreSignUpPermission"]["Properties"];
    assert_eq!(permission["Action"], "lambda:InvokeFunction", "{permission}");
    assert_eq!(permission["FunctionName"], get_att("PreSignUpFunction"), "{permission}");
    assert_eq!(permission["Principal"], "cognito-idp.amazonaws.com", "{permission}");
    assert_eq!(permission["SourceArn"], get_att("UserPool"), "{permission}");
}

/// Only the functions that touch file bytes (and the sweep) run the binary
/// with S3 code, `keysrv_files`; every other route runs `keysrv_api`, whose
/// entry point builds the app without S3 (`App::from_env_without_files`:
/// the S3 adapter is never instantiated, so the binary does not link it).
/// `make lambda-parity` checks the release binaries themselves.
#[test]
fn only_the_binaries_of_file_routes_link_the_s3_client() {
    for f in template::functions(&template::template()) {
        let Some(name) = f.route_var() else { continue };
        let needs_s3 = match Route::from_name(name) {
            Some(route) => route.touches_file_bytes(),
            None => {
                assert_eq!(name, "sweep_files", "{}: KEYSRV_ROUTE={name} names no route", f.resource);
                true
            }
        };
        assert_eq!(f.binary, if needs_s3 { "keysrv_files" } else { "keysrv_api" }, "{}: {name}", f.resource);
    }
}

#[tokio::test]
async fn the_local_server_serves_every_route_and_nothing_else() {
    let dir = std::env::temp_dir().join(format!("keysrv-parity-{}", std::process::id()));
    let config = Config { backend: Backend::Embedded { data_dir: dir.clone() }, ..Config::default() };
    let app = App::new(config).await.unwrap();
    let verifier = Verifier::dev(&DevIssuer::load_or_create(&dir).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        axum::serve(
            listener,
            router(Arc::new(Server { app: Arc::new(app), verifier, body_timeout: std::time::Duration::from_secs(5) })),
        )
        .into_future(),
    );

    let client = reqwest::Client::new();
    for (method, path, name) in openapi_routes() {
        let url = format!(
            "{base}{}",
            path.replace("{conversation_id}", "c")
                .replace("{objectid}", "o")
                .replace("{file_id}", "f")
                .replace("{jid}", "a@b.c")
        );
        let resp = client.request(method.parse().unwrap(), &url).send().await.unwrap();
        // Served routes authenticate first: 401, where an unserved one is 404 or 405.
        assert_eq!(resp.status().as_u16(), 401, "{name}: {method} {url}");
    }
    let resp = client.get(format!("{base}/v1/unknown")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = client.patch(format!("{base}/v1/conversations")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    std::fs::remove_dir_all(dir).unwrap();
}

/// (name, status) of every row of a problem-type table in `text`: rows that
/// start with a backquoted name and a status column.
fn documented_problem_types(text: &str) -> BTreeSet<(String, u16)> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            let status = cells.get(1)?.parse().ok()?;
            (!name.contains(' ')).then(|| (name.to_owned(), status))
        })
        .collect()
}

/// Every problem type the code answers with is documented, with its status,
/// in docs/openapi.yaml and in the README, and nothing else is.
#[test]
fn problem_types_are_documented_in_openapi_and_the_readme() {
    let code: BTreeSet<(String, u16)> =
        keysrv_shared::http::problem::TYPES.iter().map(|t| (t.name.to_owned(), t.status.as_u16())).collect();
    for doc in ["docs/openapi.yaml", "README.md"] {
        let text = std::fs::read_to_string(workspace().join(doc)).unwrap();
        assert_eq!(documented_problem_types(&text), code, "{doc}");
    }
}

/// Every keysrv metric the alarms and the dashboard in template.yaml watch
/// is one the functions emit (a renamed counter would leave an alarm that
/// never fires).
#[test]
fn alarms_and_dashboard_watch_metrics_that_exist() {
    let snapshot = keysrv_shared::metrics::METRICS.snapshot();
    let camel = |s: &str| -> String { s.split(['_', '-']).map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect() };
    let mut emitted: BTreeSet<String> = snapshot.counters.iter().map(|(n, _)| camel(n)).collect();
    emitted.extend(keysrv_shared::http::problem::TYPES.iter().map(|t| format!("Problem{}", camel(t.name))));
    let mut watched = BTreeSet::new();
    for resource in template::template()["Resources"].as_object().expect("Resources").values() {
        match resource["Type"].as_str() {
            Some("AWS::CloudWatch::Alarm") => keysrv_metric_names(resource, &mut watched),
            Some("AWS::CloudWatch::Dashboard") => {
                // JSON inside `!Sub`: its `${…}` sit inside JSON strings, so
                // the text parses as JSON before the substitution too.
                let sub = resource["Properties"]["DashboardBody"]["Fn::Sub"].as_str().expect("DashboardBody: !Sub");
                let body: serde_json::Value = serde_json::from_str(sub).expect("DashboardBody is JSON");
                for widget in body["widgets"].as_array().into_iter().flatten() {
                    // A row names its namespace, or "." for the previous row's.
                    let mut namespace = String::new();
                    for row in widget["properties"]["metrics"].as_array().into_iter().flatten() {
                        match row[0].as_str() {
                            Some(".") | Some("...") => {}
                            Some(ns) => namespace = ns.to_owned(),
                            None => continue,
                        }
                        if namespace == "keysrv" {
                            watched.extend(row[1].as_str().map(str::to_owned));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    assert!(watched.len() >= 10, "found only {watched:?}");
    let unknown: Vec<&String> = watched.iter().filter(|m| !emitted.contains(*m)).collect();
    assert!(unknown.is_empty(), "template.yaml watches metrics nobody emits: {unknown:?}");
}

/// Every `MetricName` next to `Namespace: keysrv` anywhere in `value`.
fn keysrv_metric_names(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("Namespace").and_then(|n| n.as_str()) == Some("keysrv") {
                out.extend(map.get("MetricName").and_then(|n| n.as_str()).map(str::to_owned));
            }
            map.values().for_each(|v| keysrv_metric_names(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keysrv_metric_names(v, out)),
        _ => {}
    }
}
