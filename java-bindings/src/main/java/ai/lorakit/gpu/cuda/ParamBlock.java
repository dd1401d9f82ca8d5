package ai.lorakit.gpu.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The kernel-parameter memory of one kernel, built ONCE and refilled before every launch (PERFORMANCE.md: "pre-built
 * parameter buffers"): {@code slots} holds one 8-byte, 8-aligned slot per parameter, {@code pointers} is the
 * {@code void* kernelParams[]} array cuLaunchKernel reads, whose entry i points at slot i for the block's lifetime.
 * A launch only writes the new values into the slots; nothing is allocated per call (no {@code Pointer.to(...)}
 * per argument as in the JCuda samples). cuLaunchKernel copies the values before it returns, so the block can be
 * refilled for the next launch at once.
 *
 * <p>Slots take pointers and 64-bit integers (8 bytes) and int/float (4 bytes, little-endian low half), matching
 * the parameter types the kernels may have (kcompat.h: pointers, int, long, float). Not thread-safe: one device,
 * one thread.
 */
public final class ParamBlock {
    /** Bytes per parameter slot. */
    public static final int SLOT_BYTES = 8;

    private final MemorySegment slots;      // [capacity] x 8 bytes: the values
    private final MemorySegment pointers;   // [capacity] x void*: &slots[i]
    private final int capacity;
    private int count = -1;                 // parameters of the first fill; later fills must match

    /** A block of {@code capacity} parameters allocated in {@code arena} (which owns and frees the memory). */
    public ParamBlock(Arena arena, int capacity) {
        if (capacity < 0) {
            throw new IllegalArgumentException("ParamBlock: capacity must be >= 0, got " + capacity);
        }
        this.capacity = capacity;
        long bytes = Math.max(1, capacity) * (long) SLOT_BYTES;
        this.slots = arena.allocate(bytes, SLOT_BYTES);
        this.pointers = arena.allocate(bytes, ValueLayout.ADDRESS.byteAlignment());
        for (int i = 0; i < capacity; i++) {
            pointers.setAtIndex(ValueLayout.ADDRESS, i, slots.asSlice((long) i * SLOT_BYTES, SLOT_BYTES));
        }
    }

    public int capacity() {
        return capacity;
    }

    /** The {@code void** kernelParams} argument of cuLaunchKernel (fixed for the block's lifetime). */
    public MemorySegment pointerArray() {
        return pointers;
    }

    /** The parameter values (slot i at byte 8*i). */
    public MemorySegment slots() {
        return slots;
    }

    /**
     * Starts a refill with {@code n} parameters: the first call fixes the kernel's parameter count; a later call
     * with another count is a caller bug (the driver would read a stale slot) and throws.
     */
    public void begin(String kernel, int n) {
        if (n > capacity) {
            throw new IllegalArgumentException("launch of " + kernel + ": " + n + " arguments, but its parameter block"
                    + " holds " + capacity);
        }
        if (count < 0) {
            count = n;
        } else if (count != n) {
            throw new IllegalArgumentException("launch of " + kernel + ": " + n + " arguments, but it was launched with "
                    + count + " before (a kernel's parameter list is fixed)");
        }
    }

    /** Parameters of the first fill, or -1 before it. */
    public int count() {
        return count;
    }

    /** A pointer or 64-bit integer into slot i. */
    public void putLong(int i, long v) {
        slots.set(ValueLayout.JAVA_LONG, (long) i * SLOT_BYTES, v);
    }

    public void putInt(int i, int v) {
        slots.set(ValueLayout.JAVA_INT, (long) i * SLOT_BYTES, v);
    }

    public void putFloat(int i, float v) {
        slots.set(ValueLayout.JAVA_FLOAT, (long) i * SLOT_BYTES, v);
    }
}
