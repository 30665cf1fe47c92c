//! Equality-saturation optimiser (egg): verified rewrite rules, cost model, DAG-aware extraction.
