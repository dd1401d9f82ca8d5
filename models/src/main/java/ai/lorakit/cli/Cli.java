package ai.lorakit.cli;

import java.io.PrintStream;
import java.util.List;

/**
 * What every subcommand shares: the output streams (stdout for results, stderr for progress and problems) and
 * the raw arguments after the subcommand name (train stores them in its checkpoints for --resume).
 */
final class Cli {

    final PrintStream out;
    final PrintStream err;
    List<String> subcommandArgs = List.of();

    Cli(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** A warning line on stderr. */
    void warn(String command, String message) {
        err.println("lorakit " + command + ": warning: " + message);
    }

    static void positive(String option, long value) {
        if (value <= 0) {
            throw new UsageException(option + " must be > 0, got " + value);
        }
    }

    static void nonNegative(String option, double value) {
        if (!(value >= 0) || Double.isInfinite(value)) {
            throw new UsageException(option + " must be finite and >= 0, got " + value);
        }
    }

    static void positiveFinite(String option, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new UsageException(option + " must be finite and > 0, got " + value);
        }
    }
}
