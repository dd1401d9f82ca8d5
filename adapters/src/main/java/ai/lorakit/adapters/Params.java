package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/** Small helpers shared by the variants: parameter creation, gradient buffers, closing. */
final class Params {
    private Params() {
    }

    /** A trainable F32 parameter named {@code layer + suffix} holding {@code values} with {@code shape}. */
    static Parameter create(Backend backend, String layer, String suffix, Parameter.Role role, float[] values,
                            int... shape) {
        String full = layer + suffix;
        Tensor t = backend.upload(values, DType.F32, shape).named(full);
        return new Parameter(full, role, t, true);
    }

    /** The gradient buffer to accumulate into, or null when the parameter is frozen (no gradient computed). */
    static Tensor gradOrNull(Parameter p) {
        return p.trainable() ? p.gradForAccumulation() : null;
    }

    /** Closes the values and gradients of the parameters (idempotent). */
    static void closeAll(List<Parameter> params) {
        for (Parameter p : params) {
            if (p.grad() != null) {
                p.grad().close();
            }
            p.value().close();
        }
    }

    /** 1 / v elementwise, on the host: the Backend has no reciprocal op (used for [out] vectors only). */
    static float[] reciprocal(float[] v) {
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = 1f / v[i];
        }
        return r;
    }
}
