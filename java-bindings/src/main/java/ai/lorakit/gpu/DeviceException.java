package ai.lorakit.gpu;

/**
 * A native device call failed. The message names the call (and its subject, e.g. the kernel), the native
 * status by name and number, and the device, e.g.
 * {@code clEnqueueNDRangeKernel(gemm_fwd_kernel1) failed: CL_INVALID_WORK_GROUP_SIZE (-54) on PoCL cpu}.
 */
public class DeviceException extends GpuException {
    private final String call;
    private final int status;

    public DeviceException(String call, int status, String statusName, String detail) {
        super(call + " failed: " + statusName + " (" + status + ")" + (detail == null || detail.isEmpty() ? "" : " " + detail));
        this.call = call;
        this.status = status;
    }

    /** The native call with its subject, e.g. {@code clBuildProgram(gemm.kc)}. */
    public String call() {
        return call;
    }

    /** The native status code (an OpenCL {@code CL_*} or CUDA {@code CUresult} value). */
    public int status() {
        return status;
    }
}
