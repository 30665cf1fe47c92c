//! Lowering of IR graphs to the loop-nest IR: fusion, scheduling, layouts.
//!
//! [`lower_graph`] turns every live op node of a [`Graph`] into a [`Kernel`] (see [`loops`])
//! whose buffers are bound to graph values, in definition order: a [`Program`]. The runtime
//! plans memory over those bindings and the JIT compiles each kernel. Keeping lowering
//! separate from code generation lets the loop IR be snapshot-tested (filetests kind `lower`)
//! and lets the runtime fall back to nothing: every op has a lowering ([`ops::lower_op`] is an
//! exhaustive match).

mod fuse;
pub mod loops;
pub mod ops;
pub mod parallel;
mod winograd;

pub use loops::{Buf, BufDecl, Expr, Kernel, Stmt, Ty};
pub use ops::{LowerOptions, lower_op};

use sinter_ir::{Graph, NodeKind, TensorType, Value};
use std::fmt;

/// Why lowering failed (a graph the verifier accepts always lowers; this guards the rest).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct LowerError {
    /// The node as the text format writes it.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

/// One kernel and the graph values bound to its buffers (same order as [`Kernel::bufs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The loop nest.
    pub kernel: Kernel,
    /// The value each buffer holds, for every buffer but scratch ones, in buffer order.
    pub args: Vec<Value>,
    /// The graph nodes whose work the kernel does (its op, a fused chain's members, an
    /// absorbed activation), in graph order: what `sinter explain --measure` prices.
    pub nodes: Vec<usize>,
}

/// A lowered graph: kernels in an order that respects dependencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Kernels to run in order.
    pub steps: Vec<Step>,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", s.kernel)?;
        }
        Ok(())
    }
}

