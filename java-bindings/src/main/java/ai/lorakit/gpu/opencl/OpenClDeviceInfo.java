package ai.lorakit.gpu.opencl;

/**
 * One OpenCL device as the runtime describes it (for device selection and {@code lorakit info}).
 *
 * @param platformIndex   index of its platform in clGetPlatformIDs order
 * @param deviceIndex     index of the device within its platform
 * @param type            GPU, CPU, ACCELERATOR or OTHER
 * @param openClC         CL_DEVICE_OPENCL_C_VERSION, e.g. "OpenCL C 1.2 PoCL"
 * @param usable          whether lorakit can run on it (OpenCL C 1.2 or newer, a compiler available)
 */
public record OpenClDeviceInfo(int platformIndex, int deviceIndex, String platformName, String platformVersion,
                               String deviceName, String type, String deviceVersion, String openClC,
                               int computeUnits, long globalMemBytes, long maxAllocBytes, int maxWorkGroupSize,
                               boolean usable) {

    /** {@code P.D}, the selector that picks exactly this device. */
    public String id() {
        return platformIndex + "." + deviceIndex;
    }

    @Override
    public String toString() {
        return String.format("%s %-11s %s / %s (%s, %d CUs, %d MiB%s)", id(), type, platformName, deviceName,
                openClC, computeUnits, globalMemBytes >> 20, usable ? "" : ", unusable: needs OpenCL C 1.2 and a compiler");
    }
}
