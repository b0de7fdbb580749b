//! Host capabilities: imports in module `envhub` that a module may use only
//! when its manifest declares them, and the WASI linker every module gets.

mod run_code;
pub(crate) mod verify;

use wasmtime::{Engine, Linker, Module};

use crate::SandboxError;
use crate::runtime::{HostState, WASI_MODULE};

/// The module namespace of host capabilities.
pub const CAPABILITY_MODULE: &str = "envhub";

/// Each capability-providing import and the capability that grants it.
const CAPABILITY_IMPORTS: &[(&str, &str)] = &[("run_code", "code:python")];

/// Every capability a manifest may declare: `code:python` (the `run_code`
/// import), `verify:math` and `verify:tools` (envhub's verifiers, for Python
/// environments).
pub const KNOWN_CAPABILITIES: &[&str] = &["code:python", "verify:math", "verify:tools"];

/// The capability that grants import `name` of module `envhub`, if any.
pub fn capability_of(name: &str) -> Option<&'static str> {
    CAPABILITY_IMPORTS.iter().find(|(import, _)| *import == name).map(|(_, cap)| *cap)
}

/// Capabilities this host implements.
pub fn provided() -> &'static [&'static str] {
    KNOWN_CAPABILITIES
}

/// Builds the linker shared by every module: WASI preview 1 (see
/// [`crate::runtime::wasi_linker`]) and the capability imports.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>, SandboxError> {
    let mut linker = crate::runtime::wasi_linker(engine)?;
    run_code::link(&mut linker)?;
    Ok(linker)
}

/// Checks every import of `module` before linking, so that a module asking
/// for an undeclared capability or a foreign import gets a precise error.
pub(crate) fn check_imports(module: &Module, declared: &[String]) -> Result<(), SandboxError> {
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        match m {
            WASI_MODULE => {}
            CAPABILITY_MODULE => {
                let Some(capability) = capability_of(name) else {
                    return Err(SandboxError::UnknownImport { module: m.into(), name: name.into() });
                };
                if !declared.iter().any(|d| d == capability) {
                    return Err(SandboxError::UndeclaredCapability {
                        module: m.into(),
                        name: name.into(),
                        capability: capability.into(),
                    });
                }
                if !provided().contains(&capability) {
                    return Err(SandboxError::Host(format!(
                        "capability `{capability}` is declared but this host does not provide it yet"
                    )));
                }
            }
            _ => return Err(SandboxError::UnknownImport { module: m.into(), name: name.into() }),
        }
    }
    Ok(())
}
