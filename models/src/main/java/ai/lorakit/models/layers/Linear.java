package ai.lorakit.models.layers;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * y = x W^T + b (PyTorch nn.Linear, W [out,in]) or y = x W + b (GPT-2's Conv1D, W [in,out]); b [out] optional.
 * Three ways to train, combinable:
 * <ul>
 *   <li>frozen: forward y, backward only dx;</li>
 *   <li>adapted: an attached {@link AdaptedLinear} computes y and dx and its own gradients;</li>
 *   <li>trainable (full fine-tuning): also dW += and db += when W / b are {@link Parameter#trainable()}.</li>
 * </ul>
 * Stateless apart from the adapter (which keeps its own cache): the backward takes the forward's input.
 * An adapter writes into the caller's buffers.
 */
public final class Linear implements AutoCloseable {

    /** How W is stored. */
    public enum Layout {
        /** [out,in], nn.Linear. */
        OUT_IN,
        /** [in,out], HF's Conv1D (PEFT's fan_in_fan_out). */
        IN_OUT
    }

    private final String name;
    private final Parameter weight;
    private final Parameter bias;
    private final Layout layout;
    private final int in;
    private final int out;
    private final Backend be;
    private AdaptedLinear adapter;

    /**
     * @param name   full module name (e.g. transformer.h.0.attn.c_attn), the adapter's name
     * @param weight W in {@code layout}
     * @param bias   b [out], or null
     */
    public Linear(String name, Parameter weight, Parameter bias, Layout layout) {
        Tensor w = weight.value();
        if (w.rank() != 2) {
            throw new IllegalArgumentException(name + ": weight " + w + " must be 2-d");
        }
        this.name = name;
        this.weight = weight;
        this.bias = bias;
        this.layout = layout;
        this.in = layout == Layout.IN_OUT ? w.dim(0) : w.dim(1);
        this.out = layout == Layout.IN_OUT ? w.dim(1) : w.dim(0);
        if (bias != null && (bias.value().rank() != 1 || bias.value().dim(0) != out)) {
            throw new IllegalArgumentException(name + ": bias " + bias.value() + " must be [" + out + "]");
        }
        this.be = w.backend();
    }

    public String name() {
        return name;
    }

    public Parameter weight() {
        return weight;
    }

    /** b, or null. */
    public Parameter bias() {
        return bias;
    }

    public Layout layout() {
        return layout;
    }

    public int in() {
        return in;
    }

    public int out() {
        return out;
    }

    /** The attached adapter, or null. */
    public AdaptedLinear adapter() {
        return adapter;
    }

    /** Attaches an adapter made for this layer's W (and b); detach first to replace one. */
    public void attach(AdaptedLinear a) {
        if (adapter != null) {
            throw new IllegalStateException(name + " already has an adapter");
        }
        if (!a.name().equals(name)) {
            throw new IllegalArgumentException("adapter " + a.name() + " is not for layer " + name);
        }
        adapter = a;
    }

    /** Closes and removes the adapter (merged weights stay in W); no-op without one. */
    public void detach() {
        if (adapter != null) {
            adapter.close();
            adapter = null;
        }
    }

    /** y (written) = the layer's output; x [N,in] (any leading dims), y [N,out]. */
    public void forward(Tensor x, Tensor y) {
        if (adapter != null) {
            adapter.forward(x, y);
            return;
        }
        be.matmul(x, false, weight.value(), layout == Layout.OUT_IN, y, 1f, 0f);   // x W^T or x W: [N,out]
        if (bias != null) {
            be.addRowVector(y, bias.value(), y);
        }
    }

    /**
     * dx (written) = dL/dx for dy [N,out]; x is the forward's input [N,in], unchanged since. Accumulates into W's
     * and b's gradients when trainable, and into the adapter's (which consumes its cache).
     */
    public void backward(Tensor x, Tensor dy, Tensor dx) {
        boolean outIn = layout == Layout.OUT_IN;
        if (adapter != null) {
            adapter.backward(dy, dx);
        } else {
            be.matmul(dy, false, weight.value(), !outIn, dx, 1f, 0f);   // dy W or dy W^T: [N,in]
        }
        if (weight.trainable()) {
            if (outIn) {
                be.matmul(dy, true, x, false, weight.gradForAccumulation(), 1f, 1f);   // dW += dy^T x [out,in]
            } else {
                be.matmul(x, true, dy, false, weight.gradForAccumulation(), 1f, 1f);   // dW += x^T dy [in,out]
            }
        }
        if (bias != null && bias.trainable()) {
            be.sumRows(dy, 1f, bias.gradForAccumulation());                         // db += sum_rows dy
        }
    }

    /** Closes the adapter, if any; W and b belong to the model. */
    @Override
    public void close() {
        detach();
    }

    @Override
    public String toString() {
        return "Linear(" + name + ", " + in + " -> " + out + ", " + layout + (adapter != null ? ", adapted" : "") + ")";
    }
}
