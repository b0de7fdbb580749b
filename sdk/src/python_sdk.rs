//! The Python guest SDK (`sdk/python/envhub/`): the `envhub` module Python
//! environments import inside the sandbox. `envhub build` vendors these
//! files into every Python package, so a package's rewards depend only on
//! what it carries.

/// The SDK's files, by path relative to the package's `python/` directory.
pub const FILES: &[(&str, &str)] = &[
    ("envhub/__init__.py", include_str!("../python/envhub/__init__.py")),
    ("envhub/_guest.py", include_str!("../python/envhub/_guest.py")),
    ("envhub/_host.py", include_str!("../python/envhub/_host.py")),
    ("envhub/_protocol.py", include_str!("../python/envhub/_protocol.py")),
    ("envhub/_rng.py", include_str!("../python/envhub/_rng.py")),
    ("envhub/_single_turn.py", include_str!("../python/envhub/_single_turn.py")),
];
