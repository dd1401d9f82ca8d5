package ai.lorakit.gpu.dist;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.cuda.CudaBuffer;
import ai.lorakit.gpu.cuda.CudaDevice;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * GPU: proves the NCCL binding on the device. A one-rank communicator (NCCL refuses two ranks on one GPU) built from
 * a unique id "broadcast" by the single-process group all-reduces device buffers on the device's stream: out of
 * place the sum over one rank copies send into recv, in place it leaves the values. Skipped without a GPU; with
 * -Dlorakit.test.requireCuda=true (the GPU check) a missing NCCL fails with its reason.
 */
class NcclIT {

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#devices")
    void oneRankCommunicatorAllReducesOnTheDevice(Supplier<CudaDevice> open) {
        try (CudaDevice d = open.get()) {
            String why = Nccl.unavailableReason();
            if (why != null) {
                if (Boolean.getBoolean("lorakit.test.requireCuda")) {
                    fail(why);
                }
                assumeTrue(false, why);
            }
            Nccl nccl = Nccl.load();
            d.makeCurrent();
            int n = 1 << 16;
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = (i % 97) * 0.5f - 11f;
            }
            DeviceBuffer send = d.alloc(4L * n);
            DeviceBuffer recv = d.alloc(4L * n);
            d.write(send, 0, x);
            d.fill(recv, 0, 4L * n, 0, 4);
            try (NcclCommunicator c = nccl.communicator(SingleProcess.INSTANCE)) {
                assertEquals(1, c.size());
                c.allReduceSumF32(((CudaBuffer) send).address(), ((CudaBuffer) recv).address(), n, d.stream());
                d.synchronize();
                float[] y = new float[n];
                d.read(recv, 0, y);
                assertArrayEquals(x, y, nccl.describe());
                c.allReduceSumF32(((CudaBuffer) recv).address(), ((CudaBuffer) recv).address(), n, d.stream());
                d.synchronize();
                d.read(recv, 0, y);
                assertArrayEquals(x, y);
            }
            d.free(send);
            d.free(recv);
        }
    }
}