/// Lowers every op node that a graph output depends on. Chains of elementwise ops (unary,
/// binary, compare, `select`, `cast`) whose intermediate values have one reader of the same
/// shape are fused into one kernel: one loop, each intermediate a scalar variable, so the chain
/// reads its inputs and writes its result once instead of once per op. An activation (relu,
/// leaky_relu, sigmoid, tanh, prelu) that is the only reader of a conv2d, gemm or matmul runs
/// in that op's GEMM epilogue (with its bias), tile by tile while the tile is in L1.
pub fn lower_graph(graph: &Graph, opt: LowerOptions) -> Result<Program, LowerError> {
    let live = graph.live_nodes();
    let nodes = graph.nodes();
    let (uses, reader) = uses(graph, &live);
    let act_of = epilogue_acts(graph, &live, &uses, opt);
    let mut fused = fusable(graph, &live, &uses, &reader, opt);
    let mut absorbed = vec![false; nodes.len()];
    for a in act_of.iter().flatten() {
        // Written by its producer's kernel, so it must be stored, not fused into its reader.
        for n in std::iter::once(a.r).chain(a.cond) {
            fused[n] = false;
            absorbed[n] = true;
        }
        // Read by the producer's kernel, so it must be stored.
        if let Some(v) = a.extra {
            fused[v.node.index()] = false;
        }
    }
    let mut steps = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let NodeKind::Op(op) = &node.kind else {
            continue;
        };
        if !live[i] || fused[i] || absorbed[i] {
            continue;
        }
        let has_fused_producer = node.inputs.iter().any(|v| fused[v.node.index()]);
        if has_fused_producer {
            steps.push(fuse::fused_kernel(graph, i, &fused, opt));
            continue;
        }
        let in_tys: Vec<&TensorType> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
        let out_tys: Vec<TensorType> = node.outputs.iter().map(|o| o.ty.clone()).collect();
        let mut names: Vec<String> = node
            .inputs
            .iter()
            .map(|&v| graph.value_name(v).to_string())
            .collect();
        names.extend(node.outputs.iter().map(|o| o.name.clone()));
        if let Some(a) = &act_of[i] {
            // The kernel writes the activation's value; its own is never stored.
            names[node.inputs.len()] = nodes[a.r].outputs[0].name.clone();
        }
        let mut kernel =
            lower_op(op, &in_tys, &out_tys, &names, opt).map_err(|message| LowerError {
                location: graph.describe(
                    &node
                        .outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>(),
                    op,
                    &node.inputs,
                ),
                message,
            })?;
        kernel.name = format!("{}_{}", op.name(), node.outputs[0].name);
        let mut args: Vec<Value> = node.inputs.to_vec();
        args.extend((0..node.outputs.len()).map(|k| Value {
            node: sinter_ir::NodeId(i as u32),
            output: k as u32,
        }));
        if let Some(a) = &act_of[i] {
            let r = a.r;
            let extra = a.extra.map(|v| {
                // The slope or mask is one more buffer of the kernel, after its output.
                let ty = graph.ty(v);
                args.push(v);
                (
                    kernel.buf(graph.value_name(v), loops::Ty::F32, ty.numel(), false),
                    ty,
                )
            });
            let act_name = match &a.how {
                How::Gemm(g) => g.name(),
                How::Trailing => nodes[r].op().map_or("act", |o| o.name()),
            };
            kernel.name = format!("{}_{}_{}", op.name(), act_name, nodes[r].outputs[0].name);
            let location = || graph.describe(&[&nodes[r].outputs[0].name], op, &node.inputs);
            match &a.how {
                How::Gemm(g) => {
                    let plain = match g {
                        GemmAct::Plain(a) => Some(a),
                        _ => None,
                    };
                    let set = set_epilogue_act(
                        &mut kernel.body,
                        &|call: &loops::GemmCall| g.activation(extra.map(|(b, _)| b), &call.c),
                        plain,
                    );
                    if set == 0 {
                        return Err(LowerError {
                            location: location(),
                            message: "internal: an epilogue activation found no GEMM call".into(),
                        });
                    }
                }
                How::Trailing => {
                    trailing_act(&mut kernel, graph, r, a.cond, extra, &out_tys[0], opt).map_err(
                        |message| LowerError {
                            location: location(),
                            message,
                        },
                    )?
                }
            }
            args[node.inputs.len()] = Value {
                node: sinter_ir::NodeId(r as u32),
                output: 0,
            };
        }
        let is_const = |i: usize| {
            node.inputs
                .get(i)
                .is_some_and(|v| matches!(graph.node(v.node).kind, NodeKind::Const(_)))
        };
        use sinter_ir::OpKind;
        if matches!(op.kind(), OpKind::Conv2d | OpKind::ConvTranspose2d) && is_const(1) {
            prepack_weights(&mut kernel, loops::Buf(1));
        }
        // The Winograd product's A is the transformed filter: a constant for frozen weights.
        if matches!(op.kind(), OpKind::Matmul) && is_const(0) {
            prepack_weights(&mut kernel, loops::Buf(0));
        }
        if matches!(op.kind(), OpKind::Gemm | OpKind::Matmul) && is_const(1) {
            prepack_b(&mut kernel, loops::Buf(1));
        }
        let mut covered = vec![i];
        if let Some(a) = &act_of[i] {
            covered.extend(std::iter::once(a.r).chain(a.cond));
        }
        covered.sort_unstable();
        steps.push(Step {
            kernel,
            args,
            nodes: covered,
        });
    }
    for s in &mut steps {
        parallel::parallelize(&mut s.kernel, opt.threads, opt.parallel_min_work);
    }
    Ok(Program { steps })
}

/// Every GEMM call in `body`, at any depth.
fn gemm_calls<'a>(body: &'a mut [Stmt], out: &mut Vec<&'a mut loops::GemmCall>) {
    for s in body {
        match s {
            Stmt::Gemm(g) => out.push(g),
            Stmt::For { body, .. } => gemm_calls(body, out),
            Stmt::If(_, a, b) => {
                gemm_calls(a, out);
                gemm_calls(b, out);
            }
            Stmt::Set(..) | Stmt::Store(..) | Stmt::Check(..) | Stmt::Winograd(_) => {}
        }
    }
}

