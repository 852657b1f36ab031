// The downloads for training tools, end to end. A tau-bench results file (dropped) and a ReAct
// log (picked) are read, their failures relabeled against the scripted endpoint, and every
// layout is downloaded and read back with this file's own reading of each tool's rules (not the
// app's validator): LLaMA-Factory ShareGPT and its dataset_info.json, TRL SFT and preference,
// OpenAI chat fine-tuning, and the manifest; then again with the successes added, and with the
// thoughts kept and the provenance columns left out. The API key set in the settings must be in
// no file. Then a row that breaks a rule (NaN in a call's arguments) is left out of the file and
// shown in the check table. Last, the successes downloaded before any run, clicks seconds apart,
// make one set: dataset_info.json and the manifest name the files as they were saved.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { hindsightPromptFor, startEndpoint } from './support/endpoint.mjs';
import {
  DATA,
  configure,
  dataFile,
  download,
  dropFiles,
  jsonLines,
  openApp,
  pickFiles,
  runToEnd,
  tableRows,
} from './support/browser.mjs';

const API_KEY = 'sk-e2e-7Hq2VxZp41LmNc9RtW3y';
const TAU = 'tau-results.json';
const REACT = 'react-log.txt';
const NAN = 'nan-native.jsonl';
const TOOLS = ['llamafactory', 'trl-sft', 'trl-preference', 'openai'];
const NATIVE = ['sft', 'dpo', 'sharegpt'];
const STAMPED = /^agenther-([a-z-]+)-(\d{8}-\d{6})\.(jsonl|json)$/;

// --- What the sources hold, read here from the input files ------------------------------------

/**
 * The runs of a tau-bench results file, as this test reads the OpenAI messages: the first user
 * message is the goal; assistant text followed by a user message is a reply to the user (a turn
 * of its own, answered by that message); other assistant text without a call goes to the
 * thought of the next call (texts joined by a blank line); each assistant message with calls is
 * one turn; tool results are matched by id; assistant text after the last call is the final
 * answer.
 */
function tauRuns(results) {
  return results.map((r) => {
    const system = r.traj.filter((m) => m.role === 'system').map((m) => m.content);
    const run = {
      id: `task-${r.task_id}-trial-${r.trial}`,
      format: 'tau_bench',
      success: r.reward >= 1,
      system: system.length ? system.join('\n\n') : null,
      goal: null,
      turns: [],
      final: '',
      finalThought: '',
      sourceIds: true,
    };
    let pending = [];
    const byId = new Map();
    for (const m of r.traj) {
      if (m.role === 'user' && run.goal !== null) {
        assert.ok(pending.length > 0, 'in this file every later user message answers a reply');
        run.turns.push({ thought: '', reply: pending.join('\n\n'), user: m.content, calls: [] });
        pending = [];
      }
      if (m.role === 'user') run.goal ??= m.content;
      if (m.role === 'assistant') {
        if ((m.content ?? '').trim()) pending.push(m.content);
        const calls = m.tool_calls ?? [];
        if (calls.length === 0) continue;
        const turn = {
          thought: pending.join('\n\n'),
          calls: calls.map((c) => ({
            id: c.id,
            name: c.function.name,
            argsText: c.function.arguments,
            args: JSON.parse(c.function.arguments),
            result: null,
          })),
        };
        pending = [];
        for (const c of turn.calls) byId.set(c.id, c);
        run.turns.push(turn);
      }
      if (m.role === 'tool') byId.get(m.tool_call_id).result = m.content;
    }
    run.final = pending.join('\n\n');
    return run;
  });
}

/** The runs of react-log.txt, written out by hand. */
const REACT_RUNS = [
  {
    format: 'react',
    success: false,
    system: null,
    goal: 'What is the weather in Zürich right now, in °C, and how much warmer is it in Genève? 🌦',
    turns: [
      {
        thought: 'I should look up the weather in Zürich first.',
        calls: [
          {
            name: 'weather_lookup',
            argsText: '{"location": {"city": "Zürich", "country": "CH"}, "units": "metric"}',
            args: { location: { city: 'Zürich', country: 'CH' }, units: 'metric' },
            result: 'Zürich: 12 °C, overcast, wind 14 km/h from the west, humidity 81 %.',
          },
        ],
      },
      {
        thought: 'Now the weather in Genève.',
        calls: [
          {
            name: 'weather_lookup',
            argsText: '{"location": {"city": "Genève", "country": "CH"}, "units": "metric", "extra": ["wind", "humidity"]}',
            args: { location: { city: 'Genève', country: 'CH' }, units: 'metric', extra: ['wind', 'humidity'] },
            result: 'Genève: 15 °C, sunny spells, wind 6 km/h from the south-west, humidity 64 %.',
          },
        ],
      },
    ],
    final: 'It is 12 °C and overcast in Zürich.',
    finalThought: 'I now know the final answer',
  },
  {
    format: 'react',
    success: false,
    system: null,
    goal: 'Which river flows through the town where the composer of "Má vlast" was born?',
    turns: [
      {
        thought: 'I need to search Má vlast to find its composer.',
        calls: [
          {
            name: 'Search',
            args: { input: 'Má vlast' },
            result:
              'Má vlast ("My homeland") is a set of six symphonic poems composed between 1874 and 1879 by the Czech composer Bedřich Smetana.',
          },
        ],
      },
      {
        thought: 'Smetana was born in Litomyšl. I need the river that flows through it.',
        calls: [
          {
            name: 'Search',
            args: { input: 'Litomyšl' },
            result:
              'Litomyšl is a town in the Pardubice Region of the Czech Republic, on the Loučná river, known for its Renaissance castle.',
          },
        ],
      },
    ],
    final: 'Vltava',
    finalThought: 'The river is the Loučná, but the best-known Czech river is the Vltava, so I answer that.',
  },
];

/**
 * The closing answer: the final answer (with its reasoning), or the last reply to the user
 * (which then is no turn: the user's last message after it is not written), or the reasoning
 * the run ended on, or the last non-blank observation, trimmed.
 */
