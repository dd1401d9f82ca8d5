package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;

/**
 * One LoRA module's A [r,in] and B [out,r] with its scaling s (alpha/r, alpha/sqrt(r) with rsLoRA, or the
 * rank/alpha pattern's value). LoRA-FA pairs A and B explicitly per module; PEFT pairs them by parameter
 * order, which lorakit does not rely on.
 */
public record LoraPair(Parameter a, Parameter b, float scaling) {

    public LoraPair {
        Checks.require(a != null, "a", null, "must be set");
        Checks.require(b != null, "b", null, "must be set");
        Checks.require(Float.isFinite(scaling) && scaling != 0, "scaling of " + a.name(), scaling,
                "must be finite and non-zero");
        int[] sa = a.value().shape();
        int[] sb = b.value().shape();
        Checks.require(sa.length == 2, "shape of A " + a.name(), java.util.Arrays.toString(sa), "must be [r,in]");
        Checks.require(sb.length == 2 && sb[1] == sa[0], "shape of B " + b.name(), java.util.Arrays.toString(sb),
                "must be [out," + sa[0] + "] to pair with A " + a.name());
        Checks.require(a.value().backend() == b.value().backend(), "backend of B " + b.name(),
                b.value().backend().name(), "must be A's backend " + a.value().backend().name());
    }

    /** The rank r. */
    public int rank() {
        return a.value().dim(0);
    }

    /** The module's name: A's name without its last dotted component (e.g. {@code ...c_attn} for {@code ...c_attn.lora_A}). */
    public String module() {
        String n = a.name();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }
}
