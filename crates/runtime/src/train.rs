//! [`Jit`]: the JIT as a training [`Backend`], so that a [`Trainer`] runs its step as native
//! code: `Trainer::new(Jit::default(), training_graph, params, schedule)`.
//!
//! The training graph is compiled once ([`Compiled::new`]: lowering, Cranelift, one memory
//! plan) and each step feeds the batch, the parameters, the optimiser state and the learning
//! rate to [`Compiled::run`].
//!
//! The graph is compiled as autodiff built it: this backend does not run the
//! equality-saturation optimiser (`sinter_rewrite::optimize`) first. It would be cheap but has
//! not paid yet: on the LeNet example's Adam step (2-vCPU machine, test profile, two sessions)
//! rewriting took 11-38 ms and cut the kernels from 83 to 61, but the step time did not change
//! beyond the machine's noise (1.89 vs 1.88 ms, then 1.19 vs 1.28 ms); on a 64-64-10 MLP
//! likewise. Doing it here would also make the runtime depend on the rewrite crate. A caller
//! who wants it can optimise [`TrainingGraph::graph`](sinter_autodiff::TrainingGraph) before
//! building the trainer.
//!
//! [`Trainer`]: sinter_autodiff::Trainer

use crate::{CompileOptions, Compiled};
use sinter_autodiff::Backend;
use sinter_ir::{Graph, Tensor};
use std::collections::HashMap;

/// Compiles with the JIT; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct Jit {
    /// How every training graph is compiled.
    pub options: CompileOptions,
}

impl Jit {
    /// A backend compiling with `options`.
    pub fn new(options: CompileOptions) -> Jit {
        Jit { options }
    }
}

impl Backend for Jit {
    type Program = Compiled;

    fn compile(&mut self, graph: &Graph) -> Result<Compiled, String> {
        Compiled::new(graph, self.options).map_err(|e| e.to_string())
    }

    fn run(
        &mut self,
        program: &Compiled,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, String> {
        program.run(inputs).map_err(|e| e.to_string())
    }
}
