package ai.lorakit.gpu;

import java.util.Set;

/**
 * Kernels loaded onto one device from {@link KernelSources}: an OpenCL program built from the portable
 * sources, or (CUDA) a module loaded from the fatbin. Lookups are by entry-point name and cached; closing the
 * module releases its programs and kernels (the device does so on close as well).
 */
public interface KernelModule extends AutoCloseable {

    /** The kernel named {@code name}; throws {@link GpuException} naming the known kernels if there is none. */
    Kernel kernel(String name);

    /** Every entry point the module can provide. */
    Set<String> kernelNames();

    @Override
    void close();
}