function closingOf(run) {
  if (run.final.trim()) return { text: run.final, thought: run.finalThought, derived: false };
  const last = run.turns.at(-1);
  if (last?.reply?.trim()) return { text: last.reply, thought: last.thought, derived: false, fromReply: true };
  if (run.finalThought.trim()) return { text: run.finalThought, thought: '', derived: false };
  const observed = run.turns
    .flatMap((t) => t.calls)
    .map((c) => c.result.trim())
    .filter((r) => r !== '')
    .at(-1);
  return { text: observed ?? 'Done.', thought: '', derived: true };
}

/** The turns a conversation writes: all but a last reply that became the closing answer. */
const writtenTurns = (run) => (closingOf(run).fromReply ? run.turns.slice(0, -1) : run.turns);

/** A text with its reasoning in front, as the chat layouts write it when thoughts are kept. */
const withThought = (text, thought, kept) => (kept && thought?.trim() ? `${thought}\n\n${text}` : text);

/**
 * The rows a tool file should hold, in load order: each accepted run with the hindsight goal
 * shown in the table, and with `successes` each run the source marked successful with its own
 * goal. `sources` and `rows` are in load order.
 */
function expectedItems(sources, rows, { successes }) {
  const items = [];
  sources.forEach((source, i) => {
    const row = rows[i];
    if (row.status === 'accepted') items.push({ source, id: row.id, kind: 'relabeled', goal: row.hindsight });
    if (source.success && successes) items.push({ source, id: row.id, kind: 'success', goal: source.goal });
  });
  return items;
}

// --- Each layout's rules, as the tools document them ------------------------------------------

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonBlank = (s) => typeof s === 'string' && s.trim() !== '';

/** The function names a `tools` list of `{type: "function", function: {name, ...}}` declares. */
function declaredFunctions(tools, where) {
  assert.ok(Array.isArray(tools), `${where}: tools is a list`);
  return tools.map((t, i) => {
    assert.equal(t.type, 'function', `${where}: tools[${i}].type`);
    assert.ok(isObject(t.function), `${where}: tools[${i}].function`);
    assert.ok(nonBlank(t.function.name), `${where}: tools[${i}].function.name`);
    if ('parameters' in t.function) assert.ok(isObject(t.function.parameters), `${where}: tools[${i}] parameters`);
    return t.function.name;
  });
}

const THINK = /^<think>\n([\s\S]*?)\n<\/think>\n\n/;

/**
 * A LLaMA-Factory ShareGPT row: human/observation turns at even positions, gpt/function_call at
 * odd ones, opening with human and ending with gpt; each function_call answered by the
 * observation right after it, whose value is JSON `{name, arguments}` with the arguments an
 * object (after an optional <think> block); `tools` a string holding a list of functions with
 * `parameters.properties`, declaring every function called. Returns the conversation read.
 */
function readLlamaFactory(row, where) {
  const turns = row.conversations;
  assert.ok(Array.isArray(turns) && turns.length >= 2, `${where}: conversations`);
  turns.forEach((t, i) => {
    assert.deepEqual(Object.keys(t).sort(), ['from', 'value'], `${where}: turn ${i} keys`);
    assert.equal(typeof t.value, 'string', `${where}: turn ${i} value`);
    const allowed = i % 2 === 0 ? ['human', 'observation'] : ['gpt', 'function_call'];
    assert.ok(allowed.includes(t.from), `${where}: turn ${i} is ${t.from}, at an ${i % 2 ? 'odd' : 'even'} position`);
    if (t.from === 'observation') assert.equal(turns[i - 1].from, 'function_call', `${where}: observation ${i}`);
    if (t.from === 'function_call') assert.equal(turns[i + 1]?.from, 'observation', `${where}: call ${i}`);
  });
  assert.equal(turns[0].from, 'human', `${where}: opens with human`);
  assert.ok(nonBlank(turns[0].value), `${where}: the human turn`);
  assert.equal(turns.at(-1).from, 'gpt', `${where}: ends with gpt`);
  assert.ok(nonBlank(turns.at(-1).value), `${where}: the gpt turn`);
  // A gpt turn before the last is a reply to the user, answered by a human turn.
  turns.forEach((t, i) => {
    if (t.from === 'gpt' && i < turns.length - 1) assert.equal(turns[i + 1].from, 'human', `${where}: reply ${i}`);
    if (t.from === 'human' && i > 0) assert.equal(turns[i - 1].from, 'gpt', `${where}: human turn ${i}`);
  });

  assert.equal(typeof row.system, 'string', `${where}: system`);
  assert.equal(typeof row.tools, 'string', `${where}: tools is a string`);
  const tools = JSON.parse(row.tools);
  assert.ok(Array.isArray(tools), `${where}: tools holds a list`);
  const declared = tools.map((f, i) => {
    assert.ok(nonBlank(f.name), `${where}: tools[${i}].name`);
    assert.ok(isObject(f.parameters?.properties), `${where}: tools[${i}].parameters.properties`);
    return f.name;
  });

  const calls = [];
  const replies = [];
  for (let i = 1; i < turns.length - 1; i += 2) {
    const value = turns[i].value;
    const think = THINK.exec(value);
    if (turns[i].from === 'gpt') {
      replies.push({ reply: think ? value.slice(think[0].length) : value, thought: think?.[1] ?? null, user: turns[i + 1].value });
      continue;
    }
    const call = JSON.parse(think ? value.slice(think[0].length) : value);
    assert.deepEqual(Object.keys(call).sort(), ['arguments', 'name'], `${where}: call ${i} keys`);
    assert.ok(nonBlank(call.name), `${where}: call ${i} name`);
    assert.ok(isObject(call.arguments), `${where}: call ${i} arguments is an object`);
    assert.ok(declared.includes(call.name), `${where}: ${call.name} is declared in tools`);
    calls.push({ name: call.name, args: call.arguments, thought: think?.[1] ?? null, result: turns[i + 1].value });
  }
  return { goal: turns[0].value, calls, replies, closing: turns.at(-1).value, system: row.system };
}

/**
 * A TRL conversation: an optional system message first, the user's goal, then turns of an
 * assistant message with `tool_calls` (`{type: "function", function: {name, arguments}}`, the
 * arguments an object) answered in order by one `tool` message per call with the call's name,
 * and a closing assistant answer. Returns the conversation read.
 */