/// Marks a matmul's or gemm's constant B buffer `b` to be packed once by the runtime (see
/// [`loops::BufDecl::pack_b`]) when every GEMM call of the kernel reads it as the same whole
/// matrix: the driver then skips packing B on every call, a pass over the whole weight matrix
/// that costs as much as the product when A has few rows (an LSTM step's 16, an MLP's batch).
/// Not for products of at most 4 rows (a batch-1 classifier): the driver runs those
/// transposed as dot products that stream B once, unpacked, so packing would only cost compile
/// time and a second copy of the weights (VGG-16's first classifier layer is 411 MB).
fn prepack_b(kernel: &mut Kernel, b: Buf) {
    let decl = &kernel.bufs[b.0 as usize];
    if decl.ty != loops::Ty::F32 || decl.pack_a.is_some() {
        return;
    }
    let len = decl.len as i64;
    let mut gemms = Vec::new();
    gemm_calls(&mut kernel.body, &mut gemms);
    let Some(first) = gemms.first() else {
        return;
    };
    let pack = loops::PackB {
        k: first.k,
        n: first.n,
        rs: first.b.rs,
        cs: first.b.cs,
    };
    // The last element, (k-1, n-1), must be inside the constant.
    let last = (pack.k as i64 - 1) * pack.rs + (pack.n as i64 - 1) * pack.cs;
    let ok = pack.k > 0
        && pack.n > 0
        && pack.rs >= 0
        && pack.cs >= 0
        && last < len
        && gemms.iter().all(|g| {
            g.b.buf == b
                && g.m > 4
                && g.im2col.is_none()
                && g.b.offset == Expr::I(0)
                && (g.k, g.n, g.b.rs, g.b.cs) == (pack.k, pack.n, pack.rs, pack.cs)
        });
    if !ok {
        return;
    }
    for g in gemms {
        g.b_packed = true;
    }
    let decl = &mut kernel.bufs[b.0 as usize];
    decl.len = pack.packed_len();
    decl.pack_b = Some(pack);
}

/// Marks a convolution's constant weight buffer `w` to be packed once by the runtime (see
/// [`loops::BufDecl::pack_a`]) and points the kernel's GEMM calls at the packed matrices:
/// per-call packing of the weights (the A operand) was a copy of every weight on every run
/// (for a transposed convolution of a 1x1 or 4x4 image, far more work than the product).
/// Either every call reads A row-major (a convolution's weights, a Winograd product's
/// transformed filter) or every call reads it transposed (`rs == 1`, `cs == m`: a transposed
/// convolution's `w[g]^T`), each call one whole matrix of the same shape; otherwise the
/// weights stay as they are (the buffer holds one layout or the other).
fn prepack_weights(kernel: &mut Kernel, w: Buf) {
    let len = kernel.bufs[w.0 as usize].len;
    let mut gemms = Vec::new();
    gemm_calls(&mut kernel.body, &mut gemms);
    let Some(first) = gemms.first() else {
        return;
    };
    let transposed = (first.a.rs, first.a.cs) != (first.k as i64, 1);
    let ok = gemms.iter().all(|g| {
        g.a.buf == w
            && if transposed {
                (g.a.rs, g.a.cs) == (1, g.m as i64)
            } else {
                (g.a.rs, g.a.cs) == (g.k as i64, 1)
            }
            && g.m > 0
            && g.k > 0
            && len.is_multiple_of(g.m * g.k)
            && (g.m, g.k) == (first.m, first.k)
    });
    if !ok {
        return;
    }
    let pack = loops::PackA {
        m: first.m,
        k: first.k,
        groups: len / (first.m * first.k),
        transposed,
    };
    for g in gemms {
        // The offset of group g's matrix, g * m * k, becomes that of its packed form.
        let matrix = loops::bin(
            loops::BinOp::Div,
            g.a.offset.clone(),
            Expr::I((pack.m * pack.k) as i64),
        );
        g.a.offset = loops::bin(loops::BinOp::Mul, matrix, Expr::I(pack.packed_len() as i64));
        g.a_packed = true;
    }
    let decl = &mut kernel.bufs[w.0 as usize];
    decl.pack_a = Some(pack);
    decl.len = pack.groups * pack.packed_len();
}

/// Per node: how many times live nodes read its outputs (a graph output counts 2, so it is
/// never "read once"), and the last live reader.
fn uses(graph: &Graph, live: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let nodes = graph.nodes();
    let mut uses = vec![0usize; nodes.len()];
    let mut reader = vec![usize::MAX; nodes.len()];
    for (i, n) in nodes.iter().enumerate().filter(|(i, _)| live[*i]) {
        for v in &n.inputs {
            uses[v.node.index()] += 1;
            reader[v.node.index()] = i;
        }
    }
    for v in graph.outputs() {
        uses[v.node.index()] += 2;
    }
    (uses, reader)
}

/// An activation absorbed into the kernel of the linear op it reads.
struct Absorbed {
    /// The activation's node.
    r: usize,
    /// For a relu backward `select(greater(m, 0), y, 0)`, the `greater` node (absorbed too).
    cond: Option<usize>,
    /// The prelu slope or the relu backward's mask, read by the producer's kernel.
    extra: Option<Value>,
    /// Where it runs.
    how: How,
}

