package ai.lorakit.gpu.jcuda;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * Proves raw handle values move between lorakit and JCuda objects without JCuda's natives (so interop works the same
 * on every machine): a CUdeviceptr's address includes its byte offset, a wrapped handle reads back unchanged, and
 * null is 0.
 */
class JCudaHandlesTest {

    @Test
    void rawValuesRoundTrip() {
        CUdeviceptr p = JCudaHandles.wrap(new CUdeviceptr(), 0x7f12_3400_0000L);
        assertEquals(0x7f12_3400_0000L, JCudaHandles.address(p));
        assertEquals(0x7f12_3400_0040L, JCudaHandles.address(p.withByteOffset(0x40)), "byte offset included");
        CUstream s = new CUstream();
        assertSame(s, JCudaHandles.wrap(s, 0x5157L));
        assertEquals(0x5157L, JCudaHandles.raw(s));
        assertEquals(42L, JCudaHandles.raw(JCudaHandles.wrap(new CUfunction(), 42L)));
        assertEquals(0L, JCudaHandles.raw(null));
        assertEquals(0L, JCudaHandles.address(null));
    }
}
