//! Keeps `ir-spec/` true to the code.
//!
//! - `ops.md` has one section per [`Category`], in `Category::ALL` order, and one table row per
//!   op of [`OpKind::ALL`] (no more, no fewer), in its category's section, with exactly the op
//!   table's attributes (`name: type = default`) and its arity.
//! - Every ```` ```sir ```` block of `README.md` and `compositions.md` parses and verifies.
//! - The test vectors of `random.md` are what `rng.rs` computes.

use sinter_ir::graph::MAX_ELEMENTS;
use sinter_ir::ops::VARIADIC;
use sinter_ir::{Category, OpKind, rng};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn spec_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../ir-spec")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Cells of a Markdown table row, split at unescaped `|`, trimmed, with `\|` unescaped.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// The contents of the backtick spans of a cell, in order.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// One op row of `ops.md`.
struct Row {
    line: usize,
    section: String,
    cells: Vec<String>,
}

/// `## ` headings in order, and the op rows (first cell exactly one code span) by op name.
fn ops_md() -> (Vec<String>, Vec<(String, Row)>) {
    let text = spec_file("ops.md");
    let mut sections = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            sections.push(h.trim().to_string());
            continue;
        }
        if !line.trim_start().starts_with('|') {
            continue;
        }
        let cs = cells(line);
        let first = &cs[0];
        if first.len() > 2
            && first.starts_with('`')
            && first.ends_with('`')
            && first.matches('`').count() == 2
        {
            let name = first.trim_matches('`').to_string();
            let section = sections.last().cloned().unwrap_or_default();
            rows.push((
                name,
                Row {
                    line: i + 1,
                    section,
                    cells: cs,
                },
            ));
        }
    }
    (sections, rows)
}

fn category_heading(c: Category) -> String {
    format!("{c:?}")
}

#[test]
fn every_category_has_a_section_in_order() {
    let (sections, _) = ops_md();
    let want: Vec<String> = Category::ALL.iter().map(|&c| category_heading(c)).collect();
    let got: Vec<String> = sections
        .iter()
        .filter(|s| want.contains(s))
        .cloned()
        .collect();
    assert_eq!(
        got, want,
        "ops.md needs one `## Category` section per Category, in Category::ALL order"
    );
}

#[test]
fn every_op_has_exactly_one_row() {
    let (_, rows) = ops_md();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, row) in &rows {
        assert!(
            OpKind::from_name(name).is_some(),
            "ops.md:{}: `{name}` is not an op",
            row.line
        );
        *count.entry(name.as_str()).or_default() += 1;
    }
    for k in OpKind::ALL {
        let n = count.get(k.name()).copied().unwrap_or(0);
        assert_eq!(
            n,
            1,
            "ops.md must have exactly one row for `{}`, found {n}",
            k.name()
        );
    }
}

#[test]
fn rows_sit_in_their_category_and_have_five_columns() {
    let (_, rows) = ops_md();
    for (name, row) in &rows {
        let Some(kind) = OpKind::from_name(name) else {
            continue;
        };
        assert_eq!(
            row.section,
            category_heading(kind.info().category),
            "ops.md:{}: `{name}` is in the wrong section",
            row.line
        );
        assert_eq!(
            row.cells.len(),
            5,
            "ops.md:{}: `{name}` needs the columns op | inputs | attributes | shape rule | semantics",
            row.line
        );
        for (i, c) in row.cells.iter().enumerate() {
            assert!(
                !c.is_empty(),
                "ops.md:{}: `{name}` has an empty column {}",
                row.line,
                i + 1
            );
        }
    }
}

#[test]
fn rows_list_exactly_the_attributes_with_types_and_defaults() {
    let (_, rows) = ops_md();
    for (name, row) in &rows {
        let Some(kind) = OpKind::from_name(name) else {
            continue;
        };
        let want: Vec<String> = kind
            .info()
            .attrs
            .iter()
            .map(|a| match a.default {
                Some(d) => format!("{}: {} = {}", a.name, a.ty, d()),
                None => format!("{}: {}", a.name, a.ty),
            })
            .collect();
        let cell = &row.cells[2];
        if want.is_empty() {
            assert_eq!(
                cell, "—",
                "ops.md:{}: `{name}` takes no attributes: write `—`",
                row.line
            );
        } else {
            // Exactly the op table's attributes, in its order, each as `name: type = default`.
            let got: Vec<&str> = code_spans(cell);
            assert_eq!(got, want, "ops.md:{}: attributes of `{name}`", row.line);
        }
    }
}

