//! Graph <-> e-graph: loading an IR graph into an e-graph and writing extracted choices back.
//!
//! Loading adds one e-node per graph node (constants keep their identity; frozen parameters
//! become constants; each output of a multi-output op is a [`Node::Get`] of the op's class)
//! and remembers every value's name. Writing back names each e-class after an original value
//! in it (the graph outputs keep their names; otherwise the earliest original value of the
//! class), so a node that survives keeps its name and only new values get fresh ones
//! (`t0`, `t1`, ...). Nodes are written in the original order where it exists (new nodes right
//! after their last operand), so a graph that no rule changed comes back identical: the round
//! trip is checked by the tests. Graph inputs are always kept, used or not, so the optimised
//! graph takes exactly the same feeds.

use crate::RewriteError;
use crate::analysis::{Analysis, EG};
use crate::extract::Choices;
use crate::lang::Node;
use egg::{Id, Language, Symbol};
use sinter_ir::{Graph, InputKind, NodeKind, Op, Tensor, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A graph loaded into an e-graph, with what is needed to write it back.
pub struct Loaded {
    /// The e-graph.
    pub egraph: EG,
    /// The classes of the graph outputs, in order.
    pub roots: Vec<Id>,
    /// Graph inputs that stay inputs: class, name, kind, in definition order.
    pub inputs: Vec<(Id, String, InputKind)>,
    /// Every original value: class (as loaded), name, definition index.
    pub values: Vec<(Id, String, usize)>,
    /// The original e-nodes with their classes (as loaded).
    pub originals: Vec<(Node, Id)>,
    /// The output names, in order.
    pub output_names: Vec<String>,
    /// The graph's name.
    pub name: String,
}

/// Loads `g`; parameters named in `freeze` become constants with the given values.
pub fn load(
    g: &Graph,
    freeze: &HashMap<String, Tensor>,
    fold_limit: usize,
) -> Result<Loaded, RewriteError> {
    let mut analysis = Analysis::default();
    analysis.fold_limit = fold_limit;
    let mut eg = EG::new(analysis);
    let mut ids: HashMap<Value, Id> = HashMap::new();
    let mut inputs = Vec::new();
    let mut values = Vec::new();
    let mut originals = Vec::new();
    for (i, node) in g.nodes().iter().enumerate() {
        let nid = sinter_ir::NodeId(i as u32);
        let v0 = Value {
            node: nid,
            output: 0,
        };
        let name0 = node.outputs[0].name.clone();
        let enode = match &node.kind {
            NodeKind::Input(kind) => match freeze.get(&name0) {
                Some(t) => {
                    if t.ty() != node.outputs[0].ty {
                        return Err(RewriteError::Freeze(format!(
                            "`%{name0}` is {} but the frozen value is {}",
                            node.outputs[0].ty,
                            t.ty()
                        )));
                    }
                    Node::Const(eg.analysis.push_const(t.clone()))
                }
                None => {
                    let sym = Symbol::from(name0.as_str());
                    eg.analysis.inputs.insert(sym, node.outputs[0].ty.clone());
                    inputs.push((Id::from(0usize), name0.clone(), *kind));
                    Node::Input(sym)
                }
            },
            NodeKind::Const(t) => Node::Const(eg.analysis.push_const(t.clone())),
            NodeKind::Op(op) => {
                let ch: Vec<Id> = node.inputs.iter().map(|v| ids[v]).collect();
                Node::op(op.clone(), &ch)
            }
        };
        let id = eg.add(enode.clone());
        originals.push((enode, id));
        if matches!(node.kind, NodeKind::Input(_))
            && let Some(last) = inputs.last_mut()
            && last.1 == name0
        {
            last.0 = id;
        }
        if node.outputs.len() == 1 {
            ids.insert(v0, id);
            values.push((id, name0, i));
        } else {
            for (k, o) in node.outputs.iter().enumerate() {
                let get = Node::Get(k as u32, [id]);
                let gid = eg.add(get.clone());
                originals.push((get, gid));
                ids.insert(
                    Value {
                        node: nid,
                        output: k as u32,
                    },
                    gid,
                );
                values.push((gid, o.name.clone(), i));
            }
        }
    }
    eg.rebuild();
    let roots = g.outputs().iter().map(|v| ids[v]).collect();
    let output_names = g
        .outputs()
        .iter()
        .map(|v| g.value_name(*v).to_string())
        .collect();
    Ok(Loaded {
        egraph: eg,
        roots,
        inputs,
        values,
        originals,
        output_names,
        name: g.name().to_string(),
    })
}

/// A fused group as written back: the linear op's value and the activation's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FusionGroup {
    /// The linear op's output (an intermediate the JIT need not materialise).
    pub linear: String,
    /// The activation's output.
    pub act: String,
}

