//! envhub-env-code: Python code generation checked by running it.
//!
//! Two task kinds, in the splits and as inline tasks (same schemas):
//! - **HumanEval-style**: `{"prompt", "test", "entry_point"}` (plus optional
//!   `task_id`, `canonical_solution`). The completion is checked by running
//!   prompt + completion + test, then every top-level statement of
//!   `check(entry_point)`'s body in turn (each statement that holds an
//!   `assert` is one test).
//! - **stdin/stdout**: `{"question" (or "prompt"), "tests": [{"input", "output"}]}`
//!   (plus optional `task_id`, `solution`). The program runs once per test;
//!   a test passes when it exits 0 and its stdout equals `output` after
//!   trimming trailing whitespace of every line and trailing blank lines.
//!
//! Programs run in a nested CPython sandbox through the host capability
//! `run_code` (`code:python`), so this module needs that capability.
//!
//! Reward components: `pass_rate` (fraction of tests passed, weight 0) and
//! `all_passed` (1 when every test passed, weight 1). Reset config:
//! `{"mode": "single" | "fix", "max_turns": n, "weights": {...}}`. In `fix`
//! mode a failed attempt is answered with the failing test's output as a
//! user message, until all tests pass or `max_turns` attempts were made; each
//! step's reward scores that step's attempt.

pub mod data;
pub mod extract;

use std::collections::BTreeMap;
use std::path::PathBuf;

use envhub_sdk::error::{EnvError, ErrorKind};
use envhub_sdk::guest::Environment;
use envhub_sdk::host::{CodeLimits, CodeResult, LimitHit, RunCode};
use envhub_sdk::protocol::{
    InfoResponse, Message, Metrics, ResetResponse, Reward, RewardComponent, Role, StepResponse, TaskSource,
    ValidateResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::data::HumanEvalStore;

/// Environment name.
pub const NAME: &str = "envhub/code";
/// Environment version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Reward component: fraction of tests passed.
pub const PASS_RATE: &str = "pass_rate";
/// Reward component: 1 when every test passed.
pub const ALL_PASSED: &str = "all_passed";
/// Most attempts a `fix` episode may allow.
pub const MAX_TURNS: u32 = 8;
/// Attempts of a `fix` episode when the config does not say.
pub const DEFAULT_FIX_TURNS: u32 = 3;
/// Fuel of one program run (about 2-3 s of CPython; the heaviest canonical
/// HumanEval check uses 8.4e9).
pub const RUN_FUEL: u64 = 20_000_000_000;
/// Memory of one program run.
pub const RUN_MEMORY: u64 = 256 << 20;
/// Bytes kept of a run's stdout and of its stderr.
pub const RUN_OUTPUT: u64 = 1 << 20;

/// One test case of a stdin/stdout task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoTest {
    /// The program's stdin.
    pub input: String,
    /// The expected stdout.
    pub output: String,
}

/// What a task asks for and how it is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    /// Complete a function; checked by `check(entry_point)`.
    Function {
        /// The function's signature and docstring (and any imports/helpers).
        prompt: String,
        /// Python source defining `check(candidate)`.
        test: String,
        /// The function's name.
        entry_point: String,
        /// A body that passes, appended to the prompt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canonical_solution: Option<String>,
    },
    /// Write a program that maps stdin to stdout.
    Io {
        /// The problem statement.
        question: String,
        /// The test cases.
        tests: Vec<IoTest>,
        /// A program that passes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        solution: Option<String>,
    },
}

/// A task: its id and kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Stable id (`HumanEval/0`, `stdio/2`, the inline `task_id`, or a hash).
    pub id: String,
    /// The task.
    #[serde(flatten)]
    pub kind: TaskKind,
}

/// FNV-1a over bytes, for stable inline task ids.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3))
}

