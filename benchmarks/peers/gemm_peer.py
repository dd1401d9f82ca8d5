#!/usr/bin/python3
"""fp32 GEMM peer for benchmarks/results/cpu-gemm.md: OpenBLAS (through numpy and torch 1.13) on the sizes of
ai.lorakit.bench.cpu.GemmBenchmark, GFLOP/s = 2*m*n*k / time.

Run with the system python (it has numpy, torch and libopenblas0-pthread):
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 benchmarks/peers/gemm_peer.py [--threads 2] [--seconds 2]
Prints one line per (library, size) with the median and best of the timed repeats, after a warm-up.
"""
import argparse
import os
import statistics
import time

# shapes as in GemmBenchmark: name -> (m, n, k, transB)  [C = A op(B), A [m,k], B [k,n] or [n,k] when transB]
SHAPES = {
    "512x512x512": (512, 512, 512, False),
    "1024x1024x1024": (1024, 1024, 1024, False),
    "4096x768x768": (4096, 768, 768, False),
    "4096x768x768_nt": (4096, 768, 768, True),
    "4096x16x768_nt": (4096, 16, 768, True),
}


def blas_library():
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower()})
    return ", ".join(libs) or "unknown"


def timeit(fn, seconds):
    for _ in range(3):  # warm-up
        fn()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(42)
    rows = []
    for name, (m, n, k, tb) in SHAPES.items():
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((n, k) if tb else (k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        ta, tbt = torch.from_numpy(a), torch.from_numpy(b)
        tc = torch.empty(m, n)
        bn = b.T if tb else b
        tbn = tbt.t() if tb else tbt
        flops = 2.0 * m * n * k
        for lib, fn in (("numpy", lambda: np.matmul(a, bn, out=c)),
                        ("torch", lambda: torch.mm(ta, tbn, out=tc))):
            t = timeit(fn, args.seconds)
            rows.append((lib, name, flops / statistics.median(t) / 1e9, flops / min(t) / 1e9, len(t)))
    print(f"# blas: {blas_library()}  torch {torch.__version__}  numpy {np.__version__}  "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}  torch threads={torch.get_num_threads()}")
    print(f"{'lib':6} {'shape':18} {'median GFLOP/s':>15} {'best GFLOP/s':>13} {'reps':>5}")
    for lib, name, med, best, reps in rows:
        print(f"{lib:6} {name:18} {med:15.1f} {best:13.1f} {reps:5d}")


if __name__ == "__main__":
    main()
