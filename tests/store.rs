//! Browser tests of the IndexedDB wrapper: `cargo test --target wasm32-unknown-unknown --test
//! store`, run by `wasm-bindgen-test-runner` in headless Chromium (see `.ci/test`). Each test
//! works in a database of its own, deleted first.
#![cfg(target_arch = "wasm32")]

use agenther::persist::{delete_session, rebuild, Journal};
use agenther::prefs::Prefs;
use agenther::reader::read_all;
use agenther::session::Session;
use agenther::stages::detect::rules::Lexicon;
use agenther::store::{delete_database, Db, StoreError};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn fresh(name: &str) -> Db {
    delete_database(name)
        .await
        .expect("the old database is deleted");
    Db::open_named(name).await.expect("the database opens")
}

fn session() -> Session {
    let mut s = Session::new(Lexicon::default(), Prefs::default().delta);
    s.add_report(agenther::example::load());
    s.add_report(read_all(
        "more.jsonl",
        concat!(
            r#"{"trajectory_id":"ex-shop-headphones","original_prompt":"p","steps":[{"thought":"t","action_name":"a","action_input":{"big":123456789012345678901234567890},"observation":"Found 3 items for $20"}],"failure_reason":"too expensive","metadata":{"score":NaN}}"#,
            "\n{broken\n"
        )
        .as_bytes(),
    ));
    s
}

/// Writes all of `session` under `journal`, batch after batch.
async fn save(db: &Db, journal: &mut Journal, session: &Session) {
    loop {
        db.write(&journal.batch(session, 1.0))
            .await
            .expect("the batch is written");
        if !journal.behind(session) {
            break;
        }
    }
}

#[wasm_bindgen_test]
async fn a_session_is_written_read_back_and_deleted() {
    let db = fresh("agenther-test-roundtrip").await;
    let s = session();
    let mut journal = Journal::new("s1", 1.0, Prefs::default(), false);
    save(&db, &mut journal, &s).await;

    let records = db.session_records().await.unwrap();
    assert_eq!(records.len(), 1);
    let parts = db.read_session("s1").await.unwrap();
    assert_eq!(parts.trajectories.len(), s.len());
    assert_eq!(parts.files.len(), 2);
    assert_eq!(parts.trajectories[3].0, vec![3]);
    let restored = rebuild(parts).unwrap();
    assert_eq!(restored.session, s);
    assert_eq!(restored.record.trajectories, s.len());

    db.write(&delete_session("s1")).await.unwrap();
    assert!(db.session_records().await.unwrap().is_empty());
    let gone = db.read_session("s1").await.unwrap();
    assert_eq!(gone.record, "");
    assert!(gone.trajectories.is_empty() && gone.files.is_empty());
    db.close();
}

#[wasm_bindgen_test]
async fn deleting_one_session_keeps_the_others_and_clear_deletes_all() {
    let db = fresh("agenther-test-two").await;
    let s = session();
    let mut a = Journal::new("a", 1.0, Prefs::default(), false);
    let mut ab = Journal::new("ab", 2.0, Prefs::default(), false);
    save(&db, &mut a, &s).await;
    save(&db, &mut ab, &s).await;
    db.write(&a.delete()).await.unwrap();
    let records = db.session_records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].contains("\"id\":\"ab\""));
    assert_eq!(
        rebuild(db.read_session("ab").await.unwrap())
            .unwrap()
            .session,
        s
    );
    assert_eq!(db.read_session("a").await.unwrap().trajectories.len(), 0);

    db.clear().await.unwrap();
    assert!(db.session_records().await.unwrap().is_empty());
    assert_eq!(db.read_session("ab").await.unwrap().trajectories.len(), 0);
    db.close();
}

#[wasm_bindgen_test]
async fn results_written_later_replace_and_clearing_removes_them() {
    let db = fresh("agenther-test-results").await;
    let mut s = session();
    let mut journal = Journal::new("s", 1.0, Prefs::default(), false);
    save(&db, &mut journal, &s).await;
    let result = agenther::pipeline::TrajectoryResult {
        trajectory_id: s.entries[2].id().to_owned(),
        analysis: Some(s.entries[2].rule_analysis().clone()),
        extracted: None,
        relabel: None,
        stage_calls: Vec::new(),
        outcome: agenther::pipeline::Outcome::Skipped {
            stage: agenther::pipeline::Stage::Gate,
            reason: "test".into(),
        },
    };
    s.set_result(2, result);
    journal.result_changed(2);
    save(&db, &mut journal, &s).await;
    let parts = db.read_session("s").await.unwrap();
    assert_eq!(parts.results.len(), 1);
    let restored = rebuild(parts).unwrap();
    assert_eq!(restored.session, s);
    assert_eq!(restored.record.done, 1);

    s.clear_results();
    journal.results_cleared();
    save(&db, &mut journal, &s).await;
    assert!(db.read_session("s").await.unwrap().results.is_empty());
    db.close();
}

