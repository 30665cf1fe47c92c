//! Reverse-mode autodiff as a graph-to-graph transformation; training graphs with losses and optimisers.
