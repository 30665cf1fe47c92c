//! The e-class analysis: types, constness and (small) constant values.
//!
//! Every rule is conditioned on shapes, and the interesting ones (batch-norm folding, merging
//! convolutions) on constness, so each e-class carries
//!
//! - its output types, from `sinter_ir::infer::infer` (one per output; a multi-output op's
//!   class holds the tuple and [`Node::Get`] projects it);
//! - whether its value depends only on constants (frozen parameters count as constants;
//!   trainable parameters and data inputs do not);
//! - the value itself when every operand's value is known and the result has at most
//!   [`Analysis::fold_limit`] elements. Values are computed by `sinter_interp::eval_op`:
//!   constant folding evaluates with the reference interpreter, so a folded constant is by
//!   construction what the unoptimised graph would compute.
//!
//! Constants live in a side table ([`Analysis::consts`]) so e-nodes stay small and hashable;
//! folded values are deduplicated by content. The analysis also remembers which rule created
//! each e-node (its provenance), which the report uses to name the rules that changed the
//! extracted graph.

use crate::lang::Node;
use egg::{DidMerge, EGraph, Id, Symbol};
use sinter_ir::infer::infer;
use sinter_ir::{Category, Tensor, TensorData, TensorType};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The e-graph type of this crate.
pub type EG = EGraph<Node, Analysis>;

/// Per-class facts. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Data {
    /// Output types: one for ordinary values, several for a multi-output op's tuple.
    pub tys: SmallVec<[TensorType; 1]>,
    /// True when the value depends only on constants.
    pub constant: bool,
    /// The values (one per output), when known.
    pub value: Option<Arc<Vec<Tensor>>>,
}

impl Data {
    /// The single output type (the first, for a tuple).
    pub fn ty(&self) -> &TensorType {
        &self.tys[0]
    }

    /// The value of a single-output class, when known.
    pub fn tensor(&self) -> Option<&Tensor> {
        match &self.value {
            Some(v) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }
}

/// The analysis state: constant table, input types, fold limit and provenance.
#[derive(Debug)]
pub struct Analysis {
    /// Constants by index ([`Node::Const`]), each a one-element list: the same `Arc` is the
    /// value of its e-class ([`Data::value`]), so a constant is never copied in the e-graph.
    pub consts: Vec<Arc<Vec<Tensor>>>,
    /// Content hash to constant indices, for deduplicating folded values.
    const_index: HashMap<u64, Vec<u32>>,
    /// Types of graph inputs and parameters by name.
    pub inputs: HashMap<Symbol, TensorType>,
    /// Largest number of output elements a fold may compute.
    pub fold_limit: usize,
    /// The rule being applied, set by the rule glue while an edit runs.
    pub current_rule: Option<Symbol>,
    /// Which rule created an e-node (keys as created, not canonicalised).
    pub provenance: HashMap<Node, Symbol>,
    /// Classes that a rule's union changed, with the rule (ids as they were then).
    pub unions: Vec<(Id, Symbol)>,
    /// Keys of sibling groups already merged (see `rules::bottleneck`).
    pub merged: std::collections::HashSet<(Id, String)>,
}

impl Default for Analysis {
    fn default() -> Analysis {
        Analysis {
            consts: Vec::new(),
            const_index: HashMap::new(),
            inputs: HashMap::new(),
            fold_limit: 1 << 22,
            current_rule: None,
            provenance: HashMap::new(),
            unions: Vec::new(),
            merged: Default::default(),
        }
    }
}

/// Elements a content hash looks at, at most.
const HASH_SAMPLES: usize = 4096;

/// A content hash of a tensor: dtype, shape and the bits of up to [`HASH_SAMPLES`] evenly
/// spaced elements. It only picks candidates for deduplication, which [`same_bits`] then
/// confirms, so sampling is safe; it keeps a model's weights (VGG-16: 138 M floats) from
/// being hashed element by element.
pub fn tensor_hash(t: &Tensor) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.shape().hash(&mut h);
    let n = t.numel();
    let step = n.div_ceil(HASH_SAMPLES).max(1);
    match t.data() {
        TensorData::F32(v) => {
            0u8.hash(&mut h);
            for x in v.iter().step_by(step) {
                x.to_bits().hash(&mut h);
            }
        }
        TensorData::I64(v) => {
            1u8.hash(&mut h);
            for x in v.iter().step_by(step) {
                x.hash(&mut h);
            }
        }
        TensorData::Bool(v) => {
            2u8.hash(&mut h);
            for x in v.iter().step_by(step) {
                x.hash(&mut h);
            }
        }
    }
    h.finish()
}

