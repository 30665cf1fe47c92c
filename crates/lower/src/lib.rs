//! Lowering of IR graphs to the loop-nest IR: fusion, scheduling, layouts.
