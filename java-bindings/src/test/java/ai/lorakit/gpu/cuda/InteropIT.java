package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.contract.Ref;
import ai.lorakit.gpu.jcuda.JCudaDevice;
import ai.lorakit.gpu.jcuda.JCudaInterop;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * GPU: proves interop with existing CUDA code: a JCuda pipeline's CUdeviceptr (allocated in the primary context, on the
 * pipeline's own CUstream) is wrapped as a tensor without a copy, lorakit's LoRA forward runs on the pipeline's stream,
 * its output is read back through the pipeline's own cuMemcpyDtoH, a raw address works the same on the FFM device,
 * and memory of a context made with cuCtxCreate is refused with the remedy. Skipped without a GPU.
 */
class InteropIT {

    @Test
    void aJCudaPipelinesPointersAndStream() {
        assumeTrue(JCudaDevice.unavailableReason() == null, () -> "cuda-jcuda unavailable: " + JCudaDevice.unavailableReason());
        int n = 32, in = 48, r = 4;
        JCudaDriver.setExceptionsEnabled(true);
        JCudaDriver.cuInit(0);
        CUdevice dev = new CUdevice();
        JCudaDriver.cuDeviceGet(dev, 0);
        CUcontext ctx = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
        JCudaDriver.cuCtxSetCurrent(ctx);
        CUstream stream = new CUstream();
        JCudaDriver.cuStreamCreate(stream, 0);
        CUdeviceptr x = new CUdeviceptr();
        JCudaDriver.cuMemAlloc(x, 4L * n * in);
        float[] xs = Ref.random(11, n * in);
        JCudaDriver.cuMemcpyHtoD(x, Pointer.to(xs), 4L * n * in);
        try (CudaBackend be = JCudaInterop.backend(0, stream)) {
            Tensor xt = JCudaInterop.wrap(be, x, DType.F32, n, in);
            Tensor a = be.upload(Ref.random(12, r * in), r, in);
            Tensor u = be.zeros(DType.F32, n, r);
            be.loraShrink(xt, a, u);
            CUdeviceptr up = JCudaInterop.pointer(be, u);
            JCudaDriver.cuStreamSynchronize(stream);          // the pipeline's own sync sees lorakit's work
            float[] got = new float[n * r];
            JCudaDriver.cuMemcpyDtoH(Pointer.to(got), up, 4L * n * r);
            Ref.assertClose(ai.lorakit.gpu.Tolerance.F32, "shrink on the pipeline's stream", got,
                    Ref.matmul(xs, false, Ref.random(12, r * in), true, n, r, in));
            xt.close();
        } finally {
            JCudaDriver.cuMemFree(x);                          // still the pipeline's: lorakit did not free it
            JCudaDriver.cuStreamDestroy(stream);
            JCudaDriver.cuDevicePrimaryCtxRelease(dev);
        }
    }

    @Test
    void memoryOfAnotherContextIsRefused() {
        assumeTrue(JCudaDevice.unavailableReason() == null, () -> "cuda-jcuda unavailable: " + JCudaDevice.unavailableReason());
        try (CudaBackend be = CudaBackend.open(JCudaDevice.open(0), "cuda-jcuda")) {
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, 0);
            CUcontext own = new CUcontext();
            JCudaDriver.cuCtxCreate(own, 0, dev);
            CUdeviceptr p = new CUdeviceptr();
            JCudaDriver.cuMemAlloc(p, 1024);
            try {
                be.cudaDevice().forceCurrent();
                GpuException e = assertThrows(GpuException.class, () -> JCudaInterop.wrap(be, p, DType.F32, 16));
                assertTrue(e.getMessage().contains("belongs to another CUDA context"), e.getMessage());
            } finally {
                JCudaDriver.cuCtxSetCurrent(own);
                JCudaDriver.cuMemFree(p);
                JCudaDriver.cuCtxDestroy(own);
                be.cudaDevice().forceCurrent();
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#backends")
    void aRawAddressIsWrappedWithoutACopy(Supplier<CudaBackend> open) {
        try (CudaBackend be = open.get()) {
            CudaDevice d = be.cudaDevice();
            long user = d.driver().memAlloc(4 * 8);            // "the user's" allocation, primary context
            try {
                d.driver().memcpyHtoD(user, new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 32);
                Tensor t = be.wrap(java.lang.foreign.MemorySegment.ofAddress(user), DType.F32, 2, 4);
                be.scale(t, 2f, t);
                assertArrayEquals(new float[] {2, 4, 6, 8, 10, 12, 14, 16}, be.download(t));
                assertEquals(user, be.address("test", t));
                t.close();
            } finally {
                d.driver().memFree(user);
            }
        }
    }
}
