//! Compiled executables: memory planning, threads, safe run API.
//!
//! [`Compiled::new`] lowers a graph ([`sinter_lower`]), compiles every kernel once
//! ([`sinter_jit`]) and plans memory ([`plan`]); [`Compiled::run`] then checks the fed tensors
//! against the graph's inputs (name, dtype, shape), binds them, runs the kernels in order over
//! one arena and copies the outputs out. Data errors detected by generated checks (a gather
//! index out of range) and, in bounds-checked mode, out-of-bounds accesses come back as
//! [`RunError`], never as undefined behaviour. [`Jit`] ([`mod@train`]) makes this the backend
//! of `sinter_autodiff::Trainer`, so that training steps run as compiled code.

// Unsafe is needed for exactly one thing: calling JIT-compiled kernels with a table of raw
// buffer addresses (`run`). The runtime builds that table itself from buffers whose sizes it
// computed from the same types the kernels were lowered with; see the SAFETY comment there.
#![allow(unsafe_code)]

pub mod plan;
pub mod train;

use sinter_ir::{DType, Graph, NodeKind, Tensor, TensorData, TensorType, Value};
use sinter_lower::{LowerOptions, Program};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use sinter_jit::Options as JitOptions;
pub use train::Jit;

/// Default [`CompileOptions::memory_budget`]: 8 GiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 8 << 30;

/// Compile-time options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Code generation (bounds checks, optimiser).
    pub jit: JitOptions,
    /// Lowering (fast math).
    pub lower: LowerOptions,
    /// Keep each kernel's Cranelift IR text (for `sinter compile --emit clif`).
    pub keep_clif: bool,
    /// Largest number of bytes a compiled graph may hold (its planned arena plus its
    /// constants): a graph whose plan needs more is refused by [`Compiled::new`] before
    /// anything is allocated or code generated.
    pub memory_budget: usize,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        CompileOptions {
            jit: JitOptions::default(),
            lower: LowerOptions::default(),
            keep_clif: false,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl CompileOptions {
    /// Default options with every load and store bounds-checked.
    pub fn checked() -> CompileOptions {
        CompileOptions {
            jit: JitOptions {
                bounds_checks: true,
                ..JitOptions::default()
            },
            ..CompileOptions::default()
        }
    }
}

/// Why compiling failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The graph does not verify.
    #[error(transparent)]
    Verify(#[from] sinter_ir::IrError),
    /// An op could not be lowered.
    #[error(transparent)]
    Lower(#[from] sinter_lower::LowerError),
    /// Code generation failed.
    #[error(transparent)]
    Jit(#[from] sinter_jit::JitError),
    /// A constant could not be packed for the GEMM driver (an internal inconsistency between
    /// lowering and the runtime; never expected).
    #[error("internal: packing constant `{name}` for the GEMM driver: {message}")]
    Pack {
        /// The constant's name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// The memory plan exceeds [`CompileOptions::memory_budget`].
    #[error(
        "graph `@{graph}` needs {needed} bytes ({} MiB: arena and constants), over the memory \
         budget of {budget} bytes ({} MiB)",
        needed >> 20,
        budget >> 20
    )]
    Memory {
        /// The graph's name.
        graph: String,
        /// Bytes the plan needs.
        needed: usize,
        /// The budget.
        budget: usize,
    },
}

/// Why a run failed. Value names are without the `%` sigil.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// A graph input was not fed.
    #[error("missing input `%{name}` ({expected})")]
    MissingInput {
        /// The input's name.
        name: String,
        /// Its type.
        expected: String,
    },
    /// A tensor was fed under a name that is not an input.
    #[error("unexpected input `%{name}`: the graph's inputs are {known}")]
    UnexpectedInput {
        /// The name fed.
        name: String,
        /// The graph's inputs.
        known: String,
    },
    /// A fed tensor has the wrong dtype or shape.
    #[error("input `%{name}` expects {expected}, got {got}")]
    WrongInput {
        /// The input's name.
        name: String,
        /// The input's type.
        expected: String,
        /// The fed tensor's type.
        got: String,
    },
    /// A generated check failed (e.g. an index out of range).
    #[error("{location}: {message}")]
    Data {
        /// The node, as the text format writes it.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// Bounds-checked mode caught an access outside a buffer: a code generation bug.
    #[error("{location}: out-of-bounds access to buffer `{buffer}` (caught by bounds checks)")]
    OutOfBounds {
        /// The node.
        location: String,
        /// The buffer's name.
        buffer: String,
    },
}

/// Where a value's bytes are during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// The fed tensor of graph input `i`.
    Input(usize),
    /// Constant `i`.
    Const(usize),
    /// The arena, at this byte offset.
    Arena(usize),
}

#[derive(Debug)]
struct StepInfo {
    args: Vec<Loc>,
    location: String,
    /// The kernel's parallel loop, and per buffer the bytes between pieces' copies of it
    /// (each scratch buffer has one copy per piece; 0 for every other buffer).
    parallel: Option<(sinter_lower::loops::Parallel, Vec<usize>)>,
}

/// A kernel's buffer table, read by the threads that run the pieces of its parallel loop.
struct SharedTable<'a>(&'a [*mut u8]);

