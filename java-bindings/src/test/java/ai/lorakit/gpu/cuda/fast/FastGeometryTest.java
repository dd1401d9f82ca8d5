package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.Dim3;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Pins {@link FastGeometry} at the edges the .cu headers give (grid-stride caps, ceil divisions). */
class FastGeometryTest {
    @Test
    void geometryMatchesTheKernelHeaders() {
        assertEquals(Dim3.of(256), FastGeometry.block());
        assertEquals(Dim3.of(1), FastGeometry.adamw(1024));
        assertEquals(Dim3.of(2), FastGeometry.adamw(1025));
        assertEquals(Dim3.of(65535), FastGeometry.adamw(1024L * 70_000));
        assertEquals(Dim3.of(1, 1, 1), FastGeometry.shrink(128, 64));
        assertEquals(Dim3.of(2, 2, 1), FastGeometry.shrink(129, 65));
        assertEquals(Dim3.of(16, 16, 1), FastGeometry.doraGram(16));
        assertEquals(Dim3.of(1, 32, 1), FastGeometry.doraNorm(4096));
        assertEquals(Dim3.of(72, 1, 1), FastGeometry.doraNormFifo(2304));
        assertEquals(Dim3.of(4, 1, 1), FastGeometry.doraNormFifo(97));
        assertEquals(Dim3.of(32, 64, 1), FastGeometry.deltaLora(4096, 4096));
        assertEquals(Dim3.of(1, 65535, 1), FastGeometry.deltaLora(4194240, 8));
    }
}
