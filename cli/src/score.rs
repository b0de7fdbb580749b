//! `envhub score`: score completions against inline tasks, without a policy.
//!
//! One task from flags, or a batch file of JSON lines
//! `{"task": {...}, "completion": "..."}` answered line by line, in order, with
//! `{"reward": {...}, "metrics": {...}}` or `{"error": {...}}`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use envhub_sandbox::EnvModule;
use indicatif::ProgressBar;
use serde_json::{Map, Value, json};

/// Arguments of `envhub score`.
#[derive(clap::Args)]
pub struct Args {
    /// The environment: a package, module, crate or first-party name (e.g. `math`).
    pub env: PathBuf,
    /// The inline task as JSON, in the environment's task schema.
    #[arg(long, conflicts_with_all = ["batch", "question"])]
    pub task: Option<String>,
    /// Shorthand for question/answer environments: the task's `question`.
    #[arg(long, conflicts_with = "batch")]
    pub question: Option<String>,
    /// Shorthand for question/answer environments: the task's reference `answer`.
    #[arg(long, conflicts_with_all = ["batch", "task"])]
    pub answer: Option<String>,
    /// The completion to score.
    #[arg(long, conflicts_with = "batch")]
    pub completion: Option<String>,
    /// A JSONL file of `{"task": …, "completion": …}` lines (`-` for stdin).
    #[arg(long)]
    pub batch: Option<PathBuf>,
    /// Write results here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Environment arguments as a JSON object (e.g. '{"weights": {"format": 0.1}}').
    #[arg(long)]
    pub config: Option<String>,
    /// Threads scoring a batch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn error_line(kind: &str, message: impl Into<String>) -> Value {
    json!({ "error": { "kind": kind, "message": message.into() } })
}

/// Scores one completion on the inline `task` (reset with seed 0, one step).
pub fn score_one(module: &EnvModule, task: Value, completion: &str, config: &Map<String, Value>) -> Value {
    match module.score(task, completion, 0, config.clone()) {
        Ok(scored) => json!(scored),
        Err(e) => envhub_sandbox::score::error_json(&e),
    }
}

fn score_line(module: &EnvModule, line: &str, config: &Map<String, Value>) -> Value {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return error_line("bad_line", format!("not JSON: {e}")),
    };
    let Some(task) = value.get("task").cloned() else {
        return error_line("bad_line", "missing field `task`");
    };
    let Some(completion) = value.get("completion").and_then(Value::as_str) else {
        return error_line("bad_line", "missing string field `completion`");
    };
    score_one(module, task, completion, config)
}

fn parse_config(config: Option<&str>) -> Result<Map<String, Value>> {
    match config {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str(text).context("--config is not JSON")? {
            Value::Object(map) => Ok(map),
            _ => bail!("--config must be a JSON object"),
        },
    }
}

/// Runs `envhub score`.
pub fn run(args: Args) -> Result<()> {
    let config = parse_config(args.config.as_deref())?;
    let sandbox = crate::home::sandbox()?;
    let loaded = crate::home::load(&sandbox, &args.env)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };

    let Some(batch) = &args.batch else {
        let completion = args.completion.as_deref().context("give --completion (or --batch FILE)")?;
        let task = match (&args.task, &args.question, &args.answer) {
            (Some(task), _, _) => serde_json::from_str(task).context("--task is not JSON")?,
            (None, question, Some(answer)) => {
                let mut task = json!({ "answer": answer });
                if let Some(q) = question {
                    task["question"] = json!(q);
                }
                task
            }
            _ => bail!("give the task: --task JSON, or --answer (and --question)"),
        };
        let result = score_one(&loaded.module, task, completion, &config);
        writeln!(out, "{result}")?;
        out.flush()?;
        // The answer stays on stdout for scripts; the command still fails.
        if let Some(error) = result.get("error") {
            let kind = error["kind"].as_str().unwrap_or("error");
            bail!("{kind}: {}", error["message"].as_str().unwrap_or_default());
        }
        return Ok(());
    };

    let lines: Vec<String> = if batch.as_os_str() == "-" {
        std::io::stdin().lock().lines().collect::<std::io::Result<_>>().context("reading stdin")?
    } else {
        let file = std::fs::File::open(batch).with_context(|| format!("opening {}", batch.display()))?;
        std::io::BufReader::new(file)
            .lines()
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", batch.display()))?
    };
    // A trailing empty line is not a task; empty lines inside the file are answered with an error.
    let n = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    let threads = args.threads.unwrap_or_else(envhub_sandbox::score::default_threads).clamp(1, 64);
    let bar = ProgressBar::new(n as u64);
    let results = envhub_sandbox::score::par_map(
        n,
        threads,
        |i| {
            let result = score_line(&loaded.module, &lines[i], &config);
            bar.inc(1);
            result
        },
        |i| error_line("internal", format!("line {} was not scored", i + 1)),
    );
    bar.finish_and_clear();
    for result in results {
        writeln!(out, "{result}")?;
    }
    out.flush()?;
    Ok(())
}
