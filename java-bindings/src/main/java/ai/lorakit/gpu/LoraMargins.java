package ai.lorakit.gpu;

/**
 * The spare-margin layout of a staged LoRA layer (PERFORMANCE.md, technique 1): the base GEMM and the low-rank
 * update as ONE GEMM over K + r, with the low-rank factors riding in r spare rows/columns of layer-owned bf16
 * buffers. For y = x op(W) + s (x A^T) B^T, A [r,in], B [out,r]:
 * <pre>
 *   Xm [N, ldx]      = [ x | S ]          S = x A^T (bf16), columns in..in+r-1
 *   dYm [N, ldy]     = [ dY | dS ]        dS = s dY B (bf16), columns out..out+r-1
 *
 *   W [out,in] (nn.Linear):  Wm [out + r, ldw], ldw >= in + r
 *       Wm[0:out, 0:in] = W     Wm[0:out, in:in+r] = s B     Wm[out:out+r, 0:in] = A
 *       y  = Xm[:, 0:in+r]  Wm[0:out, 0:in+r]^T        dx = dYm[:, 0:out+r]  Wm[0:out+r, 0:in]
 *
 *   W [in,out] (Conv1D, fan_in_fan_out):  Wm [in + r, ldw], ldw >= out + r
 *       Wm[0:in, 0:out] = W     Wm[in:in+r, 0:out] = (s B)^T     Wm[0:in, out:out+r] = A^T
 *       y  = Xm[:, 0:in+r]  Wm[0:in+r, 0:out]           dx = dYm[:, 0:out+r]  Wm[0:in, 0:out+r]^T
 * </pre>
 * The corner Wm[out:, in:] (resp. Wm[in:, out:]) is never read. Pitches are rounded up to 8 elements, so every
 * row of a bf16 buffer starts 16-byte aligned (the fast kernels' vector width).
 *
 * @param in          input features
 * @param out         output features
 * @param r           the adapter's rank
 * @param fanInFanOut W stored [in,out]
 */
public record LoraMargins(int in, int out, int r, boolean fanInFanOut) {

    public LoraMargins {
        if (in <= 0 || out <= 0 || r <= 0) {
            throw new ShapeException("LoraMargins: in, out and r must be positive, got in=" + in + " out=" + out
                    + " r=" + r);
        }
    }

    /** Row pitch of Wm. */
    public int ldw() {
        return roundUp8(fanInFanOut ? out + r : in + r);
    }

    /** Rows of Wm: out + r, or in + r with fan_in_fan_out. */
    public int wmRows() {
        return fanInFanOut ? in + r : out + r;
    }

    /** Row pitch of Xm (in + r rounded up to 8). */
    public int ldx() {
        return roundUp8(in + r);
    }

    /** Row pitch of dYm (out + r rounded up to 8). */
    public int ldy() {
        return roundUp8(out + r);
    }

    /**
     * Writes Wm's margins from the dense stages aStage [r,in] = A and sbStage [out,r] = s B, and its base block
     * from W when {@code w} is not null (see the class comment for where each goes).
     */
    public void stage(Backend be, Tensor w, Tensor aStage, Tensor sbStage, Tensor wm) {
        int ld = ldw();
        if (w != null) {
            int rows = fanInFanOut ? in : out;
            int cols = fanInFanOut ? out : in;
            be.copyStrided(w, 0, cols, 1, wm, 0, ld, rows, cols);              // Wm[0:rows, 0:cols] = W
        }
        if (fanInFanOut) {
            be.copyStrided(sbStage, 0, 1, r, wm, (long) in * ld, ld, r, out);  // Wm[in:in+r, 0:out] = (s B)^T
            be.copyStrided(aStage, 0, 1, in, wm, out, ld, in, r);              // Wm[0:in, out:out+r] = A^T
        } else {
            be.copyStrided(sbStage, 0, r, 1, wm, in, ld, out, r);              // Wm[0:out, in:in+r] = s B
            be.copyStrided(aStage, 0, in, 1, wm, (long) out * ld, ld, r, in);  // Wm[out:out+r, 0:in] = A
        }
    }

    /** y [N,out] = Xm Wm (the forward's one GEMM, K = in + r; written). */
    public void forwardGemm(Backend be, int nRows, Tensor xm, Tensor wm, Tensor y) {
        be.gemm(false, !fanInFanOut, nRows, out, in + r, 1f, xm, 0, ldx(), wm, 0, ldw(), 0f, y, 0, out);
    }

    /** dx [N,in] = dYm Wm (the backward's one GEMM, K = out + r; written). */
    public void inputGradGemm(Backend be, int nRows, Tensor dym, Tensor wm, Tensor dx) {
        be.gemm(false, fanInFanOut, nRows, in, out + r, 1f, dym, 0, ldy(), wm, 0, ldw(), 0f, dx, 0, in);
    }

    /** dA [r,in] += dS^T x, both read from their pitched buffers (dS: dYm's margin, x: Xm's first columns). */
    public void adapterAGradGemm(Backend be, int nRows, Tensor dym, Tensor xm, Tensor dA) {
        be.gemm(true, false, r, in, nRows, 1f, dym, out, ldy(), xm, 0, ldx(), 1f, dA, 0, in);
    }

    private static int roundUp8(int n) {
        return (n + 7) & ~7;
    }
}
