package ai.lorakit.models.tokenizer;

import java.util.Arrays;

/** Growable int array (avoids boxing while encoding). */
final class IntList {
    private int[] a;
    private int n;

    IntList(int capacity) {
        a = new int[Math.max(4, capacity)];
    }

    int size() {
        return n;
    }

    void add(int v) {
        if (n == a.length) {
            a = Arrays.copyOf(a, a.length * 2);
        }
        a[n++] = v;
    }

    void addAll(int[] vs) {
        if (n + vs.length > a.length) {
            a = Arrays.copyOf(a, Math.max(a.length * 2, n + vs.length));
        }
        System.arraycopy(vs, 0, a, n, vs.length);
        n += vs.length;
    }

    /** Collapses each run of {@code value} at or after {@code from} into one. */
    void fuseRuns(int from, int value) {
        int w = from;
        for (int i = from; i < n; i++) {
            if (a[i] != value || w == from || a[w - 1] != value) {
                a[w++] = a[i];
            }
        }
        n = w;
    }

    int[] toArray() {
        return Arrays.copyOf(a, n);
    }
}
