//! SIMD microkernels (AVX-512, AVX2+FMA, portable) and the GEMM driver that the JIT calls for compute-bound tiles.
