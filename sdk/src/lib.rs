//! envhub-sdk: the protocol shared by hosts and environments, the guest
//! runtime for environment authors, and verifier libraries.
//!
//! An environment is a WASI command module. Write it as a [`SingleTurn`] (one
//! prompt, one scored answer) or as a full [`Environment`] (multi-turn, tools),
//! and make `main` call [`guest::serve`] — or use [`export!`]:
//!
//! ```no_run
//! use envhub_sdk::prelude::*;
//!
//! struct Echo;
//! impl SingleTurn for Echo {
//!     type Task = String;
//!     fn describe(&self) -> Description {
//!         Description {
//!             name: "demo/echo".into(),
//!             version: "0.1.0".into(),
//!             description: "repeat the word".into(),
//!             splits: [("test".to_string(), Some(1))].into(),
//!             components: vec![RewardComponent { name: "correct".into(), weight: 1.0 }],
//!         }
//!     }
//!     fn task(&self, _split: &str, _index: u64) -> Result<String, EnvError> { Ok("hello".into()) }
//!     fn task_id(&self, task: &String) -> String { task.clone() }
//!     fn prompt(&self, task: &String) -> Vec<Message> { vec![Message::user(format!("Say {task}"))] }
//!     fn score(&self, task: &String, completion: &str) -> Score {
//!         let ok = completion.trim() == task;
//!         Score { components: [("correct".to_string(), if ok { 1.0 } else { 0.0 })].into(), ..Default::default() }
//!     }
//!     fn reference(&self, task: &String) -> Option<String> { Some(task.clone()) }
//! }
//! envhub_sdk::export!(SingleTurnEnv(Echo));
//! ```

pub mod data;
pub mod error;
pub mod guest;
pub mod host;
pub mod protocol;
pub mod python_sdk;
pub mod reward;
pub mod rng;
pub mod single_turn;
pub mod verify;

pub use error::{EnvError, ErrorKind};
pub use guest::Environment;
pub use protocol::*;
pub use rng::Rng;
pub use single_turn::{Description, Score, SingleTurn, SingleTurnEnv};

/// Everything an environment author usually needs.
pub mod prelude {
    pub use crate::error::{EnvError, ErrorKind};
    pub use crate::guest::Environment;
    pub use crate::protocol::{
        InfoResponse, Message, Metrics, ResetResponse, Reward, RewardComponent, Role, StepResponse, TaskSource, Tool,
        ToolCall, ValidateResponse,
    };
    pub use crate::rng::Rng;
    pub use crate::single_turn::{Description, Score, SingleTurn, SingleTurnEnv};
}

/// Defines `main` to serve `$env` (an expression implementing
/// [`Environment`]) over stdin/stdout.
#[macro_export]
macro_rules! export {
    ($env:expr) => {
        fn main() {
            $crate::guest::serve(&$env);
        }
    };
}
