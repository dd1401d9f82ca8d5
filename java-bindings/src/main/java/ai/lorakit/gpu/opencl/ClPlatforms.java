package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.GpuException;
import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;

import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

import static org.lwjgl.opencl.CL10.CL_DEVICE_COMPILER_AVAILABLE;
import static org.lwjgl.opencl.CL10.CL_DEVICE_GLOBAL_MEM_SIZE;
import static org.lwjgl.opencl.CL10.CL_DEVICE_MAX_COMPUTE_UNITS;
import static org.lwjgl.opencl.CL10.CL_DEVICE_MAX_MEM_ALLOC_SIZE;
import static org.lwjgl.opencl.CL10.CL_DEVICE_MAX_WORK_GROUP_SIZE;
import static org.lwjgl.opencl.CL10.CL_DEVICE_NAME;
import static org.lwjgl.opencl.CL10.CL_DEVICE_NOT_FOUND;
import static org.lwjgl.opencl.CL10.CL_DEVICE_TYPE;
import static org.lwjgl.opencl.CL10.CL_DEVICE_TYPE_ACCELERATOR;
import static org.lwjgl.opencl.CL10.CL_DEVICE_TYPE_ALL;
import static org.lwjgl.opencl.CL10.CL_DEVICE_TYPE_CPU;
import static org.lwjgl.opencl.CL10.CL_DEVICE_TYPE_GPU;
import static org.lwjgl.opencl.CL10.CL_DEVICE_VERSION;
import static org.lwjgl.opencl.CL10.CL_PLATFORM_NAME;
import static org.lwjgl.opencl.CL10.CL_PLATFORM_VERSION;
import static org.lwjgl.opencl.CL10.clGetDeviceIDs;
import static org.lwjgl.opencl.CL10.clGetDeviceInfo;
import static org.lwjgl.opencl.CL10.clGetPlatformIDs;
import static org.lwjgl.opencl.CL10.clGetPlatformInfo;
import static org.lwjgl.opencl.CL11.CL_DEVICE_OPENCL_C_VERSION;

/** Enumerates OpenCL platforms and devices through LWJGL and picks one by a selector string. */
final class ClPlatforms {
    private ClPlatforms() {
    }

    /** A device with its native handles (kept inside this package). */
    record Found(OpenClDeviceInfo info, long platform, long device) {
    }

