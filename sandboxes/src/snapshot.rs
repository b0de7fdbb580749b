//! Pre-initialisation: run a module's initialisation function once, then
//! write a module that starts where it left off.
//!
//! The same idea as Wizer, written for this host: the module is
//! instrumented to export its globals, instantiated, `_initialize` (if any)
//! and the named init function are called, and a new module is written
//! whose memory section starts at the size memory had reached, whose data
//! segments are the non-zero bytes of that memory, and whose globals start
//! at the values they had. Everything else (code, tables, imports) is copied
//! byte for byte; custom sections (names, debug info) are dropped, and so
//! are the exports of the initialisation functions, so they cannot run twice.
//! The snapshot keeps its globals exported (as [`GLOBAL_EXPORT`]`N`), so the
//! host can carry later state from one instance to another (the setups of
//! `runtime::python`) or write it out as a snapshot again ([`resnapshot`]:
//! a Python environment's import).
//!
//! What the init function did to the outside world (open files, the WASI
//! environment) is not captured: instances of the snapshot must be given the
//! same preopened directories, in the same order, as the init run. Tables
//! must not change during init (C and Rust code do not change them).

use std::ops::Range;

use wasm_encoder::{
    ConstExpr, DataCountSection, DataSection, ExportKind, ExportSection, GlobalSection, GlobalType, Ieee32, Ieee64,
    MemorySection, MemoryType, Module as Encoded, RawSection, ValType,
};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};
use wasmtime::{Instance, Store, Val};

use crate::SandboxError;

/// Prefix of the exports added to read the globals back.
pub(crate) const GLOBAL_EXPORT: &str = "__envhub_snapshot_global_";
/// Export added for memory 0.
const MEMORY_EXPORT: &str = "__envhub_snapshot_memory";
/// Zero runs shorter than this stay inside one data segment: fewer segments,
/// a few more bytes.
const MERGE_GAP: usize = 512;

fn err(msg: impl std::fmt::Display) -> SandboxError {
    SandboxError::Host(format!("snapshot: {msg}"))
}

/// What the rewrite needs to know about the module.
struct Shape {
    imported_globals: u32,
    defined_globals: u32,
}

fn shape(wasm: &[u8]) -> Result<Shape, SandboxError> {
    let (mut imported_globals, mut defined_globals, mut memories) = (0u32, 0u32, 0u32);
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(err)? {
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    match import.map_err(err)?.ty {
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Memory(_) => return Err(err("modules that import their memory are not supported")),
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(s) => defined_globals = s.count(),
            Payload::MemorySection(s) => memories = s.count(),
            Payload::StartSection { .. } => return Err(err("modules with a start function are not supported")),
            Payload::DataSection(s) => {
                for data in s {
                    if matches!(data.map_err(err)?.kind, wasmparser::DataKind::Passive) {
                        return Err(err("modules with passive data segments are not supported"));
                    }
                }
            }
            _ => {}
        }
    }
    if memories != 1 {
        return Err(err(format!("the module defines {memories} memories; exactly one is supported")));
    }
    Ok(Shape { imported_globals, defined_globals })
}

/// `wasm` with every defined global and the memory exported under our names.
fn instrument(wasm: &[u8], shape: &Shape) -> Result<Vec<u8>, SandboxError> {
    let mut out = Encoded::new();
    let mut exports_written = false;
    let added = |exports: &mut ExportSection| {
        for i in 0..shape.defined_globals {
            exports.export(&format!("{GLOBAL_EXPORT}{i}"), ExportKind::Global, shape.imported_globals + i);
        }
        exports.export(MEMORY_EXPORT, ExportKind::Memory, 0);
    };
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::ExportSection(s) => {
                let mut exports = ExportSection::new();
                for e in s.clone() {
                    let e = e.map_err(err)?;
                    exports.export(e.name, export_kind(e.kind)?, e.index);
                }
                added(&mut exports);
                out.section(&exports);
                exports_written = true;
            }
            Payload::CustomSection(_) => {}
            // An export section must come before these; add one if the
            // module has none.
            Payload::StartSection { .. }
            | Payload::ElementSection(_)
            | Payload::DataCountSection { .. }
            | Payload::CodeSectionStart { .. }
            | Payload::DataSection(_)
                if !exports_written =>
            {
                let mut exports = ExportSection::new();
                added(&mut exports);
                out.section(&exports);
                exports_written = true;
                copy_raw(&mut out, wasm, &payload)?;
            }
            _ => copy_raw(&mut out, wasm, &payload)?,
        }
    }
    Ok(out.finish())
}

