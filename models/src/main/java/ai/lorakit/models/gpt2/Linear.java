package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * One of GPT-2's Conv1D layers, y = x W + b with W [in,out] (stored fan_in x fan_out, HF's Conv1D) and b [out],
 * hiding the three ways it trains:
 * <ul>
 *   <li>frozen: forward y = x W + b, backward only dx = dy W^T;</li>
 *   <li>adapted: an {@link AdaptedLinear} (fanInFanOut = true) computes y and dx and the adapter's gradients;</li>
 *   <li>trainable (full fine-tuning): additionally dW += x^T dy, db += sum_rows dy.</li>
 * </ul>
 * Trainable and adapted combine (an adapter on a trainable W trains both). Whether W and b get gradients is read
 * from their {@link Parameter#trainable()} at each backward; a frozen parameter's gradient is never computed.
 *
 * <p>The adapter returns new tensors (its API); they are copied into the model's preallocated activation buffers
 * and closed, so the model's buffers stay the same across steps.
 */
final class Linear implements AutoCloseable {
    final String name;
    /** W [in,out]. */
    final Parameter weight;
    /** b [out]. */
    final Parameter bias;
    final int in;
    final int out;
    private final Backend be;
    private AdaptedLinear adapter;

    Linear(Backend be, String name, Parameter weight, Parameter bias) {
        this.be = be;
        this.name = name;
        this.weight = weight;
        this.bias = bias;
        this.in = weight.value().dim(0);
        this.out = weight.value().dim(1);
    }

    AdaptedLinear adapter() {
        return adapter;
    }

    void setAdapter(AdaptedLinear a) {
        this.adapter = a;
    }

    /** y (written) = the layer's output for x; x [N,in] (any leading dims), y [N,out]. */
    void forward(Tensor x, Tensor y) {
        if (adapter != null) {
            try (Tensor t = adapter.forward(x)) {
                be.copy(t, y);
            }
            return;
        }
        be.matmul(x, false, weight.value(), false, y, 1f, 0f);   // x W: [N,in] x [in,out]
        be.addRowVector(y, bias.value(), y);
    }

    /**
     * dx (written) = dL/dx for dy = dL/dy [N,out]; x is the forward's input [N,in] (unchanged since). Accumulates
     * (+=) into W's and b's gradients when they are trainable, and into the adapter's (it consumes its cache).
     */
    void backward(Tensor x, Tensor dy, Tensor dx) {
        if (adapter != null) {
            try (Tensor t = adapter.backward(dy)) {
                be.copy(t, dx);
            }
        } else {
            be.matmul(dy, false, weight.value(), true, dx, 1f, 0f);   // dy W^T: [N,out] x [out,in]
        }
        if (weight.trainable()) {
            be.matmul(x, true, dy, false, weight.gradForAccumulation(), 1f, 1f);   // x^T dy: [in,N] x [N,out]
        }
        if (bias.trainable()) {
            be.sumRows(dy, 1f, bias.gradForAccumulation());
        }
    }

    /** Closes the adapter (if any); W and b belong to the model. */
    @Override
    public void close() {
        if (adapter != null) {
            adapter.close();
            adapter = null;
        }
    }
}
