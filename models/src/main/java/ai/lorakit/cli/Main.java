package ai.lorakit.cli;

import ai.lorakit.adapters.NonFiniteMergeException;
import ai.lorakit.adapters.io.AdapterFormatException;
import ai.lorakit.adapters.io.SafetensorsException;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.dist.DistributedException;
import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.train.TrainingDivergedException;
import com.fasterxml.jackson.core.JsonProcessingException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * The {@code lorakit} command (picocli): train, eval, generate, merge, export-peft, import-peft, info.
 *
 * <p>Exit codes: 0 success; 2 a usage error (unknown command or option, bad value, missing file, impossible
 * setting, a corrupt or non-finite checkpoint or adapter), always ONE line on stderr, never a stack trace; 1 a
 * failure while running (training diverged, an I/O or backend error, the Java heap or the device running out of
 * memory), also one line. Only a lorakit bug says "internal error". {@code --debug} (anywhere on the line) adds the stack trace.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** The top-level command: only dispatches. */
    @Command(name = "lorakit", mixinStandardHelpOptions = true, versionProvider = BuildInfo.class,
            description = "Fine-tune GPT-2-family models with the LoRA family of adapters.",
            footer = {"", "Exit codes: 0 ok, 1 failure while running, 2 usage error.",
                "Run 'lorakit <command> --help' for a command's options."})
    static final class Top implements Callable<Integer> {
        private final Cli cli;

        Top(Cli cli) {
            this.cli = cli;
        }

        @Override
        public Integer call() {
            new CommandLine(this).usage(cli.out);
            return 2;
        }
    }

    /** Runs the command; returns the exit code (testable without exiting the JVM). */
    static int run(String[] args, PrintStream out, PrintStream err) {
        Cli cli = new Cli(out, err);
        boolean debug = Arrays.asList(args).contains("--debug");
        if (args.length > 0) {
            cli.subcommandArgs = List.of(Arrays.copyOfRange(args, 1, args.length));
        }
        CommandLine cl = commandLine(cli);
        cl.setParameterExceptionHandler((ex, a) -> {
            CommandLine c = ex.getCommandLine();
            if (c == cl && ex instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()
                    && !u.getUnmatched().getFirst().startsWith("-")) {
                err.println("lorakit: unknown command '" + u.getUnmatched().getFirst() + "'; try 'lorakit --help'");
            } else {
                err.println(prefix(c) + oneLine(ex.getMessage()) + "; try '" + c.getCommandSpec().qualifiedName()
                        + " --help'");
            }
            if (debug) {
                ex.printStackTrace(err);
            }
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            int code = exitCode(ex);
            err.println(prefix(c) + describe(ex));
            if (debug) {
                ex.printStackTrace(err);
            }
            return code;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // picocli hands only Exceptions to the handler above; the Java heap running out is the job's size
            err.println("lorakit: out of Java heap memory (max heap " + Runtime.getRuntime().maxMemory() / (1 << 20)
                    + " MiB): use a smaller --batch or --seq-len, or give the JVM more with LORAKIT_HEAP=<size>,"
                    + " e.g. LORAKIT_HEAP=8g ./lorakit ...");
            if (debug) {
                e.printStackTrace(err);
            }
            return 1;
        }
    }

    static CommandLine commandLine(Cli cli) {
        CommandLine cl = new CommandLine(new Top(cli));
        cl.addSubcommand("train", new TrainCommand(cli));
        cl.addSubcommand("eval", new EvalCommand(cli));
        cl.addSubcommand("generate", new GenerateCommand(cli));
        cl.addSubcommand("merge", new MergeCommand(cli));
        cl.addSubcommand("export-peft", new ExportPeftCommand(cli));
        cl.addSubcommand("import-peft", new ImportPeftCommand(cli));
        cl.addSubcommand("info", new InfoCommand(cli));
        cl.addSubcommand("tokenize", new TokenizeCommand(cli));
        cl.setOut(new PrintWriter(cli.out, true));
        cl.setErr(new PrintWriter(cli.err, true));
        return cl;
    }

    private static String prefix(CommandLine c) {
        return c.getCommandSpec().qualifiedName() + ": ";
    }

    /** 2 for what the user can fix on the command line or in their files, 1 for failures while running. */
    static int exitCode(Throwable ex) {
        return switch (ex) {
            case UsageException u -> 2;
            case CommandLine.ParameterException p -> 2;
            case IllegalArgumentException i -> 2;
            case NoSuchFileException n -> 2;
            case FileNotFoundException f -> 2;
            case AccessDeniedException a -> 2;
            case AdapterFormatException a -> 2;
            case CheckpointFormatException c -> 2;
            case SafetensorsException s -> 2;
            case JsonProcessingException j -> 2;
            case NonFiniteMergeException m -> 2;
            case TrainingDivergedException d -> 1;
            default -> 1;
        };
    }

    static String describe(Throwable ex) {
        return switch (ex) {
            case NoSuchFileException n -> "no such file: " + n.getFile() + (n.getReason() == null ? "" : " (" + n.getReason() + ")");
            case AccessDeniedException a -> "permission denied: " + a.getFile();
            case UsageException u -> oneLine(u.getMessage());
            case IllegalArgumentException i -> oneLine(i.getMessage());
            case TrainingDivergedException d -> oneLine(d.getMessage());
            case DistributedException d -> oneLine(d.getMessage());
            case IOException io -> oneLine(io.getMessage());
            case UncheckedIOException u -> oneLine(u.getMessage());
            case NonFiniteMergeException m -> oneLine(m.getMessage());
            case ShapeException s -> internal(s);
            case GpuException g -> "backend error: " + oneLine(g.getMessage());
            default -> internal(ex);
        };
    }

    /** A lorakit bug, not the user's doing: says so and how to get the stack trace for a report. */
    private static String internal(Throwable ex) {
        return "internal error: " + ex.getClass().getSimpleName() + ": " + oneLine(String.valueOf(ex.getMessage()))
                + " (run with --debug for the stack trace)";
    }

    /** Multi-line messages (e.g. a list of adapter problems) folded into one line. */
    static String oneLine(String s) {
        return s == null ? "" : s.strip().replaceAll("\\s*\\R\\s*", "; ");
    }
}
