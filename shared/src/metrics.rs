//! Counters of what keysrv does, kept in atomics (no call, no lock on the
//! hot path; error answers, off it, by problem type under a lock) and shown two ways: a Prometheus text page for `keysrv server`
//! (a listener of its own, loopback by default) and CloudWatch Embedded
//! Metric Format lines in the Lambda functions' logs (no PutMetricData
//! call: CloudWatch reads them from the log).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Store calls slower than each bound, in microseconds (the last catches all).
const LATENCY_BOUNDS_US: [u64; 8] = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, u64::MAX];

pub struct Metrics {
    pub key_releases: AtomicU64,
    pub changes: AtomicU64,
    pub file_grants: AtomicU64,
    pub kms_calls: AtomicU64,
    /// KMS calls that failed (unavailable, throttled, refused).
    pub kms_failures: AtomicU64,
    pub key_cache_hits: AtomicU64,
    pub key_cache_misses: AtomicU64,
    pub store_calls: AtomicU64,
    /// Commits to the database: on SQLite one per batch of changes (group
    /// commit), so `changes / store_commits` is the batch size. DynamoDB
    /// commits each change by itself and does not count here.
    pub store_commits: AtomicU64,
    store_micros: AtomicU64,
    store_latency: [AtomicU64; LATENCY_BOUNDS_US.len()],
    /// Writes that lost a race and were tried again.
    pub write_retries: AtomicU64,
    /// Error answers, by problem type (denials among them: `not-found`,
    /// `role-required`, `rate-limited`, `invalid-token`, …).
    problems: Mutex<BTreeMap<&'static str, u64>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

pub static METRICS: Metrics = Metrics {
    key_releases: ZERO,
    changes: ZERO,
    file_grants: ZERO,
    kms_calls: ZERO,
    kms_failures: ZERO,
    key_cache_hits: ZERO,
    key_cache_misses: ZERO,
    store_calls: ZERO,
    store_commits: ZERO,
    store_micros: ZERO,
    store_latency: [ZERO; LATENCY_BOUNDS_US.len()],
    write_retries: ZERO,
    problems: Mutex::new(BTreeMap::new()),
};

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// One store call that took `micros`.
    pub fn store_call(&self, micros: u64) {
        inc(&self.store_calls);
        self.store_micros.fetch_add(micros, Ordering::Relaxed);
        let bucket = LATENCY_BOUNDS_US.iter().position(|b| micros <= *b).unwrap_or(LATENCY_BOUNDS_US.len() - 1);
        inc(&self.store_latency[bucket]);
    }

    /// An error answer of this problem type.
    pub fn problem(&self, name: &'static str) {
        // A poisoned lock still holds counts: a panic elsewhere must not
        // stop the counting.
        let mut problems = self.problems.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *problems.entry(name).or_default() += 1;
    }

    /// Every counter, by name, now.
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            counters: vec![
                ("key_releases", get(&self.key_releases)),
                ("changes", get(&self.changes)),
                ("file_grants", get(&self.file_grants)),
                ("kms_calls", get(&self.kms_calls)),
                ("kms_failures", get(&self.kms_failures)),
                ("key_cache_hits", get(&self.key_cache_hits)),
                ("key_cache_misses", get(&self.key_cache_misses)),
                ("store_calls", get(&self.store_calls)),
                ("store_commits", get(&self.store_commits)),
                ("store_micros", get(&self.store_micros)),
                ("write_retries", get(&self.write_retries)),
            ],
            store_latency: self.store_latency.iter().map(get).collect(),
            problems: self
                .problems
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(n, v)| (*n, *v))
                .collect(),
        }
    }
}