// SAFETY: the table is only read; what the pointers address is governed by the kernel's
// independence proof (see the parallel call in `run_profiled`).
unsafe impl Sync for SharedTable<'_> {}

impl SharedTable<'_> {
    fn get(&self) -> &[*mut u8] {
        self.0
    }
}

/// Bytes of one piece's copy of a scratch buffer of a parallel kernel (aligned like every
/// arena range).
fn scratch_piece_bytes(b: &sinter_lower::BufDecl) -> usize {
    (b.len * b.ty.size()).div_ceil(plan::ALIGN) * plan::ALIGN
}

/// Bytes with 8-byte alignment (so any element type can be read in place).
#[derive(Debug)]
struct Bytes(Vec<u64>);

impl Bytes {
    fn zeroed(n: usize) -> Bytes {
        Bytes(vec![0u64; n.div_ceil(8)])
    }
    fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast()
    }
}

fn f32_bytes(v: &[f32]) -> Bytes {
    let mut b = Bytes::zeroed(v.len() * 4);
    let dst: &mut [u8] = bytemuck_u8(&mut b.0);
    for (i, x) in v.iter().enumerate() {
        dst[4 * i..4 * i + 4].copy_from_slice(&x.to_ne_bytes());
    }
    b
}

/// The graph with every `winograd_filter` of a constant weight replaced by its transformed
/// constant (computed by `sinter_microkernels::winograd`, once, here), and every `reshape` or
/// `flatten` of a constant by the reshaped constant, or `None` if there is none. The optimiser
/// leaves the filter transforms in the graph (it prices them as free) rather than folding
/// them itself, so that only the tile size it chose is ever computed, by the vectorised
/// transform rather than the interpreter; a reshaped constant is one the lowering can mark
/// for packing (an ONNX LSTM's weights). A constant read by nothing else is dropped as dead,
/// so the compiled graph holds only the transformed copy.
fn fold_constant_transforms(g: &Graph) -> Result<Option<Graph>, CompileError> {
    use sinter_ir::Op;
    let nodes = g.nodes();
    let is_const = |v: &Value| matches!(nodes[v.node.index()].kind, NodeKind::Const(_));
    // A reshape of a constant is that constant under a new shape: folded, a GEMM's
    // weights (an LSTM's, reshaped by the ONNX import) are a constant the runtime can pack.
    let foldable = |n: &sinter_ir::Node| {
        matches!(
            n.op(),
            Some(Op::WinogradFilter { .. } | Op::Reshape { .. } | Op::Flatten { .. })
        ) && n.inputs.iter().all(is_const)
    };
    if !nodes.iter().any(foldable) {
        return Ok(None);
    }
    // Weights that only folded transforms read are left out.
    let mut other_uses = vec![0usize; nodes.len()];
    let mut folded_uses = vec![0usize; nodes.len()];
    for n in nodes {
        let uses = if foldable(n) {
            &mut folded_uses
        } else {
            &mut other_uses
        };
        for v in &n.inputs {
            uses[v.node.index()] += 1;
        }
    }
    for v in g.outputs() {
        other_uses[v.node.index()] += 1;
    }
    let mut out = Graph::new(g.name());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let old = |k: usize| Value {
            node: sinter_ir::NodeId(i as u32),
            output: k as u32,
        };
        let names: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).collect();
        let vs: Vec<Value> = match &node.kind {
            NodeKind::Input(kind) => {
                vec![out.add_input(names[0], node.outputs[0].ty.clone(), *kind)?]
            }
            NodeKind::Const(_) if other_uses[i] == 0 && folded_uses[i] > 0 => vec![],
            NodeKind::Const(t) => vec![out.add_const(names[0], t.clone())?],
            NodeKind::Op(Op::WinogradFilter { tile, transposed }) if foldable(node) => {
                let NodeKind::Const(w) = &nodes[node.inputs[0].node.index()].kind else {
                    unreachable!("foldable checked the input is a constant");
                };
                let u = winograd_filter(w, *tile, *transposed, &node.outputs[0].ty).map_err(
                    |message| CompileError::Pack {
                        name: names[0].to_string(),
                        message,
                    },
                )?;
                vec![out.add_const(names[0], u)?]
            }
            NodeKind::Op(Op::Reshape { .. } | Op::Flatten { .. }) if foldable(node) => {
                let NodeKind::Const(w) = &nodes[node.inputs[0].node.index()].kind else {
                    unreachable!("foldable checked the input is a constant");
                };
                let t = w
                    .reshaped(&node.outputs[0].ty.shape)
                    .map_err(|e| CompileError::Pack {
                        name: names[0].to_string(),
                        message: e.to_string(),
                    })?;
                vec![out.add_const(names[0], t)?]
            }
            NodeKind::Op(op) => {
                let ins: Vec<Value> = node.inputs.iter().map(|v| map[v]).collect();
                out.add_op(&names, op.clone(), &ins)?.to_vec()
            }
        };
        for (k, v) in vs.into_iter().enumerate() {
            map.insert(old(k), v);
        }
    }
    let outs: Vec<Value> = g.outputs().iter().map(|v| map[v]).collect();
    out.set_outputs(&outs)?;
    Ok(Some(out))
}

