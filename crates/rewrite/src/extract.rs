//! DAG-aware extraction: pick one e-node per e-class so that the graph, with every shared
//! value paid for once, is cheapest.
//!
//! egg's `Extractor` minimises the cost of the *tree*, so a value used twice is paid twice and
//! a merge (one wide convolution feeding two `get`s) can never look cheaper than the two
//! convolutions it replaces. Here extraction works in two steps:
//!
//! 1. **Greedy cost sets** (as in extraction-gym's "greedy DAG"): each class gets the set of
//!    classes its best e-node needs, with their costs, and the class's cost is the sum over
//!    that set, so sharing *below* a node is counted once. A node whose set would contain its
//!    own class is skipped, so the choice is acyclic by construction.
//! 2. **Local improvement**: sharing *across* siblings (the merged convolution is worth it only
//!    if both pieces use it) is invisible to step 1, so each alternative e-node of each chosen
//!    class is tried in turn; after switching, every chosen class is re-chosen once by its
//!    marginal cost given what the graph already contains, and the switch is kept if the true
//!    DAG cost ([`dag_cost`]) went down (the switch alone is tried too: re-choosing can close
//!    a cycle that the switch alone does not). That finds the merges the cost model favours.
//!
//! [`dag_cost`] walks the chosen graph from the roots and fails on a cycle, so no extracted
//! graph ever contains one. The exact alternative is the `ilp` module (cargo feature `ilp`).

use crate::analysis::EG;
use crate::cost::node_cost;
use crate::lang::Node;
use egg::{Id, Language};
use sinter_ir::TensorType;
use std::collections::{HashMap, HashSet};

/// The chosen e-node of each e-class (canonical ids).
pub type Choices = HashMap<Id, Node>;

/// Cost of one e-node in its class. A Winograd filter transform of constant weights costs
/// nothing: the runtime computes it once, when the graph is compiled (see
/// `crate::analysis`, which does not fold it).
pub fn enode_cost(eg: &EG, class: Id, node: &Node) -> f64 {
    if let Node::Op(sinter_ir::Op::WinogradFilter { .. }, ch) = node
        && ch.iter().all(|c| eg[*c].data.constant)
    {
        return 0.0;
    }
    let ins: Vec<&TensorType> = node
        .children()
        .iter()
        .map(|&c| &eg[c].data.tys[0])
        .collect();
    node_cost(node, &ins, &eg[class].data.tys)
}

/// Sorted (class, cost) set.
type CostSet = Vec<(Id, f64)>;

