//! The envhub tools environment as a WASI command: one request on stdin,
//! one response on stdout. Package data is read from `/data`.

envhub_sdk::export!(envhub_env_tools::ToolsEnv::default());
