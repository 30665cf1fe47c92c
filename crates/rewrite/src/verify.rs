//! Rule verification on the reference interpreter.
//!
//! A rule is checked by instantiating it: its `sample` builds a random graph (random shapes,
//! random constant values) that contains its left-hand side, the graph is saturated with that
//! rule alone, and then *every* e-node of *every* e-class with more than one e-node is written
//! out as a graph of its own (that e-node at the top, the original or cheapest choice below)
//! and evaluated on the same random inputs. All members of a class must agree with the class's
//! original e-node within the rule's stated tolerance, relative to the largest magnitude of the
//! reference (`max |a - b| <= tol * max(1, max |b|)`; 0 means equal up to NaN). A rule that
//! never fires on its samples fails too, so a sample cannot silently stop testing its rule.
//!
//! [`compare`] is the same comparison for two whole graphs (the optimised against the
//! original), used by the seed-network tests and available to the CLI.

use crate::analysis::EG;
use crate::convert;
use crate::extract::{self, Choices};
use crate::lang::Node;
use crate::rules::{Glue, Rng, Rule};
use egg::Id;
use sinter_ir::{DType, Graph, Tensor, TensorData};
use std::collections::HashMap;

/// What checking one rule did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCheck {
    /// The rule.
    pub rule: &'static str,
    /// Random instances built.
    pub instances: usize,
    /// Times the rule changed an instance's e-graph.
    pub applications: usize,
    /// Alternative e-nodes evaluated against their class's reference.
    pub comparisons: usize,
}

/// Random feeds for every input of `g` (f32 uniform in [-1, 1), i64 in 0..3, random bools).
pub fn random_inputs(g: &Graph, rng: &mut Rng) -> HashMap<String, Tensor> {
    g.inputs()
        .map(|(v, _)| {
            let ty = g.ty(v);
            let n = ty.numel();
            let data = match ty.dtype {
                DType::F32 => TensorData::F32((0..n).map(|_| rng.float(-1.0, 1.0)).collect()),
                DType::I64 => TensorData::I64((0..n).map(|_| rng.int(0, 2) as i64).collect()),
                DType::Bool => TensorData::Bool((0..n).map(|_| rng.int(0, 1) == 1).collect()),
            };
            let t = Tensor::new(&ty.shape, data).expect("sizes match");
            (g.value_name(v).to_string(), t)
        })
        .collect()
}

/// `Err` unless `a` and `b` agree: `max |a - b| <= tol * max(1, max |b|)`, NaN equal to NaN.
pub fn close(a: &Tensor, b: &Tensor, tol: f32) -> Result<(), String> {
    if a.ty() != b.ty() {
        return Err(format!("types differ: {} vs {}", a.ty(), b.ty()));
    }
    match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            let scale = y.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                let both_nan = p.is_nan() && q.is_nan();
                let within = (p - q).abs() <= tol * scale;
                if !both_nan && !within {
                    return Err(format!(
                        "element {i}: {p} vs {q} (tolerance {tol} x {scale})"
                    ));
                }
            }
            Ok(())
        }
        _ if a.data() == b.data() => Ok(()),
        _ => Err("integer or bool elements differ".to_string()),
    }
}

/// Runs both graphs on the same random inputs (seeded) and compares outputs in order.
pub fn compare(original: &Graph, optimised: &Graph, seed: u64, tol: f32) -> Result<(), String> {
    let feeds = random_inputs(original, &mut Rng(seed));
    let a = sinter_interp::run(original, &feeds).map_err(|e| format!("original: {e}"))?;
    let b = sinter_interp::run(optimised, &feeds).map_err(|e| format!("optimised: {e}"))?;
    if a.len() != b.len() {
        return Err(format!("{} outputs vs {}", a.len(), b.len()));
    }
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        close(y, x, tol).map_err(|e| format!("output %{name}: {e}"))?;
    }
    Ok(())
}

/// Choices that prefer the original e-node of each class where that stays acyclic
/// (cheapest otherwise).
fn base_choices(eg: &EG, loaded: &convert::Loaded) -> Choices {
    let (mut choices, _) = extract::greedy(eg);
    for (n, c) in &loaded.originals {
        let canon = egg::Language::map_children(n.clone(), |k| eg.find(k));
        let c = eg.find(*c);
        let old = choices.insert(c, canon);
        if extract::reachable(eg, &choices, &[c]).is_none()
            && let Some(old) = old
        {
            choices.insert(c, old);
        }
    }
    choices
}