fn union(sets: &[&CostSet]) -> CostSet {
    let mut out: CostSet = Vec::new();
    for s in sets {
        if out.is_empty() {
            out = (*s).clone();
            continue;
        }
        let mut merged = Vec::with_capacity(out.len() + s.len());
        let (mut i, mut j) = (0, 0);
        while i < out.len() && j < s.len() {
            match out[i].0.cmp(&s[j].0) {
                std::cmp::Ordering::Less => {
                    merged.push(out[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    merged.push(s[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    merged.push(out[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        merged.extend_from_slice(&out[i..]);
        merged.extend_from_slice(&s[j..]);
        out = merged;
    }
    out
}

/// Step 1: greedy cost sets; returns the choices and each class's greedy total.
pub fn greedy(eg: &EG) -> (Choices, HashMap<Id, f64>) {
    let mut best: HashMap<Id, (f64, CostSet, usize)> = HashMap::new();
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    for _pass in 0..100 {
        let mut changed = false;
        for &id in &ids {
            for (k, node) in eg[id].iter().enumerate() {
                let kids: Option<Vec<&CostSet>> = node
                    .children()
                    .iter()
                    .map(|c| best.get(&eg.find(*c)).map(|b| &b.1))
                    .collect();
                let Some(kids) = kids else { continue };
                let mut set = union(&kids);
                if set.binary_search_by_key(&id, |e| e.0).is_ok() {
                    continue;
                }
                let own = enode_cost(eg, id, node);
                let pos = set.partition_point(|e| e.0 < id);
                set.insert(pos, (id, own));
                let total: f64 = set.iter().map(|e| e.1).sum();
                let better = match best.get(&id) {
                    Some(b) => total < b.0 - 1e-9,
                    None => true,
                };
                if better {
                    best.insert(id, (total, set, k));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let choices = best
        .iter()
        .map(|(&id, b)| (id, eg[id].nodes[b.2].clone()))
        .collect();
    let totals = best.into_iter().map(|(id, b)| (id, b.0)).collect();
    (choices, totals)
}

/// The classes reachable from `roots` under `choices`, children before parents; `None` on a
/// cycle or a class without a choice.
pub fn reachable(eg: &EG, choices: &Choices, roots: &[Id]) -> Option<Vec<Id>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut mark: HashMap<Id, Mark> = HashMap::new();
    let mut order = Vec::new();
    for &r in roots {
        let r = eg.find(r);
        if mark.contains_key(&r) {
            continue;
        }
        // Iterative DFS: (class, next child index).
        let mut stack = vec![(r, 0usize)];
        mark.insert(r, Mark::Active);
        while let Some(&mut (c, ref mut i)) = stack.last_mut() {
            let node = choices.get(&c)?;
            if let Some(&child) = node.children().get(*i) {
                *i += 1;
                let child = eg.find(child);
                match mark.get(&child) {
                    Some(Mark::Active) => return None,
                    Some(Mark::Done) => {}
                    None => {
                        mark.insert(child, Mark::Active);
                        stack.push((child, 0));
                    }
                }
            } else {
                mark.insert(c, Mark::Done);
                order.push(c);
                stack.pop();
            }
        }
    }
    Some(order)
}

/// Total cost of the graph that `choices` selects, each class paid once; `None` on a cycle.
pub fn dag_cost(eg: &EG, choices: &Choices, roots: &[Id]) -> Option<f64> {
    let order = reachable(eg, choices, roots)?;
    Some(order.iter().map(|&c| enode_cost(eg, c, &choices[&c])).sum())
}

/// Step 2: local improvement (see the [module docs](self)).
fn improve(eg: &EG, mut choices: Choices, totals: &HashMap<Id, f64>, roots: &[Id]) -> Choices {
    let Some(mut cost) = dag_cost(eg, &choices, roots) else {
        return choices;
    };
    for _round in 0..4 {
        let mut improved = false;
        let Some(order) = reachable(eg, &choices, roots) else {
            break;
        };
        for &class in &order {
            if eg[class].len() < 2 {
                continue;
            }
            for alt in eg[class].iter() {
                if choices.get(&class) == Some(alt) {
                    continue;
                }
                let mut plain = choices.clone();
                plain.insert(class, alt.clone());
                let Some(present) = reachable(eg, &plain, roots) else {
                    continue;
                };
                let mut trial = plain.clone();
                let present: HashSet<Id> = present.into_iter().collect();
                // Re-choose every present class by marginal cost.
                for &c in &present {
                    if c == class || eg[c].len() < 2 {
                        continue;
                    }
                    let marginal = |n: &Node| {
                        enode_cost(eg, c, n)
                            + n.children()
                                .iter()
                                .map(|&k| {
                                    let k = eg.find(k);
                                    if present.contains(&k) {
                                        0.0
                                    } else {
                                        totals.get(&k).copied().unwrap_or(f64::INFINITY)
                                    }
                                })
                                .sum::<f64>()
                    };
                    let pick = eg[c]
                        .iter()
                        .min_by(|a, b| marginal(a).total_cmp(&marginal(b)))
                        .cloned();
                    if let Some(p) = pick
                        && marginal(&p) < marginal(&trial[&c]) - 1e-9
                    {
                        trial.insert(c, p);
                    }
                }
                // The re-chosen trial can close a cycle that the switch alone does not; keep
                // whichever of the two is acyclic and cheaper.
                let best = [trial, plain]
                    .into_iter()
                    .filter_map(|t| dag_cost(eg, &t, roots).map(|c| (c, t)))
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((t, trial)) = best
                    && t < cost - 1e-6
                {
                    cost = t;
                    choices = trial;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    choices
}

/// Extracts the cheapest acyclic choice for `roots` (see the [module docs](self)).
pub fn extract(eg: &EG, roots: &[Id]) -> Option<Choices> {
    let (choices, totals) = greedy(eg);
    dag_cost(eg, &choices, roots)?;
    let choices = improve(eg, choices, &totals, roots);
    dag_cost(eg, &choices, roots)?;
    Some(choices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analysis;
    use sinter_ir::Op;

    /// `relu(relu x) = relu x` puts `relu(C)` into its own class `C`: a self-loop that the
    /// extractor must never take, here and under the local improvement.
    #[test]
    fn cycles_are_never_extracted() {
        let mut eg = EG::new(Analysis::default());
        eg.analysis
            .inputs
            .insert("x".into(), TensorType::f32(&[2, 2]));
        let x = eg.add(Node::Input("x".into()));
        let r = eg.add(Node::op(Op::Relu {}, &[x]));
        let rr = eg.add(Node::op(Op::Relu {}, &[r]));
        let e = eg.add(Node::op(Op::Exp {}, &[rr]));
        eg.union(r, rr);
        // A second loop through two classes: exp(e) = r's class would make r -> e -> r.
        let ee = eg.add(Node::op(Op::Exp {}, &[e]));
        eg.union(ee, r);
        eg.rebuild();
        let c = eg.find(r);
        assert!(eg[c].len() >= 3, "the class holds relu x, relu C and exp e");
        let choices = extract(&eg, &[eg.find(e)]).expect("an acyclic choice exists");
        let order = reachable(&eg, &choices, &[eg.find(e)]).expect("acyclic");
        assert_eq!(order.len(), 3, "x, relu x, exp");
        assert_eq!(choices[&c], Node::op(Op::Relu {}, &[eg.find(x)]));

        // A class whose only members are cyclic has no extraction at all.
        let mut eg = EG::new(Analysis::default());
        eg.analysis.inputs.insert("x".into(), TensorType::f32(&[2]));
        let x = eg.add(Node::Input("x".into()));
        let a = eg.add(Node::op(Op::Neg {}, &[x]));
        let b = eg.add(Node::op(Op::Neg {}, &[a]));
        let mut looped = choices_of(&eg);
        looped.insert(eg.find(a), Node::op(Op::Neg {}, &[eg.find(b)]));
        looped.insert(eg.find(b), Node::op(Op::Neg {}, &[eg.find(a)]));
        assert!(reachable(&eg, &looped, &[eg.find(b)]).is_none());
        assert!(dag_cost(&eg, &looped, &[eg.find(b)]).is_none());
    }

    fn choices_of(eg: &EG) -> Choices {
        eg.classes().map(|c| (c.id, c.nodes[0].clone())).collect()
    }
}
