//! Equality-saturation optimiser (egg): verified rewrite rules, cost model, DAG-aware extraction.
//!
//! [`optimize`] loads an IR [`Graph`] into an e-graph ([`convert`]), saturates it with the
//! rules of [`rules`] under node, iteration and time limits, extracts the cheapest equivalent
//! graph with a DAG-aware extractor ([`extract`], priced by [`cost`]) and writes it back as an
//! IR graph that keeps the original value names where values survive. The [`Report`] says why
//! saturation stopped, how big the e-graph got, which rules changed the extracted graph and
//! the estimated cost before and after; [`explain`] details the rewritten values.
//!
//! Saturation runs in two phases: first algebra and batch-norm folding (so constants are
//! folded and batch norms absorbed), then every rule. Merging sibling convolutions therefore
//! sees the folded weights, and each sibling group is merged once.
//!
//! Constant folding evaluates with the reference interpreter (`sinter_interp::eval_op`), which
//! makes `sinter-interp` a dependency of this crate: a folded constant is exactly what the
//! unoptimised graph computes. Every rule is also checked on random instances through the
//! interpreter ([`verify`]).
//!
//! **Fusion.** The IR has no fused op yet, so `conv/gemm/matmul + bias + activation` is a
//! rewrite-local e-node ([`lang::Node::Fused`]) priced as one kernel and written back as its
//! primitives; [`Report::fusions`] lists the groups for the JIT. What the IR would need: a
//! `fused_linear` op (or `conv2d`/`gemm` with an `act` attribute: none, relu, sigmoid, tanh,
//! leaky_relu{alpha}, prelu with the slope as an extra input).
//!
//! **Exact extraction.** With the cargo feature `ilp`, [`Options::exact`] replaces the greedy
//! extractor by an integer linear program solved with `good_lp`'s pure-Rust `microlp` backend
//! (module `ilp`; egg's own `LpExtractor` cannot be built without the CBC C library). The greedy
//! choice is the solver's starting point, so the exact extraction is never worse.

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod extract;
#[cfg(feature = "ilp")]
pub mod ilp;
pub mod lang;
pub mod rules;
pub mod verify;

use analysis::EG;
use convert::FusionGroup;
use egg::{Id, Language};
use sinter_ir::{Graph, NodeKind, Tensor, TensorType};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

/// Why optimisation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A frozen parameter's value does not fit it.
    #[error("freeze: {0}")]
    Freeze(String),
    /// Extraction found no acyclic choice (a bug: the original graph is always one).
    #[error("extraction found no acyclic graph")]
    Cycle,
    /// Writing the extracted graph failed (a bug in a rule or in the writer).
    #[error("writing the optimised graph: {0}")]
    Emit(String),
    /// Exact extraction was asked for but is not available or failed.
    #[error("exact extraction: {0}")]
    Exact(String),
}

/// Optimiser settings. The defaults keep each seed model well under a second.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop when the e-graph has this many e-nodes.
    pub node_limit: usize,
    /// Stop after this many iterations (per phase).
    pub iter_limit: usize,
    /// Stop after this much time (both phases together).
    pub time_limit: Duration,
    /// Parameters to treat as constants with these values (inference mode).
    pub freeze: HashMap<String, Tensor>,
    /// Largest tensor (elements) that constant folding computes.
    pub fold_limit: usize,
    /// Only the rules with these names (all when `None`).
    pub rules: Option<Vec<String>>,
    /// Extract exactly by integer linear programming, stopping the solver after this long
    /// (needs the cargo feature `ilp`; see the `ilp` module). `None`: the greedy DAG-aware
    /// extractor.
    pub exact: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            node_limit: 20_000,
            iter_limit: 16,
            time_limit: Duration::from_millis(500),
            freeze: HashMap::new(),
            fold_limit: 1 << 22,
            rules: None,
            exact: None,
        }
    }
}

