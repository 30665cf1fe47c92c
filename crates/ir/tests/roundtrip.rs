//! Property tests of the `.sir` text format.
//!
//! - Random valid graphs print, parse back to an equal graph, and print again identically.
//! - The parser never panics: not on arbitrary strings, token soup, or random edits of
//!   printed graphs; and whatever it accepts prints canonically and round-trips.
//!
//! Graphs come from a random *recipe*: a few inputs, parameters and constants of small random
//! shapes and dtypes, then a sequence of op steps. Each step picks an op and operands (often
//! making a fitting weight or constant on the way) from its random numbers; a candidate that
//! `Graph::add_op` rejects is skipped, so every generated graph is valid.

use proptest::prelude::*;
use sinter_ir::text::{parse, print, print_tensor_literal};
use sinter_ir::{
    AttrValue, DType, Graph, InputKind, NodeKind, OpKind, Tensor, TensorData, TensorType, Value,
};

/// A graph input, parameter or constant.
#[derive(Clone, Debug)]
struct Leaf {
    /// 0: data input, 1: parameter, 2 and 3: constant.
    kind: u8,
    dtype: DType,
    shape: Vec<usize>,
    /// Constant fill: splat when true, else a walk through the recipe's value pools.
    splat: bool,
    offset: usize,
}

/// One op step: which op, random numbers for operands and attributes, and a float.
#[derive(Clone, Debug)]
struct Step {
    op: u8,
    r: [u32; 8],
    f: f32,
}

#[derive(Clone, Debug)]
struct Recipe {
    name: &'static str,
    leaves: Vec<Leaf>,
    steps: Vec<Step>,
    floats: Vec<f32>,
    ints: Vec<i64>,
    outputs: Vec<u32>,
}

fn interesting_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => -10.0f32..10.0,
        2 => any::<f32>(),
        1 => prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e-5,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            f32::MAX,
            -f32::MAX,
            f32::EPSILON,
            16_777_217.0,
            1e20,
            -3.5e-12,
        ]),
    ]
}

fn small_dim() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 1usize..5, 1 => Just(0usize), 1 => 5usize..9]
}

fn leaf() -> impl Strategy<Value = Leaf> {
    (
        0u8..4,
        prop::sample::select(vec![
            DType::F32,
            DType::F32,
            DType::F32,
            DType::I64,
            DType::Bool,
        ]),
        prop::collection::vec(small_dim(), 0..=4),
        any::<bool>(),
        0usize..64,
    )
        .prop_map(|(kind, dtype, shape, splat, offset)| Leaf {
            kind,
            dtype,
            shape,
            splat,
            offset,
        })
}

/// An f32 NCHW image input, so convolutions and pools have something to work on.
fn image_leaf() -> impl Strategy<Value = Leaf> {
    (1usize..3, 1usize..5, 2usize..9, 2usize..9, 0u8..3).prop_map(|(n, c, h, w, kind)| Leaf {
        kind,
        dtype: DType::F32,
        shape: vec![n, c, h, w],
        splat: false,
        offset: 0,
    })
}

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        prop::sample::select(vec!["g", "main", "net.v2", "_0", "7"]),
        image_leaf(),
        prop::collection::vec(leaf(), 0..5),
        prop::collection::vec(
            (0u8..22, any::<[u32; 8]>(), interesting_f32()).prop_map(|(op, r, f)| Step {
                op,
                r,
                f,
            }),
            1..24,
        ),
        prop::collection::vec(interesting_f32(), 1..24),
        prop::collection::vec(prop_oneof![3 => -5i64..5, 1 => any::<i64>()], 1..12),
        prop::collection::vec(any::<u32>(), 1..4),
    )
        .prop_map(|(name, image, mut leaves, steps, floats, ints, outputs)| {
            leaves.insert(0, image);
            Recipe {
                name,
                leaves,
                steps,
                floats,
                ints,
                outputs,
            }
        })
}

/// Builds a graph from a recipe.
struct Gen<'a> {
    g: Graph,
    vals: Vec<Value>,
    recipe: &'a Recipe,
    names: usize,
}

