//! The preservation measure shared by the importer tests: the texts of a source, listed per
//! format as a reader of that source would list them, and the share of their characters found
//! in the fields of the trajectories that the stages and exports read.

use agenther::json::{parse, python_dumps, Json};
use agenther::model::Trajectory;
use agenther::reader::{ReadReport, SourceFormat};

/// Every text a trajectory holds where the stages or the exports read it: the goal, the
/// system prompt, each step's thought, action, input (as the call's text and as the parsed
/// values) and observation, the final answer and its reasoning, and the failure reason.
fn trajectory_texts(t: &Trajectory) -> String {
    let mut out = vec![t.original_prompt.clone(), t.final_answer.clone()];
    out.push(t.failure_reason.clone());
    out.push(t.final_thought().to_owned());
    if let Some(system) = t.origin.as_ref().and_then(|o| o.system.clone()) {
        out.push(system);
    }
    for s in &t.steps {
        out.push(s.thought.clone());
        out.push(s.action_name.clone());
        out.push(s.observation.clone());
        out.push(python_dumps(&Json::Object(s.action_input.clone())));
        strings(&Json::Object(s.action_input.clone()), &mut out);
        if let Some(call) = &s.call {
            out.push(call.arguments.clone());
        }
    }
    out.join("\u{0}")
}

/// Every string inside a JSON value.
fn strings(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(s) => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Json::Object(o) => o.iter().for_each(|(_, v)| strings(v, out)),
        _ => {}
    }
}

/// The texts of a source, per format, as a reader of the source would list them.
fn source_texts(format: SourceFormat, bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if format == SourceFormat::React {
        let mut after_finish = false;
        for line in String::from_utf8_lossy(bytes).lines() {
            react_line_texts(line, &mut after_finish, &mut out);
        }
        return out;
    }
    let text = String::from_utf8_lossy(bytes);
    let values: Vec<Json> = match parse(&text) {
        Ok(Json::Array(items)) => items,
        Ok(one) => vec![one],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse(l).expect("a JSON line"))
            .collect(),
    };
    for v in &values {
        record_texts(format, v, &mut out);
    }
    out
}

/// What a log line says, without its marker: the name and the argument of an action
/// `Name[argument]` apart, the answer of `Finish[answer]` alone. `None` for separators and
/// banners, and for the evaluation (the expected answer, the observation answering `Finish`,
/// the stats and timing lines), which the importer keeps in the metadata and, for a failure,
/// in the failure reason.
fn react_line_texts(line: &str, after_finish: &mut bool, out: &mut Vec<String>) {
    // Without terminal colour codes (`ESC [ ... m`).
    let mut plain = String::new();
    let mut in_code = false;
    for c in line.chars() {
        match c {
            '\u{1b}' => in_code = true,
            'm' if in_code => in_code = false,
            _ if in_code => {}
            _ => plain.push(c),
        }
    }
    let t = plain.trim();
    let banner = t.is_empty()
        || t.bytes().all(|b| b == b'-' || b == b'=' || b == b'#')
        || t.starts_with("BEGIN TRIAL")
        || t.starts_with("Trial summary")
        || t.contains(" BEGIN ")
        || t.starts_with("> ");
    let evaluation = t.starts_with("{'")
        || t.to_ascii_lowercase().starts_with("correct answer")
        || (t.split_whitespace().count() >= 3
            && t.split_whitespace().all(|w| w.parse::<f64>().is_ok()));
    if banner || evaluation {
        return;
    }
    let (marker, body) = match t.find(':') {
        Some(i) if i < 20 => (&t[..i], t[i + 1..].trim()),
        _ => ("", t),
    };
    if marker.starts_with("Observation") && *after_finish {
        return;
    }
    let call = body
        .strip_suffix(']')
        .and_then(|b| b.split_once('['))
        .filter(|(name, _)| !name.contains(' '));
    match call {
        Some(("Finish", answer)) => {
            *after_finish = true;
            out.push(answer.to_owned());
        }
        Some((name, argument)) => {
            *after_finish = false;
            out.push(name.to_owned());
            out.push(argument.to_owned());
        }
        None if marker.starts_with("Question") || marker.ends_with("Claim") => {
            *after_finish = false;
            out.push(body.to_owned());
        }
        None if !body.is_empty() => out.push(body.to_owned()),
        None => {}
    }
}

fn get<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    v.as_object().and_then(|o| o.get(key))
}

