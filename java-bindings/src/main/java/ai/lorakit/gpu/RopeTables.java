package ai.lorakit.gpu;

/**
 * The cos/sin tables of rotary position embedding (RoFormer, Su et al. 2021) for {@link Backend#ropeForward}:
 * cos[t,i] = cos(t θ_i), sin[t,i] = sin(t θ_i) for positions t and i < D/2, with the inverse frequencies
 * θ_i = 1 / theta^(2i/D) of HF's {@code rope_theta}, optionally rescaled by HF's {@code rope_scaling} of type
 * {@code llama3} ({@link Llama3Scaling}).
 *
 * <p>Precision follows Hugging Face's rotary embedding, so that checkpoints trained there see the same angles:
 * θ_i and the llama3 rescaling are formed in fp32, the angle t θ_i is the fp32 product, and cos/sin of that fp32
 * angle are rounded to fp32 (here evaluated in double, so within 1/2 ulp of the exact value of the fp32 angle).
 * An exact-math table would differ from HF's by up to t · 2^-24 rad at position t.
 *
 * @param cos [T, D/2] row-major, row t for position {@code positions[t]}
 * @param sin [T, D/2] row-major
 */
public record RopeTables(int positions, int half, float[] cos, float[] sin) {

    /**
     * HF's {@code rope_scaling = {"rope_type": "llama3", ...}} (Llama 3.1+). With wavelength λ_i = 2π / θ_i,
     * λ_lo = originalMaxPositionEmbeddings / lowFreqFactor and λ_hi = originalMaxPositionEmbeddings /
     * highFreqFactor: θ_i is kept where λ_i < λ_hi (high frequencies), divided by {@code factor} where λ_i > λ_lo
     * (low frequencies), and in between blended as (1 - s) θ_i / factor + s θ_i with
     * s = (originalMaxPositionEmbeddings / λ_i - lowFreqFactor) / (highFreqFactor - lowFreqFactor).
     */
    public record Llama3Scaling(float factor, float lowFreqFactor, float highFreqFactor,
                                int originalMaxPositionEmbeddings) {
        public Llama3Scaling {
            if (!(factor > 0f) || !(lowFreqFactor > 0f) || !(highFreqFactor > lowFreqFactor)
                    || originalMaxPositionEmbeddings <= 0) {
                throw new IllegalArgumentException("rope_scaling llama3: need factor > 0, low_freq_factor > 0, "
                        + "high_freq_factor > low_freq_factor and original_max_position_embeddings > 0; got factor="
                        + factor + " low_freq_factor=" + lowFreqFactor + " high_freq_factor=" + highFreqFactor
                        + " original_max_position_embeddings=" + originalMaxPositionEmbeddings);
            }
        }
    }

    public RopeTables {
        if (cos.length != (long) positions * half || sin.length != cos.length) {
            throw new IllegalArgumentException("RopeTables: cos and sin must hold positions x D/2 = " + positions
                    + " x " + half + " values, got " + cos.length + " and " + sin.length);
        }
    }

    /** Tables for the positions 0 .. T-1 of a window. */
    public static RopeTables forWindow(int T, int headDim, double theta, Llama3Scaling scaling) {
        int[] pos = new int[Math.max(0, T)];
        for (int t = 0; t < pos.length; t++) {
            pos[t] = t;
        }
        return forPositions(pos, headDim, theta, scaling);
    }

    /** Tables whose row t is for position {@code positions[t]} (each >= 0). */
    public static RopeTables forPositions(int[] positions, int headDim, double theta, Llama3Scaling scaling) {
        float[] inv = inverseFrequencies(headDim, theta, scaling);
        int half = inv.length;
        float[] cos = new float[positions.length * half];
        float[] sin = new float[cos.length];
        for (int t = 0; t < positions.length; t++) {
            if (positions[t] < 0) {
                throw new IllegalArgumentException("RopeTables: position " + positions[t] + " at row " + t
                        + " is negative");
            }
            float p = positions[t];   // HF: float32 positions, exact up to 2^24
            for (int i = 0; i < half; i++) {
                float angle = p * inv[i];   // the fp32 product, as HF's fp32 matmul of one term
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
        return new RopeTables(positions.length, half, cos, sin);
    }

    /**
     * θ_i for i < D/2 in fp32: 1 / theta^(2i/D) (the exponent 2i/D formed in fp32), then the llama3 rescaling
     * when {@code scaling} is non-null.
     */
    public static float[] inverseFrequencies(int headDim, double theta, Llama3Scaling scaling) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("RopeTables: head_dim must be positive and even, got " + headDim);
        }
        if (!(theta > 1.0) || Double.isInfinite(theta)) {
            throw new IllegalArgumentException("RopeTables: rope_theta must be a finite number > 1, got " + theta);
        }
        int half = headDim / 2;
        float base = (float) theta;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = (float) (2 * i) / (float) headDim;
            inv[i] = 1f / (float) Math.pow(base, exponent);
        }
        if (scaling != null) {
            float old = scaling.originalMaxPositionEmbeddings();
            float loWavelen = old / scaling.lowFreqFactor();    // λ_lo
            float hiWavelen = old / scaling.highFreqFactor();   // λ_hi
            float twoPi = (float) (2 * Math.PI);
            for (int i = 0; i < half; i++) {
                float wavelen = twoPi / inv[i];
                if (wavelen > loWavelen) {
                    inv[i] = inv[i] / scaling.factor();
                } else if (!(wavelen < hiWavelen)) {   // medium: λ_hi <= λ <= λ_lo
                    float s = (old / wavelen - scaling.lowFreqFactor())
                            / (scaling.highFreqFactor() - scaling.lowFreqFactor());
                    inv[i] = (1f - s) * inv[i] / scaling.factor() + s * inv[i];
                }
            }
        }
        return inv;
    }
}
