package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

/**
 * Token embedding, plus a learned position embedding when the family has one (GPT-2):
 * out[b,t] = wte[ids[b,t]] (+ wpe[t]). wte [V,C], wpe [P,C] or null (positions come from RoPE instead; needs the
 * Backend's embedding ops to accept a null wpe). Cache: ids and out [B,T,C]. The backward op produces both tables'
 * gradients: a frozen table's go to a sink of its shape (allocated on first need, owned by this layer).
 */
public final class Embedding implements AutoCloseable {

    private final Parameter wte;
    private final Parameter wpe;
    private final Backend be;
    private Tensor wteSink;
    private Tensor wpeSink;

    private static final class Cache {
        Tensor ids;
        final Tensor out;

        Cache(Buffers buf, int c) {
            out = buf.act(buf.b, buf.t, c);
        }
    }

    /** wte [V,C]; wpe [P,C] or null. */
    public Embedding(Parameter wte, Parameter wpe) {
        this.wte = wte;
        this.wpe = wpe;
        this.be = wte.value().backend();
    }

    public Parameter tokens() {
        return wte;
    }

    /** wpe, or null. */
    public Parameter positions() {
        return wpe;
    }

    /** out [B,T,C] (cached) for ids [B,T] (I32). */
    public Tensor forward(Buffers buf, Tensor ids) {
        Cache k = buf.cache(this, b -> new Cache(b, wte.value().dim(1)));
        k.ids = ids;
        be.embeddingForward(ids, wte.value(), wpe == null ? null : wpe.value(), k.out);
        return k.out;
    }

    /** Accumulates dout [B,T,C] into the trainable tables' gradients (nothing to do when both are frozen). */
    public void backward(Buffers buf, Tensor dout) {
        boolean posTrainable = wpe != null && wpe.trainable();
        if (!wte.trainable() && !posTrainable) {
            return;
        }
        Cache k = buf.cacheOf(this);
        Tensor dwte = wte.trainable() ? wte.gradForAccumulation() : sink(true);
        Tensor dwpe = wpe == null ? null : posTrainable ? wpe.gradForAccumulation() : sink(false);
        be.embeddingBackward(dout, k.ids, dwte, dwpe);
    }

    private Tensor sink(boolean tokens) {
        if (tokens) {
            if (wteSink == null) {
                wteSink = be.zeros(DType.F32, wte.value().shape());
            }
            return wteSink;
        }
        if (wpeSink == null) {
            wpeSink = be.zeros(DType.F32, wpe.value().shape());
        }
        return wpeSink;
    }

    /** Closes the sinks (the tables belong to the model). */
    @Override
    public void close() {
        for (Tensor t : new Tensor[] {wteSink, wpeSink}) {
            if (t != null) {
                t.close();
            }
        }
        wteSink = null;
        wpeSink = null;
    }
}