/// The Winograd filter transform of constant weights `w` (rotated and transposed first with
/// `transposed`), of type `ty`.
fn winograd_filter(
    w: &Tensor,
    tile: i64,
    transposed: bool,
    ty: &TensorType,
) -> Result<Tensor, String> {
    let TensorData::F32(wv) = w.data() else {
        return Err("the weight is not f32".into());
    };
    let (co, ci) = (ty.shape[1], ty.shape[2]);
    let mut u = vec![0.0f32; ty.numel()];
    let transform = if transposed {
        sinter_microkernels::winograd::filter_transform_transposed
    } else {
        sinter_microkernels::winograd::filter_transform
    };
    transform(tile as usize, wv, co, ci, &mut u, 1).map_err(|e| e.to_string())?;
    Tensor::new(&ty.shape, TensorData::F32(u)).map_err(|e| e.to_string())
}

/// How a buffer's constant is packed (see [`sinter_lower::BufDecl::pack_a`] and `pack_b`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Packing {
    A(sinter_lower::loops::PackA),
    B(sinter_lower::loops::PackB),
}

impl Packing {
    /// The packed form of the constant `w`.
    fn pack(self, w: &[f32]) -> Result<Vec<f32>, String> {
        match self {
            Packing::A(p) => {
                let size = p.m * p.k;
                if w.len() != size * p.groups {
                    return Err(format!(
                        "{} elements, not {} matrices of {}x{}",
                        w.len(),
                        p.groups,
                        p.m,
                        p.k
                    ));
                }
                let (rs, cs) = if p.transposed {
                    (1, p.m as isize)
                } else {
                    (p.k as isize, 1)
                };
                let mut out = Vec::new();
                for m in w.chunks_exact(size) {
                    out.extend(
                        sinter_microkernels::pack_a_whole(p.m, p.k, m, rs, cs)
                            .map_err(|e| e.to_string())?,
                    );
                }
                Ok(out)
            }
            Packing::B(p) => {
                let packed =
                    sinter_microkernels::PackedB::new(p.k, p.n, w, p.rs as isize, p.cs as isize)
                        .map_err(|e| e.to_string())?;
                Ok(packed.as_slice().to_vec())
            }
        }
    }
}