fn copy_raw(out: &mut Encoded, wasm: &[u8], payload: &Payload<'_>) -> Result<(), SandboxError> {
    if let Some((id, range)) = payload.as_section() {
        let range = usize::try_from(range.start).map_err(err)?..usize::try_from(range.end).map_err(err)?;
        let data = wasm.get(range).ok_or_else(|| err("section outside the module"))?;
        out.section(&RawSection { id, data });
    }
    Ok(())
}

fn export_kind(kind: ExternalKind) -> Result<ExportKind, SandboxError> {
    Ok(match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    })
}

/// The state an init run left behind.
struct State {
    memory: Vec<u8>,
    globals: Vec<Val>,
}

/// Ranges of `memory` that hold non-zero bytes, with short zero runs merged in.
fn non_zero_ranges(memory: &[u8]) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    while i < memory.len() {
        // Skip zeros a word at a time where aligned.
        if memory[i] == 0 {
            i += 1;
            while i + 8 <= memory.len() && memory[i..i + 8] == [0; 8] {
                i += 8;
            }
            continue;
        }
        let start = i;
        while i < memory.len() && memory[i] != 0 {
            i += 1;
        }
        match ranges.last_mut() {
            Some(last) if start - last.end < MERGE_GAP => last.end = i,
            _ => ranges.push(start..i),
        }
    }
    ranges
}

/// Active segments at memory 0 holding `memory`'s bytes in `ranges`.
fn data_section(memory: &[u8], ranges: &[Range<usize>]) -> Result<DataSection, SandboxError> {
    let mut data = DataSection::new();
    for r in ranges {
        let offset = i32::try_from(r.start).map_err(err)?;
        data.active(0, &ConstExpr::i32_const(offset), memory[r.clone()].iter().copied());
    }
    Ok(data)
}

/// `wasm` with its memory, data and globals replaced by `state`, and the
/// exports in `drop_exports` removed.
fn rewrite(wasm: &[u8], shape: &Shape, state: &State, drop_exports: &[&str]) -> Result<Vec<u8>, SandboxError> {
    let ranges = non_zero_ranges(&state.memory);
    let pages = u64::try_from(state.memory.len().div_ceil(1 << 16)).map_err(err)?;
    let mut out = Encoded::new();
    let mut data_written = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::MemorySection(s) => {
                let mut memories = MemorySection::new();
                for m in s.clone() {
                    let m = m.map_err(err)?;
                    if m.memory64 || m.shared {
                        return Err(err("64-bit and shared memories are not supported"));
                    }
                    memories.memory(MemoryType {
                        minimum: pages.max(m.initial),
                        maximum: m.maximum,
                        memory64: false,
                        shared: false,
                        page_size_log2: m.page_size_log2,
                    });
                }
                out.section(&memories);
            }
            Payload::GlobalSection(s) => {
                let mut globals = GlobalSection::new();
                for (g, value) in s.clone().into_iter().zip(&state.globals) {
                    let ty = g.map_err(err)?.ty;
                    let (val_type, init) = match value {
                        Val::I32(v) => (ValType::I32, ConstExpr::i32_const(*v)),
                        Val::I64(v) => (ValType::I64, ConstExpr::i64_const(*v)),
                        Val::F32(bits) => (ValType::F32, ConstExpr::f32_const(Ieee32::new(*bits))),
                        Val::F64(bits) => (ValType::F64, ConstExpr::f64_const(Ieee64::new(*bits))),
                        _ => return Err(err("globals of reference and vector types are not supported")),
                    };
                    globals.global(GlobalType { val_type, mutable: ty.mutable, shared: ty.shared }, &init);
                }
                out.section(&globals);
            }
            Payload::ExportSection(s) => {
                let mut exports = ExportSection::new();
                for e in s.clone() {
                    let e = e.map_err(err)?;
                    // A snapshot's own global exports are written anew below.
                    if !drop_exports.contains(&e.name) && !e.name.starts_with(GLOBAL_EXPORT) {
                        exports.export(e.name, export_kind(e.kind)?, e.index);
                    }
                }
                for i in 0..shape.defined_globals {
                    exports.export(&format!("{GLOBAL_EXPORT}{i}"), ExportKind::Global, shape.imported_globals + i);
                }
                out.section(&exports);
            }
            Payload::DataCountSection { .. } => {
                out.section(&DataCountSection { count: u32::try_from(ranges.len()).map_err(err)? });
            }
            Payload::DataSection(_) => {
                out.section(&data_section(&state.memory, &ranges)?);
                data_written = true;
            }
            Payload::CustomSection(_) => {}
            _ => copy_raw(&mut out, wasm, &payload)?,
        }
    }
    // A module without data of its own gets the section last, where it goes.
    if !data_written && !ranges.is_empty() {
        out.section(&data_section(&state.memory, &ranges)?);
    }
    Ok(out.finish())
}

