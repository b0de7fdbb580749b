//! The file-system tools: `fs_list`, `fs_read` and `fs_write` over an
//! in-memory tree of text files.
//!
//! Paths are absolute (`/notes/todo.txt`), made of names of letters, digits,
//! `.`, `_` and `-`; `.` and `..` are refused. Directories exist when created
//! explicitly or when a file lies below them; writing a file creates its
//! parent directories.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ToolError;

/// Longest path, in bytes.
pub const MAX_PATH: usize = 200;
/// Deepest path, in components.
pub const MAX_DEPTH: usize = 8;
/// Largest file, in bytes.
pub const MAX_FILE: usize = 16 * 1024;
/// Most files the tree may hold.
pub const MAX_FILES: usize = 256;

/// The file tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSystem {
    /// File contents by absolute path.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Directories that exist even when empty.
    #[serde(default)]
    pub dirs: BTreeSet<String>,
}

/// Checks and normalises a path (a trailing `/` is dropped).
pub fn normalize(path: &str) -> Result<String, ToolError> {
    let bad = |why: &str| ToolError::Invalid(format!("invalid path `{path}`: {why}"));
    if path.len() > MAX_PATH {
        return Err(bad("too long"));
    }
    let rest = path.strip_prefix('/').ok_or_else(|| bad("paths are absolute, starting with `/`"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok("/".to_owned());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(bad("too deep"));
    }
    for p in &parts {
        if p.is_empty() || *p == "." || *p == ".." {
            return Err(bad("empty, `.` and `..` components are not allowed"));
        }
        if !p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(bad("names may hold only letters, digits, `.`, `_` and `-`"));
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(i) if i > 0 => Some(&path[..i]),
        _ => None,
    }
}

impl FileSystem {
    /// Whether `dir` (normalised) is a directory.
    pub fn is_dir(&self, dir: &str) -> bool {
        if dir == "/" || self.dirs.contains(dir) {
            return true;
        }
        let prefix = format!("{dir}/");
        self.files.keys().any(|f| f.starts_with(&prefix)) || self.dirs.iter().any(|d| d.starts_with(&prefix))
    }

    /// Checks inline data: normalised paths, sizes, no file where a directory is.
    pub fn check(&self) -> Result<(), String> {
        if self.files.len() > MAX_FILES {
            return Err(format!("more than {MAX_FILES} files"));
        }
        for (path, content) in &self.files {
            let n = normalize(path).map_err(|e| e.to_string())?;
            if &n != path || n == "/" {
                return Err(format!("file path `{path}` is not normalised"));
            }
            if content.len() > MAX_FILE {
                return Err(format!("file `{path}` is larger than {MAX_FILE} bytes"));
            }
            if self.is_dir(path) {
                return Err(format!("`{path}` is both a file and a directory"));
            }
        }
        for d in &self.dirs {
            let n = normalize(d).map_err(|e| e.to_string())?;
            if &n != d || self.files.contains_key(d) {
                return Err(format!("directory path `{d}` is not normalised or is a file"));
            }
        }
        Ok(())
    }

    /// The trimmed content of a file, if it exists.
    pub fn content(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// `fs_list`: the entries directly under a directory; directories end in `/`.
    pub fn list(&self, args: &Value) -> Result<Value, ToolError> {
        let dir = normalize(args.get("path").and_then(Value::as_str).unwrap_or("/"))?;
        if self.files.contains_key(&dir) {
            return Err(ToolError::Invalid(format!("`{dir}` is a file, not a directory")));
        }
        if !self.is_dir(&dir) {
            return Err(ToolError::NotFound(format!("no directory `{dir}`")));
        }
        let prefix = if dir == "/" { "/".to_owned() } else { format!("{dir}/") };
        let mut entries = BTreeSet::new();
        let paths = self.files.keys().map(|p| (p, false)).chain(self.dirs.iter().map(|d| (d, true)));
        for (p, is_dir) in paths {
            let Some(rest) = p.strip_prefix(&prefix) else { continue };
            match rest.split_once('/') {
                Some((first, _)) => entries.insert(format!("{first}/")),
                None if is_dir => entries.insert(format!("{rest}/")),
                None => entries.insert(rest.to_owned()),
            };
        }
        Ok(json!({ "path": dir, "entries": entries }))
    }

    /// `fs_read`: a file's content.
    pub fn read(&self, args: &Value) -> Result<Value, ToolError> {
        let path = normalize(args.get("path").and_then(Value::as_str).unwrap_or_default())?;
        match self.files.get(&path) {
            Some(content) => Ok(json!({ "path": path, "content": content })),
            None if self.is_dir(&path) => Err(ToolError::Invalid(format!("`{path}` is a directory; use fs_list"))),
            None => Err(ToolError::NotFound(format!("no file `{path}`"))),
        }
    }

    /// `fs_write`: creates or replaces (or appends to) a file.
    pub fn write(&mut self, args: &Value) -> Result<Value, ToolError> {
        let path = normalize(args.get("path").and_then(Value::as_str).unwrap_or_default())?;
        let content = args.get("content").and_then(Value::as_str).unwrap_or_default();
        let append = args.get("append").and_then(Value::as_bool).unwrap_or(false);
        if path == "/" || self.is_dir(&path) {
            return Err(ToolError::Invalid(format!("`{path}` is a directory")));
        }
        let mut p = parent(&path);
        while let Some(dir) = p {
            if self.files.contains_key(dir) {
                return Err(ToolError::Invalid(format!("`{dir}` is a file, so `{path}` cannot be created")));
            }
            p = parent(dir);
        }
        let existing = self.files.get(&path);
        if existing.is_none() && self.files.len() >= MAX_FILES {
            return Err(ToolError::Rule(format!("the file system is full ({MAX_FILES} files)")));
        }
        let new = match (append, existing) {
            (true, Some(old)) => format!("{old}{content}"),
            _ => content.to_owned(),
        };
        if new.len() > MAX_FILE {
            return Err(ToolError::Rule(format!("files are limited to {MAX_FILE} bytes")));
        }
        let bytes = new.len();
        self.files.insert(path.clone(), new);
        Ok(json!({ "path": path, "bytes": bytes }))
    }
}

/// JSON Schema of `fs_list`.
pub fn list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Absolute directory path, e.g. \"/notes\"."}},
        "required": ["path"],
        "additionalProperties": false
    })
}

