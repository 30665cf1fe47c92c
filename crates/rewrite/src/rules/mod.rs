//! Rewrite rules as named data, one module per topic, and the glue that runs them in egg.
//!
//! Almost every rule of a tensor optimiser depends on attributes, shapes or constant values
//! (a 1x1 stride-1 convolution, batch-norm statistics that are constants, two convolutions
//! with the same padding), which egg's `Pattern`s cannot express. So a [`Rule`] is a plain
//! Rust function `find(egraph, class, enode)` that looks at one e-node (and, through the
//! analysis, its operands' types and values) and returns zero or more *edits*: closures that,
//! given the mutable e-graph, add the right-hand side and return the e-class to union with
//! the matched one. The glue ([`Glue`]) implements egg's `Searcher` and `Applier` for a rule:
//! searching stashes the edits and hands egg one substitution per edit; applying runs them.
//! Multi-output rules (merging siblings into one op plus a `split`) union several classes
//! from one edit, which is what egg's `MultiPattern` does for patterns.
//!
//! The discipline is Cranelift's: the right side is never worse than the left on the cost
//! model's terms unless the extractor is meant to choose (merging, enlarging); there is no
//! blanket commutativity or associativity. Every rule states a relative tolerance and a
//! generator of random instances, and [`crate::verify`] checks it on the interpreter.

pub mod algebra;
pub mod backward;
pub mod bn_fold;
pub mod bottleneck;
pub mod fusion;
pub mod winograd;

use crate::analysis::EG;
use crate::lang::Node;
use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use sinter_ir::{Graph, IrError, Op, Tensor, TensorType, infer::infer};
use std::sync::{Arc, Mutex};

/// A deferred change: adds the right-hand side and returns the class equal to the match.
pub type Edit = Box<dyn FnOnce(&mut EG) -> Option<Id> + Send>;

/// A small deterministic random source for rule instances (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Uniform in `[lo, hi)`.
    pub fn float(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    /// A tensor of the given shape, elements uniform in `[lo, hi)`.
    pub fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.float(lo, hi)).collect())
    }
}

/// A rewrite rule. See the [module docs](self).
pub struct Rule {
    /// Unique name, `topic/what`.
    pub name: &'static str,
    /// What it does and when it applies.
    pub doc: &'static str,
    /// Relative tolerance of the random-instance check (0 for exact rules).
    pub tolerance: f32,
    /// The matcher: edits for one e-node of one e-class.
    pub find: fn(&EG, Id, &Node) -> Vec<Edit>,
    /// A random graph containing the left-hand side, for the verification harness.
    pub sample: fn(&mut Rng) -> Result<Graph, IrError>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every rule of every topic.
pub fn all() -> Vec<&'static Rule> {
    let mut v: Vec<&'static Rule> = Vec::new();
    v.extend(algebra::RULES.iter());
    v.extend(backward::RULES.iter());
    v.extend(bn_fold::RULES.iter());
    v.extend(bottleneck::RULES.iter());
    v.extend(fusion::RULES.iter());
    v.extend(winograd::RULES.iter());
    v
}

/// egg's `Searcher` and `Applier` for one [`Rule`] (see the [module docs](self)).
pub struct Glue {
    rule: &'static Rule,
    stash: Arc<Mutex<Vec<Option<Edit>>>>,
    var: Var,
}

impl Glue {
    /// The egg rewrite of a rule.
    pub fn rewrite(rule: &'static Rule) -> Rewrite<Node, crate::analysis::Analysis> {
        let stash = Arc::new(Mutex::new(Vec::new()));
        let var: Var = "?edit".parse().expect("variable name");
        let searcher = Glue {
            rule,
            stash: stash.clone(),
            var,
        };
        let applier = Glue { rule, stash, var };
        Rewrite::new(rule.name, searcher, applier).expect("rule glue binds its variable")
    }
}

