package ai.lorakit.adapters.reference;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.LoraFaPolicy;
import ai.lorakit.adapters.optim.LoraPair;
import ai.lorakit.adapters.optim.LoraPlusPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.adapters.optim.ParamGroup;
import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Proves that lorakit's optimizers agree with PyTorch (ci/reference/dumps, made by make_reference.py):
 * {@link Backend#adamw} and the {@link AdamWPolicy} optimizer follow torch.optim.AdamW over 3 steps (parameters
 * and moments), {@link LoraFaPolicy} reproduces LoRA-FA's projected gradient (1/s²)·grad_B·(AAᵀ)⁻¹ followed by
 * torch AdamW over 2 steps with A left untouched (and the dump is shown to tell this rule apart from PEFT's
 * decay-after-step rule), {@link LoraFaPolicy#peft()} reproduces PEFT's LoraFAOptimizer (HF AdamW, decay after
 * the step) on the same dump, and {@link LoraPlusPolicy} builds PEFT's four groups with PEFT's learning rates and
 * membership.
 */
class OptimizerReferenceTest extends ReferenceTestBase {

    private static OptimizerConfig configOf(SafetensorsFile f) {
        return new OptimizerConfig(ReferenceFiles.metaFloat(f, "lr"), ReferenceFiles.metaFloat(f, "beta1"),
                ReferenceFiles.metaFloat(f, "beta2"), ReferenceFiles.metaFloat(f, "eps"),
                ReferenceFiles.metaFloat(f, "weight_decay"));
    }

    private Parameter param(String name, Parameter.Role role, SafetensorsFile f, String tensor) {
        return new Parameter(name, role, keep(ReferenceFiles.upload(backend, f, tensor)), true);
    }

    private Parameter zerosParam(String name, Parameter.Role role, int... shape) {
        return new Parameter(name, role, keep(backend.zeros(DType.F32, shape)), true);
    }

    @Test
    void backendAdamwMatchesTorch() {
        SafetensorsFile f = keep(ReferenceFiles.open("dumps/adamw.safetensors"));
        OptimizerConfig c = configOf(f);
        int steps = ReferenceFiles.metaInt(f, "steps");
        for (String p : ReferenceFiles.meta(f, "params").split(",")) {
            int[] shape = f.info("param." + p + ".step0").intShape();
            try (Tensor w = ReferenceFiles.upload(backend, f, "param." + p + ".step0");
                 Tensor m = backend.zeros(DType.F32, shape);
                 Tensor v = backend.zeros(DType.F32, shape)) {
                for (int t = 1; t <= steps; t++) {
                    try (Tensor g = ReferenceFiles.upload(backend, f, "grad." + p + ".step" + t)) {
                        backend.adamw(w, g, m, v, new AdamW(c.lr(), c.beta1(), c.beta2(), c.eps(), c.weightDecay(), t));
                    }
                    ReferenceFiles.assertClose("Backend.adamw " + p + " step " + t, f, "param." + p + ".step" + t, w);
                }
                ReferenceFiles.assertClose("Backend.adamw m of " + p, f, "exp_avg." + p + ".step" + steps, m);
                ReferenceFiles.assertClose("Backend.adamw v of " + p, f, "exp_avg_sq." + p + ".step" + steps, v);
            }
        }
    }

    @Test
    void adamwPolicyMatchesTorch() {
        SafetensorsFile f = keep(ReferenceFiles.open("dumps/adamw.safetensors"));
        int steps = ReferenceFiles.metaInt(f, "steps");
        String[] names = ReferenceFiles.meta(f, "params").split(",");
        List<Parameter> params = new ArrayList<>();
        for (String p : names) {
            params.add(param(p, Parameter.Role.OTHER, f, "param." + p + ".step0"));
        }
        Optimizer opt = keep(Optimizer.create(new AdamWPolicy(), configOf(f), params, List.of()));
        for (int t = 1; t <= steps; t++) {
            for (int i = 0; i < names.length; i++) {
                ReferenceFiles.copyInto(backend, f, "grad." + names[i] + ".step" + t, params.get(i).gradForAccumulation());
            }
            opt.step();
            for (int i = 0; i < names.length; i++) {
                ReferenceFiles.assertClose("AdamWPolicy " + names[i] + " step " + t, f,
                        "param." + names[i] + ".step" + t, params.get(i).value());
            }
        }
        Map<String, Optimizer.MomentState> state = opt.state();
        for (String p : names) {
            Optimizer.MomentState s = state.get(p);
            assertNotNull(s, "optimizer state of " + p);
            assertEquals(steps, s.step(), "step count of " + p);
            ReferenceFiles.assertClose("AdamWPolicy m of " + p, f, "exp_avg." + p + ".step" + steps, s.m());
            ReferenceFiles.assertClose("AdamWPolicy v of " + p, f, "exp_avg_sq." + p + ".step" + steps, s.v());
        }
    }