impl Gen<'_> {
    fn fresh(&mut self) -> String {
        let i = self.names;
        self.names += 1;
        match i % 5 {
            0 => format!("v{i}"),
            1 => format!("{i}"),
            2 => format!("t.{i}_a"),
            3 => format!("_{i}."),
            _ => format!("x{i}.0"),
        }
    }

    /// A constant of `ty`, filled from the value pools.
    fn tensor(&self, ty: &TensorType, splat: bool, offset: usize) -> Tensor {
        let n = ty.numel();
        let (fl, is) = (&self.recipe.floats, &self.recipe.ints);
        let at = |i: usize| if splat { offset } else { offset + i };
        let data = match ty.dtype {
            DType::F32 => TensorData::F32((0..n).map(|i| fl[at(i) % fl.len()]).collect()),
            DType::I64 => TensorData::I64((0..n).map(|i| is[at(i) % is.len()]).collect()),
            DType::Bool => TensorData::Bool(
                (0..n)
                    .map(|i| (at(i) * 7 + offset).is_multiple_of(3))
                    .collect(),
            ),
        };
        Tensor::new(&ty.shape, data).unwrap()
    }

    fn leaf(&mut self, l: &Leaf) -> Value {
        let name = self.fresh();
        let ty = TensorType::new(l.dtype, &l.shape);
        let v = match l.kind {
            0 => self.g.add_input(&name, ty, InputKind::Data),
            1 => self.g.add_input(&name, ty, InputKind::Param),
            _ => {
                let t = self.tensor(&ty, l.splat, l.offset);
                self.g.add_const(&name, t)
            }
        }
        .unwrap();
        self.vals.push(v);
        v
    }

    fn param(&mut self, shape: &[usize]) -> Value {
        self.leaf(&Leaf {
            kind: 1,
            dtype: DType::F32,
            shape: shape.to_vec(),
            splat: false,
            offset: 0,
        })
    }

    fn constant(&mut self, dtype: DType, shape: &[usize], seed: u32) -> Value {
        let l = Leaf {
            kind: 2,
            dtype,
            shape: shape.to_vec(),
            splat: seed.is_multiple_of(3),
            offset: seed as usize % 97,
        };
        self.leaf(&l)
    }

    fn ty(&self, v: Value) -> TensorType {
        self.g.ty(v).clone()
    }

    /// A value whose type satisfies `pred`, chosen by `r`.
    fn pick(&self, r: u32, pred: impl Fn(&TensorType) -> bool) -> Option<Value> {
        let c: Vec<Value> = self
            .vals
            .iter()
            .copied()
            .filter(|v| pred(self.g.ty(*v)))
            .collect();
        (!c.is_empty()).then(|| c[r as usize % c.len()])
    }

    fn f32_rank(&self, r: u32, min_rank: usize) -> Option<Value> {
        self.pick(r, |t| t.dtype == DType::F32 && t.rank() >= min_rank)
    }

    /// Adds an op from its name and attributes; a rejected candidate is skipped.
    fn op(&mut self, name: &str, attrs: Vec<(&str, AttrValue)>, inputs: &[Value], outputs: usize) {
        let attrs: Vec<(String, AttrValue)> =
            attrs.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        let op = OpKind::from_name(name).unwrap().with_attrs(&attrs).unwrap();
        let names: Vec<String> = (0..outputs).map(|_| self.fresh()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Ok(vs) = self.g.add_op(&names, op, inputs) {
            self.vals.extend(vs);
        }
    }

    fn step(&mut self, s: &Step) {
        use AttrValue::{Bool, Float, Int, Ints};
        let r = s.r;
        let pick_of = |options: &[&'static str], x: u32| options[x as usize % options.len()];
        let axis = |x: u32, rank: usize| (x % (2 * rank.max(1) as u32)) as i64 - rank as i64;
        match s.op {
            0 => {
                if let Some(x) = self.f32_rank(r[0], 0) {
                    let op = pick_of(
                        &[
                            "neg", "exp", "log", "sqrt", "rsqrt", "abs", "relu", "sigmoid", "tanh",
                        ],
                        r[1],
                    );
                    self.op(op, vec![], &[x], 1);
                }
            }
            1 => {
                if let Some(x) = self.f32_rank(r[0], 0) {
                    self.op("leaky_relu", vec![("alpha", Float(s.f))], &[x], 1);
                }
            }
            2 => {
                let Some(a) = self.f32_rank(r[0], 0) else {
                    return;
                };
                let b = match r[2] % 3 {
                    0 => {
                        // A constant whose shape broadcasts against `a`: a suffix, some axes 1.
                        let sh = self.ty(a).shape;
                        let keep = r[3] as usize % (sh.len() + 1);
                        let shape: Vec<usize> = sh[sh.len() - keep..]
                            .iter()
                            .enumerate()
                            .map(|(i, &d)| if r[4] >> i & 1 == 1 { 1 } else { d })
                            .collect();
                        self.constant(DType::F32, &shape, r[5])
                    }
                    1 => a,
                    _ => self.f32_rank(r[3], 0).unwrap_or(a),
                };
                let op = pick_of(
                    &["add", "sub", "mul", "div", "max", "min", "pow", "prelu"],
                    r[1],
                );
                let (x, y) = if r[6].is_multiple_of(2) {
                    (a, b)
                } else {
                    (b, a)
                };
                self.op(op, vec![], &[x, y], 1);
            }
            3 => {
                let Some(a) = self.f32_rank(r[0], 2) else {
                    return;
                };
                let sh = self.ty(a).shape;
                if r[1].is_multiple_of(2) {
                    let k = sh[sh.len() - 1];
                    let b = self.param(&[k, 1 + r[2] as usize % 4]);
                    self.op("matmul", vec![], &[a, b], 1);
                } else if let Some(b) = self.f32_rank(r[2], 2) {
                    self.op("matmul", vec![], &[a, b], 1);
                }
            }
            4 => {
                let Some(a) = self.pick(r[0], |t| t.dtype == DType::F32 && t.rank() == 2) else {
                    return;
                };
                let sh = self.ty(a).shape;
                let (ta, tb) = (r[1] % 2 == 1, r[2] % 2 == 1);
                let k = if ta { sh[0] } else { sh[1] };
                let n = 1 + r[3] as usize % 4;
                let b = self.param(&if tb { [n, k] } else { [k, n] });
                let mut ins = vec![a, b];
                if r[4].is_multiple_of(2) {
                    ins.push(self.constant(DType::F32, &[n], r[5]));
                }
                let attrs = vec![
                    ("trans_a", Bool(ta)),
                    ("trans_b", Bool(tb)),
                    ("alpha", Float(s.f)),
                    ("beta", Float(r[6] as f32 / 7.0)),
                ];
                self.op("gemm", attrs, &ins, 1);
            }
            5 | 6 => {
                let Some(x) = self.pick(r[0], |t| t.dtype == DType::F32 && t.rank() == 4) else {
                    return;
                };
                let c = self.ty(x).shape[1];
                let divisors: Vec<usize> =
                    (1..=c.max(1)).filter(|g| c.is_multiple_of(*g)).collect();
                let groups = divisors[r[1] as usize % divisors.len()];
                let per = 1 + r[2] as usize % 3;
                let (kh, kw) = (1 + r[3] as usize % 3, 1 + (r[3] / 3) as usize % 3);
                let stride = [1 + (r[4] % 2) as i64, 1 + (r[4] / 2 % 2) as i64];
                let dilation = [1 + (r[4] / 4 % 2) as i64, 1 + (r[4] / 8 % 2) as i64];
                let pad: Vec<i64> = (0..4).map(|i| (r[5] >> (2 * i) & 1) as i64).collect();
                let transposed = s.op == 6;
                let cout = groups * per;
                let w = if transposed {
                    self.param(&[c, per, kh, kw])
                } else {
                    self.param(&[cout, c / groups.max(1), kh, kw])
                };
                let mut ins = vec![x, w];
                if r[6].is_multiple_of(2) {
                    ins.push(self.constant(DType::F32, &[cout], r[7]));
                }
                let mut attrs = vec![
                    ("stride", Ints(stride.to_vec())),
                    ("pad", Ints(pad)),
                    ("dilation", Ints(dilation.to_vec())),
                ];
                if transposed {
                    let op = [(r[7] % 2) as i64, (r[7] / 2 % 2) as i64];
                    attrs.push(("output_pad", Ints(op.to_vec())));
                }
                attrs.push(("groups", Int(groups as i64)));
                self.op(
                    if transposed {
                        "conv_transpose2d"
                    } else {
                        "conv2d"
                    },
                    attrs,
                    &ins,
                    1,
                );
            }
            7 => {
                let Some(x) = self.pick(r[0], |t| t.dtype == DType::F32 && t.rank() == 4) else {
                    return;
                };
                let kernel = vec![1 + (r[1] % 3) as i64, 1 + (r[1] / 3 % 3) as i64];
                let stride = vec![1 + (r[2] % 2) as i64, 1 + (r[2] / 2 % 2) as i64];
                let pad: Vec<i64> = (0..4)
                    .map(|i| (r[3] >> i & 1) as i64 * (kernel[i % 2] - 1).min(1))
                    .collect();
                match r[4] % 4 {
                    0 => self.op(
                        "max_pool2d",
                        vec![
                            ("kernel", Ints(kernel)),
                            ("stride", Ints(stride)),
                            ("pad", Ints(pad)),
                        ],
                        &[x],
                        1,
                    ),
                    1 => {
                        let attrs = vec![
                            ("kernel", Ints(kernel)),
                            ("stride", Ints(stride)),
                            ("pad", Ints(pad)),
                            ("count_include_pad", Bool(r[5].is_multiple_of(2))),
                        ];
                        self.op("avg_pool2d", attrs, &[x], 1)
                    }
                    2 => self.op("global_avg_pool", vec![], &[x], 1),
                    _ => {
                        let sh = &self.ty(x).shape;
                        let k = (1..=3)
                            .rev()
                            .find(|&k| {
                                sh[2].is_multiple_of(k)
                                    && sh[3].is_multiple_of(k)
                                    && k <= 1 + (r[1] % 3) as usize
                            })
                            .unwrap_or(1);
                        let mut ins = vec![x];
                        if r[6].is_multiple_of(2) {
                            ins.push(self.constant(DType::I64, &[], r[7]));
                        }
                        let attrs = vec![("kernel", Int(k as i64)), ("seed", Int(r[5] as i64))];
                        self.op("stochastic_pool2d", attrs, &ins, 1)
                    }
                }
            }
            8 => {
                let Some(x) = self.f32_rank(r[0], 2) else {
                    return;
                };
                let c = self.ty(x).shape[1];
                let eps = Float(s.f.abs());
                if r[1].is_multiple_of(2) {
                    let mut ins = vec![x];
                    for i in 0..4 {
                        ins.push(if r[2] >> i & 1 == 0 {
                            self.param(&[c])
                        } else {
                            self.constant(DType::F32, &[c], r[3 + i])
                        });
                    }
                    self.op("batch_norm", vec![("eps", eps)], &ins, 1);
                } else {
                    let (g, b) = (self.param(&[c]), self.param(&[c]));
                    self.op("batch_norm_train", vec![("eps", eps)], &[x, g, b], 3);
                }
            }
            9 => {
                let Some(x) = self.f32_rank(r[0], 1) else {
                    return;
                };
                let a = axis(r[1], self.ty(x).rank());
                self.op(
                    pick_of(&["softmax", "log_softmax"], r[2]),
                    vec![("axis", Int(a))],
                    &[x],
                    1,
                );
            }
            10 => {
                let counter =
                    (r[6].is_multiple_of(3)).then(|| self.constant(DType::I64, &[], r[7]));
                let mut ins: Vec<Value> = Vec::new();
                let seed = ("seed", Int(r[5] as i64 - (1 << 31)));
                let shape: Vec<i64> = (0..r[2] % 4)
                    .map(|i| 1 + (r[3] >> (3 * i) & 3) as i64)
                    .collect();
                match r[1] % 4 {
                    0 => {
                        let Some(x) = self.f32_rank(r[0], 0) else {
                            return;
                        };
                        ins.push(x);
                        ins.extend(counter);
                        let p = (s.f.abs() % 1.0).min(0.99);
                        self.op(
                            "dropout",
                            vec![("p", Float(if p.is_nan() { 0.5 } else { p })), seed],
                            &ins,
                            1,
                        );
                    }
                    1 => {
                        ins.extend(counter);
                        let low = s.f.min(0.0);
                        let attrs = vec![
                            ("shape", Ints(shape)),
                            ("low", Float(low)),
                            ("high", Float(r[4] as f32 / 1000.0)),
                            seed,
                        ];
                        self.op("random_uniform", attrs, &ins, 1);
                    }
                    2 => {
                        ins.extend(counter);
                        let attrs = vec![
                            ("shape", Ints(shape)),
                            ("mean", Float(s.f)),
                            ("std", Float(r[4] as f32 / 1e6)),
                            seed,
                        ];
                        self.op("random_normal", attrs, &ins, 1);
                    }
                    _ => {
                        let Some(x) = self.f32_rank(r[0], 0) else {
                            return;
                        };
                        ins.push(x);
                        ins.extend(counter);
                        self.op("bernoulli", vec![seed], &ins, 1);
                    }
                }
            }
            11 => {
                if r[1] % 4 == 3 {
                    let Some(x) = self.pick(r[0], |t| t.dtype != DType::Bool && t.rank() >= 1)
                    else {
                        return;
                    };
                    let a = axis(r[2], self.ty(x).rank());
                    self.op(
                        "argmax",
                        vec![("axis", Int(a)), ("keepdims", Bool(r[3].is_multiple_of(2)))],
                        &[x],
                        1,
                    );
                    return;
                }
                let Some(x) = self.f32_rank(r[0], 0) else {
                    return;
                };
                let rank = self.ty(x).rank();
                let axes: Vec<i64> = (0..rank)
                    .filter(|i| r[2] >> i & 1 == 1)
                    .map(|i| {
                        if r[3] >> i & 1 == 1 {
                            i as i64 - rank as i64
                        } else {
                            i as i64
                        }
                    })
                    .collect();
                let op = pick_of(&["reduce_sum", "reduce_mean", "reduce_max"], r[1]);
                self.op(
                    op,
                    vec![
                        ("axes", Ints(axes)),
                        ("keepdims", Bool(r[4].is_multiple_of(2))),
                    ],
                    &[x],
                    1,
                );
            }
            12 => {
                let Some(x) = self.pick(r[0], |_| true) else {
                    return;
                };
                let t = self.ty(x);
                match r[1] % 3 {
                    0 => {
                        let n = t.numel() as i64;
                        let shape = match r[2] % 3 {
                            0 => vec![n],
                            1 => vec![1, -1],
                            _ => t.shape.iter().rev().map(|&d| d as i64).collect(),
                        };
                        self.op("reshape", vec![("shape", Ints(shape))], &[x], 1);
                    }
                    1 => {
                        let mut perm: Vec<i64> = (0..t.rank() as i64).collect();
                        for i in (1..perm.len()).rev() {
                            perm.swap(i, r[2 + i % 6] as usize % (i + 1));
                        }
                        self.op("transpose", vec![("perm", Ints(perm))], &[x], 1);
                    }
                    _ => {
                        let mut shape: Vec<i64> = vec![1 + (r[2] % 3) as i64];
                        shape.extend(t.shape.iter().map(|&d| d as i64));
                        self.op("broadcast", vec![("shape", Ints(shape))], &[x], 1);
                    }
                }
            }
            13 => {
                let Some(x) = self.pick(r[0], |t| t.rank() >= 1) else {
                    return;
                };
                let t = self.ty(x);
                let a = axis(r[1], t.rank());
                if r[2].is_multiple_of(2) {
                    let ins = vec![x; 1 + r[3] as usize % 3];
                    self.op("concat", vec![("axis", Int(a))], &ins, 1);
                } else {
                    let ext = t.shape[a.rem_euclid(t.rank() as i64) as usize];
                    let first = r[3] as usize % (ext + 1);
                    let sizes = if r[4].is_multiple_of(3) {
                        vec![ext as i64]
                    } else {
                        vec![first as i64, (ext - first) as i64]
                    };
                    let n = sizes.len();
                    self.op(
                        "split",
                        vec![("axis", Int(a)), ("sizes", Ints(sizes))],
                        &[x],
                        n,
                    );
                }
            }
            14 => {
                let Some(x) = self.pick(r[0], |_| true) else {
                    return;
                };
                let t = self.ty(x);
                match r[1] % 3 {
                    0 => {
                        let axes: Vec<usize> =
                            (0..t.rank()).filter(|i| r[2] >> i & 1 == 1).collect();
                        let bound =
                            |v: u32, d: usize| (v % (2 * d as u32 + 3)) as i64 - d as i64 - 1;
                        let starts = axes.iter().map(|&a| bound(r[3] >> a, t.shape[a])).collect();
                        let ends = axes.iter().map(|&a| bound(r[4] >> a, t.shape[a])).collect();
                        let steps = axes
                            .iter()
                            .map(|&a| 1 + (r[5] >> a & 1) as i64 * 2)
                            .collect();
                        let axes = axes.iter().map(|&a| a as i64).collect();
                        let attrs = vec![
                            ("axes", Ints(axes)),
                            ("starts", Ints(starts)),
                            ("ends", Ints(ends)),
                            ("steps", Ints(steps)),
                        ];
                        self.op("slice", attrs, &[x], 1);
                    }
                    1 => {
                        let pads = (0..2 * t.rank())
                            .map(|i| (r[2] >> i & 1) as i64 + (r[3] >> i & 1) as i64)
                            .collect();
                        self.op(
                            "pad",
                            vec![("pads", Ints(pads)), ("value", Float(s.f))],
                            &[x],
                            1,
                        );
                    }
                    _ => {
                        let a = (r[2] % (t.rank() as u32 + 1)) as i64;
                        self.op("flatten", vec![("axis", Int(a))], &[x], 1);
                    }
                }
            }
            15 => {
                let Some(x) = self.pick(r[0], |_| true) else {
                    return;
                };
                let to = [DType::F32, DType::I64, DType::Bool][r[1] as usize % 3];
                self.op("cast", vec![("to", AttrValue::DType(to))], &[x], 1);
            }
            16 => {
                let Some(a) = self.pick(r[0], |t| t.dtype != DType::Bool) else {
                    return;
                };
                let t = self.ty(a);
                let b = if r[1].is_multiple_of(2) {
                    a
                } else {
                    self.constant(t.dtype, &[], r[2])
                };
                let cmp = pick_of(
                    &["equal", "less", "less_equal", "greater", "greater_equal"],
                    r[3],
                );
                let n = self.vals.len();
                self.op(cmp, vec![], &[a, b], 1);
                if self.vals.len() > n && !r[4].is_multiple_of(3) {
                    let cond = self.vals[n];
                    let other = self.constant(t.dtype, &[], r[5]);
                    self.op("select", vec![], &[cond, a, other], 1);
                }
            }
            17 => {
                let Some(d) = self.pick(r[0], |t| t.rank() >= 1) else {
                    return;
                };
                let t = self.ty(d);
                let a = axis(r[1], t.rank());
                let shape: Vec<usize> = (0..r[2] % 3)
                    .map(|i| 1 + (r[3] >> (2 * i) & 3) as usize)
                    .collect();
                let idx = self.constant(DType::I64, &shape, r[4]);
                self.op("gather", vec![("axis", Int(a))], &[d, idx], 1);
            }
            18 => {
                // A pooling followed by its gradient, fed the pooled value as `dy`.
                let Some(x) = self.pick(r[0], |t| t.dtype == DType::F32 && t.rank() == 4) else {
                    return;
                };
                let kernel = vec![1 + (r[1] % 3) as i64, 1 + (r[1] / 3 % 3) as i64];
                let stride = vec![1 + (r[2] % 2) as i64, 1 + (r[2] / 2 % 2) as i64];
                let (fwd, bwd) = if r[3].is_multiple_of(2) {
                    ("max_pool2d", "max_pool2d_grad")
                } else {
                    ("avg_pool2d", "avg_pool2d_grad")
                };
                let attrs = || {
                    vec![
                        ("kernel", Ints(kernel.clone())),
                        ("stride", Ints(stride.clone())),
                    ]
                };
                let before = self.vals.len();
                self.op(fwd, attrs(), &[x], 1);
                if self.vals.len() > before {
                    let y = self.vals[before];
                    self.op(bwd, attrs(), &[x, y], 1);
                }
            }
            19 => {
                // A convolution followed by its weight gradient.
                let Some(x) = self.pick(r[0], |t| t.dtype == DType::F32 && t.rank() == 4) else {
                    return;
                };
                let c = self.ty(x).shape[1];
                let k = 1 + (r[1] % 3) as usize;
                let w = self.constant(DType::F32, &[1 + r[2] as usize % 3, c, k, k], r[3]);
                let stride = Ints(vec![1 + (r[4] % 2) as i64; 2]);
                let before = self.vals.len();
                self.op("conv2d", vec![("stride", stride.clone())], &[x, w], 1);
                if self.vals.len() > before {
                    let y = self.vals[before];
                    let kernel = Ints(vec![k as i64; 2]);
                    self.op(
                        "conv2d_weight_grad",
                        vec![("kernel", kernel), ("stride", stride)],
                        &[x, y],
                        1,
                    );
                }
                if r[4] & 2 != 0 {
                    // The Winograd form of a padded 3x3 convolution of x.
                    let s = self.ty(x).shape.clone();
                    let w3 = self.constant(DType::F32, &[1 + r[2] as usize % 3, c, 3, 3], r[3]);
                    let tile = Int(if r[1] & 8 != 0 { 4 } else { 2 });
                    let before = self.vals.len();
                    self.op("winograd_filter", vec![("tile", tile.clone())], &[w3], 1);
                    self.op(
                        "winograd_input",
                        vec![("tile", tile.clone()), ("pad", Ints(vec![1; 4]))],
                        &[x],
                        1,
                    );
                    if self.vals.len() == before + 2 {
                        let (u, v) = (self.vals[before], self.vals[before + 1]);
                        self.op("matmul", vec![], &[u, v], 1);
                        if self.vals.len() == before + 3 {
                            let m = self.vals[before + 2];
                            let out = Ints(vec![s[2] as i64, s[3] as i64]);
                            self.op(
                                "winograd_output",
                                vec![("tile", tile), ("out", out)],
                                &[m],
                                1,
                            );
                        }
                    }
                }
            }
            20 => {
                // scatter_add of a gather's result back along the same axis.
                let Some(d) = self.pick(r[0], |t| t.dtype == DType::F32 && t.rank() >= 1) else {
                    return;
                };
                let t = self.ty(d);
                let a = (r[1] as usize % t.rank()) as i64;
                let idx = self.constant(DType::I64, &[1 + r[2] as usize % 3], r[3]);
                let before = self.vals.len();
                self.op("gather", vec![("axis", Int(a))], &[d, idx], 1);
                if self.vals.len() > before {
                    let g = self.vals[before];
                    let extent = Int(t.shape[a as usize] as i64);
                    self.op(
                        "scatter_add",
                        vec![("axis", Int(a)), ("extent", extent)],
                        &[idx, g],
                        1,
                    );
                }
            }
            _ => {
                let x = match self.pick(r[0], |t| t.dtype == DType::I64) {
                    Some(x) if r[1].is_multiple_of(2) => x,
                    _ => self.constant(DType::I64, &[1 + r[2] as usize % 4], r[3]),
                };
                self.op(
                    "one_hot",
                    vec![("depth", Int(1 + (r[4] % 5) as i64))],
                    &[x],
                    1,
                );
            }
        }
    }
}

fn build(recipe: &Recipe) -> Graph {
    let mut b = Gen {
        g: Graph::new(recipe.name),
        vals: Vec::new(),
        recipe,
        names: 0,
    };
    for l in &recipe.leaves {
        b.leaf(l);
    }
    for s in &recipe.steps {
        b.step(s);
    }
    let mut outs: Vec<Value> = Vec::new();
    for &o in &recipe.outputs {
        let v = b.vals[o as usize % b.vals.len()];
        if !outs.contains(&v) {
            outs.push(v);
        }
    }
    b.g.set_outputs(&outs).unwrap();
    b.g.verify().unwrap();
    b.g
}

/// Floats equal bitwise, or both NaN (the text format keeps no NaN payloads).
fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_attr(a: &AttrValue, b: &AttrValue) -> bool {
    match (a, b) {
        (AttrValue::Float(x), AttrValue::Float(y)) => same_f32(*x, *y),
        _ => a == b,
    }
}

/// Graph equality, except that any two NaNs count as equal.
fn assert_same_graph(a: &Graph, b: &Graph) {
    if a == b {
        return;
    }
    assert_eq!(a.name(), b.name());
    assert_eq!(a.outputs(), b.outputs());
    assert_eq!(a.nodes().len(), b.nodes().len());
    for (i, (x, y)) in a.nodes().iter().zip(b.nodes()).enumerate() {
        assert_eq!(x.inputs, y.inputs, "node {i}");
        assert_eq!(x.outputs, y.outputs, "node {i}");
        let same = match (&x.kind, &y.kind) {
            (NodeKind::Const(s), NodeKind::Const(t)) => {
                s.ty() == t.ty()
                    && match (s.data(), t.data()) {
                        (TensorData::F32(u), TensorData::F32(v)) => {
                            u.iter().zip(v).all(|(p, q)| same_f32(*p, *q))
                        }
                        (u, v) => u == v,
                    }
            }
            (NodeKind::Op(p), NodeKind::Op(q)) => {
                p.kind() == q.kind()
                    && p.attrs()
                        .iter()
                        .zip(q.attrs())
                        .all(|((m, u), (n, v))| *m == n && same_attr(u, &v))
            }
            (k, l) => k == l,
        };
        assert!(same, "node {i} differs: {:?} vs {:?}", x.kind, y.kind);
    }
}

/// Characters likely to matter to the lexer and parser, for random edits.
const EDIT_CHARS: &[char] = &[
    '%', '@', '[', ']', '(', ')', '{', '}', ',', ':', '=', '#', '-', '+', '.', '0', '1', '9', 'e',
    'a', '_', ' ', '\n', '\t', '\u{e9}', '\u{221e}', '\u{0}',
];

#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![4 => prop::sample::select(EDIT_CHARS), 1 => any::<char>()];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len();
        match *e {
            Edit::Delete(i) if n > 0 => {
                chars.remove(i % n);
            }
            Edit::Insert(i, c) => chars.insert(i % (n + 1), c),
            Edit::Replace(i, c) if n > 0 => chars[i % n] = c,
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Whatever parses prints canonically: reprinting the parse of the print gives the print.
fn check_parse(src: &str) {
    if let Ok(g) = parse(src) {
        let text = print(&g);
        let g2 = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(print(&g2), text);
    }
}

const TOKENS: &[&str] = &[
    "graph",
    "@g",
    "{",
    "}",
    "input",
    "param",
    "const",
    "output",
    "%x",
    "%y",
    "%0",
    ":",
    ",",
    "=",
    "(",
    ")",
    "[",
    "]",
    "f32",
    "i64",
    "bool",
    "f32[2]",
    "f32[]",
    "i64[3]",
    "relu",
    "add",
    "split",
    "conv2d",
    "random_uniform",
    "cast",
    "1",
    "-1",
    "0",
    "2.5",
    "1e9",
    "nan",
    "-inf",
    "true",
    "axis=0",
    "sizes=[1, 1]",
    "shape=[2]",
    "to=f32",
    "#",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_graphs_round_trip(recipe in recipe()) {
        let g = build(&recipe);
        let text = print(&g);
        let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(print(&parsed), text.clone());
        assert_same_graph(&g, &parsed);
        // Constants also round-trip through the literal API alone.
        for n in g.nodes() {
            if let NodeKind::Const(t) = &n.kind {
                let back = sinter_ir::text::parse_tensor_literal(&t.ty(), &print_tensor_literal(t)).unwrap();
                prop_assert_eq!(print_tensor_literal(&back), print_tensor_literal(t));
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn edited_graphs_never_panic(recipe in recipe(), edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply(&print(&build(&recipe)), &edits);
        check_parse(&text);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in prop_oneof![any::<String>(), "[ -~\n\t]{0,200}", "graph @g \\{[ -~\n]{0,200}"]) {
        check_parse(&s);
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(TOKENS), 0..60), header in any::<bool>()) {
        let body = toks.join(" ");
        let src = if header { format!("graph @g {{\n{body}") } else { body };
        check_parse(&src);
    }
}

#[test]
fn generator_covers_many_ops() {
    // The generator is only useful if most ops actually occur: build a batch of graphs
    // deterministically and count which ops appear.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let g = build(&recipe().new_tree(&mut runner).unwrap().current());
        for n in g.nodes() {
            if let Some(op) = n.op() {
                seen.insert(op.name());
            }
        }
    }
    let missing: Vec<&str> = OpKind::ALL
        .iter()
        .map(|k| k.name())
        .filter(|n| !seen.contains(n))
        .collect();
    assert!(missing.is_empty(), "ops never generated: {missing:?}");
}