/// Constants packed once for the GEMM driver: every buffer that lowering marked
/// [`sinter_lower::BufDecl::pack_a`] (a convolution's weights, a Winograd product's filter
/// transform) or `pack_b` (a gemm's or matmul's weights) gets the packed form of its
/// constant, shared by all kernels that pack the same constant the same way. Returns the
/// packed data and, per `(step, buffer)`, its index in it.
#[allow(clippy::type_complexity)] // two parallel results, used once
fn pack_constants(
    graph: &Graph,
    program: &sinter_lower::Program,
    loc: &HashMap<Value, Loc>,
    const_tensors: &[&Tensor],
) -> Result<(Vec<Vec<f32>>, HashMap<(usize, usize), usize>), CompileError> {
    let mut packed: Vec<Vec<f32>> = Vec::new();
    let mut of: HashMap<(usize, Packing), usize> = HashMap::new();
    let mut at = HashMap::new();
    for (s, step) in program.steps.iter().enumerate() {
        let bound = step
            .kernel
            .bufs
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.scratch);
        for ((bi, b), v) in bound.zip(&step.args) {
            let how = match (b.pack_a, b.pack_b) {
                (Some(p), _) => Packing::A(p),
                (None, Some(p)) => Packing::B(p),
                (None, None) => continue,
            };
            let err = |message: String| CompileError::Pack {
                name: graph.value_name(*v).to_string(),
                message,
            };
            let Some(&Loc::Const(ci)) = loc.get(v) else {
                return Err(err("the buffer is not bound to a constant".into()));
            };
            let idx = match of.get(&(ci, how)) {
                Some(&i) => i,
                None => {
                    let TensorData::F32(w) = const_tensors[ci].data() else {
                        return Err(err("the constant is not f32".into()));
                    };
                    let out = how.pack(w).map_err(err)?;
                    if out.len() != b.len {
                        return Err(err(format!(
                            "packed to {} floats, the kernel expects {}",
                            out.len(),
                            b.len
                        )));
                    }
                    packed.push(out);
                    of.insert((ci, how), packed.len() - 1);
                    packed.len() - 1
                }
            };
            at.insert((s, bi), idx);
        }
    }
    Ok((packed, at))
}

fn tensor_bytes(t: &Tensor) -> Bytes {
    let mut b = Bytes::zeroed(t.numel() * t.dtype().size_bytes());
    let dst: &mut [u8] = bytemuck_u8(&mut b.0);
    match t.data() {
        TensorData::F32(v) => return f32_bytes(v),
        TensorData::I64(v) => {
            for (i, x) in v.iter().enumerate() {
                dst[8 * i..8 * i + 8].copy_from_slice(&x.to_ne_bytes());
            }
        }
        TensorData::Bool(v) => {
            for (i, x) in v.iter().enumerate() {
                dst[i] = u8::from(*x);
            }
        }
    }
    b
}

fn bytemuck_u8(v: &mut [u64]) -> &mut [u8] {
    let len = v.len() * 8;
    // SAFETY: u64 storage reinterpreted as bytes: same allocation, any bit pattern is a
    // valid u8, the length is in bytes of the same region, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), len) }
}