    /**
     * Runs the dump's LoRA-FA steps under {@code policy}: A must be frozen and stay bit-identical, B after step t
     * must equal the dump's {@code prefix + ".step" + t}. Returns the dump.
     */
    private SafetensorsFile loraFaSteps(LoraFaPolicy policy, String prefix) {
        SafetensorsFile f = keep(ReferenceFiles.open("dumps/lorafa.safetensors"));
        Parameter a = param("m.lora_A", Parameter.Role.LORA_A, f, "lora_A");
        Parameter b = param("m.lora_B", Parameter.Role.LORA_B, f, "lora_B.step0");
        float[] a0 = backend.download(a.value());
        Optimizer opt = keep(Optimizer.create(policy, configOf(f), List.of(a, b),
                List.of(new LoraPair(a, b, ReferenceFiles.metaFloat(f, "scaling")))));
        assertFalse(a.trainable(), "LoRA-FA must freeze A");
        int steps = ReferenceFiles.metaInt(f, "steps");
        for (int t = 1; t <= steps; t++) {
            ReferenceFiles.copyInto(backend, f, "grad.lora_B.step" + t, b.gradForAccumulation());
            opt.step();
            ReferenceFiles.assertClose("LoRA-FA " + policy.rule() + " B step " + t, f, prefix + ".step" + t,
                    b.value());
            assertArrayEquals(a0, backend.download(a.value()), "LoRA-FA must leave A bit-identical");
        }
        return f;
    }

    @Test
    void loraFaMatchesProjectedTorchAdamW() {
        SafetensorsFile f = loraFaSteps(new LoraFaPolicy(), "lora_B");
        // the dump discriminates lorakit's default rule (torch AdamW, decay first) from PEFT's (decay after)
        int steps = ReferenceFiles.metaInt(f, "steps");
        Tolerance.Result peft = Tolerance.F32.compare("torch rule vs PEFT rule",
                f.floats("lora_B.step" + steps), f.floats("lora_B_peft.step" + steps));
        assertFalse(peft.ok(), "the reference should tell the two LoRA-FA update rules apart: " + peft.describe());
    }

    @Test
    void loraFaPeftRuleMatchesPeftsLoraFaOptimizer() {
        loraFaSteps(LoraFaPolicy.peft(), "lora_B_peft");
    }

    @Test
    void loraPlusGroupsMatchPeft() {
        SafetensorsFile f = keep(ReferenceFiles.open("dumps/loraplus.safetensors"));
        Parameter a = zerosParam("m.lora_A", Parameter.Role.LORA_A, 3, 10);
        Parameter b = zerosParam("m.lora_B", Parameter.Role.LORA_B, 7, 3);
        Parameter mag = zerosParam("m.lora_magnitude_vector", Parameter.Role.MAGNITUDE, 7);
        Parameter emb = zerosParam("wte.lora_embedding_A", Parameter.Role.EMBEDDING, 3, 11);
        Parameter bias = zerosParam("m.bias", Parameter.Role.BIAS, 7);
        OptimizerConfig c = OptimizerConfig.defaults().withLr(ReferenceFiles.metaFloat(f, "lr"));
        Optimizer opt = keep(Optimizer.create(new LoraPlusPolicy(ReferenceFiles.metaFloat(f, "loraplus_lr_ratio"),
                ReferenceFiles.metaFloat(f, "loraplus_lr_embedding")), c, List.of(a, b, mag, emb, bias), List.of()));
        List<ParamGroup> groups = opt.groups();
        String[] names = ReferenceFiles.meta(f, "groups").split(",");
        float[] lrs = f.floats("group_lrs");
        assertEquals(names.length, groups.size(), "number of LoRA+ groups");
        float[] actual = new float[groups.size()];
        for (int i = 0; i < names.length; i++) {
            assertEquals(names[i], groups.get(i).name(), "group " + i);
            actual[i] = groups.get(i).lr();
        }
        ReferenceFiles.assertClose("LoRA+ group learning rates", lrs, actual);
        // PEFT's membership (metadata "assignment"): A -> groupA, B and the 1-D magnitude -> groupB,
        // embedding -> embedding, bias -> groupB_no_decay
        Map<Parameter, String> expected = Map.of(a, "groupA", b, "groupB", mag, "groupB", emb, "embedding",
                bias, "groupB_no_decay");
        expected.forEach((p, g) -> assertEquals(g, groups.stream().filter(q -> q.params().contains(p))
                .map(ParamGroup::name).findFirst().orElse("none"), "LoRA+ group of " + p.name()));
        assertEquals(0f, groups.get(3).weightDecay(), "groupB_no_decay has no weight decay");
    }
}
