package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Strided batched GEMM over float arrays (row-major, cuBLAS semantics as
 * {@link ai.lorakit.gpu.Backend#gemmBatched}): C_i[m,n] = alpha op(A_i)[m,k] op(B_i)[k,n] + beta C_i[m,n].
 * Arguments are validated by {@link CpuBackend}; beta == 0 never reads C.
 *
 * <p>{@link #naive} is the reference. {@link #fast} is a GotoBLAS-style blocked GEMM: op(B) is packed in
 * [KC, NR] column strips and op(A) in [MR, KC] row panels (so all four transpose cases meet one layout), and a
 * Vector-API microkernel keeps an MR x NR tile of C (6 rows x 2 vectors) in registers, FMA-ing one broadcast
 * element of A with two vectors of B per step. Blocking over k (KC) keeps the B strip in L1 and the A block
 * in L2. Large problems are split over the rows or columns of C across {@link CpuParallel}'s threads (each
 * packs its own panels); small ones run on the calling thread.
 */
final class CpuGemm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Microkernel tile: MR rows x NR = 2 vectors of columns. */
    static final int MR = 6;
    static final int NR = 2 * L;
    /** Cache blocks: k per pass, rows of A packed at once, columns of B packed at once. */
    static final int KC = 256;
    static final int MC = 20 * MR;
    static final int NC = Math.max(NR, (2048 / NR) * NR);
    /** m*n*k below which a GEMM runs on the calling thread only. */
    static final long PARALLEL_MNK = 1L << 18;

    private static final ThreadLocal<float[][]> BUFFERS = ThreadLocal.withInitial(() -> new float[][] {null, null, new float[MR * NR]});

    private CpuGemm() {
    }

    // ================================================================ reference

    /** The reference: one double-accumulated dot product per element of C. */
    static void naive(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                      float[] a, int offA, int lda, long strideA, float[] b, int offB, int ldb, long strideB,
                      float beta, float[] c, int offC, int ldc, long strideC) {
        for (int bi = 0; bi < batch; bi++) {
            int a0 = (int) (offA + bi * strideA);
            int b0 = (int) (offB + bi * strideB);
            int c0 = (int) (offC + bi * strideC);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int p = 0; p < k && alpha != 0f; p++) {   // alpha == 0: A and B not read (BLAS)
                        float av = transA ? a[a0 + p * lda + i] : a[a0 + i * lda + p];
                        float bv = transB ? b[b0 + j * ldb + p] : b[b0 + p * ldb + j];
                        s += (double) av * bv;
                    }
                    int ci = c0 + i * ldc + j;
                    double r = alpha * s;
                    c[ci] = beta == 0f ? (float) r : (float) (r + (double) beta * c[ci]);
                }
            }
        }
    }

    // ================================================================ fast path

    /**
     * One GEMM problem as the blocked loops see it: C'[m,n] = alpha op(A')[m,k] op(B')[k,n] + beta C'. When
     * {@code swapped}, the caller's C[n,m] is computed as its transpose C^T = op(B)^T op(A)^T (A' = B, B' = A,
     * transposes flipped) so that a skinny n (LoRA shrink x A^T with n = r) still fills the 2-vector tile.
     */
    private record Problem(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int a0,
                           int lda, float[] b, int b0, int ldb, float beta, float[] c, int c0, int ldc,
                           boolean swapped) {

        static Problem of(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int a0,
                          int lda, float[] b, int b0, int ldb, float beta, float[] c, int c0, int ldc) {
            if (n < NR && m > n) {
                return new Problem(!transB, !transA, n, m, k, alpha, b, b0, ldb, a, a0, lda, beta, c, c0, ldc, true);
            }
            return new Problem(transA, transB, m, n, k, alpha, a, a0, lda, b, b0, ldb, beta, c, c0, ldc, false);
        }
    }

    /** The fast path (Vector API, packed panels, multithreaded for large problems). */
    static void fast(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                     float[] a, int offA, int lda, long strideA, float[] b, int offB, int ldb, long strideB,
                     float beta, float[] c, int offC, int ldc, long strideC) {
        long mnk = (long) m * n * Math.max(k, 1);
        int threads = CpuParallel.threads();
        boolean parallel = threads > 1 && mnk * batch >= PARALLEL_MNK;
        if (parallel && batch >= threads && mnk < 8 * PARALLEL_MNK) {
            // many small GEMMs (attention heads): split the batch
            CpuParallel.forEachChunk(threads, t -> {
                int lo = (int) ((long) batch * t / threads), hi = (int) ((long) batch * (t + 1) / threads);
                for (int bi = lo; bi < hi; bi++) {
                    Problem p = Problem.of(transA, transB, m, n, k, alpha, a, (int) (offA + bi * strideA), lda,
                            b, (int) (offB + bi * strideB), ldb, beta, c, (int) (offC + bi * strideC), ldc);
                    one(p, 0, p.m(), 0, p.n());
                }
            });
            return;
        }
        for (int bi = 0; bi < batch; bi++) {
            Problem p = Problem.of(transA, transB, m, n, k, alpha, a, (int) (offA + bi * strideA), lda,
                    b, (int) (offB + bi * strideB), ldb, beta, c, (int) (offC + bi * strideC), ldc);
            int pm = p.m(), pn = p.n();
            if (!parallel || mnk < PARALLEL_MNK) {
                one(p, 0, pm, 0, pn);
            } else if (pm >= pn) {
                int blocks = (pm + MR - 1) / MR;
                CpuParallel.forEachChunk(threads, t -> {
                    int lo = Math.min(pm, blocks * t / threads * MR);
                    int hi = Math.min(pm, blocks * (t + 1) / threads * MR);
                    if (lo < hi) {
                        one(p, lo, hi, 0, pn);
                    }
                });
            } else {
                int blocks = (pn + NR - 1) / NR;
                CpuParallel.forEachChunk(threads, t -> {
                    int lo = Math.min(pn, blocks * t / threads * NR);
                    int hi = Math.min(pn, blocks * (t + 1) / threads * NR);
                    if (lo < hi) {
                        one(p, 0, pm, lo, hi);
                    }
                });
            }
        }
    }

    /** C'[i0:i1, j0:j1] of one problem, on the calling thread. */
    private static void one(Problem p, int i0, int i1, int j0, int j1) {
        int k = p.k();
        if (k == 0 || p.alpha() == 0f) {
            scaleC(p, i0, i1, j0, j1);
            return;
        }
        float[][] buf = BUFFERS.get();
        float[] tile = buf[2];
        int kcMax = Math.min(KC, k);
        int ncMax = Math.min(NC, roundUp(j1 - j0, NR));
        int mcMax = Math.min(MC, roundUp(i1 - i0, MR));
        float[] bp = buf[0] == null || buf[0].length < kcMax * ncMax ? (buf[0] = new float[kcMax * ncMax]) : buf[0];
        float[] ap = buf[1] == null || buf[1].length < kcMax * mcMax ? (buf[1] = new float[kcMax * mcMax]) : buf[1];
        for (int jc = j0; jc < j1; jc += NC) {
            int nc = Math.min(NC, j1 - jc);
            for (int pc = 0; pc < k; pc += KC) {
                int kc = Math.min(KC, k - pc);
                float beta = pc == 0 ? p.beta() : 1f;
                packB(p, pc, kc, jc, nc, bp);
                for (int ic = i0; ic < i1; ic += MC) {
                    int mc = Math.min(MC, i1 - ic);
                    packA(p, ic, mc, pc, kc, ap);
                    for (int jr = 0; jr < nc; jr += NR) {
                        int nr = Math.min(NR, nc - jr);
                        int bOff = (jr / NR) * kc * NR;
                        for (int ir = 0; ir < mc; ir += MR) {
                            kernel(kc, ap, (ir / MR) * kc * MR, bp, bOff, tile);
                            merge(p, tile, ic + ir, jc + jr, Math.min(MR, mc - ir), nr, beta);
                        }
                    }
                }
            }
        }
    }

    /** C' = beta C' on a block (k == 0 or alpha == 0); beta == 0 writes zeros without reading C. */
    private static void scaleC(Problem p, int i0, int i1, int j0, int j1) {
        float[] c = p.c();
        for (int i = i0; i < i1; i++) {
            for (int j = j0; j < j1; j++) {
                int ci = p.swapped() ? p.c0() + j * p.ldc() + i : p.c0() + i * p.ldc() + j;
                c[ci] = p.beta() == 0f ? 0f : p.beta() * c[ci];
            }
        }
    }

    private static int roundUp(int x, int to) {
        return (x + to - 1) / to * to;
    }

    /**
     * Packs op(B)[pc:pc+kc, jc:jc+nc] as strips of NR columns: strip s holds bp[s*kc*NR + p*NR + j], zero
     * padded past nc.
     */
    private static void packB(Problem q, int pc, int kc, int jc, int nc, float[] bp) {
        float[] b = q.b();
        int ldb = q.ldb();
        for (int jr = 0; jr < nc; jr += NR) {
            int nr = Math.min(NR, nc - jr);
            int base = (jr / NR) * kc * NR;
            if (!q.transB()) {
                // op(B)[p, j] = b[p*ldb + j]: rows are contiguous
                int src = q.b0() + pc * ldb + jc + jr;
                for (int p = 0; p < kc; p++) {
                    int dst = base + p * NR;
                    System.arraycopy(b, src + p * ldb, bp, dst, nr);
                    for (int j = nr; j < NR; j++) {
                        bp[dst + j] = 0f;
                    }
                }
            } else {
                // op(B)[p, j] = b[j*ldb + p]: gather column by column (each source row is contiguous in p)
                for (int j = 0; j < nr; j++) {
                    int src = q.b0() + (jc + jr + j) * ldb + pc;
                    for (int p = 0; p < kc; p++) {
                        bp[base + p * NR + j] = b[src + p];
                    }
                }
                for (int j = nr; j < NR; j++) {
                    for (int p = 0; p < kc; p++) {
                        bp[base + p * NR + j] = 0f;
                    }
                }
            }
        }
    }

    /**
     * Packs op(A)[ic:ic+mc, pc:pc+kc] as panels of MR rows: panel s holds ap[s*kc*MR + p*MR + i], zero padded
     * past mc.
     */
    private static void packA(Problem q, int ic, int mc, int pc, int kc, float[] ap) {
        float[] a = q.a();
        int lda = q.lda();
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = Math.min(MR, mc - ir);
            int base = (ir / MR) * kc * MR;
            if (q.transA()) {
                // op(A)[i, p] = a[p*lda + i]: MR consecutive elements per p
                int src = q.a0() + pc * lda + ic + ir;
                for (int p = 0; p < kc; p++) {
                    int dst = base + p * MR;
                    System.arraycopy(a, src + p * lda, ap, dst, mr);
                    for (int i = mr; i < MR; i++) {
                        ap[dst + i] = 0f;
                    }
                }
            } else {
                // op(A)[i, p] = a[i*lda + p]
                for (int i = 0; i < mr; i++) {
                    int src = q.a0() + (ic + ir + i) * lda + pc;
                    for (int p = 0; p < kc; p++) {
                        ap[base + p * MR + i] = a[src + p];
                    }
                }
                for (int i = mr; i < MR; i++) {
                    for (int p = 0; p < kc; p++) {
                        ap[base + p * MR + i] = 0f;
                    }
                }
            }
        }
    }

    /**
     * The 6 x 2-vector microkernel, branch-free so that the JIT never deoptimises it on an edge tile:
     * tile[MR, NR] = Ap[MR, kc] * Bp[kc, NR] (one broadcast of A times two vectors of B per row and step).
     */
    static void kernel(int kc, float[] ap, int aOff, float[] bp, int bOff, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        int ai = aOff, bi = bOff;
        for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + L);
            FloatVector x = FloatVector.broadcast(S, ap[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, ap[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, ap[ai + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, ap[ai + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, ap[ai + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, ap[ai + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + L);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + L);
    }

    /**
     * C[tile] = alpha tile + beta C for the mr x nr corner of the tile at (row, col) of the problem's C
     * (transposed into the caller's C when the problem was swapped); beta == 0 does not read C.
     */
    private static void merge(Problem q, float[] tile, int row, int col, int mr, int nr, float beta) {
        float[] c = q.c();
        float alpha = q.alpha();
        int ldc = q.ldc();
        if (q.swapped()) {
            // tile[i, j] is C[col + j, row + i] of the caller's C
            for (int i = 0; i < mr; i++) {
                int ci = q.c0() + col * ldc + row + i;
                for (int j = 0; j < nr; j++, ci += ldc) {
                    float v = alpha * tile[i * NR + j];
                    c[ci] = beta == 0f ? v : v + beta * c[ci];
                }
            }
        } else if (nr == NR) {
            for (int i = 0; i < mr; i++) {
                int ci = q.c0() + (row + i) * ldc + col;
                FloatVector v0 = FloatVector.fromArray(S, tile, i * NR).mul(alpha);
                FloatVector v1 = FloatVector.fromArray(S, tile, i * NR + L).mul(alpha);
                if (beta != 0f) {
                    v0 = FloatVector.fromArray(S, c, ci).mul(beta).add(v0);
                    v1 = FloatVector.fromArray(S, c, ci + L).mul(beta).add(v1);
                }
                v0.intoArray(c, ci);
                v1.intoArray(c, ci + L);
            }
        } else {
            for (int i = 0; i < mr; i++) {
                int ci = q.c0() + (row + i) * ldc + col;
                for (int j = 0; j < nr; j++) {
                    float v = alpha * tile[i * NR + j];
                    c[ci + j] = beta == 0f ? v : v + beta * c[ci + j];
                }
            }
        }
    }
}
