//! envhub/math: math problems scored by `envhub_sdk::verify::math`.

use envhub_env_math::Math;

envhub_sdk::export!(envhub_sdk::SingleTurnEnv(Math::new("/data")));
