//! The background reader: a Web Worker that reads a file's head, counts and parses its slices
//! ([`crate::slices`]) and runs the rule-based Stages 1 and 2 on what it reads, answering the
//! page in the binary encoding of [`crate::wire`]. The page never parses a file itself.
//!
//! A message from the page is a two-element array: the `File` (a handle, not its bytes) and the
//! encoded [`Request`]. A reply is the encoded [`Reply`] as a `Uint8Array` whose buffer is
//! transferred, not copied. The worker reads with `FileReaderSync`, a block of several slices
//! at a time ([`crate::slices::Blocks`]), and keeps a counted slice's bytes until the page asks
//! for it to be parsed.

use crate::pipeline::rule_view;
use crate::slices::{count, owned_lines, parse_slice, Blocks, Head};
use crate::stages::detect::rules::Lexicon;
use crate::wire::{encode_events, encode_summary, Reply, Request, RuleSetup};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, File, FileReaderSync, MessageEvent};

#[derive(Default)]
struct State {
    /// Counted slices' lines, by slice.
    kept: HashMap<usize, Vec<u8>>,
    /// The block of the file read last.
    blocks: Blocks,
    /// The lexicon last used, as sent and as read.
    lexicon: Option<(String, Lexicon)>,
}

/// Starts answering the page's requests.
pub fn run() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let state = Rc::new(RefCell::new(State::default()));
    let answer = scope.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let message: js_sys::Array = ev.data().unchecked_into();
        let file = message.get(0).dyn_into::<File>().ok();
        let bytes = js_sys::Uint8Array::new(&message.get(1)).to_vec();
        let post = |reply: Reply| post(&answer, &reply);
        let done = Request::decode(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|request| handle(&mut state.borrow_mut(), file, request, &post));
        if let Err(message) = done {
            post(Reply::Failed { message });
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&scope, &Reply::Ready);
}

fn post(scope: &DedicatedWorkerGlobalScope, reply: &Reply) {
    let bytes = js_sys::Uint8Array::from(reply.encode().as_slice());
    let transfer = js_sys::Array::of1(&bytes.buffer());
    if let Err(e) = scope.post_message_with_transfer(&bytes, &transfer) {
        web_sys::console::error_2(&"could not answer the page".into(), &e);
    }
}

/// Bytes `[start, end)` of `file`.
fn read(file: &File, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let blob = file
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| describe(&e))?;
    let reader = FileReaderSync::new().map_err(|e| describe(&e))?;
    let buffer = reader
        .read_as_array_buffer(&blob)
        .map_err(|e| describe(&e))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// What a browser error says.
pub fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

impl State {
    /// The lexicon of `setup`, read once for as long as it does not change.
    fn lexicon(&mut self, setup: &RuleSetup) -> Result<&Lexicon, String> {
        if self.lexicon.as_ref().map(|(text, _)| text) != Some(&setup.lexicon) {
            let lexicon: Lexicon = serde_json::from_str(&setup.lexicon)
                .map_err(|e| format!("the lexicon sent to the background reader: {e}"))?;
            self.lexicon = Some((setup.lexicon.clone(), lexicon));
        }
        Ok(&self.lexicon.as_ref().expect("just set").1)
    }
}

fn handle(
    state: &mut State,
    file: Option<File>,
    request: Request,
    post: &dyn Fn(Reply),
) -> Result<(), String> {
    let file = file.ok_or("no file came with the request")?;
    match request {
        Request::Head {
            file: name,
            format,
            chunk,
            rules,
        } => {
            state.kept.clear();
            state.blocks.clear();
            let delta = rules.delta;
            let lexicon = state.lexicon(&rules)?;
            let encode = |events: &[_]| encode_events(events, |t| rule_view(t, lexicon, delta));
            let size = file.size() as u64;
            let mut head = Head::new(&name, format);
            let mut events = Vec::new();
            let mut offset = 0;
            let mut split = None;
            while offset < size && split.is_none() {
                let end = offset.saturating_add(chunk.max(1)).min(size);
                split = head.push(&read(&file, offset, end)?, &mut events);
                offset = end;
                if split.is_none() && !events.is_empty() {
                    post(Reply::Events {
                        read: offset,
                        events: encode(&events),
                    });
                    events.clear();
                }
            }
            let summary = head.finish(&mut events);
            if !events.is_empty() {
                post(Reply::Events {
                    read: offset,
                    events: encode(&events),
                });
            }
            post(Reply::HeadDone {
                summary: encode_summary(&summary),
                split,
            });
        }
        Request::Count {
            slice,
            from,
            start,
            end,
            size,
        } => {
            let blocks = &mut state.blocks;
            let owned = owned_lines(from, start, end, size, |a, b| {
                blocks.read(a, b, size, |a, b| read(&file, a, b))
            })?;
            let count = count(&owned.bytes);
            post(Reply::Counted {
                slice,
                start: owned.start,
                end: owned.end,
                count,
            });
            state.kept.insert(slice, owned.bytes);
        }
        Request::Parse {
            slice,
            file: name,
            forced,
            start,
            end,
            at,
            rules,
        } => {
            let bytes = match state.kept.remove(&slice) {
                Some(bytes) => bytes,
                None => {
                    let size = file.size() as u64;
                    state
                        .blocks
                        .read(start, end, size, |a, b| read(&file, a, b))?
                }
            };
            let parsed = parse_slice(&name, forced, at, &bytes);
            drop(bytes);
            let delta = rules.delta;
            let lexicon = state.lexicon(&rules)?;
            post(Reply::Parsed {
                slice,
                from: parsed.from,
                to: parsed.to,
                summary: encode_summary(&parsed.summary),
                events: encode_events(&parsed.events, |t| rule_view(t, lexicon, delta)),
            });
        }
    }
    Ok(())
}
