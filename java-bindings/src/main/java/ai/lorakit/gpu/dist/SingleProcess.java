package ai.lorakit.gpu.dist;

/** lorakit alone: rank 0 of 1; every collective is the identity and needs no MPI library. */
public final class SingleProcess implements ProcessGroup {

    /** The one instance. */
    public static final SingleProcess INSTANCE = new SingleProcess();

    private SingleProcess() {
    }

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public int size() {
        return 1;
    }

    @Override
    public void allReduceSum(float[] v, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, v.length);
    }

    @Override
    public void allReduceSum(double[] v) {
    }

    @Override
    public void broadcast(byte[] b, int root) {
        if (root != 0) {
            throw new IllegalArgumentException("broadcast root " + root + " is not a rank of a single process");
        }
    }

    @Override
    public void barrier() {
    }

    @Override
    public void abort(int code) {
    }

    @Override
    public String describe() {
        return "single process";
    }

    @Override
    public void close() {
    }
}