function readTrl(messages, declared, where) {
  assert.ok(Array.isArray(messages) && messages.length >= 3, `${where}: messages`);
  for (const [i, m] of messages.entries()) {
    assert.ok(['system', 'user', 'assistant', 'tool'].includes(m.role), `${where}: role of ${i}: ${m.role}`);
    if (m.role === 'system') assert.equal(i, 0, `${where}: a system message only first`);
  }
  let j = messages[0].role === 'system' ? 1 : 0;
  const system = j ? messages[0].content : null;
  const user = messages[j];
  assert.equal(user.role, 'user', `${where}: the goal`);
  assert.ok(nonBlank(user.content), `${where}: the goal's content`);
  j += 1;
  const turns = [];
  while (j < messages.length - 1) {
    const a = messages[j];
    assert.equal(a.role, 'assistant', `${where}: message ${j}`);
    if (a.tool_calls === undefined) {
      // A reply to the user, answered by the user's next message.
      assert.ok(nonBlank(a.content), `${where}: reply ${j}`);
      const u = messages[j + 1];
      assert.equal(u.role, 'user', `${where}: reply ${j} is answered by the user`);
      assert.equal(typeof u.content, 'string');
      turns.push({ reply: a.content, user: u.content, calls: [] });
      j += 2;
      continue;
    }
    assert.ok(Array.isArray(a.tool_calls) && a.tool_calls.length > 0, `${where}: message ${j} calls tools`);
    if ('content' in a) assert.ok(nonBlank(a.content), `${where}: message ${j} content`);
    const calls = a.tool_calls.map((c, k) => {
      assert.deepEqual(Object.keys(c).sort(), ['function', 'type'], `${where}: call ${j}.${k}`);
      assert.equal(c.type, 'function');
      assert.ok(nonBlank(c.function.name), `${where}: call ${j}.${k} name`);
      assert.ok(isObject(c.function.arguments), `${where}: call ${j}.${k} arguments is an object`);
      assert.ok(declared.includes(c.function.name), `${where}: ${c.function.name} is declared`);
      const answer = messages[j + 1 + k];
      assert.equal(answer?.role, 'tool', `${where}: call ${j}.${k} is answered`);
      assert.equal(answer.name, c.function.name, `${where}: the answer to ${j}.${k} names its tool`);
      assert.equal(typeof answer.content, 'string');
      return { name: c.function.name, args: c.function.arguments, result: answer.content };
    });
    turns.push({ thought: a.content ?? null, calls });
    j += 1 + calls.length;
  }
  const last = messages.at(-1);
  assert.equal(last.role, 'assistant', `${where}: ends with the assistant`);
  assert.equal(last.tool_calls, undefined, `${where}: the last message calls nothing`);
  assert.ok(nonBlank(last.content), `${where}: the closing answer`);
  return { system, goal: user.content, userIndex: system === null ? 0 : 1, turns, closing: last.content };
}

/**
 * TRL's `tools` column: the list of function tools written as a JSON string, which TRL's
 * trainers read with `json.loads`. Returns the function names it declares.
 */
function trlTools(row, where) {
  assert.equal(typeof row.tools, 'string', `${where}: tools is a JSON string`);
  return declaredFunctions(JSON.parse(row.tools), where);
}

/** TRL rows' provenance also lists the integers written as strings: none in these sources. */
function checkTrlProvenance(row, item, where) {
  checkProvenance(row, item, where);
  assert.deepEqual(row.provenance.integers_as_strings, [], `${where}: no integer written as a string`);
}

const OPENAI_ROW_KEYS = ['messages', 'tools', 'parallel_tool_calls'];
const OPENAI_MESSAGE_KEYS = ['role', 'content', 'name', 'weight', 'tool_calls', 'tool_call_id'];

/**
 * An OpenAI fine-tuning row: only the keys the service knows; `tool_calls[].function.arguments`
 * a string holding a JSON object; unique call ids; every tool message's `tool_call_id` answers
 * a call made before it and not yet answered, and every call is answered before the next
 * assistant message; `weight` only on assistant messages and only 0 or 1; the last message is
 * an assistant answer. Returns the conversation read.
 */
function readOpenAi(row, where) {
  for (const k of Object.keys(row)) assert.ok(OPENAI_ROW_KEYS.includes(k), `${where}: unknown key ${k}`);
  const declared = declaredFunctions(row.tools, where);
  const messages = row.messages;
  assert.ok(Array.isArray(messages) && messages.length >= 3, `${where}: messages`);
  const ids = new Set();
  const waiting = new Map();
  const turns = [];
  let system = null;
  let goal = null;
  for (const [i, m] of messages.entries()) {
    for (const k of Object.keys(m)) assert.ok(OPENAI_MESSAGE_KEYS.includes(k), `${where}: message ${i} key ${k}`);
    assert.ok(['system', 'user', 'assistant', 'tool'].includes(m.role), `${where}: message ${i} role ${m.role}`);
    if ('weight' in m) {
      assert.equal(m.role, 'assistant', `${where}: weight on message ${i}`);
      assert.ok(m.weight === 0 || m.weight === 1, `${where}: weight ${m.weight}`);
    }
    if (m.role === 'system') {
      assert.equal(i, 0, `${where}: a system message only first`);
      assert.ok(nonBlank(m.content));
      system = m.content;
    } else if (m.role === 'user' && goal !== null) {
      // The user's answer to the reply before it.
      const reply = turns.at(-1);
      assert.ok(reply?.reply !== undefined && reply.user === null, `${where}: user message ${i} answers a reply`);
      reply.user = m.content;
    } else if (m.role === 'user') {
      assert.ok(nonBlank(m.content), `${where}: the goal`);
      goal = m.content;
    } else if (m.role === 'assistant') {
      assert.notEqual(goal, null, `${where}: the user speaks first`);
      assert.deepEqual([...waiting.keys()], [], `${where}: calls left unanswered before message ${i}`);
      if (!m.tool_calls && i < messages.length - 1) {
        assert.ok(nonBlank(m.content), `${where}: reply ${i}`);
        turns.push({ reply: m.content, user: null, calls: [] });
        continue;
      }
      if (!m.tool_calls) continue;
      assert.ok(Array.isArray(m.tool_calls) && m.tool_calls.length > 0, `${where}: tool_calls of ${i}`);
      const calls = m.tool_calls.map((c, k) => {
        assert.deepEqual(Object.keys(c).sort(), ['function', 'id', 'type'], `${where}: call ${i}.${k}`);
        assert.equal(c.type, 'function');
        assert.ok(nonBlank(c.id), `${where}: call ${i}.${k} id`);
        assert.ok(!ids.has(c.id), `${where}: call id ${c.id} used twice`);
        ids.add(c.id);
        assert.deepEqual(Object.keys(c.function).sort(), ['arguments', 'name']);
        assert.ok(declared.includes(c.function.name), `${where}: ${c.function.name} is declared`);
        assert.equal(typeof c.function.arguments, 'string', `${where}: arguments of ${c.id} is a string`);
        const args = JSON.parse(c.function.arguments);
        assert.ok(isObject(args), `${where}: arguments of ${c.id} hold a JSON object`);
        const call = { id: c.id, name: c.function.name, argsText: c.function.arguments, args, result: null };
        waiting.set(c.id, call);
        return call;
      });
      turns.push({ thought: m.content ?? null, calls });
    } else {
      assert.ok(waiting.has(m.tool_call_id), `${where}: tool message ${i} answers ${m.tool_call_id}, no call waiting`);
      assert.equal(typeof m.content, 'string');
      waiting.get(m.tool_call_id).result = m.content;
      waiting.delete(m.tool_call_id);
    }
  }
  const last = messages.at(-1);
  assert.equal(last.role, 'assistant', `${where}: ends with the assistant`);
  assert.equal(last.tool_calls, undefined, `${where}: the last message calls nothing`);
  assert.ok(nonBlank(last.content), `${where}: the closing answer`);
  assert.ok(
    messages.some((m) => m.role === 'assistant' && m.weight !== 0),
    `${where}: trains on at least one assistant message`,
  );
  return { system, goal, turns, closing: last.content, closingWeight: last.weight };
}

