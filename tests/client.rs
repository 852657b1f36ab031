//! Browser tests of the fetch chat client against real HTTP endpoints on 127.0.0.1:
//! `cargo test --target wasm32-unknown-unknown --test client`, with the endpoints of
//! `tests/e2e/support/client-endpoints.mjs` named at build time in `AGENTHER_TEST_ENDPOINTS`
//! (`.ci/test` starts them and sets it).
#![cfg(target_arch = "wasm32")]

use agenther::client::HttpClient;
use agenther::llm::diagnose::{diagnose, Diagnosis, Probe};
use agenther::llm::{build_request, ChatClient, ChatError, ChatMessage, RelabelReply};
use agenther::llm::{parse_reply, StructuredMode};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn endpoint(name: &str) -> String {
    let Some(all) = option_env!("AGENTHER_TEST_ENDPOINTS") else {
        panic!("AGENTHER_TEST_ENDPOINTS names the test endpoints at build time (see .ci/test)");
    };
    let v: serde_json::Value = serde_json::from_str(all).expect("a JSON object of URLs");
    v[name].as_str().expect("an endpoint URL").to_owned()
}

fn origin() -> String {
    web_sys::window().unwrap().location().origin().unwrap()
}

fn relabel_request(marker: &str) -> agenther::llm::ChatRequest {
    build_request::<RelabelReply>(
        "scripted-model",
        vec![
            ChatMessage::system("Relabel. Answer with the fields \"is_valid_replay\" etc."),
            ChatMessage::user(format!(
                "Achievements:\nStep 1 (search): {marker} found three hotels in Lyon"
            )),
        ],
        0.3,
        256,
        StructuredMode::JsonSchema,
    )
}

#[wasm_bindgen_test]
async fn completes_a_structured_call_and_reads_usage() {
    let client = HttpClient::new(&endpoint("open"), "", 10_000);
    let response = client
        .complete(&relabel_request("[[scenario:accept]]"))
        .await
        .expect("the call succeeds");
    let reply: RelabelReply = parse_reply(response.text().unwrap()).expect("a relabel reply");
    assert!(reply.is_valid_replay);
    assert_eq!(reply.confidence, 0.9);
    let usage = response.usage.expect("usage is reported");
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
}

#[wasm_bindgen_test]
async fn a_key_is_sent_as_bearer_only_when_set() {
    let url = endpoint("keyed");
    let without = HttpClient::new(&url, "", 10_000)
        .complete(&relabel_request(""))
        .await;
    match without {
        Err(ChatError::Http {
            status, message, ..
        }) => {
            assert_eq!(status, 401);
            assert!(!message.is_empty());
        }
        other => panic!("expected HTTP 401, got {other:?}"),
    }
    let with = HttpClient::new(&url, "sk-test-key", 10_000)
        .complete(&relabel_request(""))
        .await;
    assert!(with.is_ok(), "{with:?}");
    match HttpClient::new(&url, "sk-wrong", 10_000).probe().await {
        p @ Probe::Answered { status: 401, .. } => {
            let d = diagnose(&p, &origin(), "");
            assert!(
                matches!(d, Diagnosis::Unauthorized { status: 401, .. }),
                "{d:?}"
            );
        }
        other => panic!("expected a 401 answer, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn probe_lists_models() {
    let probe = HttpClient::new(&endpoint("open"), "", 10_000).probe().await;
    let d = diagnose(&probe, &origin(), "scripted-model");
    match d {
        Diagnosis::Ok {
            models,
            model_found,
        } => {
            assert!(models.contains(&"scripted-model".to_string()));
            assert_eq!(model_found, Some(true));
        }
        other => panic!("expected a model list, got {other:?}"),
    }
    let unknown = diagnose(&probe, &origin(), "gpt-4o");
    assert!(matches!(unknown, Diagnosis::UnknownModel { .. }));
}

#[wasm_bindgen_test]
async fn cors_and_unreachable_are_told_apart() {
    let probe = HttpClient::new(&endpoint("nocors"), "", 10_000)
        .probe()
        .await;
    assert!(
        matches!(
            probe,
            Probe::NetworkError {
                reachable: Some(true),
                ..
            }
        ),
        "{probe:?}"
    );
    assert_eq!(
        diagnose(&probe, &origin(), ""),
        Diagnosis::Cors { origin: origin() }
    );

    let probe = HttpClient::new(&endpoint("closed"), "", 10_000)
        .probe()
        .await;
    assert!(
        matches!(
            probe,
            Probe::NetworkError {
                reachable: Some(false),
                ..
            }
        ),
        "{probe:?}"
    );
    assert_eq!(diagnose(&probe, &origin(), ""), Diagnosis::Unreachable);

    let call = HttpClient::new(&endpoint("nocors"), "", 10_000)
        .complete(&relabel_request(""))
        .await;
    assert!(matches!(call, Err(ChatError::Network(_))), "{call:?}");
}

#[wasm_bindgen_test]
async fn slow_answers_time_out_and_stops_cancel() {
    let slow = endpoint("slow");
    let result = HttpClient::new(&slow, "", 500)
        .complete(&relabel_request(""))
        .await;
    assert_eq!(result.unwrap_err(), ChatError::Timeout);

    let client = HttpClient::new(&slow, "", 60_000);
    let token = client.cancel_token();
    let request = relabel_request("");
    let call = client.complete(&request);
    let stop = async {
        // Cancel once the request is in flight.
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            web_sys::window()
                .unwrap()
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 200)
                .unwrap();
        });
        wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
        token.cancel();
    };
    let (result, ()) = futures::join!(call, stop);
    assert_eq!(result.unwrap_err(), ChatError::Cancelled);
    // Later calls through the same token fail at once.
    assert_eq!(
        client.complete(&relabel_request("")).await.unwrap_err(),
        ChatError::Cancelled
    );
}

#[wasm_bindgen_test]
async fn retry_after_is_passed_on_in_seconds_or_as_a_date() {
    let call = HttpClient::new(&endpoint("busy"), "", 10_000)
        .complete(&relabel_request(""))
        .await;
    match call {
        Err(ChatError::Http {
            status: 429,
            retry_after_ms,
            ..
        }) => assert_eq!(retry_after_ms, Some(7_000)),
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    let call = HttpClient::new(&endpoint("busydate"), "", 10_000)
        .complete(&relabel_request(""))
        .await;
    match call {
        Err(ChatError::Http {
            status: 503,
            retry_after_ms: Some(ms),
            ..
        }) => {
            // A date 30 s ahead, to the second, read a moment later.
            assert!((20_000..=30_000).contains(&ms), "{ms}");
        }
        other => panic!("expected HTTP 503 with a Retry-After date, got {other:?}"),
    }
}
