//! [`Trainer`]: runs a [`TrainingGraph`] step after step, holding the parameters and state.
//!
//! A trainer compiles the training graph once ([`Backend::compile`]) and then, per step,
//! feeds a batch, the parameters, the optimiser state and the scheduled learning rate, and
//! keeps the `*.next` outputs as the next step's inputs. The backend is a trait so that the
//! JIT runtime can replace the interpreter without changing the loop: [`Interpret`] adapts
//! any function with the signature of `sinter_interp::run` (this crate does not depend on the
//! interpreter: nothing in the pipeline does). Parameters and running statistics are saved to
//! and loaded from `safetensors` files.

use crate::error::AutodiffError;
use crate::schedule::Schedule;
use crate::train::TrainingGraph;
use sinter_ir::{Graph, Tensor, TensorData};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Something that compiles a graph once and runs it many times.
pub trait Backend {
    /// The compiled form of a graph.
    type Program;
    /// Compiles `graph`.
    fn compile(&mut self, graph: &Graph) -> Result<Self::Program, String>;
    /// Runs a compiled graph, feeding inputs by name; returns the outputs by name, in order.
    fn run(
        &mut self,
        program: &Self::Program,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, String>;
}

/// A backend that keeps the graph as it is and evaluates it with a function shaped like
/// `sinter_interp::run`: `Trainer::new(Interpret(sinter_interp::run), ...)`.
pub struct Interpret<F>(pub F);

impl<F, E> Backend for Interpret<F>
where
    F: FnMut(&Graph, &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, E>,
    E: std::fmt::Display,
{
    type Program = Graph;

    fn compile(&mut self, graph: &Graph) -> Result<Graph, String> {
        graph.verify().map_err(|e| e.to_string())?;
        Ok(graph.clone())
    }

    fn run(
        &mut self,
        program: &Graph,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, String> {
        (self.0)(program, inputs).map_err(|e| e.to_string())
    }
}

/// The training loop's state over a compiled [`TrainingGraph`]; see the [module docs](self).
pub struct Trainer<B: Backend> {
    backend: B,
    program: B::Program,
    graph: TrainingGraph,
    /// Parameters and state by input name.
    values: HashMap<String, Tensor>,
    schedule: Schedule,
    steps: u64,
}

impl<B: Backend> Trainer<B> {
    /// Compiles `graph` with `backend`. `params` must give every parameter with its type;
    /// the optimiser state and running statistics start at their initial values.
    pub fn new(
        mut backend: B,
        graph: TrainingGraph,
        params: HashMap<String, Tensor>,
        schedule: Schedule,
    ) -> Result<Trainer<B>, AutodiffError> {
        let program = backend
            .compile(&graph.graph)
            .map_err(AutodiffError::Backend)?;
        let mut values = graph.initial_state();
        for p in &graph.params {
            let t = params.get(p).ok_or_else(|| {
                AutodiffError::Train(format!("no initial value for parameter `%{p}`"))
            })?;
            values.insert(p.clone(), t.clone());
        }
        let mut tr = Trainer {
            backend,
            program,
            graph,
            values: HashMap::new(),
            schedule,
            steps: 0,
        };
        for (name, t) in values {
            tr.check_type(&name, &t)?;
            tr.values.insert(name, t);
        }
        Ok(tr)
    }

    fn check_type(&self, name: &str, t: &Tensor) -> Result<(), AutodiffError> {
        let v = self.graph.graph.find(name).ok_or_else(|| {
            AutodiffError::Train(format!("the training graph has no input `%{name}`"))
        })?;
        let want = self.graph.graph.ty(v);
        if t.ty() != *want {
            return Err(AutodiffError::Train(format!(
                "`%{name}` is {want}, got {}",
                t.ty()
            )));
        }
        Ok(())
    }

    /// Runs one training step on `batch` (the forward graph's data inputs, by name) and
    /// returns the loss. The parameters and state advance only if the step succeeds.
    pub fn step(&mut self, batch: &HashMap<String, Tensor>) -> Result<f32, AutodiffError> {
        if let Some(k) = batch
            .keys()
            .find(|k| self.values.contains_key(*k) || **k == self.graph.lr)
        {
            return Err(AutodiffError::Train(format!(
                "the batch feeds `%{k}`, which the trainer owns"
            )));
        }
        // The parameters and state move into the inputs and back, without copies.
        let mut inputs = std::mem::take(&mut self.values);
        inputs.extend(batch.iter().map(|(k, t)| (k.clone(), t.clone())));
        let lr = self.schedule.lr(self.steps);
        inputs.insert(self.graph.lr.clone(), Tensor::scalar(lr));
        let result = self.backend.run(&self.program, &inputs);
        inputs.remove(&self.graph.lr);
        for k in batch.keys() {
            inputs.remove(k);
        }
        self.values = inputs;
        let outs: HashMap<String, Tensor> = result
            .map_err(AutodiffError::Backend)?
            .into_iter()
            .collect();
        let loss = outs
            .get(&self.graph.loss)
            .and_then(|t| t.as_f32())
            .and_then(|v| v.first().copied())
            .ok_or_else(|| AutodiffError::Backend("the step returned no loss".into()))?;
        if let Some((out, _)) = self
            .graph
            .feedback
            .iter()
            .find(|(o, _)| !outs.contains_key(o))
        {
            return Err(AutodiffError::Backend(format!(
                "the step returned no `%{out}`"
            )));
        }
        let mut outs = outs;
        for (out, input) in &self.graph.feedback {
            if let Some(t) = outs.remove(out) {
                self.values.insert(input.clone(), t);
            }
        }
        self.steps += 1;
        Ok(loss)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The training graph.
    pub fn graph(&self) -> &TrainingGraph {
        &self.graph
    }

    /// The current value of a parameter (or of a state input, such as a running mean).
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.values.get(name)
    }

    /// Replaces a parameter or state value; its type must match the input's.
    pub fn set(&mut self, name: &str, t: Tensor) -> Result<(), AutodiffError> {
        if !self.values.contains_key(name) {
            return Err(AutodiffError::Train(format!(
                "`%{name}` is not a parameter or state input of the training graph"
            )));
        }
        self.check_type(name, &t)?;
        self.values.insert(name.to_string(), t);
        Ok(())
    }

    /// The parameters and batch-norm running statistics: what an inference graph (see
    /// [`inference_graph`](crate::inference_graph)) needs besides its data.
    pub fn model(&self) -> BTreeMap<String, Tensor> {
        let mut names: Vec<&String> = self.graph.params.iter().collect();
        for bn in &self.graph.batch_norm {
            names.push(&bn.mean);
            names.push(&bn.var);
        }
        names
            .into_iter()
            .filter_map(|n| Some((n.clone(), self.values.get(n)?.clone())))
            .collect()
    }

    /// Everything the trainer carries between steps (parameters, optimiser state, running
    /// statistics), by input name: what two backends must agree on after a step.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Saves [`Trainer::model`] to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), AutodiffError> {
        save_tensors(path, &self.model())
    }

    /// Loads parameters and running statistics from a safetensors file; every tensor in it
    /// must name one with the same type. Tensors the file lacks keep their values.
    pub fn load(&mut self, path: &Path) -> Result<(), AutodiffError> {
        for (name, t) in load_tensors(path)? {
            self.set(&name, t)?;
        }
        Ok(())
    }
}

/// Writes f32 and i64 tensors to a safetensors file (bool tensors are stored as `BOOL`).
pub fn save_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<(), AutodiffError> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (dtype, data) = match t.data() {
                TensorData::F32(v) => {
                    (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                TensorData::I64(v) => {
                    (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                TensorData::Bool(v) => (Dtype::BOOL, v.iter().map(|&b| u8::from(b)).collect()),
            };
            (n.clone(), dtype, t.shape().to_vec(), data)
        })
        .collect();
    let mut views = Vec::new();
    for (n, dtype, shape, data) in &bytes {
        let view = TensorView::new(*dtype, shape.clone(), data)
            .map_err(|e| AutodiffError::Io(format!("tensor `{n}`: {e}")))?;
        views.push((n.as_str(), view));
    }
    let buf = safetensors::serialize(views, None)
        .map_err(|e| AutodiffError::Io(format!("serialising {}: {e}", path.display())))?;
    std::fs::write(path, buf).map_err(|e| AutodiffError::Io(format!("{}: {e}", path.display())))
}

/// Reads every tensor of a safetensors file (F32, I64 and BOOL).
pub fn load_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>, AutodiffError> {
    use safetensors::tensor::{Dtype, SafeTensors};
    let io = |e: String| AutodiffError::Io(format!("{}: {e}", path.display()));
    let buf = std::fs::read(path).map_err(|e| io(e.to_string()))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| io(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::I64 => TensorData::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Dtype::BOOL => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
            d => return Err(io(format!("tensor `{name}` has unsupported dtype {d:?}"))),
        };
        let t = Tensor::new(view.shape(), data).map_err(|e| io(format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}