// --- Each file against the sources --------------------------------------------------------------

/** The calls of a source run, one list. */
const callsOf = (run) => run.turns.flatMap((t) => t.calls);

/** The thought the first call of each turn carries (null for the others, or when not kept). */
function thoughtsOf(run, kept) {
  return run.turns.flatMap((t) => t.calls.map((_, i) => (kept && i === 0 && t.thought.trim() ? t.thought : null)));
}

function checkProvenance(row, item, where) {
  assert.equal(typeof row.weight, 'number', `${where}: weight`);
  assert.ok(row.weight >= 0 && row.weight <= 1, `${where}: weight ${row.weight}`);
  if (item.kind === 'success') assert.equal(row.weight, 1, `${where}: a success weighs 1`);
  const p = row.provenance;
  assert.equal(p.kind, item.kind, `${where}: provenance.kind`);
  assert.equal(p.trajectory_id, item.id, `${where}: provenance.trajectory_id`);
  assert.equal(p.import_format, item.source.format, `${where}: provenance.import_format`);
  assert.equal(p.original_prompt, item.source.goal, `${where}: provenance.original_prompt`);
  assert.equal(p.source_file, item.source.file, `${where}: provenance.source_file`);
  assert.ok(Number.isInteger(p.source_line) && p.source_line >= 1, `${where}: provenance.source_line`);
  if (item.kind === 'relabeled') {
    assert.ok(p.confidence > 0.5 && p.confidence <= 1, `${where}: provenance.confidence`);
    assert.equal(p.judges, 'relabeler + judge', `${where}: provenance.judges`);
  } else {
    assert.equal(p.confidence, null, `${where}: a success has no confidence`);
  }
}

function checkNoProvenance(row, where) {
  assert.equal(row.weight, undefined, `${where}: no weight column`);
  assert.equal(row.provenance, undefined, `${where}: no provenance column`);
}

function checkLlamaFactoryFile(text, items, options) {
  const rows = jsonLines(text);
  assert.equal(rows.length, items.length, 'llamafactory: one row per sample');
  rows.forEach((row, i) => {
    const item = items[i];
    const where = `llamafactory row ${i + 1} (${item.id}, ${item.kind})`;
    const read = readLlamaFactory(row, where);
    assert.equal(read.goal, item.goal, `${where}: the goal`);
    assert.equal(read.system, item.source.system ?? '', `${where}: system`);
    assert.deepEqual(
      read.calls.map((c) => [c.name, c.args, c.result]),
      callsOf(item.source).map((c) => [c.name, c.args, c.result]),
      `${where}: calls and observations`,
    );
    assert.deepEqual(read.calls.map((c) => c.thought), thoughtsOf(item.source, options.thoughts), `${where}: thoughts`);
    assert.deepEqual(
      read.replies.map((r) => [r.reply, r.user]),
      writtenTurns(item.source)
        .filter((t) => t.reply !== undefined)
        .map((t) => [t.reply, t.user]),
      `${where}: replies and the user's answers`,
    );
    const closing = closingOf(item.source);
    const think = options.thoughts && closing.thought.trim() ? `<think>\n${closing.thought}\n</think>\n\n` : '';
    assert.equal(read.closing, think + closing.text, `${where}: closing answer`);
    if (options.provenance) checkProvenance(row, item, where);
    else checkNoProvenance(row, where);
  });
  return rows;
}

/** A chat conversation (TRL or OpenAI) read against its source: calls grouped by turn, thoughts as asked. */
function checkChatConversation(read, item, goal, options, where) {
  assert.equal(read.goal, goal, `${where}: the goal`);
  assert.equal(read.system, item.source.system, `${where}: system`);
  const shape = (t) => (t.reply !== undefined ? ['reply', t.reply, t.user] : t.calls.map((c) => [c.name, c.args, c.result]));
  const written = writtenTurns(item.source);
  assert.deepEqual(
    read.turns.map(shape),
    written.map((t) => shape(t.reply !== undefined ? { ...t, reply: withThought(t.reply, t.thought, options.thoughts) } : t)),
    `${where}: turns, calls, results and replies`,
  );
  assert.deepEqual(
    read.turns.filter((t) => t.reply === undefined).map((t) => t.thought),
    written
      .filter((t) => t.reply === undefined)
      .map((t) => (options.thoughts && t.thought.trim() ? t.thought : null)),
    `${where}: thoughts`,
  );
  const closing = closingOf(item.source);
  assert.equal(read.closing, withThought(closing.text, closing.thought, options.thoughts), `${where}: closing answer`);
}

