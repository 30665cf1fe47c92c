//! Exact extraction by integer linear programming (cargo feature `ilp`).
//!
//! egg's own `LpExtractor` sits behind egg's `lp` feature, which depends on `good_lp` with its
//! default features, and those pull in `coin_cbc` (bindings to the CBC C library); a
//! dependent crate cannot switch a dependency's default features off, so `LpExtractor` cannot
//! be built without CBC. This module builds the same kind of model itself, on `good_lp` with
//! only the `microlp` solver (pure Rust):
//!
//! - a binary `x[c, n]` per e-node `n` of each e-class `c` reachable from the roots;
//! - every root chooses exactly one e-node; every class chooses at most one;
//! - a chosen e-node's children choose one: `x[c, n] <= sum x[k, *]` for each child `k`;
//! - the objective is the sum of the chosen e-nodes' costs ([`crate::extract::enode_cost`]):
//!   each class is paid once however many parents share it, which is the DAG cost that
//!   [`crate::extract::dag_cost`] measures;
//! - classes that every solution contains with a single candidate (the roots and, below a
//!   forced class with one candidate, its children) are constants, not variables, which
//!   leaves variables only where there is a choice;
//! - acyclicity: an e-node that is its own child is never chosen, and for every edge inside a
//!   strongly connected component of the class graph (the only places a cycle can close) a
//!   real order variable enforces `o[c] >= o[k] + 1` when `x[c, n]` is chosen (big-M with `M`
//!   the number of classes), so the chosen classes have a topological order.
//!
//! The greedy extraction ([`crate::extract::extract`]) is given to the solver as its initial
//! solution, so a time-limited solve never returns anything worse than greedy; the result
//! says whether the solver proved optimality.

use crate::analysis::EG;
use crate::extract::{self, Choices};
use crate::lang::Node;
use egg::{Id, Language};
use good_lp::solvers::{WithInitialSolution, WithTimeLimit};
use good_lp::{
    Expression, ProblemVariables, Solution, SolutionStatus, SolverModel, Variable, variable,
};
use std::collections::HashMap;
use std::time::Duration;

/// An exact extraction.
#[derive(Clone, Debug)]
pub struct Exact {
    /// The chosen e-node of each chosen class.
    pub choices: Choices,
    /// Its DAG cost (ns).
    pub cost: f64,
    /// True when the solver proved the choice optimal (false: the time limit stopped it).
    pub optimal: bool,
    /// Binary variables of the model.
    pub variables: usize,
    /// The classes that needed order variables (members of cycles in the class graph).
    pub ordered: usize,
}

/// Classes reachable from `roots` through any e-node, in discovery order.
fn reachable_classes(eg: &EG, roots: &[Id]) -> Vec<Id> {
    let mut seen: HashMap<Id, ()> = HashMap::new();
    let mut order = Vec::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    while let Some(c) = stack.pop() {
        if seen.insert(c, ()).is_some() {
            continue;
        }
        order.push(c);
        for n in eg[c].iter() {
            stack.extend(n.children().iter().map(|&k| eg.find(k)));
        }
    }
    order
}

/// Strongly connected components of the graph `succ` (Kosaraju, iterative); returns each
/// vertex's component number.
fn components(succ: &[Vec<usize>]) -> Vec<usize> {
    let n = succ.len();
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (v, ks) in succ.iter().enumerate() {
        for &k in ks {
            pred[k].push(v);
        }
    }
    // Pass 1: vertices by finishing time.
    let mut done = vec![false; n];
    let mut finish = Vec::with_capacity(n);
    for s in 0..n {
        if done[s] {
            continue;
        }
        done[s] = true;
        let mut stack = vec![(s, 0usize)];
        while let Some(&mut (v, ref mut i)) = stack.last_mut() {
            if let Some(&k) = succ[v].get(*i) {
                *i += 1;
                if !done[k] {
                    done[k] = true;
                    stack.push((k, 0));
                }
            } else {
                finish.push(v);
                stack.pop();
            }
        }
    }
    // Pass 2: on the reversed graph, in reverse finishing order.
    let mut comp = vec![usize::MAX; n];
    let mut next = 0;
    for &s in finish.iter().rev() {
        if comp[s] != usize::MAX {
            continue;
        }
        comp[s] = next;
        let mut stack = vec![s];
        while let Some(v) = stack.pop() {
            for &k in &pred[v] {
                if comp[k] == usize::MAX {
                    comp[k] = next;
                    stack.push(k);
                }
            }
        }
        next += 1;
    }
    comp
}