/// Every value of `g` on `feeds`, by name.
fn all_values(
    g: &Graph,
    feeds: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, String> {
    let mut all = g.clone();
    let values: Vec<sinter_ir::Value> = g
        .nodes()
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            (0..n.outputs.len()).map(move |k| sinter_ir::Value {
                node: sinter_ir::NodeId(i as u32),
                output: k as u32,
            })
        })
        .collect();
    all.set_outputs(&values).map_err(|e| e.to_string())?;
    let out = sinter_interp::run(&all, feeds).map_err(|e| format!("original: {e}"))?;
    Ok(out.into_iter().collect())
}

/// Checks one rule on `instances` random instances (see the [module docs](self)).
pub fn check_rule(rule: &'static Rule, instances: usize) -> Result<RuleCheck, String> {
    let mut report = RuleCheck {
        rule: rule.name,
        ..RuleCheck::default()
    };
    for seed in 0..instances as u64 {
        let mut rng = Rng(seed.wrapping_mul(7919).wrapping_add(1));
        let g = (rule.sample)(&mut rng).map_err(|e| format!("{}: sample: {e}", rule.name))?;
        let mut loaded = convert::load(&g, &HashMap::new(), 1 << 16)
            .map_err(|e| format!("{}: {e}", rule.name))?;
        let eg = std::mem::replace(&mut loaded.egraph, EG::new(Default::default()));
        let runner = egg::Runner::default()
            .with_egraph(eg)
            .with_iter_limit(4)
            .with_node_limit(5_000)
            .with_scheduler(egg::SimpleScheduler)
            .run(&[Glue::rewrite(rule)]);
        report.applications += runner
            .iterations
            .iter()
            .map(|it| it.applied.values().sum::<usize>())
            .sum::<usize>();
        let mut eg = runner.egraph;
        eg.rebuild();
        let feeds = random_inputs(&g, &mut rng);
        let truth = all_values(&g, &feeds)?;
        let base = base_choices(&eg, &loaded);
        // Reference per class: the original graph's value when the class holds one.
        let mut reference: HashMap<Id, Vec<(String, Tensor)>> = HashMap::new();
        for (c, name, _) in &loaded.values {
            if let Some(t) = truth.get(name) {
                reference
                    .entry(eg.find(*c))
                    .or_default()
                    .push((format!("%{name}"), t.clone()));
            }
        }
        let classes: Vec<Id> = eg
            .classes()
            .filter(|c| c.data.tys.len() == 1 && (c.len() > 1 || reference.contains_key(&c.id)))
            .map(|c| c.id)
            .collect();
        for class in classes {
            let eval = |node: &Node| -> Result<Option<Tensor>, String> {
                let mut choices = base.clone();
                choices.insert(class, node.clone());
                let names = vec!["out".to_string()];
                if extract::reachable(&eg, &choices, &[class]).is_none() {
                    return Ok(None); // this member closes a cycle under the base choices
                }
                let (graph, _) = convert::emit(&loaded, &[class], &names, &eg, &choices)
                    .map_err(|e| e.to_string())?;
                let mut out = sinter_interp::run(&graph, &feeds).map_err(|e| e.to_string())?;
                Ok(out.pop().map(|(_, t)| t))
            };
            let wants = match reference.get(&class) {
                Some(v) => v.clone(),
                None => match eval(&base[&class])? {
                    Some(t) => vec![(format!("`{}`", base[&class]), t)],
                    None => continue,
                },
            };
            for node in eg[class].iter() {
                if let Some(got) = eval(node)? {
                    for (what, want) in &wants {
                        report.comparisons += 1;
                        close(&got, want, rule.tolerance).map_err(|e| {
                            format!(
                                "{} (instance {seed}): `{node}` differs from {what}: {e}",
                                rule.name
                            )
                        })?;
                    }
                }
            }
        }
        report.instances += 1;
    }
    if report.applications == 0 {
        return Err(format!(
            "{}: never fired on its {} samples",
            rule.name, instances
        ));
    }
    Ok(report)
}