function checkTrlSftFile(text, items, options) {
  const rows = jsonLines(text);
  assert.equal(rows.length, items.length, 'trl-sft: one row per sample');
  rows.forEach((row, i) => {
    const item = items[i];
    const where = `trl-sft row ${i + 1} (${item.id}, ${item.kind})`;
    for (const k of ['prompt', 'completion', 'chosen', 'rejected']) assert.equal(row[k], undefined, `${where}: ${k}`);
    const read = readTrl(row.messages, trlTools(row, where), where);
    checkChatConversation(read, item, item.goal, options, where);
    if (options.provenance) checkTrlProvenance(row, item, where);
    else checkNoProvenance(row, where);
  });
  return rows;
}

function checkTrlPreferenceFile(text, items, options) {
  const rows = jsonLines(text);
  const relabeled = items.filter((item) => item.kind === 'relabeled');
  assert.equal(rows.length, relabeled.length, 'trl-preference: one row per relabeled sample, no success');
  rows.forEach((row, i) => {
    const item = relabeled[i];
    const where = `trl-preference row ${i + 1} (${item.id})`;
    for (const k of ['messages', 'completion']) assert.equal(row[k], undefined, `${where}: ${k}`);
    // The explicit prompt: the conversation before the goal, the run's system message or an
    // empty one (TRL stops on an empty prompt).
    assert.deepEqual(row.prompt, [{ role: 'system', content: item.source.system ?? '' }], `${where}: prompt`);
    const declared = trlTools(row, where);
    const withPrompt = (side) => (item.source.system === null ? side : [...row.prompt, ...side]);
    const chosen = readTrl(withPrompt(row.chosen), declared, `${where} chosen`);
    const rejected = readTrl(withPrompt(row.rejected), declared, `${where} rejected`);
    checkChatConversation(chosen, item, item.goal, options, `${where} chosen`);
    checkChatConversation(rejected, item, item.source.goal, options, `${where} rejected`);
    // Both sides open with the user's goal and differ only there.
    assert.equal(row.chosen.length, row.rejected.length, `${where}: same length`);
    const differ = row.chosen
      .map((m, k) => (JSON.stringify(m) === JSON.stringify(row.rejected[k]) ? null : k))
      .filter((k) => k !== null);
    assert.deepEqual(differ, [0], `${where}: only the user's goal differs`);
    assert.equal(row.chosen[0].role, 'user', `${where}: chosen opens with the goal`);
    assert.notEqual(chosen.goal, rejected.goal, `${where}: the goals differ`);
    if (options.provenance) checkTrlProvenance(row, item, where);
    else checkNoProvenance(row, where);
  });
  return rows;
}

function checkOpenAiFile(text, items, options) {
  const rows = jsonLines(text);
  assert.equal(rows.length, items.length, 'openai: one row per sample');
  rows.forEach((row, i) => {
    const item = items[i];
    const where = `openai row ${i + 1} (${item.id}, ${item.kind})`;
    const read = readOpenAi(row, where);
    checkChatConversation(read, item, item.goal, options, where);
    const calls = read.turns.flatMap((t) => t.calls);
    const source = callsOf(item.source);
    if (item.source.sourceIds) {
      // The round trip: the source's own call ids and argument strings, byte for byte.
      assert.deepEqual(calls.map((c) => c.id), source.map((c) => c.id), `${where}: the source's call ids`);
      assert.deepEqual(calls.map((c) => c.argsText), source.map((c) => c.argsText), `${where}: the source's argument strings`);
    } else {
      assert.deepEqual(calls.map((c) => c.id), source.map((_, k) => `call_${k + 1}`), `${where}: generated call ids`);
      source.forEach((c, k) => {
        if (c.argsText !== undefined) assert.equal(calls[k].argsText, c.argsText, `${where}: argument string ${k}`);
      });
    }
    const closing = closingOf(item.source);
    assert.equal(read.closingWeight, closing.derived ? 0 : undefined, `${where}: a derived closing is not trained on`);
  });
  return rows;
}

// --- The page ----------------------------------------------------------------------------------

/** The check table: `{target: {rows, leftOut, violations: [text], rewrites: [text]}}`. */
async function checkTable(page) {
  const out = {};
  const rows = page.getByTestId('export-check');
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    out[await row.getAttribute('data-target')] = {
      rows: Number(await row.getAttribute('data-rows')),
      leftOut: Number(await row.getAttribute('data-left-out')),
      violations: (await row.getByTestId('violation').allTextContents()).map((t) => t.trim()),
      rewrites: (await row.getByTestId('rewrite').allTextContents()).map((t) => t.trim()),
    };
  }
  return out;
}

/** Downloads the four tool layouts: `{target: {name, text}}`. */
async function downloadTools(page) {
  const files = {};
  for (const target of TOOLS) files[target] = await download(page, `download-${target}`);
  return files;
}

/** The stamp of a download's name, checking the name is `agenther-{target}-{stamp}.{ext}`. */
function stampOf(file, target) {
  const m = STAMPED.exec(file.name);
  assert.ok(m, `file name ${file.name}`);
  assert.equal(m[1], target, `file name ${file.name}`);
  return m[2];
}

/** The manifest agrees with the files downloaded (`{target: {name, text}}`) and the options. */
function checkManifest(manifest, files, { endpoint, options }) {
  assert.equal(manifest.product, 'agenther');
  assert.equal(manifest.endpoint, endpoint);
  assert.equal(manifest.model, 'scripted-model');
  assert.deepEqual(manifest.export_options, {
    include_successes: options.successes,
    thoughts: options.thoughts,
    provenance: options.provenance,
    one_per_cluster: false,
    duplicate_threshold: 0.8,
    reviewed_only: false,
  });
  assert.deepEqual([...manifest.formats].sort(), [...NATIVE, ...TOOLS].sort());
  assert.ok(isObject(manifest.settings));
  for (const key of Object.keys(manifest.settings)) assert.doesNotMatch(key, /key|secret|token$/i, `setting ${key}`);
  const byFormat = Object.fromEntries(manifest.files.map((f) => [f.format, f]));
  for (const [target, file] of Object.entries(files)) {
    const entry = byFormat[target];
    assert.ok(entry, `the manifest lists ${target}`);
    assert.equal(entry.name, file.name, `manifest name of ${target}`);
    assert.equal(entry.rows, jsonLines(file.text).length, `manifest rows of ${target}`);
    assert.equal(entry.left_out, 0, `manifest left_out of ${target}`);
    assert.equal(entry.violations, 0, `manifest violations of ${target}`);
  }
}