/// What an optimisation did. `Display` prints it; [`Report::render`] can leave out timings.
#[derive(Clone, Debug)]
pub struct Report {
    /// Why each saturation phase stopped.
    pub stop: Vec<(String, String)>,
    /// Iterations over both phases.
    pub iterations: usize,
    /// E-nodes at the end.
    pub enodes: usize,
    /// E-classes at the end.
    pub eclasses: usize,
    /// Saturation plus extraction time.
    pub time: Duration,
    /// Rule applications that changed the e-graph, by rule.
    pub applied: BTreeMap<String, usize>,
    /// Rules that changed the extracted graph, with the number of values each changed: the
    /// rule that made a value's chosen e-node (for a fused node, also the maker of its linear
    /// op), or, where the chosen e-node is an original one standing in for a replaced value,
    /// every rule whose union reached that class (an over-approximation: egg does not record
    /// which union made the difference without explanations).
    pub changed: BTreeMap<String, usize>,
    /// Estimated cost (ns) of the input graph.
    pub cost_before: f64,
    /// Estimated cost (ns) of the extracted graph (fused groups priced as one kernel).
    pub cost_after: f64,
    /// The fused linear + activation groups of the result.
    pub fusions: Vec<FusionGroup>,
    /// How the graph was extracted: `None` for the greedy extractor, `Some(true)` for an exact
    /// extraction proved optimal, `Some(false)` for one stopped by its time limit.
    pub exact: Option<bool>,
}

impl Report {
    /// The report as text; `timings` adds the time (left out of snapshots).
    pub fn render(&self, timings: bool) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let stop: Vec<String> = self.stop.iter().map(|(p, r)| format!("{p}: {r}")).collect();
        let _ = writeln!(s, "stop: {}", stop.join("; "));
        let _ = writeln!(
            s,
            "iterations: {}, e-nodes: {}, e-classes: {}",
            self.iterations, self.enodes, self.eclasses
        );
        if timings {
            let _ = writeln!(s, "time: {:.2} ms", self.time.as_secs_f64() * 1e3);
        }
        let _ = writeln!(
            s,
            "cost: {:.0} ns -> {:.0} ns ({:.1}%)",
            self.cost_before,
            self.cost_after,
            if self.cost_before > 0.0 {
                100.0 * (self.cost_after - self.cost_before) / self.cost_before
            } else {
                0.0
            }
        );
        let changed: Vec<String> = self
            .changed
            .iter()
            .map(|(r, n)| format!("{r} x{n}"))
            .collect();
        let _ = writeln!(
            s,
            "rules in the result: {}",
            if changed.is_empty() {
                "none".to_string()
            } else {
                changed.join(", ")
            }
        );
        for f in &self.fusions {
            let _ = writeln!(s, "fused: %{} -> %{}", f.linear, f.act);
        }
        match self.exact {
            Some(true) => s.push_str("extraction: exact (ILP), optimal\n"),
            Some(false) => s.push_str("extraction: exact (ILP), stopped by its time limit\n"),
            None => {}
        }
        s
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}

/// Estimated cost of a graph: every op that the outputs need, once.
pub fn graph_cost(g: &Graph) -> f64 {
    let nodes = g.nodes();
    let mut live = vec![false; nodes.len()];
    for v in g.outputs() {
        live[v.node.index()] = true;
    }
    let mut total = 0.0;
    for i in (0..nodes.len()).rev() {
        if !live[i] {
            continue;
        }
        for v in &nodes[i].inputs {
            live[v.node.index()] = true;
        }
        if let NodeKind::Op(op) = &nodes[i].kind {
            let ins: Vec<&TensorType> = nodes[i].inputs.iter().map(|v| g.ty(*v)).collect();
            let outs: Vec<TensorType> = nodes[i].outputs.iter().map(|o| o.ty.clone()).collect();
            total += cost::op_cost(op, &ins, &outs);
        }
    }
    total
}

/// One rewritten value, for [`explain`].
#[derive(Clone, Debug)]
pub struct Change {
    /// The value's name in the optimised graph (or the original name, for removed values).
    pub name: String,
    /// The original e-node (as text), if the class had one.
    pub before: Option<String>,
    /// The chosen e-node (as text), if the value is still computed.
    pub after: Option<String>,
    /// The rule that created the chosen e-node.
    pub rule: Option<String>,
    /// Cost of the original e-node, ns.
    pub cost_before: f64,
    /// Cost of the chosen e-node, ns.
    pub cost_after: f64,
}

struct Outcome {
    graph: Graph,
    report: Report,
    changes: Vec<Change>,
}

fn rule_set(opts: &Options) -> Vec<&'static rules::Rule> {
    rules::all()
        .into_iter()
        .filter(|r| {
            opts.rules
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == r.name))
        })
        .collect()
}