#[test]
fn rows_state_the_arity() {
    let (_, rows) = ops_md();
    for (name, row) in &rows {
        let Some(kind) = OpKind::from_name(name) else {
            continue;
        };
        // Operands are the code spans `name: type` (`name?:` when optional) and `...` (variadic).
        let spans: Vec<&str> = code_spans(&row.cells[1])
            .into_iter()
            .filter(|s| s.contains(':') || *s == "...")
            .collect();
        let variadic = spans.contains(&"...");
        let required = spans
            .iter()
            .filter(|s| **s != "..." && !s.split(':').next().unwrap().ends_with('?'))
            .count();
        let max = if variadic { VARIADIC } else { spans.len() };
        let info = kind.info();
        assert_eq!(
            (required, max),
            (info.min_inputs, info.max_inputs),
            "ops.md:{}: inputs of `{name}` (spans {spans:?})",
            row.line
        );
    }
}

/// The ```` ```sir ```` blocks of a spec file, with their first line numbers.
fn sir_blocks(file: &str) -> Vec<(usize, String)> {
    let text = spec_file(file);
    let mut blocks = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut cur {
            None if line.trim() == "```sir" => cur = Some((i + 2, String::new())),
            Some(_) if line.trim() == "```" => blocks.push(cur.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(cur.is_none(), "{file}: unterminated ```sir block");
    blocks
}

#[test]
fn spec_graphs_parse_and_verify() {
    let mut failures = Vec::new();
    let mut n = 0;
    for file in ["README.md", "compositions.md"] {
        for (line, src) in sir_blocks(file) {
            n += 1;
            match sinter_ir::parse(&src) {
                Ok(g) => {
                    if let Err(e) = g.verify() {
                        failures.push(format!("{file}:{line}: {e}"));
                    }
                }
                Err(e) => failures.push(format!(
                    "{file}:{}: {} (block at line {line})",
                    line + e.line - 1,
                    e.message
                )),
            }
        }
    }
    assert!(
        n >= 12,
        "expected the spec's graphs, found {n} ```sir blocks"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_md_test_vectors_match_rng() {
    let text = spec_file("random.md");
    let section = text
        .split("## Test vectors")
        .nth(1)
        .expect("random.md has a `## Test vectors` section");
    let mut n = 0;
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cs = cells(line);
        let Ok(seed) = cs[0].parse::<i64>() else {
            continue;
        };
        let code = |i: usize| cs[i].trim_matches('`');
        let hex = |i: usize| u64::from_str_radix(code(i).trim_start_matches("0x"), 16).unwrap();
        let counter: i64 = cs[1].parse().unwrap();
        let i: u64 = cs[2].parse().unwrap();
        let k = rng::key(seed, counter);
        assert_eq!(k, hex(3), "key({seed}, {counter})");
        assert_eq!(rng::bits(k, i), hex(4), "bits of ({seed}, {counter}, {i})");
        let u: f32 = code(5).parse().unwrap();
        assert_eq!(
            rng::uniform(k, i).to_bits(),
            u.to_bits(),
            "uniform of ({seed}, {counter}, {i})"
        );
        let z: f32 = code(6).parse().unwrap();
        let got = rng::normal(k, i);
        assert!(
            (got - z).abs() <= 1e-6 * z.abs().max(1.0),
            "normal of ({seed}, {counter}, {i}): {got} vs {z}"
        );
        n += 1;
    }
    assert!(
        n >= 12,
        "random.md: expected the test-vector rows, found {n}"
    );
}

#[test]
fn documented_constants() {
    assert_eq!(MAX_ELEMENTS, 1 << 32, "verifier.md and README.md say 2^32");
    let text = spec_file("verifier.md");
    assert!(text.contains("MAX_ELEMENTS = 2^32"));
    assert!(spec_file("README.md").contains("[grammar.md](grammar.md)"));
}
