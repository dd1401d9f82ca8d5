package ai.lorakit.gpu.blas;

import ai.lorakit.gpu.GpuException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuBLAS through Panama FFM, bound by hand to the few functions lorakit calls (cublasCreate_v2, cublasSetStream_v2,
 * cublasSetWorkspace_v2, cublasGetVersion_v2, cublasSgemm_v2, cublasSgemmStridedBatched, cublasGemmEx,
 * cublasGemmStridedBatchedEx, cublasDestroy_v2). Works with CUDA 12 and 13 libraries alike (their C API is the same
 * for these). The handle is created in the CUDA context current on the calling thread (the device's primary context).
 * Device pointers and the handle travel as {@code JAVA_LONG} (see ai.lorakit.gpu.ffm.LibCuda); alpha and beta are read
 * from one preallocated host segment (pointer mode host: captured by value in a CUDA graph).
 */
public final class FfmCublas implements Blas {
    private static final Linker LINKER = Linker.nativeLinker();

    private final LibraryLocator.Candidate from;
    private final MethodHandle destroy;
    private final MethodHandle setStream;
    private final MethodHandle setWorkspace;
    private final MethodHandle sgemm;
    private final MethodHandle sgemmStrided;
    private final MethodHandle gemmEx;
    private final MethodHandle gemmStridedEx;
    private final MethodHandle statusString;   // may be null (older cuBLAS)
    private final Arena arena = Arena.ofShared();
    private final MemorySegment scalars;         // [alpha, beta] as fp32
    private final long handle;
    private final int version;
    private boolean closed;

    private FfmCublas(LibraryLocator.Candidate from, SymbolLookup lib) {
        this.from = from;
        MethodHandle create = fn(lib, "cublasCreate_v2", ADDRESS);
        this.destroy = fn(lib, "cublasDestroy_v2", JAVA_LONG);
        this.setStream = fn(lib, "cublasSetStream_v2", JAVA_LONG, JAVA_LONG);
        this.setWorkspace = fn(lib, "cublasSetWorkspace_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG);
        MethodHandle getVersion = fn(lib, "cublasGetVersion_v2", JAVA_LONG, ADDRESS);
        // (h, transa, transb, m, n, k, alpha*, A, lda, B, ldb, beta*, C, ldc)
        this.sgemm = fn(lib, "cublasSgemm_v2", JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT);
        // (..., A, lda, strideA, B, ldb, strideB, beta*, C, ldc, strideC, batch)
        this.sgemmStrided = fn(lib, "cublasSgemmStridedBatched", JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG,
                JAVA_INT, JAVA_LONG, JAVA_INT);
        // (h, ta, tb, m, n, k, alpha*, A, Atype, lda, B, Btype, ldb, beta*, C, Ctype, ldc, computeType, algo)
        this.gemmEx = fn(lib, "cublasGemmEx", JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT);
        // (h, ta, tb, m, n, k, alpha*, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta*, C, Ctype, ldc, strideC,
        //  batch, computeType, algo)
        this.gemmStridedEx = fn(lib, "cublasGemmStridedBatchedEx", JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT);
        this.statusString = lib.find("cublasGetStatusString")
                .map(s -> LINKER.downcallHandle(s, FunctionDescriptor.of(ADDRESS, JAVA_INT))).orElse(null);
        this.scalars = arena.allocate(16, 16);
        try {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) create.invokeExact(out), "cublasCreate_v2");
            this.handle = out.get(JAVA_LONG, 0);
            MemorySegment v = arena.allocate(JAVA_INT);
            check((int) getVersion.invokeExact(handle, v), "cublasGetVersion_v2");
            this.version = v.get(JAVA_INT, 0);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        } catch (Throwable t) {
            arena.close();
            throw new GpuException("cublasCreate_v2 (" + from + "): downcall failed: " + t, t);
        }
    }

    /**
     * Loads {@code c} (its libcublasLt first, so libcublas finds it by soname) and creates a handle in the current
     * context. GpuException naming the candidate when the library is missing, lacks a symbol, or cublasCreate fails.
     */
    public static FfmCublas open(LibraryLocator.Candidate c) {
        return new FfmCublas(c, load(c));
    }

    /** Loads {@code c}'s libraries (libcublasLt first) for the JVM's lifetime, without creating a handle. */
    public static SymbolLookup load(LibraryLocator.Candidate c) {
        try {
            if (c.path() == null) {
                return SymbolLookup.libraryLookup(c.soname(), Arena.global());
            }
            if (c.companion() != null) {
                SymbolLookup.libraryLookup(c.companion(), Arena.global());
            }
            return SymbolLookup.libraryLookup(c.path(), Arena.global());
        } catch (IllegalArgumentException e) {
            throw new GpuException(c + ": cannot be loaded (" + e.getMessage() + ")", e);
        }
    }

    private static MethodHandle fn(SymbolLookup lib, String name, MemoryLayout... args) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new GpuException("cuBLAS library has no " + name));
        return LINKER.downcallHandle(sym, FunctionDescriptor.of(JAVA_INT, args));
    }

    private void check(int status, String call) {
        if (status != 0) {
            String text = "";
            if (statusString != null) {
                try {
                    MemorySegment p = (MemorySegment) statusString.invokeExact(status);
                    text = p.equals(MemorySegment.NULL) ? "" : " " + p.reinterpret(1024).getString(0);
                } catch (Throwable ignored) {
                    // the name alone is enough
                }
            }
            throw new GpuException(call + " failed: " + Blas.statusName(status) + " (" + status + ")" + text);
        }
    }

    /** cublasGetVersion, e.g. 130002 for 13.0.2. */
    public int version() {
        return version;
    }

    @Override
    public String description() {
        return "cuBLAS " + (version / 10000) + "." + (version / 100 % 100) + "." + (version % 100) + " via FFM ("
                + (from.path() == null ? from.soname() + " from the loader path" : from.path().toString()) + ")";
    }

    private void checkOpen(String call) {
        if (closed) {
            throw new GpuException(call + ": the cuBLAS handle was closed");
        }
    }

    @Override
    public void setStream(long stream) {
        checkOpen("cublasSetStream_v2");
        try {
            check((int) setStream.invokeExact(handle, stream), "cublasSetStream_v2");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new GpuException("cublasSetStream_v2: downcall failed: " + t, t);
        }
    }

    @Override
    public void setWorkspace(long address, long bytes) {
        checkOpen("cublasSetWorkspace_v2");
        try {
            check((int) setWorkspace.invokeExact(handle, address, bytes), "cublasSetWorkspace_v2(" + bytes + " bytes)");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new GpuException("cublasSetWorkspace_v2: downcall failed: " + t, t);
        }
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     long a, int typeA, int lda, long strideA,
                     long b, int typeB, int ldb, long strideB,
                     float beta, long c, int typeC, int ldc, long strideC, int batch) {
        checkOpen("cublasGemm");
        scalars.set(ValueLayout.JAVA_FLOAT, 0, alpha);
        scalars.set(ValueLayout.JAVA_FLOAT, 4, beta);
        MemorySegment pa = scalars;
        MemorySegment pb = scalars.asSlice(4, 4);
        int ta = transA ? 1 : 0;
        int tb = transB ? 1 : 0;
        boolean f32 = typeA == R_32F && typeB == R_32F && typeC == R_32F;
        String call = f32 ? (batch == 1 ? "cublasSgemm_v2" : "cublasSgemmStridedBatched")
                : (batch == 1 ? "cublasGemmEx" : "cublasGemmStridedBatchedEx");
        int st;
        try {
            if (f32 && batch == 1) {
                st = (int) sgemm.invokeExact(handle, ta, tb, m, n, k, pa, a, lda, b, ldb, pb, c, ldc);
            } else if (f32) {
                st = (int) sgemmStrided.invokeExact(handle, ta, tb, m, n, k, pa, a, lda, strideA, b, ldb, strideB, pb,
                        c, ldc, strideC, batch);
            } else if (batch == 1) {
                st = (int) gemmEx.invokeExact(handle, ta, tb, m, n, k, pa, a, typeA, lda, b, typeB, ldb, pb, c, typeC,
                        ldc, COMPUTE_32F, GEMM_DEFAULT);
            } else {
                st = (int) gemmStridedEx.invokeExact(handle, ta, tb, m, n, k, pa, a, typeA, lda, strideA, b, typeB, ldb,
                        strideB, pb, c, typeC, ldc, strideC, batch, COMPUTE_32F, GEMM_DEFAULT);
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new GpuException(call + ": downcall failed: " + t, t);
        }
        if (st != 0) {
            check(st, call + "(m=" + m + ", n=" + n + ", k=" + k + ", batch=" + batch + ", types " + typeA + "/" + typeB
                    + "/" + typeC + ")");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            check((int) destroy.invokeExact(handle), "cublasDestroy_v2");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new GpuException("cublasDestroy_v2: downcall failed: " + t, t);
        } finally {
            arena.close();
        }
    }
}
