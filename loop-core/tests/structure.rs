//! Rules of the codebase's structure (issue 13), checked on the sources so they hold:
//! loop-core's modules import each other without a cycle, no production function is over 60
//! lines, and no production file is much over 800. The sources are rustfmt-formatted, which both checks rely on (a function ends at
//! the first `}` at its own indentation; a `use crate::x` or `crate::x::` path names module
//! `x`, or an item loop-core's lib.rs re-exports from `x`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The longest a production function may be, in lines (signature and closing brace included).
const MAX_FUNCTION_LINES: usize = 60;

/// The longest a production source file may be, in lines ("about 800").
const MAX_FILE_LINES: usize = 850;

/// The crates whose `src/` is production code (the benchmarks and the behaviour suite are not).
const PRODUCTION_CRATES: [&str; 12] = [
    "loop-api",
    "loop-core",
    "loop-mio",
    "loop-polling",
    "loop-uring",
    "loop-policy",
    "loop-net",
    "loop-sync",
    "loop-fs",
    "loop-hyper",
    "loop-monitor",
    "examples",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of a file before its `#[cfg(test)]` part, without comment lines.
fn production_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).expect("read a source file");
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .map(str::to_owned)
        .collect()
}

/// The name of the function a line starts (`fn name(` with a body), if it does.
fn function_start(line: &str) -> Option<&str> {
    let code = line.trim_start();
    let at = code.find("fn ")?;
    let before = &code[..at];
    let qualifiers = [
        "pub",
        "pub(crate)",
        "pub(super)",
        "const",
        "unsafe",
        "async",
        "extern",
    ];
    if !before.split_whitespace().all(|w| qualifiers.contains(&w)) {
        return None;
    }
    let rest = &code[at + 3..];
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (!line.trim_end().ends_with(';')).then_some(&rest[..end])
}

/// Functions of `lines` longer than [`MAX_FUNCTION_LINES`]: (line number, name, length).
fn long_functions(lines: &[String]) -> Vec<(usize, String, usize)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = function_start(line) else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let close = format!("{}}}", " ".repeat(indent));
        let end = lines[i + 1..]
            .iter()
            .position(|l| l.starts_with(&close))
            .map_or(lines.len(), |p| i + 1 + p);
        let length = end - i + 1;
        if length > MAX_FUNCTION_LINES {
            found.push((i + 1, name.to_owned(), length));
        }
    }
    found
}

#[test]
fn no_production_function_is_over_60_lines() {
    let mut long = Vec::new();
    for krate in PRODUCTION_CRATES {
        for file in rust_files(&workspace().join(krate).join("src")) {
            for (line, name, length) in long_functions(&production_lines(&file)) {
                long.push(format!("{}:{line} {name}: {length} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_production_file_is_much_over_800_lines() {
    let mut long = Vec::new();
    for krate in PRODUCTION_CRATES {
        for file in rust_files(&workspace().join(krate).join("src")) {
            let lines = fs::read_to_string(&file)
                .expect("read a source file")
                .lines()
                .count();
            if lines > MAX_FILE_LINES {
                long.push(format!("{}: {lines} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// loop-core's modules and the modules each one uses (through `crate::`).
fn core_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace().join("loop-core").join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    // Items lib.rs re-exports, by the module they come from.
    let mut reexported = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !item.is_empty() {
                reexported.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    let mut graph = BTreeMap::new();
    let files = rust_files(&src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| Some(f.file_stem()?.to_str()?.to_owned()))
        .collect();
    for file in &files {
        let Some(module) = file.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if module == "lib" {
            continue;
        }
        let code: String = production_lines(file)
            .iter()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut uses = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let target = if modules.contains(&name) {
                Some(name)
            } else {
                reexported.get(&name).cloned()
            };
            if let Some(target) = target
                && target != module
                && target != "lib"
            {
                uses.insert(target);
            }
        }
        graph.insert(module.to_owned(), uses);
    }
    graph
}

#[test]
fn loop_core_has_no_import_cycle() {
    let graph = core_imports();
    assert!(
        graph.len() > 10,
        "loop-core's modules were found: {graph:?}"
    );
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "loop-core modules import each other: {}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checks_see_what_they_check() {
    let lines: Vec<String> = ["pub(crate) fn short() {", "    1", "}"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(long_functions(&lines).is_empty());
    let mut long: Vec<String> = vec!["    fn long(&self) {".into()];
    long.extend((0..70).map(|_| "        x();".to_string()));
    long.push("    }".into());
    assert_eq!(long_functions(&long), vec![(1, "long".to_owned(), 72)]);
    assert_eq!(function_start("    fn required(&self);"), None);
    assert_eq!(function_start("let f = fn_name();"), None);
}
