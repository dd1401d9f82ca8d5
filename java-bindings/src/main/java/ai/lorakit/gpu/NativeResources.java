package ai.lorakit.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

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

    /** Whether the jar carries the resource. */
    public static boolean present(String resource) {
        return NativeResources.class.getResource(resource) != null;
    }
}