/// Where an absorbed activation runs.
enum How {
    /// In the GEMM driver's epilogue, on each tile of C while it is in L1.
    Gemm(GemmAct),
    /// After a conv_transpose2d, whose col2im scatters into the output (no GEMM tile holds
    /// final values): an elementwise loop over the output at the end of the same kernel.
    Trailing,
}

/// The activation of each GEMM call of a kernel.
enum GemmAct {
    /// Needs no buffer.
    Plain(loops::Activation),
    /// `prelu` whose slope, broadcast to the output, is `slope[i*rs + j*cs]` at element
    /// `(i, j)` of every GEMM call.
    Prelu { rs: i64, cs: i64 },
    /// `prelu` whose slope has the output's type: addressed as each call's C.
    PreluLikeC,
    /// A relu backward whose mask has the output's type: addressed as each call's C.
    MaskLikeC,
}

impl GemmAct {
    fn name(&self) -> &'static str {
        match self {
            GemmAct::Plain(a) => a.name(),
            GemmAct::Prelu { .. } | GemmAct::PreluLikeC => "prelu",
            GemmAct::MaskLikeC => "relu_mask",
        }
    }

    /// The activation of one GEMM call writing `c`, with the slope or mask in `extra`.
    fn activation(&self, extra: Option<loops::Buf>, c: &loops::MatArg) -> loops::Activation {
        let like_c = |buf| loops::MatArg { buf, ..c.clone() };
        match (self, extra) {
            (GemmAct::Plain(a), _) => a.clone(),
            (GemmAct::Prelu { rs, cs }, Some(buf)) => loops::Activation::Prelu(loops::MatArg {
                buf,
                offset: loops::Expr::I(0),
                rs: *rs,
                cs: *cs,
            }),
            (GemmAct::PreluLikeC, Some(buf)) => loops::Activation::Prelu(like_c(buf)),
            (GemmAct::MaskLikeC, Some(buf)) => loops::Activation::ReluMask(like_c(buf)),
            // `epilogue_acts` gives every non-plain activation its buffer.
            (_, None) => unreachable!("a slope or mask without its buffer"),
        }
    }
}

/// Whether value `v` is a constant with one element equal to zero (`+0.0` if `positive`).
fn is_zero_const(graph: &Graph, v: Value, positive: bool) -> bool {
    match &graph.nodes()[v.node.index()].kind {
        NodeKind::Const(t) => t
            .as_f32()
            .is_some_and(|x| x.len() == 1 && x[0] == 0.0 && (!positive || x[0].to_bits() == 0)),
        NodeKind::Input(_) | NodeKind::Op(_) => false,
    }
}

