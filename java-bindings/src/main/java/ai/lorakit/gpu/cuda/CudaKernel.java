package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.Device;
import ai.lorakit.gpu.Kernel;

/**
 * One CUfunction of a {@link CudaModule}, with its {@link ParamBlock} and binding launcher, both built on the
 * first launch (when the parameter count is known) and reused by every later launch.
 */
public final class CudaKernel implements Kernel {
    final CudaModule module;
    final String name;
    final long function;
    ParamBlock params;              // built on first launch
    CudaDriver.Launcher launcher;   // bound to params

    CudaKernel(CudaModule module, String name, long function) {
        this.module = module;
        this.name = name;
        this.function = function;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public Device device() {
        return module.device;
    }

    /** The raw CUfunction. */
    public long function() {
        return function;
    }

    /** The kernel's parameter block (null before its first launch); tests check that it is reused. */
    public ParamBlock paramBlock() {
        return params;
    }

    @Override
    public String toString() {
        return "kernel " + name + "@" + module.device.name();
    }
}