/// Writes the graph that `choices` selects for `roots` (named `output_names`, all of the
/// loaded graph's inputs kept). Returns it with the fusion groups.
pub fn emit(
    l: &Loaded,
    roots: &[Id],
    output_names: &[String],
    eg: &EG,
    choices: &Choices,
) -> Result<(Graph, Vec<FusionGroup>), RewriteError> {
    let find = |id: Id| eg.find(id);
    let roots: Vec<Id> = roots.iter().map(|&r| find(r)).collect();
    let mut wanted: Vec<Id> = roots.clone();
    wanted.extend(l.inputs.iter().map(|i| find(i.0)));
    let order = crate::extract::reachable(eg, choices, &wanted).ok_or(RewriteError::Cycle)?;

    // Names: outputs keep theirs, then the earliest original value of each class.
    let mut taken: HashSet<String> = l.values.iter().map(|v| v.1.clone()).collect();
    let mut name: HashMap<Id, String> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    for (r, n) in roots.iter().zip(output_names) {
        if !name.contains_key(r) && used.insert(n.clone()) {
            name.insert(*r, n.clone());
        }
    }
    let mut rank: HashMap<Id, usize> = HashMap::new();
    for (id, n, pos) in &l.values {
        let c = find(*id);
        rank.entry(c).or_insert(*pos);
        if !name.contains_key(&c) && !used.contains(n) {
            used.insert(n.clone());
            name.insert(c, n.clone());
        }
    }
    let mut fresh_counter = 0usize;
    let mut fresh = |taken: &mut HashSet<String>| loop {
        let n = format!("t{fresh_counter}");
        fresh_counter += 1;
        if taken.insert(n.clone()) {
            return n;
        }
    };

    // Emission units: every reachable class whose choice is not a projection.
    let is_get = |c: &Id| matches!(choices[c], Node::Get(..));
    // Priority: original position; a new constant just before its first user; another new
    // node just after its latest operand.
    let new_leaf = |c: &Id| !rank.contains_key(c) && choices[c].is_leaf();
    let mut prio: HashMap<Id, f64> = HashMap::new();
    for &c in &order {
        let p = match rank.get(&c) {
            Some(&r) if !is_get(&c) => r as f64,
            _ if new_leaf(&c) => f64::INFINITY,
            _ => {
                let kids = choices[&c].children();
                kids.iter()
                    .filter(|k| !new_leaf(&find(**k)))
                    .map(|k| prio.get(&find(*k)).copied().unwrap_or(0.0))
                    .fold(-1.0, f64::max)
                    + 0.5
            }
        };
        prio.insert(c, p);
    }
    for &c in &order {
        let pc = prio[&c];
        for k in choices[&c].children() {
            let k = find(*k);
            if new_leaf(&k) && pc - 0.25 < prio[&k] {
                prio.insert(k, pc - 0.25);
            }
        }
    }
    for &c in &order {
        if prio[&c].is_infinite() {
            prio.insert(c, 0.0);
        }
    }
    // Kahn's algorithm with the priority, over units (a projection depends on its tuple).
    let unit = |c: Id| -> Id {
        match &choices[&c] {
            Node::Get(_, [t]) => find(*t),
            _ => c,
        }
    };
    let units: Vec<Id> = order.iter().copied().filter(|c| !is_get(c)).collect();
    let mut deps: HashMap<Id, HashSet<Id>> = HashMap::new();
    let mut users: HashMap<Id, Vec<Id>> = HashMap::new();
    for &u in &units {
        let d: HashSet<Id> = choices[&u]
            .children()
            .iter()
            .map(|&k| unit(find(k)))
            .collect();
        for &k in &d {
            users.entry(k).or_default().push(u);
        }
        deps.insert(u, d);
    }
    let key = |c: Id| ((prio[&c] * 4.0) as i64, usize::from(c));
    let mut ready: BTreeMap<(i64, usize), Id> = BTreeMap::new();
    for &u in &units {
        if deps[&u].is_empty() {
            ready.insert(key(u), u);
        }
    }
    let mut g = Graph::new(&l.name);
    let mut val: HashMap<Id, Value> = HashMap::new();
    let mut fusions = Vec::new();
    let mut mask_zero: Option<Value> = None;
    let input_kind: HashMap<&str, InputKind> =
        l.inputs.iter().map(|i| (i.1.as_str(), i.2)).collect();
    let ir = |e: sinter_ir::IrError| RewriteError::Emit(e.to_string());
    while let Some((_, u)) = ready.pop_first() {
        let node = &choices[&u];
        let args: Vec<Value> = node.children().iter().map(|&k| val[&find(k)]).collect();
        match node {
            Node::Input(sym) => {
                let n = sym.as_str().to_string();
                let kind = input_kind
                    .get(n.as_str())
                    .copied()
                    .unwrap_or(InputKind::Data);
                let v = g.add_input(&n, eg[u].data.ty().clone(), kind).map_err(ir)?;
                val.insert(u, v);
            }
            Node::Const(i) => {
                let n = name.get(&u).cloned().unwrap_or_else(|| fresh(&mut taken));
                let t = eg.analysis.consts[*i as usize][0].clone();
                val.insert(u, g.add_const(&n, t).map_err(ir)?);
            }
            Node::Op(op, _) if eg[u].data.tys.len() > 1 => {
                let n_out = eg[u].data.tys.len();
                let mut names = Vec::new();
                for k in 0..n_out {
                    let gc = eg.lookup(Node::Get(k as u32, [u]));
                    let n = gc
                        .and_then(|c| name.get(&c).cloned())
                        .unwrap_or_else(|| fresh(&mut taken));
                    names.push(n);
                }
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let outs = g.add_op(&refs, op.clone(), &args).map_err(ir)?;
                for (k, v) in outs.iter().enumerate() {
                    if let Some(gc) = eg.lookup(Node::Get(k as u32, [u])) {
                        val.insert(find(gc), *v);
                    }
                }
            }
            Node::Op(op, _) => {
                let n = name.get(&u).cloned().unwrap_or_else(|| fresh(&mut taken));
                val.insert(u, g.add_op(&[&n], op.clone(), &args).map_err(ir)?[0]);
            }
            Node::Fused(f, _) => {
                let n = name.get(&u).cloned().unwrap_or_else(|| fresh(&mut taken));
                let lin = fresh(&mut taken);
                let k = args.len() - f.act.extra();
                let y = g.add_op(&[&lin], f.base.clone(), &args[..k]).map_err(ir)?[0];
                let v = if f.act == crate::lang::Act::ReluMask {
                    // select(greater(m, 0), y, 0), all masks sharing one zero.
                    let zero = match mask_zero {
                        Some(z) => z,
                        None => {
                            let z = g
                                .add_const(&fresh(&mut taken), Tensor::scalar(0.0))
                                .map_err(ir)?;
                            *mask_zero.insert(z)
                        }
                    };
                    let mask = g
                        .add_op(&[&fresh(&mut taken)], Op::Greater {}, &[args[k], zero])
                        .map_err(ir)?[0];
                    g.add_op(&[&n], Op::Select {}, &[mask, y, zero])
                        .map_err(ir)?[0]
                } else {
                    let mut act_args = vec![y];
                    act_args.extend(args.get(k).copied());
                    g.add_op(&[&n], f.act.op(), &act_args).map_err(ir)?[0]
                };
                val.insert(u, v);
                fusions.push(FusionGroup {
                    linear: lin,
                    act: n,
                });
            }
            Node::Get(..) => unreachable!("projections are not units"),
        }
        for &user in users.get(&u).map(Vec::as_slice).unwrap_or(&[]) {
            let d = deps.get_mut(&user).expect("every unit has deps");
            d.remove(&u);
            if d.is_empty() {
                ready.insert(key(user), user);
            }
        }
    }
    // Outputs; a value listed twice (two outputs proved equal), or one that would otherwise
    // change its name (an output proved equal to a graph input, whose name is fixed), gets a
    // free reshape copy under the output's name.
    let mut outs: Vec<Value> = Vec::new();
    for (r, oname) in roots.iter().zip(output_names) {
        let mut v = *val.get(r).ok_or(RewriteError::Cycle)?;
        if outs.contains(&v) || g.value_name(v) != oname {
            let shape = g.ty(v).shape.iter().map(|&d| d as i64).collect();
            let n = if taken.contains(oname) && g.find(oname).is_none() {
                oname.clone()
            } else {
                fresh(&mut taken)
            };
            v = g.add_op(&[&n], Op::Reshape { shape }, &[v]).map_err(ir)?[0];
        }
        outs.push(v);
    }
    g.set_outputs(&outs).map_err(ir)?;
    g.verify().map_err(ir)?;
    Ok((g, fusions))
}
