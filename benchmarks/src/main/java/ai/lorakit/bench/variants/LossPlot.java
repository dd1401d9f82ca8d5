package ai.lorakit.bench.variants;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The variants table's PNG: validation loss (the curve evaluation set) against optimizer step, one line per method
 * at its chosen lr (the mean over seeds at each evaluation step), drawn headless with XChart.
 */
final class LossPlot {

    /** One colour per method, stable across runs (colour-blind friendly Tableau-10 order). */
    private static final Color[] COLOURS = {new Color(0x4E79A7), new Color(0xF28E2B), new Color(0xE15759),
        new Color(0x76B7B2), new Color(0x59A14F), new Color(0xEDC948), new Color(0xB07AA1), new Color(0xFF9DA7),
        new Color(0x9C755F), new Color(0xBAB0AC)};

    private LossPlot() {
    }

    /** {@code runs}: the runs to draw (the chosen lr's); {@code data}: e.g. "Brown fiction", for the title. */
    static void write(Path png, List<RunRecord> runs, VariantsTable.Options o, String data) throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(1100).height(650)
                .title("Validation loss on " + data + " at each method's chosen lr (" + o.steps() + " steps, batch "
                        + o.batch() + " x " + o.seqLen() + ", " + o.seeds().size() + " seed"
                        + (o.seeds().size() > 1 ? "s, mean" : "") + ")")
                .xAxisTitle("optimizer step").yAxisTitle("validation loss (nats/token, first " + o.evalBatches()
                        + " validation batches)").build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNE);
        chart.getStyler().setMarkerSize(5);
        chart.getStyler().setPlotGridLinesColor(new Color(0xE0E0E0));
        int i = 0;
        for (Map.Entry<String, double[][]> e : meanCurves(runs).entrySet()) {
            double[][] c = e.getValue();
            XYSeries s = chart.addSeries(e.getKey() + " " + String.format(java.util.Locale.ROOT, "%.0e",
                    runs.stream().filter(r -> r.method().equals(e.getKey())).findFirst().orElseThrow().lr()), c[0], c[1]);
            s.setMarker(SeriesMarkers.CIRCLE);
            s.setLineColor(COLOURS[i % COLOURS.length]);
            s.setMarkerColor(COLOURS[i % COLOURS.length]);
            s.setLineStyle(new BasicStroke(e.getKey().equals("lora") ? 3f : 1.8f));
            i++;
        }
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    /** method -> {steps[], mean loss[]} over the seeds (steps where every seed evaluated). */
    static Map<String, double[][]> meanCurves(List<RunRecord> runs) {
        Map<String, List<RunRecord>> by = new LinkedHashMap<>();
        for (RunRecord r : runs) {
            by.computeIfAbsent(r.method(), k -> new ArrayList<>()).add(r);
        }
        Map<String, double[][]> out = new LinkedHashMap<>();
        by.forEach((m, rs) -> {
            int n = rs.stream().mapToInt(r -> r.valCurve().size()).min().orElse(0);
            double[] x = new double[n];
            double[] y = new double[n];
            for (int k = 0; k < n; k++) {
                x[k] = rs.getFirst().valCurve().get(k)[0];
                for (RunRecord r : rs) {
                    y[k] += r.valCurve().get(k)[1] / rs.size();
                }
            }
            out.put(m, new double[][]{x, y});
        });
        return out;
    }
}