fn text_of(v: Option<&Json>, out: &mut Vec<String>) {
    match v {
        Some(Json::String(s)) => out.push(s.clone()),
        Some(Json::Array(parts)) => {
            for p in parts {
                match p {
                    Json::String(s) => out.push(s.clone()),
                    _ if get(p, "type").and_then(Json::as_str) == Some("tool_call") => {
                        call_text(get(p, "value"), out)
                    }
                    _ => {
                        text_of(get(p, "text"), out);
                        text_of(get(p, "value"), out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A call written as JSON text or as an object: its name and its arguments.
fn call_text(v: Option<&Json>, out: &mut Vec<String>) {
    let parsed;
    let v = match v {
        Some(Json::String(s)) => {
            parsed = parse(s).expect("a call as JSON");
            &parsed
        }
        Some(v) => v,
        None => return,
    };
    for call in v.as_array().map_or_else(|| vec![v], |a| a.iter().collect()) {
        text_of(get(call, "name"), out);
        match get(call, "arguments") {
            Some(Json::String(s)) => out.push(s.clone()),
            Some(other) => out.push(python_dumps(other)),
            None => {}
        }
    }
}

fn messages_texts(messages: &[Json], out: &mut Vec<String>) {
    for m in messages {
        text_of(get(m, "content"), out);
        text_of(get(m, "reasoning_content"), out);
        for c in get(m, "tool_calls").and_then(Json::as_array).unwrap_or(&[]) {
            call_text(get(c, "function"), out);
        }
        let call = get(m, "function_call");
        if call.and_then(|c| get(c, "name")).and_then(Json::as_str) == Some("Finish") {
            // ToolBench's Finish is no step: its answer is the final answer, its return type
            // the verdict.
            let args = call
                .and_then(|c| get(c, "arguments"))
                .and_then(Json::as_str);
            let args = args.and_then(|a| parse(a).ok());
            text_of(args.as_ref().and_then(|a| get(a, "final_answer")), out);
        } else {
            call_text(call, out);
        }
    }
}

fn record_texts(format: SourceFormat, v: &Json, out: &mut Vec<String>) {
    let array = |key: &str| get(v, key).and_then(Json::as_array).unwrap_or(&[]);
    match format {
        SourceFormat::TauBench => messages_texts(array("traj"), out),
        SourceFormat::OpenAiMessages => messages_texts(array("messages"), out),
        SourceFormat::ShareGpt => {
            text_of(get(v, "system"), out);
            for turn in array("conversations") {
                if get(turn, "from").and_then(Json::as_str) == Some("function_call") {
                    call_text(get(turn, "value"), out);
                } else {
                    text_of(get(turn, "value"), out);
                }
            }
        }
        SourceFormat::Atif => {
            for s in array("steps") {
                text_of(get(s, "message"), out);
                text_of(get(s, "reasoning_content"), out);
                for c in get(s, "tool_calls").and_then(Json::as_array).unwrap_or(&[]) {
                    text_of(get(c, "function_name"), out);
                    match get(c, "arguments") {
                        Some(Json::String(a)) => out.push(a.clone()),
                        Some(a) => out.push(python_dumps(a)),
                        None => {}
                    }
                }
                let results = get(s, "observation").and_then(|o| get(o, "results"));
                for r in results.and_then(Json::as_array).unwrap_or(&[]) {
                    text_of(get(r, "content"), out);
                }
            }
        }
        SourceFormat::ToolBench => {
            let ag = get(v, "answer_generation").expect("answer_generation");
            text_of(get(ag, "query"), out);
            let chains = get(ag, "train_messages").and_then(Json::as_array);
            // The first user message holds the query (followed by ToolBench's `Begin!`).
            let after_query = |messages: &[Json]| -> Vec<Json> {
                let first_user = messages
                    .iter()
                    .position(|m| get(m, "role").and_then(Json::as_str) == Some("user"));
                let mut rest = messages.to_vec();
                if let Some(i) = first_user {
                    rest.remove(i);
                }
                rest
            };
            match chains.and_then(|c| c.last()) {
                Some(Json::Array(last)) => messages_texts(&after_query(last), out),
                Some(_) => messages_texts(&after_query(chains.unwrap_or(&[])), out),
                None => {
                    let tree = get(v, "tree").and_then(|t| get(t, "tree")).expect("a tree");
                    for node in deepest(tree) {
                        text_of(get(node, "description"), out);
                        text_of(get(node, "observation"), out);
                    }
                }
            }
        }
        SourceFormat::Native | SourceFormat::React => unreachable!(),
    }
}

/// The nodes from the root to the deepest one (the last of the deepest).
fn deepest(node: &Json) -> Vec<&Json> {
    let children = get(node, "children")
        .and_then(Json::as_array)
        .unwrap_or(&[]);
    let mut best: Vec<&Json> = Vec::new();
    for child in children {
        let path = deepest(child);
        if path.len() >= best.len() {
            best = path;
        }
    }
    best.insert(0, node);
    best
}

/// The share of the source's text characters found in the trajectories, and the texts not
/// found (for the failure message).
pub fn preserved(format: SourceFormat, bytes: &[u8], report: &ReadReport) -> (f64, Vec<String>) {
    let blob: String = report
        .records
        .iter()
        .map(|r| trajectory_texts(&r.trajectory))
        .collect::<Vec<_>>()
        .join("\u{0}");
    let mut total = 0usize;
    let mut kept = 0usize;
    let mut lost = Vec::new();
    for text in source_texts(format, bytes) {
        let n = text.chars().count();
        total += n;
        if blob.contains(&text) || blob.contains(text.trim()) {
            kept += n;
        } else {
            lost.push(text);
        }
    }
    assert!(total > 0, "no source text found");
    (kept as f64 / total as f64, lost)
}
