//! Training procedures.
