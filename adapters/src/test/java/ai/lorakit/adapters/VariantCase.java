package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * One row of the test matrix: a parametrisation with its options, and the fixture that builds a layer for it
 * (random W [out,in] or [in,out] when fifo, random bias, VeRA projections larger than the layer). Sizes are
 * small and odd so that transposes and slices are visible: N=5 tokens, in=7, out=6, r=3; VeRA's shared
 * projections are [3,9] and [8,3].
 */
record VariantCase(String label, Kind kind, boolean fifo, boolean rslora, float dropout, boolean freezeA) {

    enum Kind { LORA, DORA, VERA, ADALORA }

    static final String NAME = "model.layers.0.proj";
    static final int N = 5;
    static final int IN = 7;
    static final int OUT = 6;
    static final int R = 3;
    static final int IN_MAX = 9;
    static final int OUT_MAX = 8;
    static final float ALPHA = 6f;
    static final float ADALORA_ALPHA = 8f;

    @Override
    public String toString() {
        return label;
    }

    /** Every variant and option the brief asks for (used by the gradient check and the behaviour matrix). */
    static List<VariantCase> all() {
        return List.of(
                new VariantCase("LoRA", Kind.LORA, false, false, 0f, false),
                new VariantCase("LoRA fifo", Kind.LORA, true, false, 0f, false),
                new VariantCase("rsLoRA", Kind.LORA, false, true, 0f, false),
                new VariantCase("LoRA dropout", Kind.LORA, false, false, 0.3f, false),
                new VariantCase("LoRA fifo dropout", Kind.LORA, true, false, 0.3f, false),
                new VariantCase("LoRA-FA (A frozen) dropout", Kind.LORA, false, false, 0.3f, true),
                new VariantCase("DoRA", Kind.DORA, false, false, 0f, false),
                new VariantCase("DoRA fifo", Kind.DORA, true, false, 0f, false),
                new VariantCase("DoRA dropout", Kind.DORA, false, false, 0.3f, false),
                new VariantCase("DoRA fifo dropout", Kind.DORA, true, false, 0.3f, false),
                new VariantCase("VeRA", Kind.VERA, false, false, 0f, false),
                new VariantCase("VeRA fifo dropout", Kind.VERA, true, false, 0.3f, false),
                new VariantCase("AdaLoRA", Kind.ADALORA, false, false, 0f, false),
                new VariantCase("AdaLoRA fifo dropout", Kind.ADALORA, true, false, 0.3f, false));
    }

    /** The config; {@code identity} = PEFT's default init (ΔW = 0), else a non-identity LoRA/DoRA init. */
    AdapterConfig config(boolean identity) {
        return switch (kind) {
            case LORA, DORA -> new LoraConfig(R, ALPHA, dropout, rslora,
                    identity ? LoraConfig.Init.KAIMING : LoraConfig.Init.NONE, kind == Kind.DORA,
                    List.of("proj"), Map.of(), Map.of());
            case VERA -> new VeraConfig(R, 7L, true, 0.1f, dropout, List.of("proj"));
            case ADALORA -> new AdaLoraConfig(R, 2, 0, 0, 1, 0.85f, 0.85f, 0.5f, 10, ADALORA_ALPHA, dropout,
                    List.of("proj"), null);
        };
    }

    /** s from the formulas of VARIANTS.md (not from lorakit). */
    double scaling() {
        return switch (kind) {
            case LORA, DORA -> rslora ? ALPHA / Math.sqrt(R) : ALPHA / (double) R;
            case VERA -> 1.0;
            case ADALORA -> ADALORA_ALPHA / (R + 1e-5);
        };
    }

    /** A layer, its base tensors and (for VeRA) the shared projections. */
    static final class Setup implements AutoCloseable {
        final Backend be;
        final VariantCase c;
        final Tensor w;
        final Tensor bias;
        final VeraProjections shared;
        final AdaptedLinear layer;

        Setup(Backend be, VariantCase c, boolean identity, long seed) {
            this.be = be;
            this.c = c;
            Random rnd = new Random(seed);
            int[] wShape = c.fifo ? new int[] {IN, OUT} : new int[] {OUT, IN};
            w = be.upload(uniform(rnd, OUT * IN, 0.5), DType.F32, wShape).named("W");
            bias = be.upload(uniform(rnd, OUT, 0.5), DType.F32, OUT).named("b");
            shared = c.kind == Kind.VERA
                    ? VeraProjections.create(be, (VeraConfig) c.config(identity), IN_MAX, OUT_MAX) : null;
            layer = AdaptedLinear.create(NAME, w, bias, c.fifo, c.config(identity), shared, seed + 1);
            if (!identity) {
                perturb(rnd);
            }
            if (c.freezeA) {
                layer.parameter(Parameter.Role.LORA_A).setTrainable(false);
            }
        }

        /** Makes VeRA, AdaLoRA and DoRA adapters clearly non-identity (LoRA/DoRA already use init NONE). */
        private void perturb(Random rnd) {
            switch (c.kind) {
                case LORA -> { }
                case DORA -> {
                    Parameter m = layer.parameter(Parameter.Role.MAGNITUDE);
                    float[] v = be.download(m.value());
                    for (int o = 0; o < v.length; o++) {
                        v[o] *= (float) (1 + 0.5 * (rnd.nextDouble() - 0.5));
                    }
                    set(m, v);
                }
                case VERA -> {
                    set(layer.parameter(Parameter.Role.VERA_LAMBDA_B), uniform(rnd, OUT, 1));
                    set(layer.parameter(Parameter.Role.VERA_LAMBDA_D), uniform(rnd, R, 1));
                }
                case ADALORA -> {
                    set(layer.parameter(Parameter.Role.LORA_A), uniform(rnd, R * IN, 0.5));
                    set(layer.parameter(Parameter.Role.LORA_B), uniform(rnd, OUT * R, 0.5));
                    set(layer.parameter(Parameter.Role.LORA_E), uniform(rnd, R, 1));
                }
            }
        }

        void set(Parameter p, float[] v) {
            try (Tensor t = be.upload(v, DType.F32, p.value().shape())) {
                be.copy(t, p.value());
            }
        }

        /** The frozen tensors: W, bias, VeRA's projections and any frozen adapter parameter. */
        List<Tensor> frozen() {
            List<Tensor> f = new ArrayList<>(List.of(w, bias));
            if (shared != null) {
                f.add(shared.a());
                f.add(shared.b());
            }
            for (Parameter p : layer.parameters()) {
                if (!p.trainable()) {
                    f.add(p.value());
                }
            }
            return f;
        }

        @Override
        public void close() {
            layer.close();
            if (shared != null) {
                shared.close();
            }
            w.close();
            bias.close();
        }
    }

    static float[] uniform(Random rnd, int n, double bound) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((2 * rnd.nextDouble() - 1) * bound);
        }
        return v;
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