fn string_field(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

impl Task {
    /// Reads a task in either inline schema (see the crate docs).
    pub fn from_json(value: Value) -> Result<Task, String> {
        let id = fnv(value.to_string().as_bytes());
        let Value::Object(o) = value else {
            return Err("a code task is a JSON object".to_owned());
        };
        let id = string_field(&o, "task_id")?.unwrap_or_else(|| format!("inline-{id:016x}"));
        if o.contains_key("entry_point") || o.contains_key("test") {
            let need = |k: &str| string_field(&o, k)?.ok_or_else(|| format!("a HumanEval-style task needs `{k}`"));
            let entry_point = need("entry_point")?;
            if entry_point.is_empty() || !entry_point.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(format!("`entry_point` {entry_point:?} is not a Python identifier"));
            }
            return Ok(Task {
                id,
                kind: TaskKind::Function {
                    prompt: need("prompt")?,
                    test: need("test")?,
                    entry_point,
                    canonical_solution: string_field(&o, "canonical_solution")?,
                },
            });
        }
        let question = match string_field(&o, "question")? {
            Some(q) => q,
            None => string_field(&o, "prompt")?
                .ok_or("a task needs `prompt`, `test` and `entry_point`, or `question` and `tests`")?,
        };
        let tests: Vec<IoTest> = serde_json::from_value(o.get("tests").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("`tests` must be a list of {{\"input\", \"output\"}}: {e}"))?;
        if tests.is_empty() {
            return Err("`tests` is empty".to_owned());
        }
        Ok(Task { id, kind: TaskKind::Io { question, tests, solution: string_field(&o, "solution")? } })
    }

    /// The opening messages.
    pub fn messages(&self) -> Vec<Message> {
        match &self.kind {
            TaskKind::Function { prompt, .. } => vec![
                Message::system(
                    "You are an expert Python programmer. Complete the function so that it does what its docstring \
                     says. Reply with the complete function (with any imports it needs) in one ```python code block.",
                ),
                Message::user(format!("Complete this Python function:\n\n```python\n{}\n```", prompt.trim_end())),
            ],
            TaskKind::Io { question, .. } => vec![
                Message::system(
                    "You are an expert Python programmer. Write a complete Python 3 program that reads the input from \
                     standard input and prints the answer to standard output. Reply with the program in one \
                     ```python code block.",
                ),
                Message::user(question.clone()),
            ],
        }
    }

    /// A completion that passes, if the task has one.
    pub fn reference(&self) -> Option<String> {
        match &self.kind {
            TaskKind::Function { canonical_solution, .. } => canonical_solution.clone(),
            TaskKind::Io { solution, .. } => solution.as_ref().map(|s| format!("```python\n{s}\n```")),
        }
    }
}

/// How a completion fared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Tests passed.
    pub passed: u64,
    /// Tests run or counted.
    pub total: u64,
    /// Whether the completion had a fenced code block.
    pub fenced: bool,
    /// The limit the first limited run hit (`none` when none did).
    pub limit: LimitHit,
    /// Fuel of all runs.
    pub fuel_used: u64,
    /// What the first failing test showed, for the policy.
    pub feedback: Option<String>,
}

