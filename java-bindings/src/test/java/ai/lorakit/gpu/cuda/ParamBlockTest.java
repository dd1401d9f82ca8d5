package ai.lorakit.gpu.cuda;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the kernel-parameter block is what cuLaunchKernel expects and is reusable: kernelParams[i] points at slot i
 * for the block's lifetime (so one pointer array serves every launch), ints and floats land little-endian in their
 * slot, pointers and longs fill it, and a changed parameter count is refused instead of launching with a stale slot.
 */
class ParamBlockTest {

    @Test
    void pointerArrayPointsAtEachSlotForever() {
        try (Arena arena = Arena.ofConfined()) {
            ParamBlock p = new ParamBlock(arena, 4);
            MemorySegment ptrs = p.pointerArray();
            long slots = p.slots().address();
            for (int i = 0; i < 4; i++) {
                assertEquals(slots + 8L * i, ptrs.getAtIndex(ValueLayout.ADDRESS, i).address(), "kernelParams[" + i + "]");
            }
            assertEquals(0, slots % 8, "slots are 8-byte aligned");
            p.begin("k", 4);
            p.putLong(0, 0x7f00_0000_1000L);
            p.putInt(1, -3);
            p.putFloat(2, 0.5f);
            p.putLong(3, 1L << 40);
            MemorySegment s = p.slots();
            assertEquals(0x7f00_0000_1000L, s.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(-3, s.get(ValueLayout.JAVA_INT, 8));
            assertEquals(0.5f, s.get(ValueLayout.JAVA_FLOAT, 16));
            assertEquals(1L << 40, s.get(ValueLayout.JAVA_LONG, 24));
            MemorySegment before = p.pointerArray();
            p.begin("k", 4);
            p.putInt(1, 7);
            assertEquals(before.address(), p.pointerArray().address(), "refilled in place");
            assertEquals(7, s.get(ValueLayout.JAVA_INT, 8));
        }
    }

    @Test
    void aChangedParameterCountIsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            ParamBlock p = new ParamBlock(arena, 3);
            assertEquals(-1, p.count());
            p.begin("gemm_fwd_kernel1", 3);
            assertEquals(3, p.count());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.begin("gemm_fwd_kernel1", 2));
            assertTrue(e.getMessage().contains("launch of gemm_fwd_kernel1: 2 arguments, but it was launched with 3"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> p.begin("gemm_fwd_kernel1", 4));
            assertTrue(e.getMessage().contains("holds 3"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new ParamBlock(arena, -1));
            ParamBlock empty = new ParamBlock(arena, 0);
            empty.begin("noop", 0);
            assertEquals(0, empty.count());
        }
    }
}