/// The counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub counters: Vec<(&'static str, u64)>,
    /// Store calls per latency bucket (`LATENCY_BOUNDS_US`).
    pub store_latency: Vec<u64>,
    pub problems: Vec<(&'static str, u64)>,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> u64 {
        self.counters.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v)
    }

    pub fn problem(&self, name: &str) -> u64 {
        self.problems.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v)
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let diff = |now: &[(&'static str, u64)], then: &[(&'static str, u64)]| {
            now.iter()
                .map(|(n, v)| (*n, v.saturating_sub(then.iter().find(|(m, _)| m == n).map_or(0, |(_, w)| *w))))
                .collect()
        };
        Snapshot {
            counters: diff(&self.counters, &earlier.counters),
            store_latency: self
                .store_latency
                .iter()
                .zip(earlier.store_latency.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            problems: diff(&self.problems, &earlier.problems),
        }
    }

    /// The Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.counters {
            out.push_str(&format!("# TYPE keysrv_{name}_total counter\nkeysrv_{name}_total {value}\n"));
        }
        out.push_str("# TYPE keysrv_store_call_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BOUNDS_US.iter().zip(&self.store_latency) {
            cumulative += count;
            let le = if *bound == u64::MAX { "+Inf".to_owned() } else { format!("{}", *bound as f64 / 1e6) };
            out.push_str(&format!("keysrv_store_call_seconds_bucket{{le=\"{le}\"}} {cumulative}\n"));
        }
        out.push_str(&format!(
            "keysrv_store_call_seconds_sum {}\nkeysrv_store_call_seconds_count {cumulative}\n",
            self.get("store_micros") as f64 / 1e6
        ));
        out.push_str("# TYPE keysrv_problems_total counter\n");
        for (name, value) in &self.problems {
            out.push_str(&format!("keysrv_problems_total{{type=\"{name}\"}} {value}\n"));
        }
        out
    }

    /// One CloudWatch Embedded Metric Format object: the counters (the
    /// snapshot of one invocation, `since` the previous), once with
    /// `function` as the dimension and once without (the service-wide
    /// metric the alarms watch). Problem types with a count of zero are left out.
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut root = Map::new();
        let mut metrics = Vec::new();
        let camel =
            |s: &str| -> String { s.split(['_', '-']).map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect() };
        for (name, value) in &self.counters {
            let unit = if *name == "store_micros" { "Microseconds" } else { "Count" };
            metrics.push(json!({"Name": camel(name), "Unit": unit}));
            root.insert(camel(name), json!(value));
        }
        for (name, value) in self.problems.iter().filter(|(_, v)| *v > 0) {
            let metric = format!("Problem{}", camel(name));
            metrics.push(json!({"Name": metric, "Unit": "Count"}));
            root.insert(metric, json!(value));
        }
        root.insert("Function".into(), json!(function));
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": "keysrv", "Dimensions": [["Function"], []], "Metrics": metrics}],
            }),
        );
        Value::Object(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_and_emf_show_the_same_counts() {
        let m = Metrics {
            key_releases: AtomicU64::new(3),
            changes: ZERO,
            file_grants: ZERO,
            kms_calls: AtomicU64::new(1),
            kms_failures: ZERO,
            key_cache_hits: ZERO,
            key_cache_misses: ZERO,
            store_calls: ZERO,
            store_commits: ZERO,
            store_micros: ZERO,
            store_latency: [ZERO; LATENCY_BOUNDS_US.len()],
            write_retries: ZERO,
            problems: Mutex::new(BTreeMap::new()),
        };
        m.store_call(700);
        m.store_call(30_000);
        m.problem("not-found");
        m.problem("not-found");
        let s = m.snapshot();
        let text = s.prometheus();
        for line in [
            "keysrv_key_releases_total 3",
            "keysrv_kms_calls_total 1",
            "keysrv_store_calls_total 2",
            "keysrv_store_call_seconds_bucket{le=\"0.0005\"} 0",
            "keysrv_store_call_seconds_bucket{le=\"0.001\"} 1",
            "keysrv_store_call_seconds_bucket{le=\"+Inf\"} 2",
            "keysrv_store_call_seconds_count 2",
            "keysrv_problems_total{type=\"not-found\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let emf = s.emf("get_key", 1_700_000_000_000);
        assert_eq!(emf["KeyReleases"], 3);
        assert_eq!(emf["ProblemNotFound"], 2);
        assert_eq!(emf["Function"], "get_key");
        let declared: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(declared.contains(&"KeyReleases") && declared.contains(&"ProblemNotFound"));
        assert!(!declared.contains(&"ProblemRoleRequired"), "zero problem counts are left out");
        assert_eq!(s.since(&s).get("key_releases"), 0);
    }
}
