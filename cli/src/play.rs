//! `envhub play`: a person plays an environment in the terminal.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use envhub_sdk::{FunctionCall, Message, Role, TaskSource, ToolCall};
use serde_json::Value;

/// Arguments of `envhub play`.
#[derive(clap::Args)]
pub struct Args {
    /// The environment: a package, module, crate or first-party name.
    pub env: PathBuf,
    /// Split to draw the task from (default: the first split).
    #[arg(long)]
    pub split: Option<String>,
    /// Task index within the split.
    #[arg(long, default_value_t = 0)]
    pub index: u64,
    /// Play an inline task (JSON) instead of a split's task.
    #[arg(long, conflicts_with = "split")]
    pub task: Option<String>,
    /// Seed of the episode.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn show(message: &Message) {
    let who = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "you",
        Role::Tool => "tool",
    };
    let name = message.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
    println!("[{who}{name}] {}", message.text());
}

/// Reads one turn: text, or `/call NAME {json args}` lines (several, then an
/// empty line) for tool calls.
fn parse_turn(line: &str, turn: usize) -> Result<Message> {
    let Some(rest) = line.strip_prefix("/call ") else {
        return Ok(Message::assistant(line));
    };
    let (name, args) = rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), "{}"));
    serde_json::from_str::<Value>(args).with_context(|| format!("arguments of {name} are not JSON"))?;
    let mut message = Message::assistant("");
    message.content = None;
    message.tool_calls.push(ToolCall {
        id: format!("call_{turn}"),
        kind: "function".into(),
        function: FunctionCall { name: name.into(), arguments: args.trim().into() },
    });
    Ok(message)
}

/// Runs `envhub play`.
pub fn run(args: Args) -> Result<()> {
    let sandbox = crate::home::sandbox()?;
    let loaded = crate::home::load(&sandbox, &args.env)?;
    let info = loaded.module.info()?;
    let source = match (&args.task, &args.split) {
        (Some(task), _) => TaskSource::Inline(serde_json::from_str(task).context("--task is not JSON")?),
        (None, Some(split)) => TaskSource::Split { split: split.clone(), index: args.index },
        (None, None) => {
            let split = info.splits.keys().next().context("the environment has no splits; give --task")?;
            TaskSource::Split { split: split.clone(), index: args.index }
        }
    };
    let reset = loaded.module.reset(source, args.seed, Default::default())?;
    println!(
        "{}@{} task {} (type an answer; `/call NAME {{json}}` calls a tool; `/quit` ends)",
        info.name, info.version, reset.task_id
    );
    for tool in &reset.tools {
        println!("  tool {}: {}", tool.function.name, tool.function.description);
    }
    reset.messages.iter().for_each(show);
    let mut state = reset.state;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    for turn in 0..info.max_turns.max(1) as usize {
        print!("> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next() else { bail!("input ended before the episode did") };
        let line = line?;
        if line.trim() == "/quit" {
            println!("quit");
            return Ok(());
        }
        let action = match parse_turn(&line, turn) {
            Ok(a) => a,
            Err(e) => {
                println!("! {e:#}");
                continue;
            }
        };
        let step = loaded.module.step(state, action)?;
        step.messages.iter().for_each(show);
        state = step.state;
        if step.done {
            println!("reward {} {:?}", step.reward.total, step.reward.components);
            if !step.metrics.is_empty() {
                println!("metrics {}", serde_json::to_string(&step.metrics)?);
            }
            return Ok(());
        }
    }
    println!("out of turns ({})", info.max_turns);
    Ok(())
}