impl Searcher<Node, crate::analysis::Analysis> for Glue {
    fn search_eclass_with_limit(
        &self,
        egraph: &EG,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Node>> {
        let mut substs = Vec::new();
        let mut stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
        for node in egraph[eclass].iter() {
            for edit in (self.rule.find)(egraph, eclass, node) {
                if substs.len() >= limit {
                    break;
                }
                let mut s = Subst::with_capacity(1);
                s.insert(self.var, Id::from(stash.len()));
                stash.push(Some(edit));
                substs.push(s);
            }
        }
        if substs.is_empty() {
            return None;
        }
        Some(SearchMatches {
            eclass,
            substs,
            ast: None,
        })
    }

    fn search_with_limit(&self, egraph: &EG, limit: usize) -> Vec<SearchMatches<'_, Node>> {
        self.stash.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut out = Vec::new();
        let mut left = limit;
        for class in egraph.classes() {
            if left == 0 {
                break;
            }
            if let Some(m) = self.search_eclass_with_limit(egraph, class.id, left) {
                left -= m.substs.len();
                out.push(m);
            }
        }
        out
    }

    fn vars(&self) -> Vec<Var> {
        vec![self.var]
    }
}

impl Applier<Node, crate::analysis::Analysis> for Glue {
    fn apply_one(
        &self,
        egraph: &mut EG,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let edit = subst.get(self.var).and_then(|i| {
            self.stash
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(usize::from(*i))
                .and_then(Option::take)
        });
        let Some(edit) = edit else { return vec![] };
        let size = (egraph.total_size(), egraph.number_of_classes());
        egraph.analysis.current_rule = Some(rule_name);
        let new = edit(egraph);
        egraph.analysis.current_rule = None;
        let mut changed = (egraph.total_size(), egraph.number_of_classes()) != size;
        if let Some(new) = new
            && egraph.union(eclass, new)
        {
            changed = true;
            egraph.analysis.unions.push((eclass, rule_name));
        }
        if changed { vec![eclass] } else { vec![] }
    }

    fn vars(&self) -> Vec<Var> {
        vec![self.var]
    }
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the topic modules.

/// The data type and shape of a single-output class.
pub fn ty(eg: &EG, id: Id) -> &TensorType {
    eg[id].data.ty()
}

/// The value of a class, when known.
pub fn value(eg: &EG, id: Id) -> Option<&Tensor> {
    eg[id].data.tensor()
}

/// True when the class is a single value (not a multi-output tuple).
pub fn single(eg: &EG, id: Id) -> bool {
    eg[id].data.tys.len() == 1
}

/// The op e-nodes of a class, with their children.
pub fn ops(eg: &EG, id: Id) -> impl Iterator<Item = (&Op, &[Id])> {
    eg[id].iter().filter_map(Node::as_op)
}

/// Adds an op after checking its types; `None` when the op does not type-check (the edit
/// then does nothing). Every rule adds ops through here, so a rule can never make the
/// analysis see an ill-typed node.
pub fn add_op(eg: &mut EG, op: Op, ch: &[Id]) -> Option<Id> {
    let tys: Vec<&TensorType> = ch.iter().map(|c| eg[*c].data.ty()).collect();
    if ch.iter().any(|c| eg[*c].data.tys.len() != 1) || infer(&op, &tys).is_err() {
        return None;
    }
    Some(eg.add(Node::op(op, ch)))
}

/// Adds (or finds) a constant.
pub fn add_const(eg: &mut EG, t: Tensor) -> Id {
    let i = eg.analysis.intern_const(t);
    eg.add(Node::Const(i))
}

/// Output `i` of a multi-output class.
pub fn add_get(eg: &mut EG, i: usize, tuple: Id) -> Id {
    eg.add(Node::Get(i as u32, [tuple]))
}

/// True when every element of a known f32 value equals `v`.
pub fn all_equal(t: &Tensor, v: f32) -> bool {
    t.as_f32().is_some_and(|x| x.iter().all(|&y| y == v))
}

/// True when the class is a known `f32` value whose elements are all 0.
pub fn is_zero(eg: &EG, c: Id) -> bool {
    value(eg, c).is_some_and(|t| all_equal(t, 0.0))
}

/// `[C]` f32 elements of a known value of shape `[C]`.
pub fn vec_of(eg: &EG, id: Id, c: usize) -> Option<Vec<f32>> {
    let t = value(eg, id)?;
    (t.shape() == [c]).then(|| t.as_f32().map(<[f32]>::to_vec))?
}
