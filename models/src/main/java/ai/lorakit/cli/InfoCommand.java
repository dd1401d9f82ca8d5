package ai.lorakit.cli;

import ai.lorakit.gpu.BackendRegistry;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

/** {@code lorakit info}: every backend in auto order, available or why not; and whether the default model is built in. */
@Command(name = "info", description = "List the backends (cuda-ffm, cuda-jcuda, opencl, cpu) and why any cannot load.",
        mixinStandardHelpOptions = true)
final class InfoCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    InfoCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() {
        cli.out.println("lorakit backends (auto order):");
        for (BackendRegistry.Status s : BackendRegistry.list()) {
            cli.out.println("  " + s);
        }
        cli.out.println("embedded default model: " + (ModelSource.hasDefault() ? "present" : "not in this build"));
        return 0;
    }
}
