package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.cuda.FakeCuda;
import ai.lorakit.gpu.dist.DeviceAllReduce;
import ai.lorakit.gpu.dist.DistributedException;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, without a GPU, how data parallel picks and drives its all-reduce: on a CUDA backend (the in-memory fake
 * driver) with NCCL on every rank (a stub {@link DeviceAllReduce} that sums over two thread ranks), each step makes
 * one in-place fp32 all-reduce of n+1 elements on the backend's stream, moves no gradient through the host (the only
 * host transfers are the loss's 4 bytes each way), and gives the same bits as the MPI host reducer on the cpu
 * backend; a rank without NCCL sends every rank to the host path; cpu and a single process never ask for NCCL.
 */
class NcclGradientReducerTest {
    private static final int[][] SHAPES = {{3, 4}, {5}, {2, 2}};

    /** rank r's gradient of parameter i: distinct, inexact values so that a wrong order or scale changes bits. */
    private static float[] grad(int rank, int i, int n) {
        float[] g = new float[n];
        for (int k = 0; k < n; k++) {
            g[k] = (float) (Math.sin(1.3 * k + 0.7 * i + 2.1 * rank) / 3);
        }
        return g;
    }

    private static List<Parameter> params(Backend be, int rank) {
        List<Parameter> ps = new ArrayList<>();
        for (int i = 0; i < SHAPES.length; i++) {
            Parameter p = new Parameter("p" + i, Parameter.Role.LORA_A, be.zeros(ai.lorakit.gpu.DType.F32, SHAPES[i]),
                    true);
            Tensor g = p.gradForAccumulation();
            try (Tensor v = be.upload(grad(rank, i, (int) g.numel()), g.shape())) {
                be.copy(v, g);
            }
            ps.add(p);
        }
        return ps;
    }

    /** One all-reduce call as the stub saw it. */
    private record Call(long send, long recv, long count, long stream) {
    }

    /** NCCL's stand-in: reads the device bucket without a driver call and sums it over the thread ranks. */
    private static final class StubNccl implements DeviceAllReduce {
        final ProcessGroup group;
        final FakeCuda cuda;
        final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        boolean closed;

        StubNccl(ProcessGroup group, FakeCuda cuda) {
            this.group = group;
            this.cuda = cuda;
        }

        @Override
        public int rank() {
            return group.rank();
        }

        @Override
        public int size() {
            return group.size();
        }

        @Override
        public void allReduceSumF32(long send, long recv, long count, long stream) {
            calls.add(new Call(send, recv, count, stream));
            float[] v = cuda.read(send, (int) count);
            group.allReduceSum(v, 0, v.length);
            cuda.write(recv, v);
        }

