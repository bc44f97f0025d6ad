//! docs/writing-a-backend.md lists the `Selector` and `Driver` traits signature for signature;
//! this test fails when the listings and `src/driver.rs` part ways (a method added, removed,
//! renamed, re-typed, or given or stripped of a default).

const DRIVER_RS: &str = include_str!("../src/driver.rs");
const GUIDE: &str = include_str!("../../docs/writing-a-backend.md");

/// Collapses whitespace the way a reader would: rustfmt's line breaks inside a signature and
/// the trailing comma it adds to a broken parameter list do not matter.
fn normalize(sig: &str) -> String {
    let joined = sig.split_whitespace().collect::<Vec<_>>().join(" ");
    joined
        .replace("( ", "(")
        .replace(", )", ")")
        .replace(",)", ")")
}

/// The methods of `pub trait <name>` in `src`: each signature, and whether it has a default
/// body. In the guide a default body is written `{ ... }`.
fn trait_methods(src: &str, name: &str) -> Vec<(String, bool)> {
    let header = format!("pub trait {name}: 'static {{");
    let start = src.find(&header).unwrap_or_else(|| panic!("no `{header}`"));
    let mut methods = Vec::new();
    let mut current: Option<String> = None;
    for line in src[start + header.len()..].lines() {
        let t = line.trim();
        if current.is_none() && line.starts_with('}') {
            break;
        }
        if current.is_none() && !t.starts_with("fn ") {
            continue;
        }
        let sig = current.get_or_insert_with(String::new);
        sig.push(' ');
        sig.push_str(t);
        let done = if let Some(s) = sig.strip_suffix(';') {
            Some((s.to_string(), false))
        } else if let Some(s) = sig.strip_suffix("{ ... }") {
            Some((s.to_string(), true))
        } else {
            sig.strip_suffix('{').map(|s| (s.to_string(), true))
        };
        if let Some((s, default)) = done {
            methods.push((normalize(&s), default));
            current = None;
        }
    }
    assert!(!methods.is_empty(), "no methods found in `{header}`");
    methods
}

/// The ```text listing of `pub trait <name>` in the guide.
fn listing<'a>(guide: &'a str, name: &str) -> &'a str {
    let header = format!("```text\npub trait {name}: 'static {{");
    let start = guide
        .find(&header)
        .unwrap_or_else(|| panic!("the guide has no ```text listing of `{name}`"));
    let rest = &guide[start + "```text\n".len()..];
    &rest[..rest.find("```").expect("unterminated listing")]
}

fn check(name: &str) {
    let code = trait_methods(DRIVER_RS, name);
    let doc = trait_methods(listing(GUIDE, name), name);
    assert_eq!(
        doc, code,
        "docs/writing-a-backend.md lists `{name}` differently from loop-core/src/driver.rs \
         ((signature, has a default) pairs): update the guide's listing"
    );
}

#[test]
fn guide_lists_the_selector_trait_exactly() {
    check("Selector");
}

#[test]
fn guide_lists_the_driver_trait_exactly() {
    check("Driver");
}
