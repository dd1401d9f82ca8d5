package ai.lorakit.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The native libraries the build puts into the jar (liblorakit.so, liblorakit_mpi.so): copied to a temporary file
 * so that FFM's {@code SymbolLookup.libraryLookup} can load them.
 */
public final class NativeResources {

    private NativeResources() {
    }

    /**
     * Copies the classpath resource to a new temporary file (deleted on exit) and returns it.
     *
     * @throws GpuException the jar has no such resource ({@code missing} says why), or the copy failed
     */
    public static Path extract(String resource, String missing) {
        String name = resource.substring(resource.lastIndexOf('/') + 1);
        try (InputStream in = NativeResources.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new GpuException(name + " missing: the jar has no " + resource + " (" + missing + ")");
            }
            Path tmp = Files.createTempFile(name.replace(".so", "-"), ".so");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return tmp;
        } catch (IOException e) {
            throw new GpuException(name + ": extracting " + resource + " failed: " + e, e);
        }
    }

    /**
     * Why the system loader cannot load {@code file} (dlopen's dlerror text, e.g. "libmpi.so.40: cannot open shared
     * object file: No such file or directory"), which FFM's "Cannot open library" leaves out; null if it loads or
     * the loader cannot be asked.
     */
    public static String loaderError(Path file) {
        try (Arena a = Arena.ofConfined()) {
            Linker linker = Linker.nativeLinker();
            SymbolLookup libc = linker.defaultLookup();
            MethodHandle dlopen = linker.downcallHandle(libc.find("dlopen").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
            MethodHandle dlerror = linker.downcallHandle(libc.find("dlerror").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.ADDRESS));
            MemorySegment h = (MemorySegment) dlopen.invokeExact(a.allocateFrom(file.toString()), 1 /* RTLD_LAZY */);
            if (!h.equals(MemorySegment.NULL)) {
                return null;                         // loads (the handle stays open, as FFM's would)
            }
            MemorySegment msg = (MemorySegment) dlerror.invokeExact();
            return msg.equals(MemorySegment.NULL) ? null : msg.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return null;
        }
    }

    /** Whether the jar carries the resource. */
    public static boolean present(String resource) {
        return NativeResources.class.getResource(resource) != null;
    }
}
