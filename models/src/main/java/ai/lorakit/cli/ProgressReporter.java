package ai.lorakit.cli;

import ai.lorakit.models.train.EvalResult;
import ai.lorakit.models.train.StepMetrics;
import ai.lorakit.models.train.TrainListener;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * Shows training progress: on a terminal (System.console() is a terminal) a progress bar on stderr with step,
 * loss, tokens/s and ETA; otherwise plain lines on stdout every logEvery steps, at evaluations and checkpoints.
 */
abstract sealed class ProgressReporter implements TrainListener, AutoCloseable
        permits ProgressReporter.Bar, ProgressReporter.Lines {

    /** The reporter for where output goes now. */
    static ProgressReporter create(PrintStream out, PrintStream err) {
        java.io.Console c = System.console();
        ProgressReporter r = c != null && c.isTerminal() ? new Bar(err) : new Lines(out);
        return r.printBeforeTo(out);
    }

    /** The validation before training, printed as soon as it is known (both modes). */
    private PrintStream beforeOut;

    ProgressReporter printBeforeTo(PrintStream out) {
        this.beforeOut = out;
        return this;
    }

    @Override
    public void evaluated(int step, EvalResult r) {
        if (step == 0 && beforeOut != null) {
            beforeOut.println("validation loss before: " + TrainCommand.fmt(r));
        }
    }

    @Override
    public void close() {
    }

    static String tokens(double perS) {
        return perS >= 10_000 ? String.format(Locale.ROOT, "%.1fk", perS / 1000) : String.format(Locale.ROOT, "%.0f", perS);
    }

    static String duration(double s) {
        long t = Math.round(s);
        return String.format(Locale.ROOT, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
    }

    /** A me.tongfei progress bar. */
    static final class Bar extends ProgressReporter {
        private final PrintStream err;
        private ProgressBar bar;
        private String val = "";

        Bar(PrintStream err) {
            this.err = err;
        }

        @Override
        public void started(int fromStep, int totalSteps, long tokensPerStep, double elapsedS) {
            close();                                   // a second stage (LoRA-drop) starts a new bar
            int width = 100;
            try {
                width = Integer.parseInt(System.getenv().getOrDefault("COLUMNS", "100"));
            } catch (NumberFormatException ignored) {
                // keep 100
            }
            bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(totalSteps)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250)
                    .setConsumer(new ConsoleProgressBarConsumer(err, width))
                    .startsFrom(fromStep, Duration.ofMillis((long) (elapsedS * 1000))).build();
        }

        @Override
        public void stepDone(StepMetrics m, boolean logged) {
            if (bar != null) {
                bar.stepTo(m.step());
                bar.setExtraMessage(String.format(Locale.ROOT, "loss %.4f | %s tok/s%s", m.loss(),
                        tokens(m.tokensPerS()), val));
            }
        }

        @Override
        public void evaluated(int step, EvalResult r) {
            super.evaluated(step, r);
            val = String.format(Locale.ROOT, " | val %.4f", r.loss());
        }

        @Override
        public void close() {
            if (bar != null) {
                bar.close();
                bar = null;
            }
        }
    }

    /** Plain log lines (not a terminal: CI, files, pipes). */
    static final class Lines extends ProgressReporter {
        private final PrintStream out;
        private int total;
        private int from;
        private double startElapsed;

        Lines(PrintStream out) {
            this.out = out;
        }

        @Override
        public void started(int fromStep, int totalSteps, long tokensPerStep, double elapsedS) {
            this.total = totalSteps;
            this.from = fromStep;
            this.startElapsed = elapsedS;
        }

        @Override
        public void stepDone(StepMetrics m, boolean logged) {
            if (!logged) {
                return;
            }
            double done = m.step() - from;
            double eta = done <= 0 ? 0 : (m.elapsedS() - startElapsed) / done * (total - m.step());
            out.println(String.format(Locale.ROOT, "step %d/%d  loss %.4f  lr %.2e  grad %.3f  %s tok/s  eta %s%s",
                    m.step(), total, m.loss(), m.lr(), m.gradNorm(), tokens(m.tokensPerS()), duration(eta),
                    m.valLoss() == null ? "" : String.format(Locale.ROOT, "  | validation loss %.4f  perplexity %.2f",
                            m.valLoss(), m.valPpl())));
        }

        @Override
        public void checkpointed(int step, Path dir) {
            out.println("step " + step + "/" + total + "  checkpoint " + dir);
        }
    }
}
