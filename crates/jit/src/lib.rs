//! Cranelift code generation from the loop-nest IR.
//!
//! [`compile`] turns a list of [`Kernel`]s into native functions in one `JITModule`
//! ([`Module`]), which owns the executable memory for as long as the functions may be called.
//! Code generation is a direct translation ([`codegen`]); math the interpreter does with
//! Rust's `f32` functions is called through imported symbols ([`externs`]) so results are
//! bit-exact, or done inline by polynomials ([`approx`]) when fast math is asked for.
//!
//! [`Options::bounds_checks`] makes every generated load and store compare its index with
//! the buffer's length and return an error code instead of touching memory out of bounds;
//! the differential tests run in that mode too.

// Unsafe is needed here and only here in the JIT: calling generated machine code through a
// function pointer, and freeing the JIT's executable memory. Both are wrapped by small
// functions with `// SAFETY:` comments; callers (the runtime) guarantee the buffer table.
#![allow(unsafe_code)]

pub mod approx;
mod codegen;
pub mod externs;
mod vector;

use codegen::{Emitter, clif_ty, entry, signature_params};
use cranelift_codegen::ir::AbiParam;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module as _};
use externs::Extern;
use sinter_lower::Kernel;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Code generation options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Check every load and store index against its buffer's length.
    pub bounds_checks: bool,
    /// Run Cranelift's optimiser (`opt_level=speed`) rather than `none`.
    pub optimize: bool,
    /// Keep each kernel's machine code as text ([`Module::asm`], `sinter compile --emit asm`).
    pub keep_asm: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bounds_checks: false,
            optimize: true,
            keep_asm: false,
        }
    }
}

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// Cranelift could not be set up for this machine.
    #[error("cannot set up Cranelift for this machine: {0}")]
    Setup(String),
    /// A kernel failed to compile (a bug in lowering or codegen).
    #[error("kernel `{kernel}` failed to compile: {message}")]
    Codegen {
        /// Kernel name.
        kernel: String,
        /// Cranelift's message.
        message: String,
    },
}

/// Entry point of a compiled kernel: `bufs[i]` is buffer `i`'s base address; `lo..hi` is the
/// range of the kernel's parallel loop to run (ignored by a kernel without one). Returns 0,
/// `1 + code` for a failed data check, or `-1 - i` for an out-of-bounds access to buffer `i`.
pub type KernelFn = unsafe extern "C" fn(bufs: *const *mut u8, lo: i64, hi: i64) -> i32;

/// Compiled kernels and the executable memory that holds them.
pub struct Module {
    module: Option<JITModule>,
    fns: Vec<KernelFn>,
    /// Each kernel's whole parallel loop (`0..extent`; `(0, 0)` for a kernel without one).
    whole: Vec<(i64, i64)>,
    /// Cranelift IR text of each kernel, when asked for.
    pub clif: Vec<String>,
    /// Machine code of each kernel as text (Cranelift's listing of the final x64 or aarch64
    /// instructions, after register allocation), when [`Options::keep_asm`] is set.
    pub asm: Vec<String>,
    /// Time spent building and compiling each kernel.
    pub compile_times: Vec<Duration>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Module({} kernels)", self.fns.len())
    }
}

impl Module {
    /// Number of kernels.
    pub fn len(&self) -> usize {
        self.fns.len()
    }

    /// Whether there are no kernels.
    pub fn is_empty(&self) -> bool {
        self.fns.is_empty()
    }

    /// Runs kernel `i`.
    ///
    /// # Safety
    /// `bufs` must hold one pointer per buffer of the kernel as lowered, each valid for reads
    /// (and writes, for output buffers) of the buffer's declared length in elements, and output
    /// buffers must not overlap any other buffer of the call.
    pub unsafe fn call(&self, i: usize, bufs: &[*mut u8]) -> i32 {
        // SAFETY: as for `call_range`; the whole loop is one range.
        unsafe { self.call_range(i, bufs, self.whole[i]) }
    }

    /// Kernel `i`'s entry point, for calls from several threads (a `Module` itself is not
    /// `Sync`: Cranelift's module state is not). The pointer is valid while `self` lives.
    pub fn entry(&self, i: usize) -> KernelFn {
        self.fns[i]
    }