/// Pre-initialises `wasm`: instantiates it in `store` (whose linker and WASI
/// context the caller provides), calls `_initialize` if it is exported,
/// then `init` (`() -> i32`, 0 for success), and returns the snapshot module.
/// `describe_failure` explains a non-zero status (e.g. from captured stderr).
pub(crate) fn snapshot<T: 'static>(
    store: &mut Store<T>,
    linker: &wasmtime::Linker<T>,
    wasm: &[u8],
    init: &str,
    describe_failure: impl FnOnce(&Store<T>) -> String,
) -> Result<Vec<u8>, SandboxError> {
    let shape = shape(wasm)?;
    let instrumented = instrument(wasm, &shape)?;
    let module = wasmtime::Module::new(store.engine(), &instrumented).map_err(|e| err(format!("{e:#}")))?;
    let instance: Instance = linker.instantiate(&mut *store, &module).map_err(|e| err(format!("{e:#}")))?;
    if let Ok(f) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
        f.call(&mut *store, ()).map_err(|e| err(format!("_initialize: {e:#}")))?;
    }
    let f = instance
        .get_typed_func::<(), i32>(&mut *store, init)
        .map_err(|e| err(format!("the module has no `{init}: () -> i32` export: {e:#}")))?;
    let status = f.call(&mut *store, ()).map_err(|e| err(format!("{init}: {e:#}")))?;
    if status != 0 {
        return Err(err(format!("{init} returned {status}: {}", describe_failure(store))));
    }
    let memory = instance.get_memory(&mut *store, MEMORY_EXPORT).ok_or_else(|| err("memory export missing"))?;
    let mut globals = Vec::with_capacity(shape.defined_globals as usize);
    for i in 0..shape.defined_globals {
        let g = instance
            .get_global(&mut *store, &format!("{GLOBAL_EXPORT}{i}"))
            .ok_or_else(|| err(format!("global {i} export missing")))?;
        globals.push(g.get(&mut *store));
    }
    let state = State { memory: memory.data(&*store).to_vec(), globals };
    rewrite(wasm, &shape, &state, &["_initialize", init])
}

