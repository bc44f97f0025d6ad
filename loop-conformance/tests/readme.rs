//! The README's "Behaviours" section lists exactly the behaviours of `src/list.rs`: every
//! group in list.rs's order, every behaviour in its group, and the right total.
//!
//! The section's bullets are generated from list.rs and each behaviour's doc comment (its
//! first paragraph). After adding, removing or re-documenting a behaviour, print them with
//!
//! ```sh
//! cargo test -p loop-conformance --test readme -- --ignored --nocapture
//! ```
//!
//! and paste the output over the README's section (a new group needs a title written by hand:
//! the output says `TITLE` there).

use std::fs;
use std::path::{Path, PathBuf};

/// A group of behaviours: its name and its behaviours' names, in order.
type Group = (String, Vec<String>);

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The groups and behaviours of `src/list.rs` (`group { name: Shared, ... }`), in order.
fn list_rs() -> Vec<Group> {
    let text = read(&crate_dir().join("src/list.rs"));
    let mut groups: Vec<Group> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(group) = line.strip_suffix(" {").filter(|g| is_ident(g)) {
            groups.push((group.to_owned(), Vec::new()));
        } else if let Some((name, mode)) = line.split_once(": ")
            && is_ident(name)
            && matches!(mode, "Shared," | "Exclusive,")
        {
            let (_, names) = groups.last_mut().expect("a behaviour outside a group");
            names.push(name.to_owned());
        }
    }
    assert!(
        groups.iter().map(|(_, n)| n.len()).sum::<usize>() > 100,
        "list.rs parsed to almost nothing: {groups:?}"
    );
    groups
}

/// The README's "## Behaviours" section: its lines up to the next `## ` heading.
fn readme_section(readme: &str) -> Vec<&str> {
    readme
        .lines()
        .skip_while(|l| *l != "## Behaviours")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

/// The first `` `word` `` of `s`, if `s` starts with it.
fn leading_code(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('`')?;
    let end = rest.find('`')?;
    Some(&rest[..end])
}

/// The groups (`` ### `group`: title ``) and behaviours (`` - `name`: ... ``) of the README.
fn readme_groups(readme: &str) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for line in readme_section(readme) {
        if let Some(heading) = line.strip_prefix("### ") {
            let group = leading_code(heading).unwrap_or(heading);
            groups.push((group.to_owned(), Vec::new()));
        } else if let Some(name) = line.strip_prefix("- ").and_then(leading_code) {
            match groups.last_mut() {
                Some((_, names)) => names.push(name.to_owned()),
                None => groups.push((String::from("(no group)"), vec![name.to_owned()])),
            }
        }
    }
    groups
}

/// The first paragraph of the doc comment of `pub fn name` in `src/group.rs`, on one line.
fn first_paragraph(group: &str, name: &str) -> String {
    let text = read(&crate_dir().join(format!("src/{group}.rs")));
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("pub fn {name}(")))
        .unwrap_or_else(|| panic!("no `pub fn {name}(` in src/{group}.rs"));
    let mut doc: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .skip_while(|l| l.starts_with("#["))
        .map_while(|l| l.strip_prefix("///"))
        .map(str::trim)
        .collect();
    doc.reverse();
    let paragraph: Vec<&str> = doc.into_iter().take_while(|l| !l.is_empty()).collect();
    assert!(
        !paragraph.is_empty(),
        "`{group}::{name}` has no doc comment"
    );
    paragraph.join(" ")
}

/// The title of each group heading in the README, or `TITLE` for a group it lacks.
fn title(readme: &str, group: &str) -> String {
    let prefix = format!("### `{group}`: ");
    readme_section(readme)
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("TITLE")
        .to_owned()
}

fn count_line(groups: &[Group]) -> String {
    let total: usize = groups.iter().map(|(_, n)| n.len()).sum();
    format!("{total} behaviours in {} groups.", groups.len())
}

/// What differs between the README's groups and list.rs's, one line each.
fn differences(readme: &[Group], list: &[Group]) -> Vec<String> {
    let mut out = Vec::new();
    let where_is = |groups: &[Group], name: &str| {
        groups
            .iter()
            .find(|(_, names)| names.iter().any(|n| n == name))
            .map(|(g, _)| g.clone())
    };
    for (group, names) in list {
        for name in names {
            match where_is(readme, name) {
                None => out.push(format!("missing from the README: `{group}::{name}`")),
                Some(g) if g != *group => out.push(format!(
                    "`{name}` is listed under `{g}` in the README, but is in `{group}`"
                )),
                Some(_) => {}
            }
        }
    }
    for (group, names) in readme {
        for name in names.iter().filter(|n| where_is(list, n).is_none()) {
            out.push(format!(
                "in the README but not in list.rs: `{group}::{name}`"
            ));
        }
    }
    if out.is_empty() && readme != list {
        let groups = |gs: &[Group]| gs.iter().map(|(g, _)| g.clone()).collect::<Vec<_>>();
        match list.iter().zip(readme).find(|(l, r)| l != r) {
            Some(((group, names), (_, in_readme))) if groups(readme) == groups(list) => {
                out.push(format!(
                    "the order differs in `{group}`: list.rs has {names:?}, the README {in_readme:?}"
                ))
            }
            _ => out.push(format!(
                "the groups' order differs: list.rs has {:?}, the README {:?}",
                groups(list),
                groups(readme)
            )),
        }
    }
    out
}

#[test]
fn readme_lists_exactly_the_behaviours_of_list_rs() {
    let readme = read(&crate_dir().join("README.md"));
    let list = list_rs();
    let diff = differences(&readme_groups(&readme), &list);
    assert!(
        diff.is_empty(),
        "loop-conformance/README.md's \"Behaviours\" section is not list.rs's list:\n  {}\n\
         Regenerate it: cargo test -p loop-conformance --test readme -- --ignored --nocapture",
        diff.join("\n  ")
    );
    let count = count_line(&list);
    assert!(
        readme_section(&readme).contains(&count.as_str()),
        "the README's \"Behaviours\" section should say \"{count}\""
    );
}

#[test]
fn every_behaviour_has_a_doc_comment() {
    for (group, names) in list_rs() {
        for name in names {
            first_paragraph(&group, &name);
        }
    }
}

/// Prints the section's count line and bullets, to paste into the README.
#[test]
#[ignore = "a generator: prints the README's Behaviours section"]
fn print_behaviours_section() {
    let readme = read(&crate_dir().join("README.md"));
    let list = list_rs();
    println!("{}\n", count_line(&list));
    for (group, names) in &list {
        println!("### `{group}`: {}\n", title(&readme, group));
        for name in names {
            println!("- `{name}`: {}", first_paragraph(group, name));
        }
        println!();
    }
}
