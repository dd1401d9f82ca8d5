package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.KernelModule;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The fatbin loaded on one CUDA device (cuModuleLoadData): every portable kernel and every fast-tier kernel,
 * looked up by their {@code extern "C"} names with cuModuleGetFunction and cached.
 */
public final class CudaModule implements KernelModule {
    /** Entry-point names as they appear NUL-terminated in an uncompressed fatbin (STYLE.md 12.4 naming). */
    private static final Pattern KERNEL_NAME = Pattern.compile("([A-Za-z_][A-Za-z0-9_]*_kernel[0-9]+)\u0000");

    final CudaDevice device;
    final long module;
    private final Set<String> names;
    private final Map<String, CudaKernel> kernels = new HashMap<>();
    boolean released;

    CudaModule(CudaDevice device, long module, Set<String> names) {
        this.device = device;
        this.module = module;
        this.names = Collections.unmodifiableSet(new TreeSet<>(names));
    }

    /** Kernel names found in fatbin bytes (the build keeps them uncompressed, see cuda-kernels/build.sh). */
    public static Set<String> scanNames(byte[] fatbin) {
        Set<String> out = new TreeSet<>();
        Matcher m = KERNEL_NAME.matcher(new String(fatbin, StandardCharsets.ISO_8859_1));
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    @Override
    public Kernel kernel(String name) {
        device.checkOpen("cuModuleGetFunction(" + name + ")");
        if (released) {
            throw new GpuException("cuModuleGetFunction(" + name + "): module was closed");
        }
        CudaKernel k = kernels.get(name);
        if (k != null) {
            return k;
        }
        device.makeCurrent();
        long f = device.driver.moduleGetFunction(module, name);
        if (f == 0) {
            throw new GpuException("cuModuleGetFunction(" + name + "): the fatbin has no kernel of that name; known: "
                    + names);
        }
        k = new CudaKernel(this, name, f);
        kernels.put(name, k);
        return k;
    }

    @Override
    public Set<String> kernelNames() {
        return names;
    }

    /** The raw CUmodule. */
    public long handle() {
        return module;
    }

    @Override
    public void close() {
        if (!released && !device.isClosed()) {
            release();
            device.forget(this);
        }
    }

    void release() {
        if (released) {
            return;
        }
        released = true;
        kernels.clear();
        device.makeCurrent();
        device.driver.moduleUnload(module);
    }
}
