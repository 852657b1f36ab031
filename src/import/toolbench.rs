//! ToolBench answer files: `{answer_generation: {train_messages, final_answer, function,
//! query, finish_type, ...}, win?, tree?, ...}`.
//!
//! `train_messages` lists the run's conversation as it grew (OpenAI messages with the older
//! `function_call` / `function` roles); the last, longest one is read (a flat message list is
//! taken as is). A run without `train_messages` (ToolBench leaves it out of failed runs) is
//! read from its search tree `tree.tree`: the path from the root to the deepest node (the
//! last of the deepest, when several are as deep), whose `Thought` nodes are thoughts, `Action`
//! nodes the calls' names and `Action Input` nodes their arguments and observations. The goal
//! is `query` when the first user message holds it (ToolBench writes `\n{query}\nBegin!\n`;
//! the `Begin!` is dropped), else the first user message; the tools are `function`. A user message after a
//! tool result (ToolBench's restart prompt, "This is not the first time you try this task") is
//! kept as a reply to the user with no text, answered by that message.
//!
//! The `Finish` call is not a step: its `final_answer` is the final answer (else
//! `answer_generation.final_answer`, JSON text or plain text), its thought is the final
//! thought. The verdict: a run that gave up (a `Finish` with `return_type:
//! give_up_and_restart`, or `finish_type` `give_up` / `give_up_and_restart`), one with `win:
//! false` and one without a final answer are failures; a final answer with `win: true` is a
//! success; a final answer nobody judged (no `win`) leaves the verdict unknown. (Give-up files
//! carry `win: true` too, so `win` alone is no verdict.) The id is `query_id` or `id` when
//! there is one; the metadata keeps `finish_type` and `win`.

use super::chat::{assemble, Args, Call, Conversation, Outcome, Parts};
use super::messages::read_messages;
use super::{
    expected, function_tools, member, object, opt_array, opt_bool, opt_id, opt_object, opt_string,
    stated_reason, Invalid, SourceFormat, MISSING,
};
use crate::json::{parse, Json, JsonObject};
use crate::model::Trajectory;

/// The failure reason of a run that gave up.
const GAVE_UP: &str = "The agent gave up and asked to restart (Finish: give_up_and_restart).";

/// The failure reason of a run that ended without an answer.
const NO_ANSWER: &str = "The run ended without a final answer.";

pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let o = object(value, "")?;
    let ag = opt_object(o, "", "answer_generation")?
        .ok_or_else(|| Invalid::at("answer_generation", MISSING))?;
    let prefix = "answer_generation";
    let mut conv = Conversation::default();
    let field = match opt_array(ag, prefix, "train_messages")?.filter(|c| !c.is_empty()) {
        Some(chains) => {
            let (messages, field): (&[Json], String) = match chains.last() {
                Some(Json::Array(messages)) => (
                    messages,
                    format!("answer_generation.train_messages[{}]", chains.len() - 1),
                ),
                Some(Json::Object(_)) => (chains, "answer_generation.train_messages".to_owned()),
                Some(other) => {
                    return Err(Invalid::at(
                        format!("answer_generation.train_messages[{}]", chains.len() - 1),
                        expected("a list of messages", other),
                    ))
                }
                None => unreachable!("the list is not empty"),
            };
            read_messages(messages, &field, &mut conv)?;
            field
        }
        None => {
            let tree = opt_object(o, "", "tree")?
                .and_then(|t| t.get("tree"))
                .ok_or_else(|| {
                    Invalid::at(
                        "answer_generation.train_messages",
                        "no messages and no search tree: the run is empty",
                    )
                })?;
            let query = opt_string(ag, prefix, "query")?.unwrap_or_default();
            conv.user(query);
            read_tree(tree, &mut conv)?;
            "tree.tree".to_owned()
        }
    };
    let mut parts = conv.finish(&field)?;
    if let Some(query) = opt_string(ag, prefix, "query")? {
        // The first user message is the query in ToolBench's prompt (`\n{query}\nBegin!\n`):
        // the query alone is the goal, unless the message says more than that.
        if parts.goal.trim().is_empty() || parts.goal.contains(query.trim()) {
            parts.goal = query;
        }
    }
    let finish = take_finish(&mut parts);
    let finish_input = match &finish {
        Some(step) => step.action_input.clone(),
        None => match opt_string(ag, prefix, "final_answer")? {
            Some(text) => match parse(&text) {
                Ok(Json::Object(o)) => o,
                _ if text.trim().is_empty() => JsonObject::new(),
                _ => {
                    let mut o = JsonObject::new();
                    o.insert("final_answer", Json::String(text));
                    o
                }
            },
            None => JsonObject::new(),
        },
    };
    let return_type = finish_input.get("return_type").and_then(Json::as_str);
    if let Some(answer) = finish_input.get("final_answer").and_then(Json::as_str) {
        if !answer.is_empty() {
            parts.final_answer = answer.to_owned();
        }
    }
    if let Some(thought) = finish.map(|s| s.thought).filter(|t| !t.trim().is_empty()) {
        parts.final_thought = if parts.final_thought.is_empty() {
            thought
        } else {
            format!("{thought}\n\n{}", parts.final_thought)
        };
    }
    if parts.steps.is_empty() && parts.final_answer.trim().is_empty() {
        return Err(Invalid::at(
            field,
            "no tool call besides Finish and no answer: the agent did nothing to relabel",
        ));
    }

    let finish_type = opt_string(ag, prefix, "finish_type")?;
    let gave_up = return_type == Some("give_up_and_restart")
        || matches!(
            finish_type.as_deref(),
            Some("give_up" | "give_up_and_restart")
        );
    let win = opt_bool(o, "", "win")?;
    let answered = !parts.final_answer.trim().is_empty();
    let verdict = if gave_up || win == Some(false) || !answered {
        Some(false)
    } else {
        win
    };
    let reason = if gave_up {
        Some(GAVE_UP.to_owned())
    } else if !answered {
        Some(NO_ANSWER.to_owned())
    } else {
        stated_reason(o, "")?
    };
    let mut trajectory_id = String::new();
    for (obj, at, key) in [(o, "", "query_id"), (ag, prefix, "query_id"), (o, "", "id")] {
        if let Some(id) = opt_id(obj, at, key)? {
            trajectory_id = id;
            break;
        }
    }
    let mut metadata = JsonObject::new();
    if let Some(t) = finish_type {
        metadata.insert("finish_type", Json::String(t));
    }
    if let Some(w) = win {
        metadata.insert("win", Json::Bool(w));
    }
    Ok(assemble(
        SourceFormat::ToolBench,
        parts,
        Outcome {
            trajectory_id,
            verdict,
            reason,
            tools: function_tools(member(ag, "function"), "answer_generation.function")?,
            metadata,
        },
    ))
}

