//! The identity service's `GET /metrics`: eventsrc's metrics in Prometheus's text format,
//! moved by real requests. A test binary of its own, since it installs the process's global
//! metrics recorder.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use eventsrc::Store;
use eventsrc_examples::identity::http::router_with_metrics;
use eventsrc_examples::identity::service::{Config, Service};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_text_and_move_with_requests() {
    let metrics = PrometheusBuilder::new().install_recorder().unwrap();
    let store = Store::open("memory:").await.unwrap();
    let config = Config {
        read_wait: Duration::from_secs(2),
    };
    let service = Arc::new(Service::start(store, config).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(listener, router_with_metrics(service, metrics))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let client = reqwest::Client::new();
    let body =
        json!({ "email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace" });
    for (id, status) in [("ada", 201), ("ada", 409)] {
        let answer = client
            .put(format!("{base}/users/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            status,
            "{}",
            answer.text().await.unwrap()
        );
    }

    let scraped = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(scraped.status().as_u16(), 200);
    let content_type = scraped.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = scraped.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
    };
    assert_eq!(
        value(r#"eventsrc_commands_total{command="SignUp",outcome="committed"}"#),
        1.0
    );
    assert_eq!(
        value(r#"eventsrc_commands_total{command="SignUp",outcome="refused"}"#),
        1.0
    );
    assert!(value(r#"eventsrc_appends_total{backend="memory",outcome="committed"}"#) >= 1.0);
    assert!(text.contains("eventsrc_command_seconds"), "{text}");
    let _ = stop.send(());
    serving.await.unwrap();
}