fn read_tensor(ty: &TensorType, bytes: &[u8]) -> Tensor {
    let n = ty.numel();
    // One memcpy per tensor: the per-element `from_ne_bytes` collection this replaced did not
    // vectorise (13-15% of a run whose output is a 64x112x112 feature map).
    fn copy<T: Copy>(bytes: &[u8], n: usize) -> Vec<T> {
        let size = std::mem::size_of::<T>();
        let src = &bytes[..size * n];
        let mut v: Vec<T> = Vec::with_capacity(n);
        // SAFETY: `v` has capacity for `n` elements, `size * n` bytes, and `src` as many
        // readable ones (the slice indexing above checked it); the copy initialises all `n`
        // elements before `set_len`; `T` is a plain number type (f32 or i64) for which every
        // bit pattern is valid, and the byte copy needs no alignment.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), v.as_mut_ptr().cast::<u8>(), size * n);
            v.set_len(n);
        }
        v
    }
    let data = match ty.dtype {
        DType::F32 => TensorData::F32(copy::<f32>(bytes, n)),
        DType::I64 => TensorData::I64(copy::<i64>(bytes, n)),
        DType::Bool => TensorData::Bool(bytes[..n].iter().map(|&b| b != 0).collect()),
    };
    Tensor::new(&ty.shape, data).expect("sizes follow the type")
}

/// Compile-time figures.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// Lowering the graph to loop nests.
    pub lower: Duration,
    /// Cranelift code generation, per kernel.
    pub kernels: Vec<Duration>,
    /// Everything, from graph to runnable plan.
    pub total: Duration,
}

/// A graph compiled once into native kernels and a memory plan; run it many times.
#[derive(Debug)]
pub struct Compiled {
    inputs: Vec<(String, TensorType)>,
    outputs: Vec<(String, TensorType, Loc)>,
    steps: Vec<StepInfo>,
    consts: Vec<Bytes>,
    errors: Vec<Vec<String>>,
    buf_names: Vec<Vec<String>>,
    module: sinter_jit::Module,
    arena_bytes: usize,
    /// Arenas of finished runs, reused by the next: a fresh allocation of this size would be
    /// zeroed and page-faulted in on every run. Every kernel writes all of its outputs (arena
    /// ranges are shared between values anyway), so a reused arena's old bytes are never read.
    arenas: std::sync::Mutex<Vec<Bytes>>,
    /// The memory plan (peak vs sum of intermediates).
    pub plan: plan::Plan,
    /// The lowered program (for `--emit loops`).
    pub program: Program,
    /// Compile times.
    pub timings: Timings,
    /// The first output name of each node of the compiled graph (after composite expansion
    /// and constant filter transforms), by node index.
    node_names: Vec<String>,
}