        @Override
        public String describe() {
            return "stub NCCL";
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    private static <T> List<T> onRanks(int size, Function<Integer, Callable<T>> body) throws Exception {
        ExecutorService ex = Executors.newFixedThreadPool(size);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                fs.add(ex.submit(body.apply(r)));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : fs) {
                out.add(f.get(120, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            ex.shutdownNow();
        }
    }

    private record RankResult(List<float[]> grads, double loss, List<Call> calls, List<String> driverCalls,
                              GradientReducer reducer, long stream, boolean commClosed) {
    }

    @Test
    void cudaWithNcclAllReducesOnTheDeviceOncePerStepAndMatchesTheHostPath() throws Exception {
        assumeTrue(FakeCuda.available(), "the build has no fatbin (nvcc missing)");
        int n = 1;
        for (int[] s : SHAPES) {
            n += Tensor.numel(s);
        }
        final int elements = n;
        ThreadRanks[] dev = ThreadRanks.ranks(2);
        List<RankResult> device = onRanks(2, r -> () -> {
            try (FakeCuda cuda = new FakeCuda()) {
                StubNccl stub = new StubNccl(dev[r], cuda);
                GradientReducer red = GradientReducer.of(dev[r], cuda.backend(), () -> g -> stub);
                List<Parameter> ps = params(cuda.backend(), r);
                int from = cuda.calls().size();
                double loss = red.reduce(ps, 1.5 + r);
                List<String> during = List.copyOf(cuda.calls().subList(from, cuda.calls().size()));
                List<float[]> gs = new ArrayList<>();
                for (Parameter p : ps) {
                    gs.add(cuda.backend().download(p.grad()));
                }
                long stream = cuda.backend().stream();
                red.close();
                return new RankResult(gs, loss, List.copyOf(stub.calls), during, red, stream, stub.closed);
            }
        });
        ThreadRanks[] host = ThreadRanks.ranks(2);
        List<RankResult> onHost = onRanks(2, r -> () -> {
            try (CpuBackend cpu = new CpuBackend()) {
                GradientReducer red = GradientReducer.of(host[r], cpu, () -> {
                    throw new AssertionError("cpu must not load NCCL");
                });
                List<Parameter> ps = params(cpu, r);
                double loss = red.reduce(ps, 1.5 + r);
                List<float[]> gs = new ArrayList<>();
                for (Parameter p : ps) {
                    gs.add(cpu.download(p.grad()));
                }
                return new RankResult(gs, loss, List.of(), List.of(), red, 0, false);
            }
        });
        for (int r = 0; r < 2; r++) {
            RankResult d = device.get(r);
            assertInstanceOf(NcclGradientReducer.class, d.reducer());
            assertTrue(d.reducer().transport().startsWith("stub NCCL: all-reduce on the device"),
                    d.reducer().transport());
            assertEquals(1, d.calls().size(), "one all-reduce per step");
            Call c = d.calls().get(0);
            assertEquals(elements, c.count(), "every trainable gradient element + the loss");
            assertEquals(d.stream(), c.stream(), "on the backend's stream");
            assertEquals(c.send(), c.recv(), "in place");
            assertEquals(1, Collections.frequency(d.driverCalls(), "cuMemcpyHtoD"), "only the loss goes up: "
                    + d.driverCalls());
            assertEquals(1, Collections.frequency(d.driverCalls(), "cuMemcpyDtoH"), "only the loss comes down: "
                    + d.driverCalls());
            assertEquals(2 * SHAPES.length, Collections.frequency(d.driverCalls(), "cuMemcpyDtoDAsync"),
                    "each gradient copied into the bucket and back: " + d.driverCalls());
            assertTrue(d.commClosed(), "close() destroys the communicator");
            assertEquals(elements, d.reducer().elements());
            // the mean loss over ranks: (1.5 + 2.5) / 2
            assertEquals(2.0, d.loss(), 0.0);
            assertEquals(onHost.get(r).loss(), d.loss(), 0.0);
            for (int i = 0; i < SHAPES.length; i++) {
                float[] want = new float[d.grads().get(i).length];
                float[] g0 = grad(0, i, want.length);
                float[] g1 = grad(1, i, want.length);
                for (int k = 0; k < want.length; k++) {
                    want[k] = g0[k] + g1[k];
                }
                assertArrayEquals(want, d.grads().get(i), 0f, "p" + i + " on the device, rank " + r);
                assertArrayEquals(onHost.get(r).grads().get(i), d.grads().get(i), 0f, "device vs host bits, p" + i);
            }
            assertEquals("MPI all-reduce on the host", onHost.get(r).reducer().transport());
        }
    }

    @Test
    void aRankWithoutNcclSendsEveryRankToTheHost() throws Exception {
        assumeTrue(FakeCuda.available(), "the build has no fatbin (nvcc missing)");
        ThreadRanks[] g = ThreadRanks.ranks(2);
        List<String> transports = onRanks(2, r -> () -> {
            try (FakeCuda cuda = new FakeCuda()) {
                Supplier<Function<ProcessGroup, ? extends DeviceAllReduce>> load = r == 1
                        ? () -> {
                            throw new DistributedException("no libnccl.so.2 loads (tried x)");
                        }
                        : () -> grp -> {
                            throw new AssertionError("no communicator when a rank lacks NCCL");
                        };
                GradientReducer red = GradientReducer.of(g[r], cuda.backend(), load);
                assertSame(GradientReducer.class, red.getClass());
                return red.transport();
            }
        });
        assertEquals("MPI all-reduce on the host (NCCL loads on 1 of 2 ranks)", transports.get(0));
        assertEquals("MPI all-reduce on the host (NCCL loads on 1 of 2 ranks; here: no libnccl.so.2 loads (tried x))",
                transports.get(1));
    }

    @Test
    void aSingleProcessNeverAsksForNccl() {
        assumeTrue(FakeCuda.available(), "the build has no fatbin (nvcc missing)");
        try (FakeCuda cuda = new FakeCuda()) {
            GradientReducer red = GradientReducer.of(SingleProcess.INSTANCE, cuda.backend(), () -> {
                throw new AssertionError("a single process must not load NCCL");
            });
            assertSame(GradientReducer.class, red.getClass());
            List<Parameter> ps = params(cuda.backend(), 0);
            assertEquals(0.75, red.reduce(ps, 0.75), 0.0);
            assertArrayEquals(grad(0, 0, 12), cuda.backend().download(ps.get(0).grad()), 0f);
        }
    }
}