/// Runs one saturation phase; returns the e-graph and appends to the report.
fn saturate(
    eg: EG,
    rules: &[&'static rules::Rule],
    opts: &Options,
    deadline: Instant,
    phase: &str,
    report: &mut Report,
) -> EG {
    let rewrites: Vec<egg::Rewrite<lang::Node, analysis::Analysis>> =
        rules.iter().map(|r| rules::Glue::rewrite(r)).collect();
    let left = deadline.saturating_duration_since(Instant::now());
    let runner = egg::Runner::default()
        .with_egraph(eg)
        .with_node_limit(opts.node_limit)
        .with_iter_limit(opts.iter_limit)
        .with_time_limit(left.max(Duration::from_millis(1)));
    let runner = runner.run(&rewrites);
    let stop = match &runner.stop_reason {
        Some(egg::StopReason::Saturated) => "saturated".to_string(),
        Some(egg::StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(egg::StopReason::NodeLimit(n)) => {
            format!("node limit ({}; reached {n})", opts.node_limit)
        }
        Some(egg::StopReason::TimeLimit(_)) => "time limit".to_string(),
        Some(egg::StopReason::Other(s)) => s.clone(),
        None => "not run".to_string(),
    };
    report.stop.push((phase.to_string(), stop));
    report.iterations += runner.iterations.len();
    for it in &runner.iterations {
        for (rule, n) in &it.applied {
            *report.applied.entry(rule.to_string()).or_default() += n;
        }
    }
    runner.egraph
}

#[cfg(feature = "ilp")]
fn exact(eg: &EG, roots: &[Id], limit: Duration) -> Result<(extract::Choices, bool), RewriteError> {
    let e = ilp::extract(eg, roots, limit)
        .ok_or_else(|| RewriteError::Exact("the solver found no solution".to_string()))?;
    Ok((e.choices, e.optimal))
}

#[cfg(not(feature = "ilp"))]
fn exact(
    _eg: &EG,
    _roots: &[Id],
    _limit: Duration,
) -> Result<(extract::Choices, bool), RewriteError> {
    Err(RewriteError::Exact(
        "sinter-rewrite was built without the `ilp` feature".to_string(),
    ))
}

fn canon(eg: &EG, n: &lang::Node) -> lang::Node {
    n.clone().map_children(|c| eg.find(c))
}

fn run(g: &Graph, opts: &Options) -> Result<Outcome, RewriteError> {
    let start = Instant::now();
    let deadline = start + opts.time_limit;
    let mut loaded = convert::load(g, &opts.freeze, opts.fold_limit)?;
    let mut report = Report {
        stop: Vec::new(),
        iterations: 0,
        enodes: 0,
        eclasses: 0,
        time: Duration::ZERO,
        applied: BTreeMap::new(),
        changed: BTreeMap::new(),
        cost_before: graph_cost(g),
        cost_after: 0.0,
        fusions: Vec::new(),
        exact: None,
    };
    let all = rule_set(opts);
    let first: Vec<&'static rules::Rule> = all
        .iter()
        .copied()
        .filter(|r| r.name.starts_with("algebra/") || r.name.starts_with("bn_fold/"))
        .collect();
    let eg = std::mem::replace(&mut loaded.egraph, EG::new(analysis::Analysis::default()));
    let eg = saturate(eg, &first, opts, deadline, "fold", &mut report);
    let mut eg = saturate(eg, &all, opts, deadline, "all", &mut report);
    eg.rebuild();
    report.enodes = eg.total_number_of_nodes();
    report.eclasses = eg.number_of_classes();

    let roots: Vec<Id> = loaded.roots.iter().map(|&r| eg.find(r)).collect();
    let mut wanted = roots.clone();
    wanted.extend(loaded.inputs.iter().map(|i| eg.find(i.0)));
    let choices = match opts.exact {
        None => extract::extract(&eg, &wanted).ok_or(RewriteError::Cycle)?,
        Some(limit) => {
            let (choices, optimal) = exact(&eg, &wanted, limit)?;
            report.exact = Some(optimal);
            choices
        }
    };
    report.cost_after = extract::dag_cost(&eg, &choices, &roots).ok_or(RewriteError::Cycle)?;
    let (graph, fusions) =
        convert::emit(&loaded, &loaded.roots, &loaded.output_names, &eg, &choices)?;
    report.fusions = fusions;
    for (v, orig) in graph.outputs().iter().zip(g.outputs()) {
        if graph.ty(*v) != g.ty(*orig) {
            return Err(RewriteError::Emit(format!(
                "output %{} changed type",
                g.value_name(*orig)
            )));
        }
    }

    // Which rules made the chosen e-nodes, and the per-value changes.
    let originals: HashMap<lang::Node, Id> = loaded
        .originals
        .iter()
        .map(|(n, c)| (canon(&eg, n), eg.find(*c)))
        .collect();
    let mut made_by: HashMap<lang::Node, String> = HashMap::new();
    for (n, r) in &eg.analysis.provenance {
        made_by
            .entry(canon(&eg, n))
            .or_insert_with(|| r.to_string());
    }
    let order = extract::reachable(&eg, &choices, &wanted).ok_or(RewriteError::Cycle)?;
    let present: HashSet<Id> = order.iter().copied().collect();
    let mut changes = Vec::new();
    let class_name = |c: Id| {
        loaded
            .values
            .iter()
            .find(|v| eg.find(v.0) == c)
            .map(|v| v.1.clone())
    };
    // A class changed when its chosen e-node is new or an original e-node in it is not
    // chosen.
    let mut credited: HashSet<(Id, String)> = HashSet::new();
    let mut changed_classes: HashSet<Id> = HashSet::new();
    for &c in &order {
        let chosen = &choices[&c];
        let replaced = originals.iter().any(|(n, oc)| *oc == c && n != chosen);
        if originals.contains_key(chosen) && !replaced {
            continue;
        }
        changed_classes.insert(c);
        let rule = if originals.contains_key(chosen) {
            None
        } else {
            made_by.get(chosen).cloned()
        };
        if let Some(r) = &rule {
            credited.insert((c, r.clone()));
        }
        // A fused node stands for its linear op: credit whoever made that op too (a merge).
        if let lang::Node::Fused(f, ch) = chosen {
            let n = ch.len() - f.act.extra();
            let base = lang::Node::op(f.base.clone(), &ch[..n]);
            if !originals.contains_key(&base)
                && let Some(r) = made_by.get(&base)
            {
                credited.insert((c, r.clone()));
            }
        }
        if matches!(chosen, lang::Node::Const(_)) && !originals.values().any(|oc| *oc == c) {
            continue; // a new constant (folded weights): credited, not listed
        }
        let before = originals
            .iter()
            .find(|(n, oc)| **oc == c && *n != chosen)
            .map(|(n, _)| n);
        changes.push(Change {
            name: class_name(c).unwrap_or_else(|| format!("(new e-class {c})")),
            before: before.map(ToString::to_string),
            after: Some(chosen.to_string()),
            rule,
            cost_before: before.map_or(0.0, |n| extract::enode_cost(&eg, c, n)),
            cost_after: extract::enode_cost(&eg, c, chosen),
        });
    }
    for (id, r) in &eg.analysis.unions {
        let c = eg.find(*id);
        // Unions matter where an original e-node now stands for a replaced one (relu(relu x)
        // = relu x); where a new e-node was chosen, its maker gets the credit.
        if changed_classes.contains(&c) && originals.contains_key(&choices[&c]) {
            credited.insert((c, r.to_string()));
        }
    }
    for (_, r) in credited {
        *report.changed.entry(r).or_default() += 1;
    }
    for (n, c) in &originals {
        if !present.contains(c) && !matches!(n, lang::Node::Input(_) | lang::Node::Const(_)) {
            changes.push(Change {
                name: class_name(*c).unwrap_or_default(),
                before: Some(n.to_string()),
                after: None,
                rule: None,
                cost_before: extract::enode_cost(&eg, *c, n),
                cost_after: 0.0,
            });
        }
    }
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    report.time = start.elapsed();
    Ok(Outcome {
        graph,
        report,
        changes,
    })
}

/// Optimises `g`: saturation, DAG-aware extraction, write-back. See the [crate docs](self).
pub fn optimize(g: &Graph, opts: &Options) -> Result<(Graph, Report), RewriteError> {
    let o = run(g, opts)?;
    Ok((o.graph, o.report))
}

/// Optimises `g` and explains the result: the report, then each rewritten value with the
/// rule that produced it and its cost before and after, and the values no longer computed.
/// Returns the explanation and the optimised graph.
pub fn explain(g: &Graph, opts: &Options) -> Result<(String, Graph), RewriteError> {
    use std::fmt::Write;
    let o = run(g, opts)?;
    let mut s = o.report.render(false);
    let _ = writeln!(s, "rewritten values:");
    for c in &o.changes {
        match (&c.after, &c.before) {
            (Some(after), before) => {
                let _ = writeln!(
                    s,
                    "  %{}: {} -> {} by {}: {:.0} ns -> {:.0} ns",
                    c.name,
                    before.as_deref().unwrap_or("(new)"),
                    after,
                    c.rule.as_deref().unwrap_or("?"),
                    c.cost_before,
                    c.cost_after
                );
            }
            (None, Some(before)) => {
                let _ = writeln!(
                    s,
                    "  %{}: {} removed: {:.0} ns saved",
                    c.name, before, c.cost_before
                );
            }
            (None, None) => {}
        }
    }
    Ok((s, o.graph))
}
