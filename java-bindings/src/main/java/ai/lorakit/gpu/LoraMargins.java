package ai.lorakit.gpu;

/**
 * The spare-margin layout of a staged LoRA layer (PERFORMANCE.md, technique 1): the base GEMM, the low-rank update
 * and the bias as ONE GEMM, with the low-rank factors riding in r spare rows/columns of layer-owned bf16 buffers
 * and the bias in one more (a column of ones in Xm). For y = x op(W) + b + s (x A^T) B^T, A [r,in], B [out,r],
 * with c = 1 when the layer has a bias b [out], else 0:
 * <pre>
 *   Xm [N, ldx]      = [ x | S | 1 ]      S = x A^T (bf16), columns in..in+r-1; the ones column in+r when c = 1
 *   dYm [N, ldy]     = [ dY | dS ]        dS = s dY B (bf16), columns out..out+r-1
 *
 *   W [out,in] (nn.Linear):  Wm [out + r, ldw], ldw >= in + r + c
 *       Wm[0:out, 0:in] = W     Wm[0:out, in:in+r] = s B     Wm[0:out, in+r] = b     Wm[out:out+r, 0:in] = A
 *       y  = Xm[:, 0:in+r+c]  Wm[0:out, 0:in+r+c]^T        dx = dYm[:, 0:out+r]  Wm[0:out+r, 0:in]
 *
 *   W [in,out] (Conv1D, fan_in_fan_out):  Wm [in + r + c, ldw], ldw >= out + r
 *       Wm[0:in, 0:out] = W     Wm[in:in+r, 0:out] = (s B)^T     Wm[in+r, 0:out] = b     Wm[0:in, out:out+r] = A^T
 *       y  = Xm[:, 0:in+r+c]  Wm[0:in+r+c, 0:out]           dx = dYm[:, 0:out+r]  Wm[0:in, 0:out+r]^T
 * </pre>
 * Both GEMMs accumulate in fp32 and round once into y and dx (the bf16 policy, ARCHITECTURE.md "Precision"). The
 * corner of Wm beside A (and beside b) is never read. Pitches are rounded up to 8 elements, so every row of a bf16
 * buffer starts 16-byte aligned (the fast kernels' vector width).
 *
 * @param in          input features
 * @param out         output features
 * @param r           the adapter's rank
 * @param fanInFanOut W stored [in,out]
 * @param bias        the layer adds a bias (staged into Wm, matched by Xm's ones column)
 */
public record LoraMargins(int in, int out, int r, boolean fanInFanOut, boolean bias) {

    public LoraMargins {
        if (in <= 0 || out <= 0 || r <= 0) {
            throw new ShapeException("LoraMargins: in, out and r must be positive, got in=" + in + " out=" + out
                    + " r=" + r);
        }
    }

    /** K of the forward GEMM: in + r, plus the ones column with a bias. */
    public int forwardK() {
        return in + r + (bias ? 1 : 0);
    }

    /** Row pitch of Wm. */
    public int ldw() {
        return roundUp8(fanInFanOut ? out + r : forwardK());
    }

    /** Rows of Wm: out + r, or in + r (+ 1 with a bias) with fan_in_fan_out. */
    public int wmRows() {
        return fanInFanOut ? forwardK() : out + r;
    }

    /** Row pitch of Xm. */
    public int ldx() {
        return roundUp8(forwardK());
    }

    /** Row pitch of dYm (out + r rounded up to 8). */
    public int ldy() {
        return roundUp8(out + r);
    }

    /**
     * Writes Wm's margins from the dense stages aStage [r,in] = A and sbStage [out,r] = s B, and its base block
     * from W and the bias b [out] when {@code w} is not null (see the class comment for where each goes).
     */
    public void stage(Backend be, Tensor w, Tensor b, Tensor aStage, Tensor sbStage, Tensor wm) {
        int ld = ldw();
        if (w != null) {
            int rows = fanInFanOut ? in : out;
            int cols = fanInFanOut ? out : in;
            be.copyStrided(w, 0, cols, 1, wm, 0, ld, rows, cols);                // Wm[0:rows, 0:cols] = W
            if (bias) {
                if (fanInFanOut) {
                    be.copyStrided(b, 0, 0, 1, wm, (long) (in + r) * ld, ld, 1, out);   // Wm[in+r, 0:out] = b
                } else {
                    be.copyStrided(b, 0, 1, 0, wm, in + r, ld, out, 1);              // Wm[0:out, in+r] = b
                }
            }
        }
        if (fanInFanOut) {
            be.copyStrided(sbStage, 0, 1, r, wm, (long) in * ld, ld, r, out);    // Wm[in:in+r, 0:out] = (s B)^T
            be.copyStrided(aStage, 0, 1, in, wm, out, ld, in, r);                // Wm[0:in, out:out+r] = A^T
        } else {
            be.copyStrided(sbStage, 0, r, 1, wm, in, ld, out, r);                // Wm[0:out, in:in+r] = s B
            be.copyStrided(aStage, 0, in, 1, wm, (long) out * ld, ld, r, in);    // Wm[out:out+r, 0:in] = A
        }
    }

    /** With a bias: Xm[0:N, in+r] = 1 from {@code one} (a tensor holding 1 at element 0); once per Xm. */
    public void onesColumn(Backend be, Tensor one, Tensor xm, int nRows) {
        if (bias) {
            be.copyStrided(one, 0, 0, 0, xm, in + r, ldx(), nRows, 1);
        }
    }

    /** y [N,out] = Xm Wm (the forward's one GEMM, K = in + r (+ 1); written, rounded once). */
    public void forwardGemm(Backend be, int nRows, Tensor xm, Tensor wm, Tensor y) {
        be.gemm(false, !fanInFanOut, nRows, out, forwardK(), 1f, xm, 0, ldx(), wm, 0, ldw(), 0f, y, 0, out);
    }

    /** dx [N,in] = dYm Wm (the backward's one GEMM, K = out + r; written, rounded once). */
    public void inputGradGemm(Backend be, int nRows, Tensor dym, Tensor wm, Tensor dx) {
        be.gemm(false, fanInFanOut, nRows, in, out + r, 1f, dym, 0, ldy(), wm, 0, ldw(), 0f, dx, 0, in);
    }

    /** dB [out,r] += s dY^T S, dY [N,out] dense and S read in place from Xm's margin. */
    public void adapterBGradGemm(Backend be, int nRows, Tensor dy, float s, Tensor xm, Tensor dB) {
        be.gemm(true, false, out, r, nRows, s, dy, 0, out, xm, in, ldx(), 1f, dB, 0, r);
    }

    /** dA [r,in] += dS^T x, both read from their pitched buffers (dS: dYm's margin, x: Xm's first columns). */
    public void adapterAGradGemm(Backend be, int nRows, Tensor dym, Tensor xm, Tensor dA) {
        be.gemm(true, false, r, in, nRows, 1f, dym, out, ldy(), xm, 0, ldx(), 1f, dA, 0, in);
    }

    private static int roundUp8(int n) {
        return (n + 7) & ~7;
    }
}