/// `act_of[p]`: an activation whose input is the only use of the output of node `p`, a
/// conv2d, gemm or matmul lowered to GEMM calls (the activation then runs in the GEMM driver's
/// epilogue, [`loops::GemmEpilogue`]), a winograd_output (a plain activation in the output
/// transform, a prelu or relu backward after it) or a conv_transpose2d (a loop at the end of
/// its kernel);
/// `p`'s own output is never stored. The activations: relu, leaky_relu, sigmoid, tanh, prelu,
/// and the relu backward `select(greater(m, 0), y, 0)` of training steps (`m` the relu's
/// output). A sigmoid stays out of the GEMM epilogue under `fast_math` (its polynomial `exp`
/// vectorises; the epilogue calls `f32::exp`). A prelu joins a GEMM epilogue when its slope
/// varies only along the GEMM's rows or columns (per channel of a one-group conv2d, per row or
/// column of a gemm or of every matrix of a matmul) or has the output's shape.
fn epilogue_acts(
    graph: &Graph,
    live: &[bool],
    uses: &[usize],
    opt: LowerOptions,
) -> Vec<Option<Absorbed>> {
    use sinter_ir::Op;
    let nodes = graph.nodes();
    let mut act_of: Vec<Option<Absorbed>> = (0..nodes.len()).map(|_| None).collect();
    if !opt.microkernels {
        return act_of;
    }
    for (r, n) in nodes.iter().enumerate() {
        if !live[r] {
            continue;
        }
        // The linear op's value `y`, and for a relu backward its `greater` node and mask.
        let (y, cond, extra) = match n.op() {
            Some(Op::Relu {} | Op::LeakyRelu { .. } | Op::Sigmoid {} | Op::Tanh {}) => {
                (n.inputs[0], None, None)
            }
            Some(Op::Prelu {}) => (n.inputs[0], None, Some(n.inputs[1])),
            Some(Op::Select {}) => {
                let q = n.inputs[0].node.index();
                let qn = &nodes[q];
                let (y, z) = (n.inputs[1], n.inputs[2]);
                if !matches!(qn.op(), Some(Op::Greater {}))
                    || uses[q] != 1
                    || graph.ty(qn.inputs[0]) != graph.ty(y)
                    || !is_zero_const(graph, qn.inputs[1], false)
                    || !is_zero_const(graph, z, true)
                {
                    continue;
                }
                (y, Some(q), Some(qn.inputs[0]))
            }
            _ => continue,
        };
        let p = y.node.index();
        let producer = &nodes[p];
        let out = &n.outputs[0].ty;
        if uses[p] != 1
            || producer.outputs.len() != 1
            || producer.outputs[0].ty != *out
            || y.output != 0
        {
            continue;
        }
        let how = match (producer.op(), n.op()) {
            (Some(Op::ConvTranspose2d { .. }), _) => How::Trailing,
            // The output transform applies a plain activation as it writes (with microkernels:
            // the portable path has no epilogues); a slope or mask runs after it.
            (Some(Op::WinogradOutput { .. }), Some(act)) => match act {
                Op::Relu {} => How::Gemm(GemmAct::Plain(loops::Activation::Relu)),
                Op::LeakyRelu { alpha } => {
                    How::Gemm(GemmAct::Plain(loops::Activation::LeakyRelu(alpha.get())))
                }
                Op::Sigmoid {} if !opt.fast_math => {
                    How::Gemm(GemmAct::Plain(loops::Activation::Sigmoid))
                }
                Op::Tanh {} => How::Gemm(GemmAct::Plain(loops::Activation::Tanh)),
                Op::Prelu {} | Op::Select {} => How::Trailing,
                _ => continue,
            },
            (Some(Op::Conv2d { .. } | Op::Gemm { .. } | Op::Matmul {}), Some(act)) => {
                How::Gemm(match act {
                    Op::Relu {} => GemmAct::Plain(loops::Activation::Relu),
                    Op::LeakyRelu { alpha } => {
                        GemmAct::Plain(loops::Activation::LeakyRelu(alpha.get()))
                    }
                    Op::Sigmoid {} if !opt.fast_math => GemmAct::Plain(loops::Activation::Sigmoid),
                    Op::Tanh {} => GemmAct::Plain(loops::Activation::Tanh),
                    Op::Prelu {} => {
                        let slope = graph.ty(n.inputs[1]);
                        if slope == out {
                            GemmAct::PreluLikeC
                        } else if let Some((rs, cs)) =
                            prelu_strides(producer.op(), &slope.shape, &out.shape)
                        {
                            GemmAct::Prelu { rs, cs }
                        } else {
                            continue;
                        }
                    }
                    Op::Select {} => GemmAct::MaskLikeC,
                    _ => continue,
                })
            }
            _ => continue,
        };
        act_of[p] = Some(Absorbed {
            r,
            cond,
            extra,
            how,
        });
    }
    act_of
}

/// The slope's strides along the GEMM rows and columns of `producer`'s lowering, if the slope
/// (broadcast to `out`) varies along nothing else: the channel of a one-group conv2d (rows),
/// the rows and columns of a gemm or of every matrix of a matmul.
fn prelu_strides(
    producer: Option<&sinter_ir::Op>,
    slope: &[usize],
    out: &[usize],
) -> Option<(i64, i64)> {
    use sinter_ir::Op;
    let r = out.len();
    if slope.len() > r {
        return None;
    }
    // Right-aligned strides of the slope, 0 where it broadcasts.
    let padded: Vec<usize> = std::iter::repeat_n(1, r - slope.len())
        .chain(slope.iter().copied())
        .collect();
    let mut st = vec![0i64; r];
    let mut acc = 1i64;
    for k in (0..r).rev() {
        if padded[k] != 1 {
            st[k] = acc;
        }
        acc *= padded[k] as i64;
    }
    let zero_except = |keep: &[usize]| (0..r).all(|k| keep.contains(&k) || st[k] == 0);
    match producer? {
        Op::Conv2d { groups, .. }
            if r == 4 && zero_except(&[1]) && (*groups == 1 || st[1] == 0) =>
        {
            Some((st[1], 0))
        }
        Op::Gemm { .. } if r == 2 => Some((st[0], st[1])),
        Op::Matmul {} if r >= 2 && zero_except(&[r - 2, r - 1]) => Some((st[r - 2], st[r - 1])),
        _ => None,
    }
}

