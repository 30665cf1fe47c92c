//! Every rule, checked on random instances through the reference interpreter, and a check
//! that the harness catches a wrong rule.

use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, TensorType};
use sinter_rewrite::analysis::EG;
use sinter_rewrite::lang::Node;
use sinter_rewrite::rules::{self, Edit, Rng, Rule};
use sinter_rewrite::verify::check_rule;

/// Instances per rule: enough shapes to hit the branches, small enough for a 2-core CI.
const INSTANCES: usize = 6;

#[test]
fn every_rule_passes_its_random_instances() {
    let mut comparisons = 0;
    let all = rules::all();
    let mut failures = Vec::new();
    for rule in &all {
        match check_rule(rule, INSTANCES) {
            Ok(c) => {
                assert!(c.comparisons > 0, "{}: nothing compared", rule.name);
                println!(
                    "{}: {} applications, {} comparisons (tolerance {})",
                    rule.name, c.applications, c.comparisons, rule.tolerance
                );
                comparisons += c.comparisons;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} rules, {} instances each, {comparisons} e-node comparisons",
        all.len(),
        INSTANCES
    );
}

/// Deliberately wrong: `relu(x) = x`.
fn wrong_find(_eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    match node.as_op() {
        Some((Op::Relu {}, &[x])) => vec![Box::new(move |_: &mut EG| Some(x))],
        _ => vec![],
    }
}

fn wrong_sample(_r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("wrong");
    let x = b.input("x", TensorType::f32(&[4, 4]))?;
    let y = b.relu(x)?;
    b.finish(&[y])
}

static WRONG: Rule = Rule {
    name: "test/relu-is-identity",
    doc: "wrong on purpose",
    tolerance: 1e-3,
    find: wrong_find,
    sample: wrong_sample,
};

#[test]
fn a_wrong_rule_is_caught() {
    let e = check_rule(&WRONG, 2).unwrap_err();
    assert!(e.contains("test/relu-is-identity"), "{e}");
    assert!(e.contains("differs"), "{e}");
}

/// A rule that matches nothing fails too: its samples would test nothing.
fn never(_eg: &EG, _class: Id, _node: &Node) -> Vec<Edit> {
    vec![]
}

static IDLE: Rule = Rule {
    name: "test/idle",
    doc: "never fires",
    tolerance: 0.0,
    find: never,
    sample: wrong_sample,
};

#[test]
fn a_rule_that_never_fires_is_caught() {
    let e = check_rule(&IDLE, 1).unwrap_err();
    assert!(e.contains("never fired"), "{e}");
}

/// `ir-spec/rewrites.md` has exactly one table row per rule, and every row names a rule.
#[test]
fn every_rule_has_a_spec_row() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ir-spec/rewrites.md");
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let names: Vec<&str> = rules::all().iter().map(|r| r.name).collect();
    for name in &names {
        let n = rows.iter().filter(|r| *r == name).count();
        assert_eq!(
            n, 1,
            "ir-spec/rewrites.md must have one row for `{name}`, found {n}"
        );
    }
    for row in &rows {
        assert!(
            names.contains(row),
            "ir-spec/rewrites.md: `{row}` is not a rule"
        );
    }
}