/// Bitwise equality of tensors (NaN equals NaN with the same bits).
fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    a.shape() == b.shape()
        && match (a.data(), b.data()) {
            (TensorData::F32(x), TensorData::F32(y)) => {
                x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
            }
            _ => a.data() == b.data(),
        }
}

impl Analysis {
    /// Adds a constant to the table without deduplication (graph constants keep their
    /// identity, so that a graph round-trips node for node).
    pub fn push_const(&mut self, t: Tensor) -> u32 {
        let i = self.consts.len() as u32;
        self.const_index.entry(tensor_hash(&t)).or_default().push(i);
        self.consts.push(Arc::new(vec![t]));
        i
    }

    /// The index of a constant with exactly these contents, adding it if new.
    pub fn intern_const(&mut self, t: Tensor) -> u32 {
        let h = tensor_hash(&t);
        if let Some(is) = self.const_index.get(&h)
            && let Some(&i) = is
                .iter()
                .find(|&&i| same_bits(&self.consts[i as usize][0], &t))
        {
            return i;
        }
        self.push_const(t)
    }
}

/// Types, constness and value of a new e-node from its children's data.
fn make_data(egraph: &EG, enode: &Node) -> Data {
    let a = &egraph.analysis;
    match enode {
        Node::Input(name) => Data {
            tys: SmallVec::from_elem(a.inputs[name].clone(), 1),
            constant: false,
            value: None,
        },
        Node::Const(i) => {
            let v = a.consts[*i as usize].clone();
            Data {
                tys: SmallVec::from_elem(v[0].ty(), 1),
                constant: true,
                value: Some(v),
            }
        }
        Node::Get(i, [t]) => {
            let d = &egraph[*t].data;
            Data {
                tys: SmallVec::from_elem(d.tys[*i as usize].clone(), 1),
                constant: d.constant,
                value: d
                    .value
                    .as_ref()
                    .map(|v| Arc::new(vec![v[*i as usize].clone()])),
            }
        }
        Node::Fused(f, ch) => {
            let tys: Vec<&TensorType> = ch.iter().map(|c| egraph[*c].data.ty()).collect();
            let n = tys.len() - f.act.extra();
            let out = infer(&f.base, &tys[..n]).unwrap_or_else(|e| {
                panic!("a rule built an ill-typed fused `{}`: {e}", f.base.name())
            });
            Data {
                tys: out.into_iter().collect(),
                constant: ch.iter().all(|c| egraph[*c].data.constant),
                value: None,
            }
        }
        Node::Op(op, ch) => {
            let tys: Vec<&TensorType> = ch.iter().map(|c| egraph[*c].data.ty()).collect();
            let out = infer(op, &tys)
                .unwrap_or_else(|e| panic!("a rule built an ill-typed `{}`: {e}", op.name()));
            let constant = ch.iter().all(|c| egraph[*c].data.constant);
            let small = out.iter().map(TensorType::numel).sum::<usize>() <= a.fold_limit;
            // A Winograd filter transform of constant weights is computed by the runtime at
            // compile time (vectorised, and only for the tile size extraction keeps), so it
            // stays an op here; the cost model prices it as free (`extract::enode_cost`).
            let foldable = op.info().category != Category::Random
                && !matches!(op, sinter_ir::Op::WinogradFilter { .. });
            let value = if constant && small && foldable && !ch.is_empty() {
                let args: Option<Vec<&Tensor>> =
                    ch.iter().map(|c| egraph[*c].data.tensor()).collect();
                args.and_then(|args| sinter_interp::eval_op(op, &args, &out).ok())
                    .map(Arc::new)
            } else {
                None
            };
            Data {
                tys: out.into_iter().collect(),
                constant,
                value,
            }
        }
    }
}

impl egg::Analysis<Node> for Analysis {
    type Data = Data;

    fn make(egraph: &mut EG, enode: &Node, _id: Id) -> Data {
        if let Some(rule) = egraph.analysis.current_rule {
            egraph.analysis.provenance.insert(enode.clone(), rule);
        }
        make_data(egraph, enode)
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        debug_assert_eq!(a.tys, b.tys, "merged e-classes of different types");
        let mut changed_a = false;
        let mut changed_b = false;
        if a.constant != b.constant {
            changed_a |= !a.constant;
            changed_b |= !b.constant;
            a.constant = true;
        }
        match (&a.value, &b.value) {
            (None, Some(_)) => {
                a.value = b.value;
                changed_a = true;
            }
            (Some(_), None) => changed_b = true,
            _ => {}
        }
        DidMerge(changed_a, changed_b)
    }
}
