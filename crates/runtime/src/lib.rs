//! Compiled executables: memory planning, threads, safe run API.
