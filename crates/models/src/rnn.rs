//! Recurrent classifiers unrolled over a fixed sequence length: a plain (Elman) RNN and an
//! LSTM, with a linear classifier on the last hidden state.

use crate::net::Net;
use crate::{BuildError, Mode, classify};
use sinter_ir::{Graph, Op, Tensor, TensorType};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// `h' = tanh(x @ rnn.wx + h @ rnn.wh + rnn.b)`.
    Rnn,
    /// `[i, f, g, o] = [x, h] @ lstm.w + lstm.b` (gates in that order along the columns);
    /// `c' = sigmoid(f) c + sigmoid(i) tanh(g)`, `h' = sigmoid(o) tanh(c')`.
    Lstm,
}

/// A recurrent classifier reading `x: f32[batch, seq, inputs]` one step at a time from
/// zero initial state, then `logits` on the last hidden state.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnConfig {
    /// The cell.
    pub cell: Cell,
    /// Batch size.
    pub batch: usize,
    /// Sequence length (steps unrolled).
    pub seq: usize,
    /// Features per step.
    pub inputs: usize,
    /// Hidden state width.
    pub hidden: usize,
    /// Classes.
    pub classes: usize,
}

impl RnnConfig {
    /// 4 steps of 4 features, hidden 8, batch 4.
    pub fn small(cell: Cell) -> RnnConfig {
        RnnConfig {
            cell,
            batch: 4,
            seq: 4,
            inputs: 4,
            hidden: 8,
            classes: 10,
        }
    }

    /// MNIST read row by row: 28 steps of 28 pixels, hidden 128, batch 64.
    pub fn full(cell: Cell) -> RnnConfig {
        RnnConfig {
            cell,
            batch: 64,
            seq: 28,
            inputs: 28,
            hidden: 128,
            classes: 10,
        }
    }
}

/// The recurrent classifier of `cfg`: outputs `loss` and `logits`.
pub fn rnn(cfg: &RnnConfig) -> Result<Graph, BuildError> {
    if cfg.seq == 0 {
        return Err(BuildError::Config(
            "the sequence length must be >= 1".into(),
        ));
    }
    let (b, i, h) = (cfg.batch, cfg.inputs, cfg.hidden);
    let name = match cfg.cell {
        Cell::Rnn => "rnn",
        Cell::Lstm => "lstm",
    };
    let mut n = Net::new(name, Mode::Train);
    let x = n.input("x", TensorType::f32(&[b, cfg.seq, i]))?;
    let labels = n.input("labels", TensorType::i64(&[b]))?;
    let steps = if cfg.seq == 1 {
        vec![x]
    } else {
        let names: Vec<String> = (0..cfg.seq).map(|t| format!("x.{t}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        n.multi(
            &refs,
            Op::Split {
                axis: 1,
                sizes: vec![1; cfg.seq],
            },
            &[x],
        )?
    };
    let zeros = Tensor::zeros(&TensorType::f32(&[b, h]));
    let mut state = n.constant(zeros.clone())?;
    let mut cell = n.constant(zeros)?;
    let gemm = Op::Gemm {
        trans_a: false,
        trans_b: false,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    };
    let (w, wh, bias) = match cfg.cell {
        Cell::Rnn => (
            n.param("rnn.wx", &[i, h])?,
            Some(n.param("rnn.wh", &[h, h])?),
            n.param("rnn.b", &[h])?,
        ),
        Cell::Lstm => (
            n.param("lstm.w", &[i + h, 4 * h])?,
            None,
            n.param("lstm.b", &[4 * h])?,
        ),
    };
    for (t, &xt) in steps.iter().enumerate() {
        let xt = n.reshape(xt, &[b as i64, i as i64])?;
        match wh {
            Some(wh) => {
                let zx = n.op(gemm.clone(), &[xt, w, bias])?;
                let zh = n.op(Op::Matmul {}, &[state, wh])?;
                let z = n.add(zx, zh)?;
                state = n.named(&format!("h.{t}"), Op::Tanh {}, &[z])?;
            }
            None => {
                let xh = n.op(Op::Concat { axis: 1 }, &[xt, state])?;
                let z = n.op(gemm.clone(), &[xh, w, bias])?;
                let gates = n.multi(
                    &[
                        &format!("i.{t}"),
                        &format!("f.{t}"),
                        &format!("g.{t}"),
                        &format!("o.{t}"),
                    ],
                    Op::Split {
                        axis: 1,
                        sizes: vec![h as i64; 4],
                    },
                    &[z],
                )?;
                let ig = n.op(Op::Sigmoid {}, &[gates[0]])?;
                let fg = n.op(Op::Sigmoid {}, &[gates[1]])?;
                let gg = n.op(Op::Tanh {}, &[gates[2]])?;
                let og = n.op(Op::Sigmoid {}, &[gates[3]])?;
                let fc = n.mul(fg, cell)?;
                let igg = n.mul(ig, gg)?;
                cell = n.named(&format!("c.{t}"), Op::Add {}, &[fc, igg])?;
                let tc = n.op(Op::Tanh {}, &[cell])?;
                state = n.named(&format!("h.{t}"), Op::Mul {}, &[og, tc])?;
            }
        }
    }
    classify(n, state, labels, cfg.classes)
}
