package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.Device;
import ai.lorakit.gpu.DeviceException;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.KernelModule;
import ai.lorakit.gpu.KernelSources;
import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;

import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import static org.lwjgl.opencl.CL10.CL_PROGRAM_BUILD_LOG;
import static org.lwjgl.opencl.CL10.clBuildProgram;
import static org.lwjgl.opencl.CL10.clCreateKernel;
import static org.lwjgl.opencl.CL10.clCreateProgramWithSource;
import static org.lwjgl.opencl.CL10.clGetProgramBuildInfo;
import static org.lwjgl.opencl.CL10.clReleaseKernel;
import static org.lwjgl.opencl.CL10.clReleaseProgram;

/**
 * The portable kernels on one OpenCL device: one cl_program per source file, built the first time one of its
 * kernels is asked for (so a process that uses three ops compiles three files), and one cl_kernel per name,
 * cached. A failed build throws {@link DeviceException} carrying the compiler's build log.
 */
final class ClModule implements KernelModule {
    private final OpenClDevice device;
    private final KernelSources sources;
    private final Map<String, Long> programs = new HashMap<>();     // file -> cl_program
    private final Map<String, ClKernel> kernels = new HashMap<>();  // name -> kernel
    private long buildNanos;
    private boolean released;

    ClModule(OpenClDevice device, KernelSources sources) {
        this.device = device;
        this.sources = sources;
    }

    OpenClDevice device() {
        return device;
    }

    boolean isReleased() {
        return released;
    }

    /** Total time spent in clBuildProgram so far. */
    long buildNanos() {
        return buildNanos;
    }

    @Override
    public Set<String> kernelNames() {
        return sources.kernelNames();
    }

    @Override
    public Kernel kernel(String name) {
        device.checkOpen("kernel(" + name + ")");
        if (released) {
            throw new GpuException("kernel(" + name + "): module was closed");
        }
        ClKernel k = kernels.get(name);
        if (k != null) {
            return k;
        }
        String file = sources.fileOf(name);
        if (file == null) {
            throw new GpuException("kernel(" + name + "): no portable kernel of that name; known: " + kernelNames());
        }
        long program = program(file);
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            long h = clCreateKernel(program, name, err);
            ClStatus.check(err.get(0), "clCreateKernel(" + name + ")", "from " + file);
            k = new ClKernel(this, name, h);
        }
        kernels.put(name, k);
        return k;
    }

    private long program(String file) {
        Long p = programs.get(file);
        if (p != null) {
            return p;
        }
        String text = sources.openClProgram(file);
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            long program = clCreateProgramWithSource(device.context(), text, err);
            ClStatus.check(err.get(0), "clCreateProgramWithSource(" + file + ")", "");
            long t0 = System.nanoTime();
            int rc = clBuildProgram(program, device.deviceHandle(), OpenClDevice.BUILD_OPTIONS, null, 0);
            buildNanos += System.nanoTime() - t0;
            if (rc != 0) {
                String log = buildLog(program);
                clReleaseProgram(program);
                throw new DeviceException("clBuildProgram(" + file + ")", rc, ClStatus.name(rc),
                        "on " + device.info().deviceName() + " with " + OpenClDevice.BUILD_OPTIONS + "; build log:\n" + log);
            }
            programs.put(file, program);
            return program;
        }
    }

    private String buildLog(long program) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer size = stack.mallocPointer(1);
            int rc = clGetProgramBuildInfo(program, device.deviceHandle(), CL_PROGRAM_BUILD_LOG, (ByteBuffer) null, size);
            if (rc != 0) {
                return "(no build log: clGetProgramBuildInfo " + ClStatus.name(rc) + ")";
            }
            ByteBuffer buf = org.lwjgl.system.MemoryUtil.memAlloc((int) Math.max(1, size.get(0)));
            try {
                rc = clGetProgramBuildInfo(program, device.deviceHandle(), CL_PROGRAM_BUILD_LOG, buf, null);
                return rc != 0 ? "(no build log: clGetProgramBuildInfo " + ClStatus.name(rc) + ")" : ClPlatforms.cString(buf);
            } finally {
                org.lwjgl.system.MemoryUtil.memFree(buf);
            }
        }
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
        for (ClKernel k : kernels.values()) {
            clReleaseKernel(k.handle);
        }
        kernels.clear();
        for (long p : programs.values()) {
            clReleaseProgram(p);
        }
        programs.clear();
    }

    /** A cl_kernel, owned by its module. */
    record ClKernel(ClModule module, String name, long handle) implements Kernel {
        @Override
        public Device device() {
            return module.device;
        }

        @Override
        public String toString() {
            return "kernel " + name + "@" + module.device.name();
        }
    }
}