/// Sets the activation of every GEMM call in `body` (from the call) and, when it needs no
/// buffer (`plain`), of every Winograd output transform; returns how many.
fn set_epilogue_act(
    body: &mut [loops::Stmt],
    act: &dyn Fn(&loops::GemmCall) -> loops::Activation,
    plain: Option<&loops::Activation>,
) -> usize {
    let mut n = 0;
    for s in body {
        match s {
            loops::Stmt::Gemm(g) => {
                g.epilogue.act = Some(act(g));
                n += 1;
            }
            loops::Stmt::Winograd(w) => {
                if let (loops::WinogradStage::Output { act, .. }, Some(p)) = (&mut w.stage, plain) {
                    *act = Some(p.clone());
                    n += 1;
                }
            }
            loops::Stmt::For { body, .. } => n += set_epilogue_act(body, act, plain),
            loops::Stmt::If(_, a, b) => {
                n += set_epilogue_act(a, act, plain);
                n += set_epilogue_act(b, act, plain);
            }
            loops::Stmt::Set(..) | loops::Stmt::Store(..) | loops::Stmt::Check(..) => {}
        }
    }
    n
}

/// Appends to `kernel` the activation of node `r` (with its `greater` node `cond` for a relu
/// backward) as an in-place elementwise loop over the kernel's output, reading the slope or
/// mask buffer `extra`: the same expressions as the activation's own kernel would use.
fn trailing_act(
    kernel: &mut Kernel,
    graph: &Graph,
    r: usize,
    cond: Option<usize>,
    extra: Option<(loops::Buf, &TensorType)>,
    out: &TensorType,
    opt: LowerOptions,
) -> Result<(), String> {
    let o = kernel
        .bufs
        .iter()
        .position(|b| b.output && !b.scratch)
        .map(|i| loops::Buf(i as u32))
        .ok_or("internal: a kernel without an output")?;
    let op = graph.nodes()[r].op().ok_or("internal: not an op")?.clone();
    let cond_op = cond.and_then(|q| graph.nodes()[q].op().cloned());
    let mut ins = vec![(o, out)];
    ins.extend(extra);
    let mut failed = false;
    ops::map(kernel, &ins, o, out, |_, a| {
        let f32s = [sinter_ir::DType::F32; 2];
        let e = match &cond_op {
            // select(greater(m, 0), y, 0)
            Some(g) => ops::elementwise(g, &f32s, vec![a[1].clone(), loops::Expr::F(0.0)], opt)
                .and_then(|c| {
                    ops::elementwise(
                        &op,
                        &[sinter_ir::DType::Bool, sinter_ir::DType::F32],
                        vec![c, a[0].clone(), loops::Expr::F(0.0)],
                        opt,
                    )
                }),
            None => ops::elementwise(&op, &f32s, a, opt),
        };
        e.unwrap_or_else(|| {
            failed = true;
            loops::Expr::F(0.0)
        })
    });
    if failed {
        return Err(format!("internal: `{}` is not elementwise", op.name()));
    }
    // Into the loop over images when that is proved valid, so the kernel stays parallel.
    parallel::sink_trailing_map(kernel, o, out.numel());
    Ok(())
}

/// Whether node `i` is an elementwise op.
fn is_elementwise(graph: &Graph, i: usize, opt: LowerOptions) -> bool {
    let node = &graph.nodes()[i];
    let dtypes: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v).dtype).collect();
    node.op()
        .is_some_and(|op| ops::elementwise(op, &dtypes, Vec::new(), opt).is_some())
}

/// `fused[i]`: node `i` is computed inside its only reader's kernel.
fn fusable(
    graph: &Graph,
    live: &[bool],
    uses: &[usize],
    reader: &[usize],
    opt: LowerOptions,
) -> Vec<bool> {
    let nodes = graph.nodes();
    (0..nodes.len())
        .map(|i| {
            live[i]
                && uses[i] == 1
                && nodes[i].outputs.len() == 1
                && is_elementwise(graph, i, opt)
                && is_elementwise(graph, reader[i], opt)
                && nodes[i].outputs[0].ty.shape == nodes[reader[i]].outputs[0].ty.shape
        })
        .collect()
}
