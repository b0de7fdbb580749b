//! `envhub new`: scaffold an environment (a Rust crate, or with `--python`
//! a Python one) that builds and passes `envhub test` untouched.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use envhub_sandbox::package::PackageName;

/// Arguments of `envhub new`.
#[derive(clap::Args)]
pub struct Args {
    /// `owner/name`, or just `name` (owner `local`). The crate goes in ./name.
    pub name: String,
    /// Create the crate here instead of ./name.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write the environment in Python (env.py, run on envhub's pinned
    /// CPython) instead of Rust.
    #[arg(long)]
    pub python: bool,
    /// Path of the envhub-sdk crate to depend on (default: the one this
    /// envhub was built from; or set ENVHUB_SDK_PATH).
    #[arg(long, env = "ENVHUB_SDK_PATH")]
    pub sdk: Option<PathBuf>,
}

const MAIN_RS: &str = r#"//! {{name}}: reverse a word. A single-turn environment: one prompt, one scored answer.

use envhub_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// A task, and the inline task schema: `{"word": "..."}`.
#[derive(Serialize, Deserialize)]
pub struct Task {
    /// The word to reverse.
    pub word: String,
}

const WORDS: &[&str] = &["envhub", "sandbox", "reward", "policy", "verifier", "rollout", "gradient", "token"];

/// The environment.
pub struct Reverse;

fn reversed(word: &str) -> String {
    word.chars().rev().collect()
}

impl SingleTurn for Reverse {
    type Task = Task;

    fn describe(&self) -> Description {
        Description {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reverse a word".into(),
            // `test` is a fixed list; `train` is generated for any index.
            splits: [("test".to_string(), Some(WORDS.len() as u64)), ("train".to_string(), None)].into(),
            components: vec![RewardComponent { name: "correct".into(), weight: 1.0 }],
        }
    }

    fn task(&self, split: &str, index: u64) -> Result<Task, EnvError> {
        match split {
            "test" => Ok(Task { word: WORDS[index as usize % WORDS.len()].to_string() }),
            _ => {
                let mut rng = Rng::for_task(split, index);
                let len = 3 + rng.below(6) as usize;
                let word = (0..len).map(|_| (b'a' + rng.below(26) as u8) as char).collect();
                Ok(Task { word })
            }
        }
    }

    fn task_id(&self, task: &Task) -> String {
        format!("reverse:{}", task.word)
    }

    fn prompt(&self, task: &Task) -> Vec<Message> {
        vec![
            Message::system("Reply with the reversed word only."),
            Message::user(format!("Reverse the word: {}", task.word)),
        ]
    }

    fn score(&self, task: &Task, completion: &str) -> Score {
        let correct = completion.trim() == reversed(&task.word);
        let mut score = Score::default();
        score.components.insert("correct".into(), if correct { 1.0 } else { 0.0 });
        score.metrics.insert("length".into(), completion.len().into());
        score
    }

    fn reference(&self, task: &Task) -> Option<String> {
        Some(reversed(&task.word))
    }
}

envhub_sdk::export!(SingleTurnEnv(Reverse));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_answer_scores_full_marks() {
        let task = Reverse.task("test", 0).expect("task");
        let answer = Reverse.reference(&task).expect("reference");
        assert_eq!(Reverse.score(&task, &answer).components["correct"], 1.0);
        assert_eq!(Reverse.score(&task, "wrong").components["correct"], 0.0);
    }
}
"#;

const CARGO_TOML: &str = r#"[package]
name = "{{crate}}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
envhub-sdk = { path = "{{sdk}}" }
serde = { version = "1", features = ["derive"] }
serde_json = "1"

# A stand-alone crate, not part of an enclosing workspace.
[workspace]
"#;

const ENVHUB_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
description = "Reverse a word"
license = "Apache-2.0"

[limits]
fuel = 100000000
memory_bytes = 67108864
"#;

const README: &str = r#"# {{name}}

Reverse a word. Splits: `test` (8 words), `train` (generated).

Inline task: `{"word": "..."}`. Reward: `correct` (1 when the answer is the reversed word).

    envhub build && envhub test
"#;

const ENV_PY: &str = r#""""{{name}}: reverse a word. A single-turn environment: one prompt, one scored answer.