#[wasm_bindgen_test]
async fn a_kept_file_is_stored_whole_and_read_back() {
    use agenther::persist::{rebuild_with, Source};
    let db = fresh("agenther-test-kept").await;
    let text = agenther::example::EXAMPLE_JSONL;
    let file = web_sys::File::new_with_str_sequence(
        &js_sys::Array::of1(&JsValue::from_str(text)),
        "kept.jsonl",
    )
    .unwrap();
    let mut s = session();
    let mut journal = Journal::new("k", 1.0, Prefs::default(), false);
    let first = s.len();
    journal.source(Source {
        first,
        name: "kept.jsonl".into(),
        format: Some(agenther::import::SourceFormat::Native),
    });
    s.add_report(agenther::reader::read_all_as(
        "kept.jsonl",
        text.as_bytes(),
        Some(agenther::import::SourceFormat::Native),
    ));
    journal.source_read(s.len());
    // Without the file at hand the write fails, whole.
    let err = db.write(&journal.clone().batch(&s, 1.0)).await.unwrap_err();
    assert!(err.to_string().contains("kept.jsonl"), "{err}");
    assert!(db.session_records().await.unwrap().is_empty());
    loop {
        let batch = journal.batch(&s, 1.0);
        db.write_keeping(&batch, &|i| (i == first).then(|| file.clone()))
            .await
            .expect("the batch is written");
        if !journal.behind(&s) {
            break;
        }
    }
    let (parts, files) = db.read_session_kept("k").await.unwrap();
    assert_eq!(parts.trajectories.len(), first);
    assert_eq!(parts.sources.len(), 1);
    assert_eq!(parts.sources[0].first, first);
    let kept = files.get(&first).expect("the file is kept");
    assert_eq!(kept.name(), "kept.jsonl");
    let bytes = wasm_bindgen_futures::JsFuture::from(kept.text())
        .await
        .unwrap();
    assert_eq!(bytes.as_string().unwrap(), text);
    let restored = rebuild_with(parts, |source, _| {
        Ok(agenther::reader::read_all_as(&source.name, text.as_bytes(), source.format).records)
    })
    .unwrap();
    assert_eq!(restored.session, s);
    db.write(&delete_session("k")).await.unwrap();
    let (gone, files) = db.read_session_kept("k").await.unwrap();
    assert!(gone.sources.is_empty() && files.is_empty());
    db.close();
}

/// Runs `f` while `window.indexedDB` reads as undefined, as in a browser that offers none.
async fn without_indexed_db<F: std::future::Future>(f: F) -> F::Output {
    let window: js_sys::Object = JsValue::from(web_sys::window().unwrap()).into();
    let key = JsValue::from_str("indexedDB");
    // The attribute is the window's own property: put it back as it was.
    let original = js_sys::Reflect::get_own_property_descriptor(&window, &key).unwrap();
    let descriptor = js_sys::Object::new();
    js_sys::Reflect::set(&descriptor, &"value".into(), &JsValue::UNDEFINED).unwrap();
    js_sys::Reflect::set(&descriptor, &"configurable".into(), &JsValue::TRUE).unwrap();
    assert!(js_sys::Reflect::define_property(&window, &key, &descriptor).unwrap());
    let out = f.await;
    if original.is_undefined() {
        js_sys::Reflect::delete_property(&window, &key).unwrap();
    } else {
        js_sys::Reflect::define_property(&window, &key, &original.into()).unwrap();
    }
    assert!(web_sys::window().unwrap().indexed_db().unwrap().is_some());
    out
}

#[wasm_bindgen_test]
async fn no_indexed_db_is_reported_as_unavailable() {
    let result = without_indexed_db(Db::open_named("agenther-test-none")).await;
    match result {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("IndexedDB"), "{why}"),
        Err(other) => panic!("expected unavailable, got {other:?}"),
        Ok(_) => panic!("expected unavailable, got a database"),
    }
    // And back again.
    fresh("agenther-test-none").await.close();
}

#[wasm_bindgen_test]
async fn a_database_of_a_newer_layout_is_unavailable_not_overwritten() {
    let name = "agenther-test-newer";
    delete_database(name).await.unwrap();
    // A later version of the app created it.
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let request = factory
        .open_with_u32(name, agenther::persist::SCHEMA_VERSION + 1)
        .unwrap();
    let opened = js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    wasm_bindgen_futures::JsFuture::from(opened).await.unwrap();
    let newer: web_sys::IdbDatabase = request.result().unwrap().into();
    newer.close();

    match Db::open_named(name).await {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("VersionError"), "{why}"),
        Err(other) => panic!("expected unavailable, got {other:?}"),
        Ok(_) => panic!("opened a database of a newer layout"),
    }
}

#[wasm_bindgen_test]
async fn a_failed_transaction_says_why() {
    let db = fresh("agenther-test-abort").await;
    // Writing to a store the database lacks fails before anything is written.
    let mut journal = Journal::new("s", 1.0, Prefs::default(), false);
    let batch = journal.batch(&session(), 1.0);
    db.close();
    let err = db.write(&batch).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(why) if why.contains("InvalidStateError")),
        "{err:?}"
    );
    let reopened = Db::open_named("agenther-test-abort").await.unwrap();
    assert!(reopened.session_records().await.unwrap().is_empty());
    reopened.close();
}

#[wasm_bindgen_test]
fn quota_errors_are_told_apart() {
    let quota =
        web_sys::DomException::new_with_message_and_name("full", "QuotaExceededError").unwrap();
    assert_eq!(
        StoreError::from_exception(&quota),
        StoreError::QuotaExceeded
    );
    assert!(StoreError::QuotaExceeded.to_string().contains("quota"));
    let other = web_sys::DomException::new_with_message_and_name("bad", "DataError").unwrap();
    assert_eq!(
        StoreError::from_exception(&other),
        StoreError::Failed("DataError: bad".into())
    );
}
