package ai.lorakit.models.gpt2;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Every buffer one forward and backward of a (B,T) batch needs, allocated once and reused across steps (llm.c's
 * ActivationTensors). The forward buffers are kept per layer for the backward; the backward buffers (gradients
 * of activations) are shared by all layers and allocated on the first backward. N = B*T tokens.
 */
final class Activations implements AutoCloseable {
    final int b;
    final int t;
    private final Backend be;
    private final Gpt2Config cfg;
    private final List<Tensor> owned = new ArrayList<>();

    /** Token ids [B,T] and targets [B,T] (I32): replaced on every call (the Backend uploads into new tensors). */
    Tensor ids;
    Tensor targets;

    /** wte[ids] + wpe[t] [B,T,C]: the input of block 0. */
    final Tensor encoded;
    /** Per layer: ln_1 output [B,T,C], its mean and rstd [N]. */
    final Tensor[] ln1;
    final Tensor[] ln1Mean;
    final Tensor[] ln1Rstd;
    /** Per layer: c_attn output q|k|v [B,T,3C]. */
    final Tensor[] qkv;
    /** Per layer: attention probabilities [B,H,T,T]. */
    final Tensor[] att;
    /** Per layer: attention output before c_proj [B,T,C]. */
    final Tensor[] atty;
    /** Per layer: residual after attention [B,T,C]. */
    final Tensor[] res2;
    /** Per layer: ln_2 output [B,T,C], mean, rstd [N]. */
    final Tensor[] ln2;
    final Tensor[] ln2Mean;
    final Tensor[] ln2Rstd;
    /** Per layer: c_fc output (pre-GELU) [B,T,4C] and GELU of it [B,T,4C]. */
    final Tensor[] fch;
    final Tensor[] fchGelu;
    /** Per layer: residual after the MLP [B,T,C] = the input of the next block. */
    final Tensor[] res3;
    /** A projection's output before its residual add [B,T,C] (not needed by the backward: shared). */
    final Tensor proj;
    /** ln_f output [B,T,C], mean, rstd [N]. */
    final Tensor lnf;
    final Tensor lnfMean;
    final Tensor lnfRstd;
    /** Logits [N,V]; the backward overwrites them with dlogits. */
    final Tensor logits;
    /** Softmax of the logits [N,V] and per-token losses [N] (allocated with the first loss computation). */
    Tensor probs;
    Tensor losses;

    // backward buffers (lazily, see grads())
    /** dL/d residual stream [N,C]. */
    Tensor dres;
    /** Two [N,C] scratch gradients (a layer's input / output gradient). */
    Tensor dC;
    Tensor dC2;
    /** dL/d qkv [B,T,3C]. */
    Tensor dqkv;
    /** dL/d GELU output and dL/d c_fc output [N,4C]. */
    Tensor d4a;
    Tensor d4b;
    /** Sinks for the dgamma/dbeta of frozen LayerNorms [C] (the op always accumulates them; never read). */
    Tensor lnSinkG;
    Tensor lnSinkB;

    Activations(Backend be, Gpt2Config cfg, int b, int t) {
        this.be = be;
        this.cfg = cfg;
        this.b = b;
        this.t = t;
        int c = cfg.nEmbd();
        int n = b * t;
        int layers = cfg.nLayer();
        try {
            encoded = f32(b, t, c);
            ln1 = new Tensor[layers];
            ln1Mean = new Tensor[layers];
            ln1Rstd = new Tensor[layers];
            qkv = new Tensor[layers];
            att = new Tensor[layers];
            atty = new Tensor[layers];
            res2 = new Tensor[layers];
            ln2 = new Tensor[layers];
            ln2Mean = new Tensor[layers];
            ln2Rstd = new Tensor[layers];
            fch = new Tensor[layers];
            fchGelu = new Tensor[layers];
            res3 = new Tensor[layers];
            for (int l = 0; l < layers; l++) {
                ln1[l] = f32(b, t, c);
                ln1Mean[l] = f32(n);
                ln1Rstd[l] = f32(n);
                qkv[l] = f32(b, t, 3 * c);
                att[l] = f32(b, cfg.nHead(), t, t);
                atty[l] = f32(b, t, c);
                res2[l] = f32(b, t, c);
                ln2[l] = f32(b, t, c);
                ln2Mean[l] = f32(n);
                ln2Rstd[l] = f32(n);
                fch[l] = f32(b, t, 4 * c);
                fchGelu[l] = f32(b, t, 4 * c);
                res3[l] = f32(b, t, c);
            }
            proj = f32(b, t, c);
            lnf = f32(b, t, c);
            lnfMean = f32(n);
            lnfRstd = f32(n);
            logits = f32(n, cfg.vocabSize());
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Allocates the loss buffers on first use. */
    void lossBuffers() {
        if (probs == null) {
            int n = b * t;
            probs = f32(n, cfg.vocabSize());
            losses = f32(n);
        }
    }

    /** Allocates the backward buffers on first use. */
    void gradBuffers() {
        if (dres == null) {
            int c = cfg.nEmbd();
            dres = f32(b, t, c);
            dC = f32(b, t, c);
            dC2 = f32(b, t, c);
            dqkv = f32(b, t, 3 * c);
            d4a = f32(b, t, 4 * c);
            d4b = f32(b, t, 4 * c);
            lnSinkG = f32(c);
            lnSinkB = f32(c);
        }
    }

    /** Replaces the id and target tensors with this batch's (targets may be null for a forward without loss). */
    void setTokens(int[] idv, int[] targetv) {
        closeTokens();
        ids = be.uploadInts(idv, b, t);
        if (targetv != null) {
            targets = be.uploadInts(targetv, b * t);
        }
    }

    private void closeTokens() {
        if (ids != null) {
            ids.close();
            ids = null;
        }
        if (targets != null) {
            targets.close();
            targets = null;
        }
    }

    private Tensor f32(int... shape) {
        Tensor x = be.zeros(DType.F32, shape);
        owned.add(x);
        return x;
    }

    @Override
    public void close() {
        closeTokens();
        for (Tensor x : owned) {
            x.close();
        }
        owned.clear();
    }
}