/// JSON Schema of `fs_read`.
pub fn read_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Absolute file path."}},
        "required": ["path"],
        "additionalProperties": false
    })
}

/// JSON Schema of `fs_write`.
pub fn write_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Absolute file path; parent directories are created."},
            "content": {"type": "string", "maxLength": MAX_FILE},
            "append": {"type": "boolean", "description": "Append instead of replacing (default false)."}
        },
        "required": ["path", "content"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> FileSystem {
        let mut f = FileSystem::default();
        f.files.insert("/notes/a.txt".into(), "alpha".into());
        f.files.insert("/notes/sub/b.txt".into(), "beta".into());
        f.dirs.insert("/reports".into());
        f
    }

    #[test]
    fn paths_are_checked() {
        assert_eq!(normalize("/a/b/").expect("ok"), "/a/b");
        assert_eq!(normalize("/").expect("ok"), "/");
        for bad in ["a/b", "/a/../b", "/a//b", "/a b", "/./x", &format!("/{}", "x/".repeat(20))] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_read_write() {
        let mut f = fs();
        assert_eq!(f.list(&json!({"path": "/"})).expect("ok")["entries"], json!(["notes/", "reports/"]));
        assert_eq!(f.list(&json!({"path": "/notes"})).expect("ok")["entries"], json!(["a.txt", "sub/"]));
        assert_eq!(f.list(&json!({"path": "/reports"})).expect("ok")["entries"], json!([]));
        assert!(f.list(&json!({"path": "/nope"})).is_err());
        assert!(f.list(&json!({"path": "/notes/a.txt"})).is_err());
        assert_eq!(f.read(&json!({"path": "/notes/a.txt"})).expect("ok")["content"], json!("alpha"));
        assert!(f.read(&json!({"path": "/notes"})).is_err());
        assert!(f.read(&json!({"path": "/x.txt"})).is_err());
        f.write(&json!({"path": "/reports/r.txt", "content": "1"})).expect("write");
        f.write(&json!({"path": "/reports/r.txt", "content": "2", "append": true})).expect("append");
        assert_eq!(f.content("/reports/r.txt"), Some("12"));
        assert!(f.write(&json!({"path": "/notes", "content": "x"})).is_err());
        assert!(f.write(&json!({"path": "/notes/a.txt/c", "content": "x"})).is_err());
        assert!(f.write(&json!({"path": "/big", "content": "x".repeat(MAX_FILE + 1)})).is_err());
        assert!(f.check().is_ok());
    }
}
