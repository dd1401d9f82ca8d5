package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * AdaptedLinear writes its caller's buffers ({@code forward(x, y)}, {@code backward(dy, dx)}) whole, whatever they
 * held: buffers poisoned with NaN get bit for bit what fresh zeroed buffers ({@link Fresh}) of a twin layer get, for
 * every variant and option of {@link VariantCase#all}, and the parameter gradients agree, over three training steps
 * of which the last has another N (the layer's scratch is reused, then replaced). Buffers of the wrong shape are
 * refused with the layer's name before anything is written.
 */
class CallerBufferTest {
    static List<VariantCase> cases() {
        return VariantCase.all();
    }

    @ParameterizedTest
    @MethodSource("cases")
    void poisonedReusedBuffersMatchFreshOnes(VariantCase c) {
        try (Backend be = new CpuBackend();
             VariantCase.Setup ret = new VariantCase.Setup(be, c, false, 11);
             VariantCase.Setup buf = new VariantCase.Setup(be, c, false, 11)) {
            ret.layer.setTraining(true);
            buf.layer.setTraining(true);
            Random rnd = new Random(3);
            for (int n : new int[] {VariantCase.N, VariantCase.N, VariantCase.N + 2}) {
                try (Tensor x = be.upload(VariantCase.uniform(rnd, n * VariantCase.IN, 1), n, VariantCase.IN);
                     Tensor dy = be.upload(VariantCase.uniform(rnd, n * VariantCase.OUT, 1), n, VariantCase.OUT);
                     Tensor y = be.upload(nans(n * VariantCase.OUT), n, VariantCase.OUT);
                     Tensor dx = be.upload(nans(n * VariantCase.IN), n, VariantCase.IN)) {
                    try (Tensor y0 = Fresh.forward(ret.layer, x); Tensor dx0 = Fresh.backward(ret.layer, dy)) {
                        buf.layer.forward(x, y);
                        buf.layer.backward(dy, dx);
                        assertArrayEquals(be.download(y0), be.download(y), c + " y, N=" + n);
                        assertArrayEquals(be.download(dx0), be.download(dx), c + " dx, N=" + n);
                    }
                }
            }
            List<Parameter> pr = ret.layer.parameters();
            List<Parameter> pb = buf.layer.parameters();
            assertEquals(pr.size(), pb.size());
            for (int i = 0; i < pr.size(); i++) {
                if (pr.get(i).grad() != null) {
                    assertArrayEquals(be.download(pr.get(i).grad()), be.download(pb.get(i).grad()),
                            c + " gradient of " + pr.get(i).name());
                }
            }
        }
    }

    @Test
    void buffersOfTheWrongShapeAreRefused() {
        VariantCase c = VariantCase.all().getFirst();
        try (Backend be = new CpuBackend(); VariantCase.Setup s = new VariantCase.Setup(be, c, false, 11);
             Tensor x = be.zeros(DType.F32, 3, VariantCase.IN);
             Tensor yCols = be.upload(nans(3 * (VariantCase.OUT + 1)), 3, VariantCase.OUT + 1);
             Tensor yRows = be.zeros(DType.F32, 4, VariantCase.OUT);
             Tensor y = be.zeros(DType.F32, 3, VariantCase.OUT);
             Tensor dy = be.zeros(DType.F32, 3, VariantCase.OUT);
             Tensor dxBad = be.upload(nans(3 * (VariantCase.IN + 1)), 3, VariantCase.IN + 1)) {
            s.layer.setTraining(true);
            ShapeException e = assertThrows(ShapeException.class, () -> s.layer.forward(x, yCols));
            assertTrue(e.getMessage().contains(VariantCase.NAME) && e.getMessage().contains("out="), e.getMessage());
            assertArrayEquals(nans(3 * (VariantCase.OUT + 1)), be.download(yCols), "a refused forward wrote y");
            assertThrows(ShapeException.class, () -> s.layer.forward(x, yRows));
            s.layer.forward(x, y);
            e = assertThrows(ShapeException.class, () -> s.layer.backward(dy, dxBad));
            assertTrue(e.getMessage().contains(VariantCase.NAME) && e.getMessage().contains("dx"), e.getMessage());
            assertArrayEquals(nans(3 * (VariantCase.IN + 1)), be.download(dxBad), "a refused backward wrote dx");
            assertThrows(IllegalArgumentException.class, () -> s.layer.backward(dy, null));
        }
    }

    private static float[] nans(int n) {
        float[] v = new float[n];
        Arrays.fill(v, Float.NaN);
        return v;
    }
}
