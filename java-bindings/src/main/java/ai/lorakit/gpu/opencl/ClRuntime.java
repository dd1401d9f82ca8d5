package ai.lorakit.gpu.opencl;

import org.lwjgl.system.Configuration;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * LWJGL settings applied once, before any LWJGL OpenCL class initialises:
 * <ul>
 *   <li>the OpenCL library name: on Linux the ICD loader is {@code libOpenCL.so.1} (the unversioned
 *       {@code libOpenCL.so} exists only with the -dev package, and LWJGL would look for that);</li>
 *   <li>LWJGL's diagnostic stream: captured here instead of printed (library code never prints, STYLE.md
 *       12.9); {@link #takeDiagnostics()} adds the text to the "unavailable" reason.</li>
 * </ul>
 * Settings the user gave (system properties {@code org.lwjgl.opencl.libname}, {@code org.lwjgl.util.DebugStream})
 * are left alone.
 */
final class ClRuntime {
    private static final ByteArrayOutputStream CAPTURED = new ByteArrayOutputStream();

    static {
        if (Configuration.OPENCL_LIBRARY_NAME.get() == null
                && System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
            Configuration.OPENCL_LIBRARY_NAME.set("libOpenCL.so.1");
        }
        if (Configuration.DEBUG_STREAM.get() == null) {
            Configuration.DEBUG_STREAM.set(new PrintStream(CAPTURED, true, StandardCharsets.UTF_8));
        }
    }

    private ClRuntime() {
    }

    /** Applies the settings (idempotent; the work is done by the class initialiser). */
    static void configure() {
    }

    /** What LWJGL reported since the last call, on one line (empty if nothing). */
    static String takeDiagnostics() {
        synchronized (CAPTURED) {
            String s = CAPTURED.toString(StandardCharsets.UTF_8).replaceAll("\\s*\\R\\s*", " ").trim();
            CAPTURED.reset();
            return s;
        }
    }
}
