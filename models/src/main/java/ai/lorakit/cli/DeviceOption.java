package ai.lorakit.cli;

import ai.lorakit.gpu.opencl.OpenClBackend;
import picocli.CommandLine.Option;

import java.io.IOException;

/**
 * The {@code --device} option (a picocli mixin of train and eval): which OpenCL device the {@code opencl}
 * backend opens. The selector is an index N as {@code lorakit info} lists it, {@code P.D} (platform P,
 * device D), or a substring of "platform / device name"; without the option the system property
 * {@value OpenClBackend#DEVICE_PROPERTY} applies, else auto (prefer a GPU, else a CPU such as PoCL).
 * The option sets that property only while the backend opens and restores it afterwards.
 */
final class DeviceOption {

    @Option(names = "--device", paramLabel = "<d>",
            description = "OpenCL device for --backend opencl (or auto): N (index in 'lorakit info'), P.D, or a name "
                    + "substring. Default: auto (a GPU if any, else a CPU device such as PoCL).")
    String device;

    /** Something that opens the backend (directly or inside a model load). */
    interface Opener<T> {
        T open() throws IOException;
    }

    /**
     * Runs {@code opener} with {@code --device} in effect for backend {@code backend}. Without {@code --device}
     * it just runs it. With it, the backend must be opencl or auto, and for auto the device must be usable
     * (otherwise auto would silently fall back to another backend).
     */
    <T> T open(String backend, Opener<T> opener) throws IOException {
        if (device == null) {
            return opener.open();
        }
        String sel = device.trim();
        if (sel.isEmpty()) {
            throw new UsageException("--device must not be empty (use auto, N, P.D or a name substring)");
        }
        if (!backend.equals("opencl") && !backend.equals("auto")) {
            throw new UsageException("--device selects an OpenCL device; it applies to --backend opencl or auto, not "
                    + backend);
        }
        String prev = System.getProperty(OpenClBackend.DEVICE_PROPERTY);
        System.setProperty(OpenClBackend.DEVICE_PROPERTY, sel);
        try {
            if (backend.equals("auto")) {
                String reason = OpenClBackend.unavailableReason();
                if (reason != null) {
                    throw new UsageException("--device " + sel + ": " + reason);
                }
            }
            return opener.open();
        } finally {
            if (prev == null) {
                System.clearProperty(OpenClBackend.DEVICE_PROPERTY);
            } else {
                System.setProperty(OpenClBackend.DEVICE_PROPERTY, prev);
            }
        }
    }
}