impl Compiled {
    /// Verifies, lowers, compiles and plans `graph`.
    pub fn new(graph: &Graph, opts: CompileOptions) -> Result<Compiled, CompileError> {
        let t0 = Instant::now();
        graph.verify()?;
        // Composite ops (stochastic pooling) run as their expansion; every name stays.
        let expanded = sinter_ir::expand_composites(graph)?;
        let folded = fold_constant_transforms(expanded.as_ref())?;
        let graph = folded.as_ref().unwrap_or(expanded.as_ref());
        let program = sinter_lower::lower_graph(graph, opts.lower)?;
        let lower_time = t0.elapsed();

        let nodes = graph.nodes();
        let mut loc: HashMap<Value, Loc> = HashMap::new();
        let mut inputs = Vec::new();
        // Constants are copied into aligned buffers only once the budget check has passed.
        let mut const_tensors = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let v = Value {
                node: sinter_ir::NodeId(i as u32),
                output: 0,
            };
            match &node.kind {
                NodeKind::Input(_) => {
                    loc.insert(v, Loc::Input(inputs.len()));
                    inputs.push((node.outputs[0].name.clone(), node.outputs[0].ty.clone()));
                }
                NodeKind::Const(t) => {
                    loc.insert(v, Loc::Const(const_tensors.len()));
                    const_tensors.push(t);
                }
                NodeKind::Op(_) => {}
            }
        }
        // Live ranges of every value a kernel writes.
        let mut reqs: Vec<plan::Request> = Vec::new();
        let mut req_of: HashMap<Value, usize> = HashMap::new();
        let mut scratch: Vec<Vec<usize>> = Vec::new();
        for (s, step) in program.steps.iter().enumerate() {
            scratch.push(Vec::new());
            let pieces = step.kernel.parallel.map_or(1, |p| p.pieces);
            for b in step.kernel.bufs.iter().filter(|b| b.scratch) {
                scratch[s].push(reqs.len());
                reqs.push(plan::Request {
                    bytes: scratch_piece_bytes(b) * pieces,
                    first: s,
                    last: s,
                });
            }
            let bound = step.kernel.bufs.iter().filter(|b| !b.scratch);
            for (b, &v) in bound.zip(&step.args) {
                if b.output {
                    req_of.insert(v, reqs.len());
                    reqs.push(plan::Request {
                        bytes: b.len * b.ty.size(),
                        first: s,
                        last: s,
                    });
                } else if let Some(&r) = req_of.get(&v) {
                    reqs[r].last = reqs[r].last.max(s);
                }
            }
        }
        for v in graph.outputs() {
            if let Some(&r) = req_of.get(v) {
                reqs[r].last = usize::MAX;
            }
        }
        let plan = plan::plan(&reqs);
        let (packed, packed_at) = pack_constants(graph, &program, &loc, &const_tensors)?;
        let const_bytes = const_tensors
            .iter()
            .map(|t| t.numel().saturating_mul(t.dtype().size_bytes()))
            .chain(packed.iter().map(|p| p.len() * 4))
            .fold(0usize, usize::saturating_add);
        let needed = plan.peak_bytes.saturating_add(const_bytes);
        if needed > opts.memory_budget {
            return Err(CompileError::Memory {
                graph: graph.name().to_string(),
                needed,
                budget: opts.memory_budget,
            });
        }
        let kernels: Vec<_> = program.steps.iter().map(|s| s.kernel.clone()).collect();
        let module = sinter_jit::compile(&kernels, opts.jit, opts.keep_clif)?;
        let n_consts = const_tensors.len();
        let consts: Vec<Bytes> = const_tensors
            .into_iter()
            .map(tensor_bytes)
            .chain(packed.iter().map(|p| f32_bytes(p)))
            .collect();
        for (v, &r) in &req_of {
            loc.insert(*v, Loc::Arena(plan.offsets[r]));
        }
        let mut steps = Vec::new();
        let mut errors = Vec::new();
        let mut buf_names = Vec::new();
        for (s, step) in program.steps.iter().enumerate() {
            // The node that the kernel's first output belongs to (a GEMM epilogue's prelu slope
            // is bound after the outputs).
            let first_out = step
                .kernel
                .bufs
                .iter()
                .filter(|b| !b.scratch)
                .zip(&step.args)
                .find(|(b, _)| b.output)
                .map(|(_, v)| *v);
            let node = &nodes[first_out
                .or(step.args.last().copied())
                .map_or(0, |v| v.node.index())];
            let names: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).collect();
            let location = match node.op() {
                Some(op) => graph.describe(&names, op, &node.inputs),
                None => step.kernel.name.clone(),
            };
            let mut bound = step.args.iter();
            let mut scr = scratch[s].iter();
            let args = step
                .kernel
                .bufs
                .iter()
                .enumerate()
                .map(|(bi, b)| {
                    if b.scratch {
                        Loc::Arena(plan.offsets[*scr.next().expect("one request per scratch")])
                    } else {
                        let v = bound.next().expect("one value per bound buffer");
                        match packed_at.get(&(s, bi)) {
                            Some(&p) => Loc::Const(n_consts + p),
                            None => loc[v],
                        }
                    }
                })
                .collect();
            let parallel = step.kernel.parallel.map(|p| {
                let strides = step
                    .kernel
                    .bufs
                    .iter()
                    .map(|b| if b.scratch { scratch_piece_bytes(b) } else { 0 })
                    .collect();
                (p, strides)
            });
            steps.push(StepInfo {
                args,
                location,
                parallel,
            });
            errors.push(step.kernel.errors.clone());
            buf_names.push(step.kernel.bufs.iter().map(|b| b.name.clone()).collect());
        }
        let outputs = graph
            .outputs()
            .iter()
            .map(|&v| {
                (
                    graph.value_name(v).to_string(),
                    graph.ty(v).clone(),
                    loc[&v],
                )
            })
            .collect();
        let timings = Timings {
            lower: lower_time,
            kernels: module.compile_times.clone(),
            total: t0.elapsed(),
        };
        Ok(Compiled {
            inputs,
            outputs,
            steps,
            consts,
            errors,
            buf_names,
            module,
            arena_bytes: plan.peak_bytes,
            arenas: std::sync::Mutex::new(Vec::new()),
            plan,
            program,
            timings,
            node_names: graph
                .nodes()
                .iter()
                .map(|n| n.outputs.first().map_or(String::new(), |o| o.name.clone()))
                .collect(),
        })
    }

    /// Cranelift IR of each kernel (empty unless compiled with `keep_clif`).
    pub fn clif(&self) -> &[String] {
        &self.module.clif
    }

    /// Machine code of each kernel as text (empty unless compiled with `jit.keep_asm`).
    pub fn asm(&self) -> &[String] {
        &self.module.asm
    }

    /// The graph's inputs (name and type), in definition order.
    pub fn inputs(&self) -> &[(String, TensorType)] {
        &self.inputs
    }

    /// Kernel names, in run order.
    pub fn kernel_names(&self) -> Vec<String> {
        self.program
            .steps
            .iter()
            .map(|s| s.kernel.name.clone())
            .collect()
    }

    /// Per kernel (in [`Compiled::kernel_names`] order), the names of the values of the graph
    /// nodes whose work it does (first output of each; see `sinter_lower::Step::nodes`).
    pub fn kernel_values(&self) -> Vec<Vec<String>> {
        self.program
            .steps
            .iter()
            .map(|s| {
                s.nodes
                    .iter()
                    .map(|&n| self.node_names[n].clone())
                    .collect()
            })
            .collect()
    }

    /// Runs the compiled graph on `inputs` (keyed by input name, without `%`); returns the
    /// graph outputs in order with their names.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, RunError> {
        self.run_profiled(inputs, None)
    }

    /// As [`Compiled::run`], adding each kernel's wall time to `times` (one entry per kernel).
    pub fn run_profiled(
        &self,
        inputs: &HashMap<String, Tensor>,
        mut times: Option<&mut Vec<Duration>>,
    ) -> Result<Vec<(String, Tensor)>, RunError> {
        let fed = self.check_inputs(inputs)?;
        let reused = self.arenas.lock().ok().and_then(|mut v| v.pop());
        let mut arena = reused.unwrap_or_else(|| {
            let mut a = Bytes::zeroed(self.arena_bytes);
            if cfg!(debug_assertions) {
                // Debug and test builds start from all-ones bytes (NaN, -1, true), so a kernel
                // that read an output before writing it would show in the differential tests.
                a.0.fill(u64::MAX);
            }
            a
        });
        let arena_ptr = arena.ptr();
        let mut const_ptrs: Vec<*mut u8> = Vec::with_capacity(self.consts.len());
        for c in &self.consts {
            // Kernels never write constants (they are never output buffers).
            const_ptrs.push(c.0.as_ptr().cast::<u8>().cast_mut());
        }
        let input_ptrs: Vec<*mut u8> = fed
            .iter()
            .map(|t| match t.data() {
                TensorData::F32(v) => v.as_ptr().cast::<u8>().cast_mut(),
                TensorData::I64(v) => v.as_ptr().cast::<u8>().cast_mut(),
                TensorData::Bool(v) => v.as_ptr().cast::<u8>().cast_mut(),
            })
            .collect();
        let resolve = |l: Loc| match l {
            Loc::Input(i) => input_ptrs[i],
            Loc::Const(i) => const_ptrs[i],
            // `wrapping_add` keeps this safe to compute; offsets are within the arena.
            Loc::Arena(off) => arena_ptr.wrapping_add(off),
        };
        let mut table: Vec<*mut u8> = Vec::new();
        for (s, step) in self.steps.iter().enumerate() {
            table.clear();
            table.extend(step.args.iter().map(|&l| resolve(l)));
            let t0 = Instant::now();
            let ret = match &step.parallel {
                Some((par, strides)) if par.pieces > 1 => {
                    // The first nonzero return of any piece (the pieces are independent, so
                    // which error is reported when several fail does not matter).
                    let first = std::sync::atomic::AtomicI32::new(0);
                    let shared = SharedTable(&table);
                    let entry = self.module.entry(s);
                    sinter_microkernels::parallel_for(par.pieces, |i| {
                        let own: Vec<*mut u8> = shared
                            .get()
                            .iter()
                            .zip(strides)
                            .map(|(&p, &st)| p.wrapping_add(i * st))
                            .collect();
                        // SAFETY: as for the whole call below; in addition the kernel's
                        // parallel loop was proved to have independent iterations (disjoint
                        // output ranges, nothing carried between iterations), piece `i` runs
                        // a range of it within `0..extent`, and its scratch buffers are its
                        // own copies (the plan sized each scratch request for every piece).
                        // The module outlives this call (`self` is borrowed throughout).
                        let (lo, hi) = par.range(i);
                        let r = unsafe { entry(own.as_ptr(), lo, hi) };
                        if r != 0 {
                            let _ = first.compare_exchange(
                                0,
                                r,
                                std::sync::atomic::Ordering::Relaxed,
                                std::sync::atomic::Ordering::Relaxed,
                            );
                        }
                    });
                    first.into_inner()
                }
                // SAFETY: each pointer is an input tensor (checked to have exactly the graph's
                // type, which is the type the kernel was lowered with), a constant of that
                // type, or an arena range the plan sized for the value's type. Output buffers
                // are always arena ranges, and the plan never overlaps a step's outputs with
                // any value live in that step (its inputs included). Kernels never write
                // non-output buffers.
                _ => unsafe { self.module.call(s, &table) },
            };
            if let Some(t) = times.as_deref_mut() {
                if t.len() < self.steps.len() {
                    t.resize(self.steps.len(), Duration::ZERO);
                }
                t[s] += t0.elapsed();
            }
            if ret > 0 {
                return Err(RunError::Data {
                    location: step.location.clone(),
                    message: self.errors[s][(ret - 1) as usize].clone(),
                });
            }
            if ret < 0 {
                return Err(RunError::OutOfBounds {
                    location: step.location.clone(),
                    buffer: self.buf_names[s][(-1 - ret) as usize].clone(),
                });
            }
        }
        let bytes: &[u8] = bytemuck_u8(&mut arena.0);
        let outs = self
            .outputs
            .iter()
            .map(|(name, ty, l)| {
                let t = match *l {
                    Loc::Input(i) => fed[i].clone(),
                    Loc::Const(i) => {
                        let n = ty.numel() * ty.dtype.size_bytes();
                        // SAFETY: constant storage holds at least `n` initialised bytes.
                        let b = unsafe {
                            std::slice::from_raw_parts(self.consts[i].0.as_ptr().cast::<u8>(), n)
                        };
                        read_tensor(ty, b)
                    }
                    Loc::Arena(off) => read_tensor(ty, &bytes[off..]),
                };
                (name.clone(), t)
            })
            .collect();
        if let Ok(mut pool) = self.arenas.lock() {
            pool.push(arena);
        }
        Ok(outs)
    }

    fn check_inputs<'a>(
        &self,
        inputs: &'a HashMap<String, Tensor>,
    ) -> Result<Vec<&'a Tensor>, RunError> {
        let mut names: Vec<&String> = inputs.keys().collect();
        names.sort();
        if let Some(n) = names
            .iter()
            .find(|n| !self.inputs.iter().any(|(m, _)| m == **n))
        {
            let known: Vec<String> = self.inputs.iter().map(|(m, _)| format!("`%{m}`")).collect();
            return Err(RunError::UnexpectedInput {
                name: (*n).clone(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        self.inputs
            .iter()
            .map(|(name, ty)| {
                let t = inputs.get(name).ok_or_else(|| RunError::MissingInput {
                    name: name.clone(),
                    expected: ty.to_string(),
                })?;
                if &t.ty() != ty {
                    return Err(RunError::WrongInput {
                        name: name.clone(),
                        expected: ty.to_string(),
                        got: t.ty().to_string(),
                    });
                }
                Ok(t)
            })
            .collect()
    }
}