/// Removes the `Finish` calls from the steps and returns the last one.
fn take_finish(parts: &mut Parts) -> Option<crate::model::Step> {
    let mut finish = None;
    parts.steps.retain(|s| {
        let keep = s.action_name != "Finish";
        if !keep {
            finish = Some(s.clone());
        }
        keep
    });
    finish
}

/// A node of the search tree: its type, text, observation and children.
struct Node<'a> {
    kind: String,
    text: String,
    observation: Option<String>,
    children: &'a [Json],
}

fn node<'a>(value: &'a Json, field: &str) -> Result<Node<'a>, Invalid> {
    let n = object(value, field)?;
    Ok(Node {
        kind: opt_string(n, field, "node_type")?.unwrap_or_default(),
        text: opt_string(n, field, "description")?.unwrap_or_default(),
        observation: opt_string(n, field, "observation")?,
        children: opt_array(n, field, "children")?.unwrap_or_default(),
    })
}

/// The nodes from the root to the deepest one (the last of the deepest), with their fields.
fn deepest_path<'a>(root: &'a Json) -> Result<Vec<(String, &'a Json)>, Invalid> {
    // Depth-first, iteratively: (node, field, depth, parent index in `seen`).
    let mut seen: Vec<(String, &'a Json, Option<usize>)> = Vec::new();
    let mut stack = vec![(root, "tree.tree".to_owned(), 0usize, None)];
    let mut best: Option<(usize, usize)> = None;
    while let Some((value, field, depth, parent)) = stack.pop() {
        let here = seen.len();
        let n = node(value, &field)?;
        seen.push((field.clone(), value, parent));
        if best.is_none_or(|(d, _)| depth >= d) {
            best = Some((depth, here));
        }
        // Pushed in reverse so that children are visited in order and a later one at the same
        // depth replaces an earlier one.
        for (i, child) in n.children.iter().enumerate().rev() {
            stack.push((
                child,
                format!("{field}.children[{i}]"),
                depth + 1,
                Some(here),
            ));
        }
    }
    let mut path = Vec::new();
    let mut at = best.map(|(_, i)| i);
    while let Some(i) = at {
        let (field, value, parent) = &seen[i];
        path.push((field.clone(), *value));
        at = *parent;
    }
    path.reverse();
    Ok(path)
}

/// Feeds the deepest branch of a search tree to `conv`.
fn read_tree(root: &Json, conv: &mut Conversation) -> Result<(), Invalid> {
    let mut thought: Vec<String> = Vec::new();
    let mut action: Option<String> = None;
    for (field, value) in deepest_path(root)? {
        let n = node(value, &field)?;
        match n.kind.as_str() {
            "Thought" => thought.push(n.text),
            "Action" => action = Some(n.text),
            "Action Input" => {
                let Some(name) = action.take() else {
                    // The root: an empty input of no action.
                    continue;
                };
                let call = Call {
                    id: String::new(),
                    name,
                    arguments: Args::Text(n.text),
                };
                let text = std::mem::take(&mut thought).join("\n\n");
                conv.assistant(None, text, vec![call]);
                conv.result(None, n.observation.unwrap_or_default())
                    .map_err(|reason| Invalid::at(field.clone(), reason))?;
            }
            _ => {}
        }
    }
    if let Some(name) = action {
        // An action whose input node was never expanded.
        let call = Call {
            id: String::new(),
            name,
            arguments: Args::Text(String::new()),
        };
        conv.assistant(None, thought.join("\n\n"), vec![call]);
    } else if !thought.is_empty() {
        conv.assistant(None, thought.join("\n\n"), Vec::new());
    }
    Ok(())
}
