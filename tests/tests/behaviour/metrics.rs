//! The metrics `keysrv server` serves on its own listener (Prometheus text
//! format): what the server did, counted exactly.

use std::collections::BTreeMap;

use keysrv_tests::*;

jids! { OWNER = "owner", BOB = "bob", STRANGER = "stranger" }

async fn scrape(port: u16) -> BTreeMap<String, f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("the metrics listener answers")
        .text()
        .await
        .expect("a body");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
        .collect()
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn the_metrics_listener_counts_releases_denials_and_store_calls() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let s = TestServer::start_with_env(&[("KEYSRV_METRICS_LISTEN", &format!("127.0.0.1:{port}"))]);
    let (owner, bob, stranger) = (s.token(*OWNER), s.token(*BOB), s.token(*STRANGER));
    let c = s.create_conversation(&owner, &[*BOB], "shared").await;
    let before = scrape(port).await;
    for _ in 0..3 {
        s.get(&key_path(&c.objectid), &bob).await.expect(200);
    }
    for _ in 0..2 {
        s.get(&key_path(&c.objectid), &stranger).await.expect_problem(404);
    }
    s.put(&member_path(&c.conversation_id, *OWNER), &owner, Some(&keysrv_tests::serde_json::json!({"role": "admin"})))
        .await
        .expect_problem(409);
    s.rotate(&owner, &c.conversation_id).await;
    let after = scrape(port).await;

    assert_eq!(delta(&before, &after, "keysrv_key_releases_total"), 4.0, "3 fetches and the rotation's key");
    assert_eq!(delta(&before, &after, "keysrv_problems_total{type=\"not-found\"}"), 2.0);
    assert_eq!(delta(&before, &after, "keysrv_problems_total{type=\"owner-role-fixed\"}"), 1.0);
    assert_eq!(
        delta(&before, &after, "keysrv_changes_total"),
        0.0,
        "a rotation is a key release, not a membership change"
    );
    let calls = delta(&before, &after, "keysrv_store_calls_total");
    assert!(calls >= 7.0, "one store call per request at least: {calls}");
    assert_eq!(
        after.get("keysrv_store_call_seconds_count"),
        after.get("keysrv_store_calls_total"),
        "the histogram counts every store call"
    );
    // Not on the API's address.
    let r = s.get("/metrics", &owner).await;
    r.expect_problem(404);
}
