package ai.lorakit.cli;

import ai.lorakit.gpu.BackendRegistry;
import picocli.CommandLine;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * {@code lorakit --version}: the version and git commit embedded at build time (models/pom.xml writes
 * {@value #RESOURCE} in process-resources from the project version and {@code git describe --always --dirty}),
 * then the backends this machine can run.
 */
final class BuildInfo implements CommandLine.IVersionProvider {

    static final String RESOURCE = "ai/lorakit/cli/build.properties";

    /** version and commit as built ("unknown" when the build could not tell, e.g. built outside a git checkout). */
    record Info(String version, String commit) {
    }

    static Info read() {
        Properties p = new Properties();
        try (InputStream in = BuildInfo.class.getClassLoader().getResourceAsStream(RESOURCE)) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + RESOURCE + ": " + e.getMessage(), e);
        }
        return new Info(p.getProperty("version", "unknown").strip(), p.getProperty("commit", "unknown").strip());
    }

    @Override
    public String[] getVersion() {
        Info i = read();
        List<String> available = new ArrayList<>();
        List<String> unavailable = new ArrayList<>();
        for (BackendRegistry.Status s : BackendRegistry.list()) {
            (s.available() ? available : unavailable).add(s.name());
        }
        return new String[] {
            "lorakit " + i.version(),
            "commit: " + i.commit(),
            "backends: " + String.join(", ", available) + (unavailable.isEmpty() ? ""
                    : " (unavailable: " + String.join(", ", unavailable) + "; 'lorakit info' says why)"),
            "java: " + System.getProperty("java.vm.name") + " " + Runtime.version()
                    + ", max heap " + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB"};
    }
}
