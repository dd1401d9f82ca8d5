package ai.lorakit.gpu.cpu;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * Runs every {@link CpuTransformerOpsTest} check on the scalar reference path of {@link CpuTransformerOps}
 * ({@code -Dlorakit.cpu.naive=true}), so both paths are held to the same double references.
 */
class CpuTransformerOpsScalarPathTest extends CpuTransformerOpsTest {

    private boolean saved;

    @BeforeEach
    void scalarPath() {
        saved = CpuTransformerOps.naive;
        CpuTransformerOps.naive = true;
    }

    @AfterEach
    void restorePath() {
        CpuTransformerOps.naive = saved;
    }
}
