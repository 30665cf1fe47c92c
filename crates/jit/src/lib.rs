//! Cranelift code generation from the loop-nest IR.