Runs in envhub's sandbox on its pinned CPython: the standard library is here,
the network, subprocesses and the clock are not, and `rng` is the only source
of randomness a task may use (the same stream on every machine).
"""

from typing import Any, ClassVar

import envhub

WORDS = ["envhub", "sandbox", "reward", "policy", "verifier", "rollout", "gradient", "token"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


class Reverse(envhub.SingleTurn):
    name = "{{name}}"
    version = "0.1.0"
    description = "Reverse a word"
    # `test` is a fixed list; `train` is generated for any index.
    splits: ClassVar[dict[str, int | None]] = {"test": len(WORDS), "train": None}
    components: ClassVar[dict[str, float]] = {"correct": 1.0}

    def task(self, split: str, index: int, rng: envhub.Rng) -> dict[str, Any]:
        if split == "test":
            return {"word": WORDS[index % len(WORDS)]}
        return {"word": "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 8)))}

    def inline_task(self, task: Any) -> dict[str, Any]:
        # The inline task schema: {"word": "..."}.
        if not isinstance(task, dict) or not isinstance(task.get("word"), str) or not task["word"]:
            raise envhub.EnvError.invalid_task('an inline task is {"word": "<a non-empty string>"}')
        return {"word": task["word"]}

    def prompt(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": "Reply with the reversed word only."},
            {"role": "user", "content": "Reverse the word: " + task["word"]},
        ]

    def score(self, task: dict[str, Any], completion: str) -> tuple[dict[str, float], dict[str, Any]]:
        correct = completion.strip() == task["word"][::-1]
        return {"correct": 1.0 if correct else 0.0}, {"length": len(completion)}

    def reference(self, task: dict[str, Any]) -> str:
        return str(task["word"][::-1])
"#;

const TEST_PY: &str = r#""""Tests of {{name}} as trainers run it: the built package in envhub's
sandbox, through the `envhub` Python package (`pip install envhub`).

    envhub build && python -m pytest
"""

from pathlib import Path

import envhub
import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def env() -> envhub.Env:
    return envhub.load(str(HERE))


def test_the_reversed_word_scores_one_and_anything_else_zero(env: envhub.Env) -> None:
    assert env.score({"word": "envhub"}, "buhvne").reward == 1.0
    assert env.score({"word": "envhub"}, "envhub").reward == 0.0


def test_an_episode_of_the_test_split(env: envhub.Env) -> None:
    episode = env.reset(split="test", index=0)
    assert episode.messages[-1]["content"] == "Reverse the word: envhub"
    result = episode.step("buhvne")
    assert result.done and result.reward == 1.0


def test_train_tasks_are_the_same_on_every_reset(env: envhub.Env) -> None:
    first = env.reset(split="train", index=7).messages
    assert env.reset(split="train", index=7).messages == first
"#;

const ENVHUB_TOML_PY: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
description = "Reverse a word"
license = "Apache-2.0"
# env.py runs on envhub's pinned CPython 3.11 (`envhub build` pins its sha256).
runtime = "python"

[limits]
fuel = 1000000000
memory_bytes = 134217728
"#;

const README_PY: &str = r#"# {{name}}

Reverse a word. Splits: `test` (8 words), `train` (generated).

Inline task: `{"word": "..."}`. Reward: `correct` (1 when the answer is the reversed word).

    envhub build && envhub test      # self-test in the sandbox
    python -m pytest                 # test_env.py, with `pip install envhub`
"#;

fn render(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_owned(), |t, (k, v)| t.replace(&format!("{{{{{k}}}}}"), v))
}

fn default_sdk() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk").canonicalize().ok()
}

/// Writes each rendered template (paths relative to `dir`) and a .gitignore.
fn write_files(dir: &Path, files: &[(&str, &str)], vars: &[(&str, &str)], gitignore: &str) -> Result<()> {
    for (file, template) in files {
        let path = dir.join(file);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        std::fs::write(&path, render(template, vars)).with_context(|| format!("writing {}", path.display()))?;
    }
    let path = dir.join(".gitignore");
    std::fs::write(&path, gitignore).with_context(|| format!("writing {}", path.display()))
}

/// Runs `envhub new`.
pub fn run(args: Args) -> Result<()> {
    let full = if args.name.contains('/') { args.name.clone() } else { format!("local/{}", args.name) };
    let name: PackageName = full.parse().map_err(anyhow::Error::msg)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(name.name()));
    if dir.exists() {
        bail!("{} already exists; choose another name or --dir", dir.display());
    }
    if args.python {
        let vars = [("name", full.as_str())];
        let files =
            [("envhub.toml", ENVHUB_TOML_PY), ("README.md", README_PY), ("env.py", ENV_PY), ("test_env.py", TEST_PY)];
        write_files(&dir, &files, &vars, "/target\n__pycache__/\n")?;
        println!("created {full} (Python) in {}", dir.display());
        println!("next: cd {} && envhub build && envhub test", dir.display());
        return Ok(());
    }
    let sdk = match args.sdk.or_else(default_sdk) {
        Some(sdk) if sdk.join("Cargo.toml").is_file() => sdk.canonicalize()?,
        _ => bail!("cannot find the envhub-sdk crate; pass --sdk PATH (or set ENVHUB_SDK_PATH)"),
    };
    let crate_name = name.name().replace('_', "-");
    let sdk_text = sdk.to_string_lossy();
    let vars = [("name", full.as_str()), ("crate", crate_name.as_str()), ("sdk", sdk_text.as_ref())];
    let files =
        [("Cargo.toml", CARGO_TOML), ("envhub.toml", ENVHUB_TOML), ("README.md", README), ("src/main.rs", MAIN_RS)];
    write_files(&dir, &files, &vars, "/target\n")?;
    println!("created {full} in {}", dir.display());
    println!("next: cd {} && envhub build && envhub test", dir.display());
    Ok(())
}