/// Extracts a minimum-DAG-cost acyclic choice for `roots` (see the [module docs](self)),
/// stopping the solver after `time_limit`. `None` when the solver fails.
pub fn extract(eg: &EG, roots: &[Id], time_limit: Duration) -> Option<Exact> {
    let roots: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    let classes = reachable_classes(eg, &roots);
    let index: HashMap<Id, usize> = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    // Candidate e-nodes per class (not their own child), with canonical children.
    let nodes: Vec<Vec<(Node, Vec<usize>)>> = classes
        .iter()
        .map(|&c| {
            eg[c]
                .iter()
                .map(|n| {
                    let kids: Vec<usize> =
                        n.children().iter().map(|&k| index[&eg.find(k)]).collect();
                    (n.clone().map_children(|k| eg.find(k)), kids)
                })
                .filter(|(_, kids)| !kids.contains(&index[&c]))
                .collect()
        })
        .collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|ns| {
            let mut v: Vec<usize> = ns.iter().flat_map(|(_, k)| k.iter().copied()).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let comp = components(&succ);
    let mut comp_size: HashMap<usize, usize> = HashMap::new();
    for &k in &comp {
        *comp_size.entry(k).or_default() += 1;
    }
    let cyclic = |i: usize| comp_size[&comp[i]] > 1;

    // Forced classes: the roots, and the children of a forced class with one candidate. A
    // forced class with one candidate is chosen in every solution: no variable.
    let mut forced = vec![false; classes.len()];
    let mut stack: Vec<usize> = roots.iter().map(|r| index[r]).collect();
    while let Some(i) = stack.pop() {
        if !forced[i] {
            forced[i] = true;
            if let [(_, kids)] = nodes[i].as_slice() {
                stack.extend(kids.iter().copied());
            }
        }
    }
    let fixed: Vec<bool> = (0..classes.len())
        .map(|i| forced[i] && nodes[i].len() == 1)
        .collect();

    let mut vars = ProblemVariables::new();
    let x: Vec<Vec<Option<Variable>>> = nodes
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            ns.iter()
                .map(|_| (!fixed[i]).then(|| vars.add(variable().binary())))
                .collect()
        })
        .collect();
    let xe = |i: usize, j: usize| -> Expression {
        x[i][j].map_or_else(|| Expression::from(1.0), Expression::from)
    };
    let big_m = classes.len() as f64 + 1.0;
    let order: Vec<Option<Variable>> = (0..classes.len())
        .map(|i| cyclic(i).then(|| vars.add(variable().min(0.0).max(big_m - 1.0))))
        .collect();
    let mut objective = Expression::from(0.0);
    for (i, ns) in nodes.iter().enumerate() {
        for (j, (n, _)) in ns.iter().enumerate() {
            if let Some(v) = x[i][j] {
                objective += extract::enode_cost(eg, classes[i], n) * v;
            }
        }
    }
    let chosen = |i: usize| -> Expression {
        (0..nodes[i].len()).fold(Expression::from(0.0), |e, j| e + xe(i, j))
    };

    // Initial solution: the greedy extraction.
    let greedy = extract::extract(eg, &roots)?;
    let present = extract::reachable(eg, &greedy, &roots)?;
    let position: HashMap<Id, usize> = present.iter().enumerate().map(|(p, &c)| (c, p)).collect();
    let mut start: Vec<(Variable, f64)> = Vec::new();
    for (i, ns) in nodes.iter().enumerate() {
        let pick = position
            .get(&classes[i])
            .and_then(|_| greedy.get(&classes[i]));
        for (j, (n, _)) in ns.iter().enumerate() {
            if let Some(v) = x[i][j] {
                start.push((v, f64::from(u8::from(pick == Some(n)))));
            }
        }
        if let Some(o) = order[i] {
            start.push((o, position.get(&classes[i]).map_or(0.0, |&p| p as f64)));
        }
    }

    let mut model = vars
        .minimise(objective)
        .using(good_lp::microlp)
        .with_time_limit(time_limit.as_secs_f64())
        .with_initial_solution(start);
    for &r in &roots {
        if !fixed[index[&r]] {
            model.add_constraint(chosen(index[&r]).eq(1.0));
        }
    }
    for (i, ns) in nodes.iter().enumerate() {
        if !fixed[i] {
            model.add_constraint(chosen(i).leq(1.0));
        }
        for (j, (_, kids)) in ns.iter().enumerate() {
            for &k in kids {
                if !fixed[k] {
                    model.add_constraint((xe(i, j) - chosen(k)).leq(0.0));
                }
                if let (Some(oi), Some(ok)) = (order[i], order[k])
                    && comp[i] == comp[k]
                {
                    // o_i - o_k >= 1 - M (1 - x)
                    model.add_constraint(
                        (Expression::from(oi) - ok - big_m * xe(i, j)).geq(1.0 - big_m),
                    );
                }
            }
        }
    }
    let solution = model.solve().ok()?;
    let optimal = matches!(solution.status(), SolutionStatus::Optimal);
    let mut choices = Choices::new();
    for (i, ns) in nodes.iter().enumerate() {
        let on = |j: usize| x[i][j].is_none_or(|v| solution.value(v) > 0.5);
        if let Some(j) = (0..ns.len()).find(|&j| on(j)) {
            choices.insert(classes[i], ns[j].0.clone());
        }
    }
    let cost = extract::dag_cost(eg, &choices, &roots)?;
    Some(Exact {
        choices,
        cost,
        optimal,
        variables: x.iter().flatten().flatten().count(),
        ordered: order.iter().flatten().count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_find_cycles() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 alone.
        let succ = vec![vec![1], vec![2], vec![0, 3], vec![]];
        let c = components(&succ);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_ne!(c[2], c[3]);
    }

    /// The cyclic e-graph of `extract`'s test: relu(relu x) = relu x puts a self-loop in a
    /// class, and exp(exp(relu(relu x))) unioned with relu x closes a loop through two classes.
    #[test]
    fn exact_extraction_is_acyclic_and_cheapest() {
        use crate::analysis::Analysis;
        use sinter_ir::{Op, TensorType};
        let mut eg = EG::new(Analysis::default());
        eg.analysis
            .inputs
            .insert("x".into(), TensorType::f32(&[2, 2]));
        let x = eg.add(Node::Input("x".into()));
        let r = eg.add(Node::op(Op::Relu {}, &[x]));
        let rr = eg.add(Node::op(Op::Relu {}, &[r]));
        let e = eg.add(Node::op(Op::Exp {}, &[rr]));
        eg.union(r, rr);
        let ee = eg.add(Node::op(Op::Exp {}, &[e]));
        eg.union(ee, r);
        eg.rebuild();
        let root = eg.find(e);
        let exact = extract(&eg, &[root], Duration::from_secs(10)).expect("solves");
        assert!(exact.optimal);
        assert!(
            exact.ordered >= 2,
            "the two-class loop needs order variables"
        );
        let order = extract::reachable(&eg, &exact.choices, &[root]).expect("acyclic");
        assert_eq!(order.len(), 3, "x, relu x, exp");
        let greedy = extract::extract(&eg, &[root]).unwrap();
        let greedy_cost = extract::dag_cost(&eg, &greedy, &[root]).unwrap();
        assert!((exact.cost - greedy_cost).abs() < 1e-9);
    }
}