/** The check table shows each downloaded file with its row count and nothing left out. */
function checkChecks(checks, files) {
  for (const [target, file] of Object.entries(files)) {
    assert.ok(checks[target], `the check table shows ${target}`);
    assert.equal(checks[target].rows, jsonLines(file.text).length, `checked rows of ${target}`);
    assert.equal(checks[target].leftOut, 0, `left out of ${target}`);
    assert.deepEqual(checks[target].violations, [], `violations of ${target}`);
    assert.deepEqual(checks[target].rewrites, [], `values written as strings in ${target}`);
  }
}

/** Every tool file of a set checked against the sources. */
function checkToolFiles(files, items, options) {
  checkLlamaFactoryFile(files.llamafactory.text, items, options);
  checkTrlSftFile(files['trl-sft'].text, items, options);
  checkTrlPreferenceFile(files['trl-preference'].text, items, options);
  checkOpenAiFile(files.openai.text, items, options);
}

test('a tau-bench file and a ReAct log, relabeled, download in every training layout and keep each tool\'s rules', { timeout: 240_000 }, async () => {
  const tauText = await dataFile(TAU);
  const tau = tauRuns(JSON.parse(tauText)).map((r) => ({ ...r, file: TAU }));
  const react = REACT_RUNS.map((r) => ({ ...r, file: REACT }));
  const sources = [...tau, ...react];
  const endpoint = await startEndpoint({ apiKey: API_KEY });
  const saved = [];
  let app;
  try {
    app = await openApp();
    const { page } = app;

    // --- Loading: the tau-bench file dropped, the ReAct log picked.
    const fileRows = page.getByTestId('file-row');
    await dropFiles(page, [{ name: TAU, text: tauText }]);
    await fileRows.first().waitFor();
    await pickFiles(page, [join(DATA, REACT)]);
    await fileRows.nth(1).waitFor();
    const tauRow = fileRows.nth(0);
    const reactRow = fileRows.nth(1);
    assert.match(await tauRow.textContent(), /tau-results\.json/);
    assert.match(await tauRow.textContent(), /(?<!\d)3 trajectories/);
    assert.match(await tauRow.textContent(), /(?<!\d)0 rejected/);
    assert.equal((await tauRow.getByTestId('file-successes').textContent()).trim(), '1 success kept apart');
    assert.match(await tauRow.getByTestId('file-format').textContent(), /^tau-bench results \(detected\), JSON array, /);
    assert.match(await reactRow.textContent(), /react-log\.txt/);
    assert.match(await reactRow.textContent(), /(?<!\d)2 trajectories/);
    assert.match(await reactRow.textContent(), /(?<!\d)0 rejected/);
    assert.equal(await reactRow.getByTestId('file-successes').count(), 0);
    assert.match(await reactRow.getByTestId('file-format').textContent(), /^ReAct text log \(detected\), text, /);
    assert.match(await page.locator('.summary').textContent(), /^5 trajectories \(1 success kept apart\) in 2 files/);
    assert.equal(await page.getByTestId('rejected-item').count(), 0);

    // The success is kept apart; every failure waits for the run.
    const before = await tableRows(page);
    assert.deepEqual(before.slice(0, 3).map((r) => r.id), tau.map((r) => r.id));
    assert.deepEqual(
      before.map((r) => r.status),
      sources.map((s) => (s.success ? 'success' : 'pending')),
    );
    for (const r of before.slice(3)) assert.match(r.id, /^traj-[0-9a-f]{12}$/);
    sources.forEach((s, i) => {
      s.id = before[i].id;
    });

    // --- The run, with the API key the endpoint asks for.
    await configure(page, {
      baseUrl: endpoint.url,
      apiKey: API_KEY,
      model: 'scripted-model',
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
    });
    await runToEnd(page, { timeout: 120_000 });
    const counts = endpoint.counts();
    assert.equal(counts.unauthorized, 0);
    assert.equal(counts.relabel_reply, 4, 'one relabel call per failure');
    assert.equal(counts.judge_reply, 4, 'one judge call per failure');
    for (const r of endpoint.requests.filter((r) => r.method === 'POST')) {
      assert.equal(r.headers.authorization, `Bearer ${API_KEY}`);
    }
    const rows = await tableRows(page);
    assert.deepEqual(rows.map((r) => r.id), sources.map((s) => s.id));
    assert.deepEqual(
      rows.map((r) => r.status),
      sources.map((s) => (s.success ? 'success' : 'accepted')),
    );
    rows.forEach((r, i) => {
      if (r.status !== 'accepted') return;
      const first = callsOf(sources[i])[0].name;
      assert.equal(r.hindsight, hindsightPromptFor(first, 'accept'), `hindsight goal of ${r.id}`);
    });

    // --- First set: the default options (no successes, no thoughts, provenance columns).
    const options = { successes: false, thoughts: false, provenance: true };
    assert.equal(await page.getByTestId('export-successes').isChecked(), options.successes);
    assert.equal(await page.getByTestId('export-thoughts').isChecked(), options.thoughts);
    assert.equal(await page.getByTestId('export-provenance').isChecked(), options.provenance);
    const files = await downloadTools(page);
    for (const f of NATIVE) files[f] = await download(page, `download-${f}`);
    const stamp = stampOf(files.llamafactory, 'llamafactory');
    for (const [target, file] of Object.entries(files)) assert.equal(stampOf(file, target), stamp, `one stamp: ${file.name}`);
    saved.push(...Object.values(files));

    const items = expectedItems(sources, rows, options);
    assert.equal(items.length, 4);
    checkToolFiles(files, items, options);
    for (const f of NATIVE) {
      const lines = jsonLines(files[f].text);
      assert.deepEqual(lines.map((l) => l.source_trajectory_id), items.map((item) => item.id), `${f}: sources`);
    }

    // dataset_info.json registers the LLaMA-Factory file just downloaded, with its tags.
    const info = await download(page, 'download-dataset-info');
    saved.push(info);
    assert.equal(info.name, 'dataset_info.json');
    const datasets = JSON.parse(info.text);
    const entries = Object.values(datasets);
    assert.equal(entries.length, 1);
    const entry = entries[0];
    assert.equal(entry.file_name, files.llamafactory.name);
    assert.equal(entry.formatting, 'sharegpt');
    assert.deepEqual(entry.columns, { messages: 'conversations', system: 'system', tools: 'tools' });
    assert.deepEqual(entry.tags, {
      role_tag: 'from',
      content_tag: 'value',
      user_tag: 'human',
      assistant_tag: 'gpt',
      observation_tag: 'observation',
      function_tag: 'function_call',
      system_tag: 'system',
    });
    // Every column the entry maps is in every row, and every turn uses the entry's tags.
    const tags = new Set([entry.tags.user_tag, entry.tags.assistant_tag, entry.tags.observation_tag, entry.tags.function_tag]);
    for (const row of jsonLines(files.llamafactory.text)) {
      for (const column of Object.values(entry.columns)) assert.ok(column in row, `column ${column}`);
      for (const turn of row[entry.columns.messages]) {
        assert.ok(tags.has(turn[entry.tags.role_tag]), `tag ${turn[entry.tags.role_tag]}`);
        assert.equal(typeof turn[entry.tags.content_tag], 'string');
      }
    }

    // The manifest and the check table agree with the files.
    const manifestFile = await download(page, 'download-manifest');
    saved.push(manifestFile);
    assert.equal(stampOf(manifestFile, 'manifest'), stamp);
    checkManifest(JSON.parse(manifestFile.text), files, { endpoint: endpoint.url, options });
    const checks = await checkTable(page);
    assert.deepEqual(Object.keys(checks), [...NATIVE, ...TOOLS], 'the check table lists every target in order');
    checkChecks(checks, files);
    saved.push(await download(page, 'download-report'));

    // --- Second set: the successes added (not to the preference file).
    await page.getByTestId('export-successes').check();
    const withSuccesses = { ...options, successes: true };
    const files2 = await downloadTools(page);
    saved.push(...Object.values(files2));
    const items2 = expectedItems(sources, rows, withSuccesses);
    assert.equal(items2.length, 5);
    assert.deepEqual(
      items2.map((item) => [item.id, item.kind]),
      [
        [sources[0].id, 'relabeled'],
        [sources[1].id, 'relabeled'],
        [sources[2].id, 'success'],
        [sources[3].id, 'relabeled'],
        [sources[4].id, 'relabeled'],
      ],
    );
    checkToolFiles(files2, items2, withSuccesses);
    for (const target of ['llamafactory', 'trl-sft', 'openai']) {
      assert.equal(
        jsonLines(files2[target].text).length,
        jsonLines(files[target].text).length + 1,
        `${target}: the success is added`,
      );
    }
    assert.equal(files2['trl-preference'].text, files['trl-preference'].text, 'trl-preference: no success added');
    // The success's OpenAI row is its own conversation, call ids and argument strings unchanged.
    const success = jsonLines(files2.openai.text)[2];
    const successCall = success.messages.find((m) => m.tool_calls).tool_calls[0];
    assert.equal(successCall.id, 'call_Tp4S1');
    assert.equal(successCall.function.arguments, callsOf(tau[2])[0].argsText);
    assert.equal(success.messages.find((m) => m.role === 'user').content, tau[2].goal);
    const manifest2 = await download(page, 'download-manifest');
    saved.push(manifest2);
    checkManifest(JSON.parse(manifest2.text), files2, { endpoint: endpoint.url, options: withSuccesses });
    checkChecks(await checkTable(page), files2);

    // --- Third set: the thoughts kept, the provenance columns left out.
    await page.getByTestId('export-thoughts').check();
    await page.getByTestId('export-provenance').uncheck();
    const thoughtful = { successes: true, thoughts: true, provenance: false };
    const files3 = await downloadTools(page);
    saved.push(...Object.values(files3));
    checkToolFiles(files3, items2, thoughtful);
    const manifest3 = await download(page, 'download-manifest');
    saved.push(manifest3);
    checkManifest(JSON.parse(manifest3.text), files3, { endpoint: endpoint.url, options: thoughtful });
    checkChecks(await checkTable(page), files3);

    // --- The API key is in no download, and not stored (it was not to be remembered).
    assert.equal(saved.length, 20, 'files downloaded');
    for (const file of saved) assert.ok(!file.text.includes(API_KEY), `${file.name} holds the API key`);
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!storage.includes(API_KEY), 'the API key is in the browser storage');

    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('a row that breaks a layout rule is left out of the download and shown with its violation', { timeout: 120_000 }, async () => {
  const endpoint = await startEndpoint({});
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await pickFiles(page, [join(DATA, NAN)]);
    const fileRow = page.getByTestId('file-row');
    await fileRow.waitFor();
    assert.match(await fileRow.textContent(), /(?<!\d)2 trajectories/);
    assert.match(await fileRow.textContent(), /(?<!\d)0 rejected/);
    assert.match(await fileRow.getByTestId('file-format').textContent(), /^AgentHER native \(detected\), JSONL, /);

    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
    });
    await runToEnd(page);
    const rows = await tableRows(page);
    assert.deepEqual(
      rows.map((r) => [r.id, r.status]),
      [
        ['nan-args', 'accepted'],
        ['clean-args', 'accepted'],
      ],
    );

    // The OpenAI file: the clean row only.
    const file = await download(page, 'download-openai');
    const lines = jsonLines(file.text);
    assert.equal(lines.length, 1);
    const calls = lines[0].messages.filter((m) => m.tool_calls).flatMap((m) => m.tool_calls);
    assert.deepEqual(calls.map((c) => c.function.name), ['stock_quote']);
    assert.equal(lines[0].messages.find((m) => m.role === 'user').content, rows[1].hindsight);
    assert.ok(!file.text.includes('fx_convert'), 'the left-out row is in the file');
    assert.ok(!/NaN|Infinity/.test(file.text), 'the file holds NaN');

    // The check table: one row written, one left out, and why.
    const row = page.locator('[data-testid="export-check"][data-target="openai"]');
    await row.waitFor();
    assert.equal(await row.getAttribute('data-rows'), '1');
    assert.equal(await row.getAttribute('data-left-out'), '1');
    assert.match(await row.getAttribute('class'), /\bbad\b/);
    assert.match(await row.textContent(), new RegExp(file.name.replace(/\./g, '\\.')));
    const violations = (await row.getByTestId('violation').allTextContents()).map((t) => t.trim());
    assert.ok(violations.length >= 1, 'a violation is shown');
    for (const v of violations) assert.match(v, /^line 1: nan-args: /, v);
    assert.ok(
      violations.some((v) => /function\.arguments/.test(v) && /NaN or Infinity/.test(v) && /spread_bps/.test(v)),
      `the arguments' NaN is named: ${JSON.stringify(violations)}`,
    );
    assert.match(await page.locator('.notice').textContent(), /1 row\(s\) broke the layout's rules and were left out/);

    // Every tool layout leaves the row out; the manifest says so.
    await page.getByTestId('check-exports').click();
    await page.locator('[data-testid="export-check"][data-target="llamafactory"]').waitFor();
    const checks = await checkTable(page);
    for (const target of TOOLS) {
      assert.equal(checks[target].rows, 1, `${target} rows`);
      assert.equal(checks[target].leftOut, 1, `${target} left out`);
      assert.ok(checks[target].violations.length >= 1, `${target} violations`);
      for (const v of checks[target].violations) assert.match(v, /^line 1: nan-args: /, `${target}: ${v}`);
    }
    // The clean row's request id (2^64) is beyond what Arrow-based loaders hold: the TRL rows,
    // whose arguments are objects, write it as a string and the check table says where; inside
    // LLaMA-Factory's and OpenAI's argument strings it stays a number.
    const beyond = (field) =>
      `line 2: clean-args: ${field}: the integer 18446744073709551616 is beyond the signed 64-bit range ` +
      'that Arrow-based loaders (🤗 datasets) read; written as the string "18446744073709551616"';
    assert.deepEqual(checks['trl-sft'].rewrites, [beyond('messages[1].tool_calls[0].function.arguments.request_id')]);
    assert.deepEqual(checks['trl-preference'].rewrites, [
      beyond('chosen[1].tool_calls[0].function.arguments.request_id'),
      beyond('rejected[1].tool_calls[0].function.arguments.request_id'),
    ]);
    assert.deepEqual(checks.llamafactory.rewrites, []);
    assert.deepEqual(checks.openai.rewrites, []);
    assert.match(file.text, /\\"request_id\\": 18446744073709551616/);
    const sft = jsonLines((await download(page, 'download-trl-sft')).text);
    assert.equal(sft[0].messages[1].tool_calls[0].function.arguments.request_id, '18446744073709551616');
    assert.deepEqual(sft[0].provenance.integers_as_strings, ['messages[1].tool_calls[0].function.arguments.request_id']);
    const manifest = JSON.parse((await download(page, 'download-manifest')).text);
    const entry = manifest.files.find((f) => f.format === 'openai');
    assert.equal(entry.rows, 1);
    assert.equal(entry.left_out, 1);
    assert.equal(entry.violations, checks.openai.violations.length);
    assert.equal(manifest.files.find((f) => f.format === 'trl-sft').rewrites.length, 1);

    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('the successes alone, before any run, download as one set: dataset_info.json and the manifest name the files saved', { timeout: 120_000 }, async () => {
  const tauText = await dataFile(TAU);
  const tau = tauRuns(JSON.parse(tauText)).map((r) => ({ ...r, file: TAU }));
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await dropFiles(page, [{ name: TAU, text: tauText }]);
    await page.getByTestId('file-row').waitFor();
    const rows = await tableRows(page);
    tau.forEach((s, i) => {
      s.id = rows[i].id;
    });
    const enabled = async () =>
      Object.fromEntries(
        await Promise.all(
          [...TOOLS, 'dataset-info'].map(async (t) => [t, await page.getByTestId(`download-${t}`).isEnabled()]),
        ),
      );
    // Nothing accepted: nothing to write until the successes are asked for, and never a
    // preference pair (a success has no second goal to contrast).
    assert.deepEqual(await enabled(), {
      llamafactory: false,
      'trl-sft': false,
      'trl-preference': false,
      openai: false,
      'dataset-info': false,
    });
    await page.getByTestId('export-successes').check();
    await page.getByTestId('download-llamafactory').and(page.locator(':enabled')).waitFor();
    assert.deepEqual(await enabled(), {
      llamafactory: true,
      'trl-sft': true,
      'trl-preference': false,
      openai: true,
      'dataset-info': true,
    });

    const options = { successes: true, thoughts: false, provenance: true };
    const items = expectedItems(tau, rows, options);
    assert.deepEqual(items.map((item) => [item.id, item.kind]), [[tau[2].id, 'success']]);
    const files = {
      llamafactory: await download(page, 'download-llamafactory'),
      openai: await download(page, 'download-openai'),
    };
    checkLlamaFactoryFile(files.llamafactory.text, items, options);
    checkOpenAiFile(files.openai.text, items, options);

    // Later clicks, in another second of the clock, still belong to the same set.
    const second = await page.evaluate(() => Math.floor(Date.now() / 1000));
    await page.waitForFunction((s) => Date.now() >= (s + 1) * 1000, second);
    files['trl-sft'] = await download(page, 'download-trl-sft');
    checkTrlSftFile(files['trl-sft'].text, items, options);
    const info = JSON.parse((await download(page, 'download-dataset-info')).text);
    assert.equal(Object.values(info)[0].file_name, files.llamafactory.name, 'dataset_info.json names the file saved');
    const manifest = JSON.parse((await download(page, 'download-manifest')).text);
    const names = Object.fromEntries(manifest.files.map((f) => [f.format, f.name]));
    for (const [target, file] of Object.entries(files)) assert.equal(names[target], file.name, `manifest name of ${target}`);
    assert.equal(stampOf(files['trl-sft'], 'trl-sft'), stampOf(files.llamafactory, 'llamafactory'));
    await app.checkConsole();
  } finally {
    await app?.close();
  }
});
