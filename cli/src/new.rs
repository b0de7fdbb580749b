//! `envhub new`: scaffold an environment crate that builds and passes
//! `envhub test` untouched.

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

fn render(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_owned(), |t, (k, v)| t.replace(&format!("{{{{{k}}}}}"), v))
}

fn default_sdk() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk").canonicalize().ok()
}

/// Runs `envhub new`.
pub fn run(args: Args) -> Result<()> {
    let full = if args.name.contains('/') { args.name.clone() } else { format!("local/{}", args.name) };
    let name: PackageName = full.parse().map_err(anyhow::Error::msg)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(name.name()));
    if dir.exists() {
        bail!("{} already exists; choose another name or --dir", dir.display());
    }
    let sdk = match args.sdk.or_else(default_sdk) {
        Some(sdk) if sdk.join("Cargo.toml").is_file() => sdk.canonicalize()?,
        _ => bail!("cannot find the envhub-sdk crate; pass --sdk PATH (or set ENVHUB_SDK_PATH)"),
    };
    let crate_name = name.name().replace('_', "-");
    let sdk_text = sdk.to_string_lossy();
    let vars = [("name", full.as_str()), ("crate", crate_name.as_str()), ("sdk", sdk_text.as_ref())];
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    for (file, template) in
        [("Cargo.toml", CARGO_TOML), ("envhub.toml", ENVHUB_TOML), ("README.md", README), ("src/main.rs", MAIN_RS)]
    {
        let path = dir.join(file);
        std::fs::write(&path, render(template, &vars)).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(dir.join(".gitignore"), "/target\n")?;
    println!("created {full} in {}", dir.display());
    println!("next: cd {} && envhub build && envhub test", dir.display());
    Ok(())
}