/// Snapshots again: `snapshot` (a module [`snapshot`] wrote) rewritten to
/// start where `instance`, an instance of it, is now (its `memory` and its
/// globals, read through their exports), without the exports in
/// `drop_exports`. Nothing is compiled or run: this is how a host keeps
/// what code run on a snapshot (an import, say) did, as a module of its own.
pub(crate) fn resnapshot<T: 'static>(
    snapshot: &[u8],
    store: &mut Store<T>,
    instance: &Instance,
    memory: wasmtime::Memory,
    drop_exports: &[&str],
) -> Result<Vec<u8>, SandboxError> {
    let shape = shape(snapshot)?;
    let mut globals = Vec::with_capacity(shape.defined_globals as usize);
    for i in 0..shape.defined_globals {
        let g = instance
            .get_global(&mut *store, &format!("{GLOBAL_EXPORT}{i}"))
            .ok_or_else(|| err(format!("global {i} is not exported: the module is not a snapshot")))?;
        globals.push(g.get(&mut *store));
    }
    let state = State { memory: memory.data(&*store).to_vec(), globals };
    rewrite(snapshot, &shape, &state, drop_exports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_short_gaps_and_skip_long_ones() {
        let mut m = vec![0u8; 10_000];
        m[10] = 1;
        m[20] = 2; // 9 zeros later: merged
        m[5000] = 3; // far: a new range
        m[9999] = 4;
        assert_eq!(non_zero_ranges(&m), vec![10..21, 5000..5001, 9999..10_000]);
        assert!(non_zero_ranges(&[0; 100]).is_empty());
    }

    /// A counter module: init sets the global and memory; the snapshot
    /// starts there, and the init exports are gone.
    #[test]
    fn snapshot_keeps_memory_and_globals() {
        let wat = r#"(module
            (memory (export "memory") 1)
            (global $g (mut i32) (i32.const 0))
            (global $f (mut f64) (f64.const 0))
            (data (i32.const 16) "hi")
            (func (export "init") (result i32)
                (global.set $g (i32.const 41))
                (global.set $f (f64.const 2.5))
                (drop (memory.grow (i32.const 1)))
                (i32.store (i32.const 70000) (i32.const 7))
                (i32.store (i32.const 100000) (i32.const 9))
                (i32.const 0))
            (func (export "read") (result i32)
                (global.set $g (i32.add (global.get $g) (i32.const 1)))
                (i32.add (i32.add (global.get $g) (i32.load (i32.const 70000)))
                    (i32.add (i32.load (i32.const 100000)) (i32.load8_u (i32.const 16)))))
            (func (export "f") (result f64) (global.get $f)))"#;
        let wasm = wat::parse_str(wat).expect("wat");
        let engine = wasmtime::Engine::default();
        let linker = wasmtime::Linker::new(&engine);
        let mut store = Store::new(&engine, ());
        let snap = snapshot(&mut store, &linker, &wasm, "init", |_| String::new()).expect("snapshot");

        let module = wasmtime::Module::new(&engine, &snap).expect("valid snapshot");
        assert!(module.get_export("init").is_none(), "init export dropped");
        let mut store = Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiate");
        let read = instance.get_typed_func::<(), i32>(&mut store, "read").expect("read");
        // 42 (global) + 7 + 9 + 'h' (104)
        assert_eq!(read.call(&mut store, ()).expect("call"), 42 + 7 + 9 + 104);
        let f = instance.get_typed_func::<(), f64>(&mut store, "f").expect("f");
        assert_eq!(f.call(&mut store, ()).expect("call"), 2.5);
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        assert_eq!(memory.size(&store), 2, "memory starts at its grown size");
    }

    /// A snapshot of a snapshot starts where the first one's instance was
    /// left, and keeps one export per global.
    #[test]
    fn resnapshot_keeps_later_state() {
        let wat = r#"(module
            (memory (export "memory") 1)
            (global $g (mut i32) (i32.const 0))
            (func (export "init") (result i32) (global.set $g (i32.const 1)) (i32.const 0))
            (func (export "bump") (result i32)
                (global.set $g (i32.add (global.get $g) (i32.const 10)))
                (i32.store (i32.const 200) (i32.add (i32.load (i32.const 200)) (i32.const 5)))
                (i32.add (global.get $g) (i32.load (i32.const 200)))))"#;
        let wasm = wat::parse_str(wat).expect("wat");
        let engine = wasmtime::Engine::default();
        let linker = wasmtime::Linker::new(&engine);
        let mut store = Store::new(&engine, ());
        let first = snapshot(&mut store, &linker, &wasm, "init", |_| String::new()).expect("snapshot");
        let module = wasmtime::Module::new(&engine, &first).expect("valid snapshot");
        let mut store = Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiate");
        let bump = instance.get_typed_func::<(), i32>(&mut store, "bump").expect("bump");
        assert_eq!(bump.call(&mut store, ()).expect("call"), 11 + 5);
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        let second = resnapshot(&first, &mut store, &instance, memory, &["bump"]).expect("resnapshot");

        let module = wasmtime::Module::new(&engine, &second).expect("valid second snapshot");
        assert!(module.get_export("bump").is_none(), "dropped export");
        let globals = module.exports().filter(|e| e.name().starts_with(GLOBAL_EXPORT)).count();
        assert_eq!(globals, 1, "one export per global");
        let mut store = Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiate");
        let g = instance.get_global(&mut store, &format!("{GLOBAL_EXPORT}0")).expect("global");
        assert_eq!(g.get(&mut store).i32(), Some(11));
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        assert_eq!(memory.data(&store)[200], 5);
    }

    #[test]
    fn failing_init_is_an_error_with_its_description() {
        let wasm =
            wat::parse_str(r#"(module (memory 1) (func (export "init") (result i32) (i32.const 3)))"#).expect("wat");
        let engine = wasmtime::Engine::default();
        let linker = wasmtime::Linker::new(&engine);
        let mut store = Store::new(&engine, ());
        let e = snapshot(&mut store, &linker, &wasm, "init", |_| "it said no".into()).expect_err("fails");
        let msg = e.to_string();
        assert!(msg.contains("init returned 3") && msg.contains("it said no"), "{msg}");
    }
}
