package ai.lorakit.adapters;

/**
 * A merge (or unmerge) whose result would hold NaN or Inf, refused with W untouched (PEFT's safe_merge). The
 * message names the layer and the culprit: the base weight W when it was already non-finite before the merge,
 * otherwise the adapter (PEFT's message, "NaNs detected in the merged weights. The adapter NAME seems to be
 * broken"; its ΔW is non-finite or W + ΔW overflows fp32).
 */
public final class NonFiniteMergeException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /** What made the merged weights non-finite. */
    public enum Culprit { BASE, ADAPTER }

    private final Culprit culprit;

    private NonFiniteMergeException(Culprit culprit, String message) {
        super(message);
        this.culprit = culprit;
    }

    /** W of {@code layer} already held {@code bad} of {@code total} non-finite values before the merge. */
    static NonFiniteMergeException base(String layer, long bad, long total) {
        return new NonFiniteMergeException(Culprit.BASE, "non-finite merged weights in layer " + layer + ": the base"
                + " weight W already holds " + bad + " of " + total + " non-finite values, so the base model is"
                + " broken, not the adapter; reload the base checkpoint (or re-export it)");
    }

    /** W was finite; the adapter's ΔW (or W + ΔW) is not. */
    static NonFiniteMergeException adapter(String layer) {
        return new NonFiniteMergeException(Culprit.ADAPTER, "NaNs detected in the merged weights. The adapter "
                + layer + " seems to be broken");
    }

    public Culprit culprit() {
        return culprit;
    }
}