impl Verdict {
    /// Whether every test passed.
    pub fn all_passed(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

fn limits(fuel: u64) -> CodeLimits {
    CodeLimits { fuel: Some(fuel), memory_bytes: Some(RUN_MEMORY), output_bytes: Some(RUN_OUTPUT) }
}

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> &str {
    let s = s.trim_end();
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
    &s[start..]
}

/// The first `n` characters of `s`, with an ellipsis when cut.
fn head(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Why a run failed, for the policy.
fn run_failure(r: &CodeResult) -> String {
    match r.limit {
        LimitHit::None => match r.exit_code {
            Some(0) => String::new(),
            Some(code) => format!("the program exited with status {code}:\n{}", tail(&r.stderr, 1500)),
            None => "the program did not finish".to_owned(),
        },
        LimitHit::Fuel => "the program ran out of time (instruction limit): an infinite loop or too slow".to_owned(),
        LimitHit::Deadline => "the program ran past the wall-clock limit".to_owned(),
        LimitHit::Memory => format!("the program used too much memory:\n{}", tail(&r.stderr, 800)),
        LimitHit::Output => "the program printed too much output".to_owned(),
        LimitHit::Stack => "the program overflowed the stack (recursion too deep)".to_owned(),
        LimitHit::Trap => format!("the interpreter crashed: {}", r.trap.as_deref().unwrap_or("")),
    }
}

/// The HumanEval checker (see its header and the README's "Reward
/// integrity"): the whole program; its inputs come on stdin.
const HARNESS: &str = include_str!("harness.py");

/// The `run_code` setup every check shares: [`HARNESS`] executed into
/// globals whose builtins are a copy taken before any policy code exists,
/// its `main` kept in the module `envhub_setup`. The host runs it once and
/// starts each check from the interpreter it leaves, so the checker is not
/// compiled again per check. The task, the completion and the nonce travel
/// on stdin.
fn harness_setup() -> String {
    let literal = serde_json::to_string(HARNESS).unwrap_or_else(|_| "''".to_owned());
    format!(
        "import builtins as _b\n_g = {{\"__builtins__\": dict(_b.__dict__), \"__name__\": \"__envhub_harness__\"}}\n\
         exec(compile({literal}, \"harness.py\", \"exec\"), _g)\nmain = _g[\"main\"]\ndel _b, _g\n"
    )
}

/// The program of a check: takes the harness's `main` (prepared by
/// [`harness_setup`]) out of `envhub_setup` and the module out of
/// `sys.modules` before anything else runs, and calls it from a local, so
/// policy code cannot reach the checker or its globals.
const HARNESS_PROGRAM: &str = "def _envhub_check():\n    import sys\n    main = sys.modules.pop(\"envhub_setup\").__dict__.pop(\"main\")\n    main()\n\n\
                               _envhub_check()\n";

/// A fresh secret for one check: 128 bits from the guest's random stream,
/// which the host seeds from a hash of the whole request (completion
/// included), so the policy cannot know it in advance.
fn nonce() -> Result<String, EnvError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| EnvError::internal(format!("no randomness for the check nonce: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The program a HumanEval-style completion becomes: a whole function is put
/// after the prompt (so the prompt's imports and helpers stay); anything else
/// is the body and is appended to the prompt.
pub fn function_program(prompt: &str, entry_point: &str, completion: &str) -> (String, bool) {
    let (code, fenced) = extract::code(completion);
    let program = if extract::defines(&code, entry_point) {
        format!("{}\n\n{code}\n", prompt.trim_end())
    } else {
        let prompt = if prompt.ends_with('\n') { prompt.to_owned() } else { format!("{prompt}\n") };
        format!("{prompt}{}\n", extract::as_body(&code))
    };
    (program, fenced)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HarnessVerdict {
    passed: u64,
    total: u64,
}

/// The verdict line of a run made with `nonce`: the last line of stdout,
/// `__envhub_verdict_<nonce>__:{"passed": P, "total": T}`, from a run that
/// exited with status 0 and hit no limit; and the failure details the
/// harness printed on the line before it, if any (feedback only).
fn harness_verdict(r: &CodeResult, nonce: &str) -> Option<(HarnessVerdict, Option<Map<String, Value>>)> {
    if !r.success() {
        return None;
    }
    let marker = format!("__envhub_verdict_{nonce}__:");
    let mut lines = r.stdout.trim_end().rsplit('\n');
    let verdict: HarnessVerdict = serde_json::from_str(lines.next()?.strip_prefix(&marker)?).ok()?;
    if verdict.total == 0 || verdict.passed > verdict.total {
        return None;
    }
    let failure = lines
        .next()
        .and_then(|l| l.strip_prefix("__envhub_failure__:"))
        .and_then(|l| serde_json::from_str::<Map<String, Value>>(l).ok());
    Some((verdict, failure))
}

fn check_function(prompt: &str, test: &str, entry_point: &str, completion: &str) -> Result<Verdict, EnvError> {
    let (program, fenced) = function_program(prompt, entry_point, completion);
    let nonce = nonce()?;
    let mut request = RunCode::python(HARNESS_PROGRAM);
    request.setup = Some(harness_setup());
    request.stdin =
        json!({"nonce": nonce, "prompt": prompt, "program": program, "test": test, "entry_point": entry_point})
            .to_string();
    request.limits = limits(RUN_FUEL);
    let r = envhub_sdk::host::run_code(&request)?;
    let mut v = Verdict { fenced, limit: r.limit, fuel_used: r.fuel_used, total: 1, ..Verdict::default() };
    match harness_verdict(&r, &nonce) {
        Some((h, failure)) => {
            v.passed = h.passed;
            v.total = h.total;
            if h.passed < h.total {
                let f = failure.unwrap_or_default();
                let field = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let mut text = if field("test").is_empty() {
                    format!("The code did not load: {}", field("error"))
                } else {
                    format!("This test failed:\n```python\n{}\n```\n{}", head(&field("test"), 1200), field("error"))
                };
                if f.contains_key("got") {
                    text.push_str(&format!("\nYour function returned: {}", field("got")));
                }
                if !r.stderr.trim().is_empty() {
                    text.push_str(&format!("\nstderr:\n{}", tail(&r.stderr, 800)));
                }
                v.feedback = Some(text);
            }
        }
        None => {
            v.passed = 0;
            let why = run_failure(&r);
            v.feedback = Some(if why.is_empty() { "the tests did not run to the end".to_owned() } else { why });
        }
    }
    Ok(v)
}

/// Stdout with trailing whitespace removed from every line and trailing
/// blank lines dropped.
pub fn normalise_output(s: &str) -> String {
    let mut lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn check_io(tests: &[IoTest], completion: &str) -> Result<Verdict, EnvError> {
    let (code, fenced) = extract::code(completion);
    let mut v = Verdict { fenced, total: tests.len() as u64, ..Verdict::default() };
    for (i, t) in tests.iter().enumerate() {
        let mut request = RunCode::python(code.clone());
        request.stdin = t.input.clone();
        request.limits = limits(RUN_FUEL / 2);
        let r = envhub_sdk::host::run_code(&request)?;
        v.fuel_used = v.fuel_used.saturating_add(r.fuel_used);
        let ok = r.success() && normalise_output(&r.stdout) == normalise_output(&t.output);
        if ok {
            v.passed += 1;
            continue;
        }
        if v.limit == LimitHit::None {
            v.limit = r.limit;
        }
        if v.feedback.is_none() {
            let why = run_failure(&r);
            v.feedback = Some(if why.is_empty() {
                format!(
                    "Test {} failed.\nInput:\n```\n{}\n```\nExpected output:\n```\n{}\n```\nYour output:\n```\n{}\n```",
                    i + 1,
                    head(&t.input, 1000),
                    head(&normalise_output(&t.output), 1000),
                    head(&normalise_output(&r.stdout), 1000)
                )
            } else {
                format!("Test {} failed.\nInput:\n```\n{}\n```\n{why}", i + 1, head(&t.input, 1000))
            });
        }
        // A program that hits a limit would likely hit it again: stop here
        // (the remaining tests count as failed) to bound the call's fuel.
        if matches!(r.limit, LimitHit::Fuel | LimitHit::Deadline | LimitHit::Memory) {
            break;
        }
    }
    Ok(v)
}

/// Runs `completion` against `task`'s tests.
pub fn check(task: &Task, completion: &str) -> Result<Verdict, EnvError> {
    match &task.kind {
        TaskKind::Function { prompt, test, entry_point, .. } => check_function(prompt, test, entry_point, completion),
        TaskKind::Io { tests, .. } => check_io(tests, completion),
    }
}

/// A built-in stdin/stdout task: question, (input, output) cases, reference program.
type StdioTask = (&'static str, Vec<(&'static str, &'static str)>, &'static str);

/// Built-in stdin/stdout tasks (split `stdio`), with reference programs.
fn stdio_tasks() -> Vec<StdioTask> {
    vec![
        (
            "Read two integers a and b on one line and print their sum.",
            vec![("1 2\n", "3\n"), ("-5 5\n", "0\n"), ("1000000000000 1\n", "1000000000001\n")],
            "a, b = map(int, input().split())\nprint(a + b)",
        ),
        (
            "The first line holds n; the next n lines hold one word each. Print the words in reverse order, one per line.",
            vec![("3\na\nb\nc\n", "c\nb\na\n"), ("1\nhello\n", "hello\n")],
            "import sys\nn, *words = sys.stdin.read().split()\nprint('\\n'.join(reversed(words[:int(n)])))",
        ),
        (
            "Read a line of text and print how many vowels (a, e, i, o, u, either case) it contains.",
            vec![("Hello World\n", "3\n"), ("xyz\n", "0\n"), ("AEIOU aeiou\n", "10\n")],
            "s = input()\nprint(sum(c in 'aeiouAEIOU' for c in s))",
        ),
        (
            "Read n and print FizzBuzz from 1 to n: Fizz for multiples of 3, Buzz for multiples of 5, FizzBuzz for both, else the number; one per line.",
            vec![
                ("5\n", "1\n2\nFizz\n4\nBuzz\n"),
                ("15\n", "1\n2\nFizz\n4\nBuzz\nFizz\n7\n8\nFizz\nBuzz\n11\nFizz\n13\n14\nFizzBuzz\n"),
            ],
            "n = int(input())\nfor i in range(1, n + 1):\n    print('FizzBuzz' if i % 15 == 0 else 'Fizz' if i % 3 == 0 else 'Buzz' if i % 5 == 0 else i)",
        ),
        (
            "The first line holds n, the second n integers. Print the largest and the smallest, separated by a space.",
            vec![("3\n4 -2 9\n", "9 -2\n"), ("1\n7\n", "7 7\n")],
            "input()\nxs = list(map(int, input().split()))\nprint(max(xs), min(xs))",
        ),
    ]
}

fn stdio_task(index: u64) -> Option<Task> {
    let (question, tests, solution) = stdio_tasks().into_iter().nth(usize::try_from(index).ok()?)?;
    Some(Task {
        id: format!("stdio/{index}"),
        kind: TaskKind::Io {
            question: question.to_owned(),
            tests: tests.into_iter().map(|(i, o)| IoTest { input: i.to_owned(), output: o.to_owned() }).collect(),
            solution: Some(solution.to_owned()),
        },
    })
}

fn components() -> Vec<RewardComponent> {
    vec![
        RewardComponent { name: PASS_RATE.to_owned(), weight: 0.0 },
        RewardComponent { name: ALL_PASSED.to_owned(), weight: 1.0 },
    ]
}

/// The episode state carried between turns.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    task: Task,
    weights: BTreeMap<String, f64>,
    /// Attempts allowed (1 in `single` mode).
    max_turns: u32,
    /// Attempts made.
    turn: u32,
    done: bool,
}

/// The environment. `data_dir` is where the package data is mounted
/// (`/data` in the sandbox).
#[derive(Clone, Debug)]
pub struct CodeEnv {
    humaneval: HumanEvalStore,
}

impl Default for CodeEnv {
    fn default() -> Self {
        CodeEnv::new("/data")
    }
}

impl CodeEnv {
    /// The environment reading its data from `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CodeEnv { humaneval: HumanEvalStore::new(data_dir.into()) }
    }

    fn splits(&self) -> BTreeMap<String, Option<u64>> {
        let mut s = BTreeMap::from([("stdio".to_owned(), Some(stdio_tasks().len() as u64))]);
        if let Some(n) = self.humaneval.count() {
            s.insert("humaneval".to_owned(), Some(n));
        }
        s
    }

    fn load(&self, source: &TaskSource) -> Result<Task, EnvError> {
        match source {
            TaskSource::Inline(v) => Task::from_json(v.clone()).map_err(EnvError::invalid_task),
            TaskSource::Split { split, index } => {
                let splits = self.splits();
                let Some(Some(len)) = splits.get(split.as_str()).copied() else {
                    let mut e = EnvError::unknown_split(split, splits.keys().map(String::as_str));
                    if split == "humaneval" {
                        e.message.push_str(" (humaneval needs /data/humaneval.jsonl from scripts/fetch-python.sh)");
                    }
                    return Err(e);
                };
                if *index >= len {
                    return Err(EnvError::index_out_of_range(split, *index, len));
                }
                match split.as_str() {
                    "humaneval" => self.humaneval.load(*index),
                    _ => stdio_task(*index).ok_or_else(|| EnvError::index_out_of_range(split, *index, len)),
                }
            }
        }
    }
}

fn parse_config(config: &Map<String, Value>) -> Result<(BTreeMap<String, f64>, u32), EnvError> {
    if let Some(k) = config.keys().find(|k| !matches!(k.as_str(), "weights" | "mode" | "max_turns")) {
        return Err(EnvError::bad_request(format!("unknown config key `{k}`; keys are weights, mode, max_turns")));
    }
    let weights = envhub_sdk::reward::weights(&components(), config)?;
    let mode = match config.get("mode") {
        None => "single",
        Some(Value::String(m)) if m == "single" || m == "fix" => m.as_str(),
        Some(other) => return Err(EnvError::bad_request(format!("config.mode {other} is not \"single\" or \"fix\""))),
    };
    let max_turns = match (mode, config.get("max_turns")) {
        ("single", None) => 1,
        ("single", Some(_)) => return Err(EnvError::bad_request("config.max_turns needs mode \"fix\"")),
        (_, None) => DEFAULT_FIX_TURNS,
        (_, Some(v)) => v
            .as_u64()
            .filter(|n| (1..=u64::from(MAX_TURNS)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| EnvError::bad_request(format!("config.max_turns must be an integer in 1..={MAX_TURNS}")))?,
    };
    Ok((weights, max_turns))
}

impl Environment for CodeEnv {
    fn info(&self) -> InfoResponse {
        InfoResponse {
            name: NAME.to_owned(),
            version: VERSION.to_owned(),
            description: "Python code generation checked by execution: HumanEval functions and stdin/stdout \
                          programs, single-turn or multi-turn fix-it"
                .to_owned(),
            splits: self.splits(),
            max_turns: MAX_TURNS,
            tools: Vec::new(),
            reward_components: components(),
            capabilities: vec!["code:python".to_owned()],
        }
    }

    fn reset(&self, source: &TaskSource, _seed: u64, config: &Map<String, Value>) -> Result<ResetResponse, EnvError> {
        let (weights, max_turns) = parse_config(config)?;
        let task = self.load(source)?;
        let messages = task.messages();
        let task_id = task.id.clone();
        let state = State { task, weights, max_turns, turn: 0, done: false };
        let state =
            serde_json::to_value(&state).map_err(|e| EnvError::internal(format!("cannot encode state: {e}")))?;
        Ok(ResetResponse { task_id, messages, tools: Vec::new(), state })
    }

    fn step(&self, state: Value, action: &Message) -> Result<StepResponse, EnvError> {
        if action.role != Role::Assistant {
            return Err(EnvError::invalid_action("the action must be an assistant message"));
        }
        let mut state: State =
            serde_json::from_value(state).map_err(|e| EnvError::invalid_state(format!("not a code state: {e}")))?;
        if state.done || state.turn >= state.max_turns {
            return Err(EnvError::new(ErrorKind::EpisodeOver, "this episode is over"));
        }
        let verdict = check(&state.task, action.text())?;
        state.turn += 1;
        let pass_rate = if verdict.total == 0 { 0.0 } else { verdict.passed as f64 / verdict.total as f64 };
        let all = if verdict.all_passed() { 1.0 } else { 0.0 };
        let components = BTreeMap::from([(PASS_RATE.to_owned(), pass_rate), (ALL_PASSED.to_owned(), all)]);
        let total = envhub_sdk::reward::weighted_total(&state.weights, &components);
        state.done = verdict.all_passed() || state.turn >= state.max_turns;
        let mut messages = Vec::new();
        if !state.done {
            let feedback = verdict.feedback.clone().unwrap_or_else(|| "Some tests failed.".to_owned());
            messages.push(Message::user(format!(
                "{feedback}\n\nFix the code and reply with the complete corrected solution in one ```python code block. \
                 Attempts left: {}.",
                state.max_turns - state.turn
            )));
        }
        let metrics: Metrics = BTreeMap::from([
            ("tests_passed".to_owned(), json!(verdict.passed)),
            ("tests_total".to_owned(), json!(verdict.total)),
            ("limit".to_owned(), json!(verdict.limit.as_str())),
            ("fuel_used".to_owned(), json!(verdict.fuel_used)),
            ("fenced".to_owned(), json!(verdict.fenced)),
            ("turn".to_owned(), json!(state.turn)),
        ]);
        let done = state.done;
        let state =
            serde_json::to_value(&state).map_err(|e| EnvError::internal(format!("cannot encode state: {e}")))?;
        Ok(StepResponse { messages, done, reward: Reward { total, components }, metrics, state })
    }

    fn validate(&self, source: &TaskSource) -> Result<ValidateResponse, EnvError> {
        let task = self.load(source)?;
        match task.reference() {
            Some(answer) => Ok(ValidateResponse { actions: vec![Message::assistant(answer)] }),
            None => Err(EnvError::unsupported("this task has no reference solution")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn humaneval_like() -> Value {
        json!({"task_id": "t/0", "prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add", "canonical_solution": "    return a + b\n"})
    }

    #[test]
    fn parses_both_schemas() {
        let t = Task::from_json(humaneval_like()).expect("function task");
        assert_eq!(t.id, "t/0");
        assert!(matches!(t.kind, TaskKind::Function { ref entry_point, .. } if entry_point == "add"));
        let io = Task::from_json(json!({"prompt": "sum", "tests": [{"input": "1 2", "output": "3"}]})).expect("io");
        assert!(io.id.starts_with("inline-"));
        assert!(matches!(io.kind, TaskKind::Io { ref tests, .. } if tests.len() == 1));
        for bad in [
            json!(1),
            json!({"prompt": "x"}),
            json!({"question": "q", "tests": []}),
            json!({"prompt": "p", "test": "t", "entry_point": "a b"}),
        ] {
            assert!(Task::from_json(bad.clone()).is_err(), "{bad}");
        }
        // The state round-trips.
        let back: Task = serde_json::from_value(serde_json::to_value(&t).expect("enc")).expect("dec");
        assert_eq!(back, t);
    }

    #[test]
    fn programs_from_whole_functions_and_bodies() {
        let prompt = "from typing import List\n\ndef add(a, b):\n    \"\"\"Add.\"\"\"\n";
        let (p, fenced) = function_program(prompt, "add", "```python\ndef add(a, b):\n    return a + b\n```");
        assert!(fenced);
        assert!(p.starts_with("from typing import List") && p.ends_with("def add(a, b):\n    return a + b\n"), "{p}");
        let (p, fenced) = function_program(prompt, "add", "    return a + b\n");
        assert!(!fenced);
        assert_eq!(p, format!("{prompt}    return a + b\n"));
        let (p, _) = function_program(prompt, "add", "```\nreturn a + b\n```");
        assert!(p.ends_with("\"\"\"Add.\"\"\"\n    return a + b\n"), "{p}");
    }

    #[test]
    fn output_comparison_ignores_trailing_whitespace() {
        assert_eq!(normalise_output("1 \n2\t\n\n\n"), normalise_output("1\n2"));
        assert_ne!(normalise_output(" 1"), normalise_output("1"));
    }

    #[test]
    fn config_modes() {
        let cfg = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(parse_config(&cfg(json!({}))).expect("single").1, 1);
        assert_eq!(parse_config(&cfg(json!({"mode": "fix"}))).expect("fix").1, DEFAULT_FIX_TURNS);
        assert_eq!(parse_config(&cfg(json!({"mode": "fix", "max_turns": 5}))).expect("fix").1, 5);
        for bad in
            [json!({"mode": "x"}), json!({"max_turns": 2}), json!({"mode": "fix", "max_turns": 0}), json!({"other": 1})]
        {
            assert!(parse_config(&cfg(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_and_references() {
        let env = CodeEnv::new("/definitely/not/here");
        let info = env.info();
        assert_eq!(info.splits.get("stdio"), Some(&Some(5)));
        assert!(!info.splits.contains_key("humaneval"));
        assert_eq!(info.capabilities, vec!["code:python".to_owned()]);
        let err =
            env.reset(&TaskSource::Split { split: "humaneval".into(), index: 0 }, 0, &Map::new()).expect_err("absent");
        assert_eq!(err.kind, ErrorKind::UnknownSplit);
        let v = env.validate(&TaskSource::Split { split: "stdio".into(), index: 0 }).expect("reference");
        assert!(v.actions[0].text().contains("```python"));
        // Natively there is no run_code host.
        let r = env.reset(&TaskSource::Inline(humaneval_like()), 0, &Map::new()).expect("reset");
        let err = env.step(r.state, &Message::assistant("    return a + b")).expect_err("no host");
        assert_eq!(err.kind, ErrorKind::Unsupported);
    }
}
