//! The envhub code environment as a WASI command: one request on stdin, one
//! response on stdout. HumanEval is read from `/data`; programs run through
//! the host capability `run_code`.

envhub_sdk::export!(envhub_env_code::CodeEnv::default());