    /** Every device of every platform, in platform then device order. Throws GpuException if none is listed. */
    static List<Found> list() {
        List<Found> out = new ArrayList<>();
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer n = stack.mallocInt(1);
            int rc = clGetPlatformIDs(null, n);
            if (rc == -1001 || (rc == 0 && n.get(0) == 0)) {
                throw new GpuException("OpenCL: no platform installed (clGetPlatformIDs: " + ClStatus.name(rc)
                        + "; Debian: apt-get install pocl-opencl-icd for a CPU device)");
            }
            ClStatus.check(rc, "clGetPlatformIDs", "");
            PointerBuffer platforms = stack.mallocPointer(n.get(0));
            ClStatus.check(clGetPlatformIDs(platforms, (IntBuffer) null), "clGetPlatformIDs", "");
            for (int p = 0; p < platforms.capacity(); p++) {
                long platform = platforms.get(p);
                String pName = platformString(stack, platform, CL_PLATFORM_NAME);
                String pVersion = platformString(stack, platform, CL_PLATFORM_VERSION);
                IntBuffer nd = stack.mallocInt(1);
                rc = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, null, nd);
                if (rc == CL_DEVICE_NOT_FOUND) {
                    continue;
                }
                ClStatus.check(rc, "clGetDeviceIDs(" + pName + ")", "");
                PointerBuffer devices = stack.mallocPointer(nd.get(0));
                ClStatus.check(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, devices, (IntBuffer) null),
                        "clGetDeviceIDs(" + pName + ")", "");
                for (int d = 0; d < devices.capacity(); d++) {
                    long device = devices.get(d);
                    out.add(new Found(describe(stack, p, d, pName, pVersion, device), platform, device));
                }
            }
        }
        return out;
    }

    private static OpenClDeviceInfo describe(MemoryStack stack, int p, int d, String pName, String pVersion, long device) {
        String name = deviceString(stack, device, CL_DEVICE_NAME);
        String version = deviceString(stack, device, CL_DEVICE_VERSION);
        String clc = deviceString(stack, device, CL_DEVICE_OPENCL_C_VERSION);
        long type = deviceLong(stack, device, CL_DEVICE_TYPE);
        String typeName = (type & CL_DEVICE_TYPE_GPU) != 0 ? "GPU" : (type & CL_DEVICE_TYPE_CPU) != 0 ? "CPU"
                : (type & CL_DEVICE_TYPE_ACCELERATOR) != 0 ? "ACCELERATOR" : "OTHER";
        int cus = deviceInt(stack, device, CL_DEVICE_MAX_COMPUTE_UNITS);
        long mem = deviceLong(stack, device, CL_DEVICE_GLOBAL_MEM_SIZE);
        long maxAlloc = deviceLong(stack, device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
        PointerBuffer wg = stack.mallocPointer(1);
        ClStatus.check(clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, wg, null),
                "clGetDeviceInfo(CL_DEVICE_MAX_WORK_GROUP_SIZE)", name);
        boolean compiler = deviceInt(stack, device, CL_DEVICE_COMPILER_AVAILABLE) != 0;
        boolean usable = compiler && openClCAtLeast12(clc);
        return new OpenClDeviceInfo(p, d, pName, pVersion, name, typeName, version, clc, cus, mem, maxAlloc,
                (int) Math.min(Integer.MAX_VALUE, wg.get(0)), usable);
    }

    /** "OpenCL C 1.2 ..." or newer. */
    static boolean openClCAtLeast12(String clc) {
        String[] w = clc.trim().split("\\s+");
        if (w.length < 3) {
            return false;
        }
        String[] v = w[2].split("\\.");
        try {
            int major = Integer.parseInt(v[0]);
            int minor = v.length > 1 ? Integer.parseInt(v[1].replaceAll("\\D.*", "")) : 0;
            return major > 1 || (major == 1 && minor >= 2);
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /**
     * Picks a device: {@code null}, "" or "auto" = the first usable GPU, else the first usable accelerator, else
     * the first usable CPU; "N" = the N-th device overall; "P.D" or "P:D" = device D of platform P; anything
     * else = the first usable device whose "platform / device" name contains it (case-insensitive).
     */
    static Found select(String selector, List<Found> all) {
        String s = selector == null ? "" : selector.trim();
        List<Found> usable = all.stream().filter(f -> f.info().usable()).toList();
        Found pick = null;
        if (s.isEmpty() || s.equalsIgnoreCase("auto")) {
            pick = usable.stream().min(Comparator.comparingInt(f -> switch (f.info().type()) {
                case "GPU" -> 0;
                case "ACCELERATOR" -> 1;
                case "CPU" -> 2;
                default -> 3;
            })).orElse(null);
        } else if (s.matches("\\d+")) {
            int i = Integer.parseInt(s);
            pick = i < all.size() ? all.get(i) : null;
        } else if (s.matches("\\d+[.:]\\d+")) {
            String[] pd = s.split("[.:]");
            int p = Integer.parseInt(pd[0]), d = Integer.parseInt(pd[1]);
            pick = all.stream().filter(f -> f.info().platformIndex() == p && f.info().deviceIndex() == d)
                    .findFirst().orElse(null);
        } else {
            String needle = s.toLowerCase(Locale.ROOT);
            pick = usable.stream().filter(f -> (f.info().platformName() + " / " + f.info().deviceName())
                    .toLowerCase(Locale.ROOT).contains(needle)).findFirst().orElse(null);
        }
        if (pick == null) {
            throw new GpuException("OpenCL: no usable device matches '" + s + "'; devices: "
                    + all.stream().map(f -> f.info().toString()).toList());
        }
        if (!pick.info().usable()) {
            throw new GpuException("OpenCL: device " + pick.info() + " cannot run lorakit's kernels");
        }
        return pick;
    }

    private static String platformString(MemoryStack stack, long platform, int param) {
        try (MemoryStack s = stack.push()) {
            PointerBuffer size = s.mallocPointer(1);
            ClStatus.check(clGetPlatformInfo(platform, param, (ByteBuffer) null, size), "clGetPlatformInfo", "");
            ByteBuffer buf = s.malloc((int) size.get(0));
            ClStatus.check(clGetPlatformInfo(platform, param, buf, null), "clGetPlatformInfo", "");
            return cString(buf);
        }
    }

    private static String deviceString(MemoryStack stack, long device, int param) {
        try (MemoryStack s = stack.push()) {
            PointerBuffer size = s.mallocPointer(1);
            ClStatus.check(clGetDeviceInfo(device, param, (ByteBuffer) null, size), "clGetDeviceInfo", "");
            ByteBuffer buf = s.malloc((int) size.get(0));
            ClStatus.check(clGetDeviceInfo(device, param, buf, null), "clGetDeviceInfo", "");
            return cString(buf);
        }
    }

    private static long deviceLong(MemoryStack stack, long device, int param) {
        try (MemoryStack s = stack.push()) {
            LongBuffer v = s.mallocLong(1);
            ClStatus.check(clGetDeviceInfo(device, param, v, null), "clGetDeviceInfo", "");
            return v.get(0);
        }
    }

    private static int deviceInt(MemoryStack stack, long device, int param) {
        try (MemoryStack s = stack.push()) {
            IntBuffer v = s.mallocInt(1);
            ClStatus.check(clGetDeviceInfo(device, param, v, null), "clGetDeviceInfo", "");
            return v.get(0);
        }
    }

    /** A NUL-terminated string in a native buffer. */
    static String cString(ByteBuffer buf) {
        int n = 0;
        while (n < buf.limit() && buf.get(n) != 0) {
            n++;
        }
        byte[] b = new byte[n];
        buf.get(0, b);
        return new String(b, java.nio.charset.StandardCharsets.UTF_8).trim();
    }
}