    /// Runs the iterations `lo..hi` of kernel `i`'s parallel loop (`Kernel::parallel`); the
    /// whole kernel if it has none.
    ///
    /// # Safety
    /// As [`Module::call`], and `lo..hi` must lie within the parallel loop's `0..extent`
    /// (any range for a kernel without one).
    pub unsafe fn call_range(&self, i: usize, bufs: &[*mut u8], (lo, hi): (i64, i64)) -> i32 {
        // SAFETY: the caller guarantees the buffer table and the range; the function was
        // finalised by `compile` and its memory lives as long as `self.module`.
        unsafe { (self.fns[i])(bufs.as_ptr(), lo, hi) }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the function pointers in `self.fns` are dropped with `self` and never
            // handed out, so no code in this memory can run after it is freed.
            unsafe { m.free_memory() };
        }
    }
}

fn new_module(opts: Options) -> Result<JITModule, JitError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v).map_err(|e| JitError::Setup(e.to_string()))
    };
    set(
        &mut flags,
        "opt_level",
        if opts.optimize { "speed" } else { "none" },
    )?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    let isa_builder = cranelift_native::builder().map_err(|e| JitError::Setup(e.to_string()))?;
    let isa = isa_builder
        .finish(settings::Flags::new(flags))
        .map_err(|e| JitError::Setup(e.to_string()))?;
    let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    for e in Extern::ALL {
        jb.symbol(e.symbol(), e.address());
    }
    Ok(JITModule::new(jb))
}

/// Compiles `kernels` into one module; `keep_clif` keeps each kernel's Cranelift IR text.
pub fn compile(kernels: &[Kernel], opts: Options, keep_clif: bool) -> Result<Module, JitError> {
    let mut module = new_module(opts)?;
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids: Vec<FuncId> = Vec::new();
    let mut clif = Vec::new();
    let mut asm = Vec::new();
    let mut times = Vec::new();
    let mut ext_ids: HashMap<Extern, FuncId> = HashMap::new();
    for e in Extern::ALL {
        let mut sig = module.make_signature();
        let (params, returns) = e.signature();
        sig.params.extend(params.into_iter().map(AbiParam::new));
        sig.returns.extend(returns.into_iter().map(AbiParam::new));
        let id = module
            .declare_function(e.symbol(), Linkage::Import, &sig)
            .map_err(|e| JitError::Setup(e.to_string()))?;
        ext_ids.insert(e, id);
    }
    for (i, k) in kernels.iter().enumerate() {
        let t0 = Instant::now();
        let (p, r) = signature_params();
        ctx.func.signature.params.extend(p);
        ctx.func.signature.returns.push(r);
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let (_, bases, range) = entry(&mut b, k);
        let vars = k
            .vars
            .iter()
            .map(|(_, t)| b.declare_var(clif_ty(*t)))
            .collect();
        let module_ref = &mut module;
        let mut declare = |e: Extern, b: &mut FunctionBuilder<'_>| {
            module_ref.declare_func_in_func(ext_ids[&e], b.func)
        };
        let mut em = Emitter {
            b: &mut b,
            k,
            vars,
            bases,
            bounds_checks: opts.bounds_checks,
            externs: &mut declare,
            extern_refs: HashMap::new(),
            hoisted: Vec::new(),
            range,
        };
        em.emit_kernel();
        b.seal_all_blocks();
        b.finalize(module.isa().frontend_config());
        if keep_clif {
            clif.push(format!("; kernel {}\n{}", k.name, ctx.func.display()));
        }
        let err = |message: String| JitError::Codegen {
            kernel: k.name.clone(),
            message,
        };
        let id = module
            .declare_function(&format!("k{i}"), Linkage::Local, &ctx.func.signature)
            .map_err(|e| err(e.to_string()))?;
        ctx.set_disasm(opts.keep_asm);
        module
            .define_function(id, &mut ctx)
            .map_err(|e| err(format!("{e:?}")))?;
        if let Some(text) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            asm.push(format!("; kernel {}\n{text}", k.name));
        }
        module.clear_context(&mut ctx);
        ids.push(id);
        times.push(t0.elapsed());
    }
    module
        .finalize_definitions()
        .map_err(|e| JitError::Setup(e.to_string()))?;
    let fns = ids
        .iter()
        .map(|&id| {
            let p = module.get_finalized_function(id);
            // SAFETY: `p` is the finalised code of a function built above with exactly the
            // `KernelFn` signature (three 64-bit parameters, an i32 result, C ABI default).
            unsafe { std::mem::transmute::<*const u8, KernelFn>(p) }
        })
        .collect();
    Ok(Module {
        module: Some(module),
        fns,
        whole: kernels
            .iter()
            .map(|k| k.parallel.map_or((0, 0), |p| (0, p.extent)))
            .collect(),
        clif,
        asm,
        compile_times: times,
    })
}
