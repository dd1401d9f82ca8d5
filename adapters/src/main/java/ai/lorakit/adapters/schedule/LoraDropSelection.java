package ai.lorakit.adapters.schedule;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA-drop's selection (VARIANTS.md section 8, step 2), a value that can be logged and saved as JSON: the
 * ranking units ({@link LoraDropOptions.Grouping}) sorted by importance, descending, with g = I / Σ I and the
 * cumulative share; a unit is kept (its modules keep individual adapters) while the cumulative share BEFORE it is
 * below T, i.e. the kept units are the shortest prefix whose cumulative share reaches T. Every other module is tied
 * to the one shared adapter of its shape ({@link LoraDrop#apply}).
 *
 * @param options the options used
 * @param groups  the units in ranking order (importance descending; ties keep the modules' order)
 */
public record LoraDropSelection(LoraDropOptions options, List<Group> groups) {

    /** File name used next to an exported adapter. */
    public static final String FILE = "lora_drop_selection.json";

    private static final JsonMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    /**
     * One ranking unit.
     *
     * @param name            module name (per module) or block name (per block)
     * @param modules         the adapted modules in it
     * @param importance      I = Σ over its modules of Σ_x ‖ΔW x‖²
     * @param share           g = I / Σ_all I
     * @param cumulativeShare Σ of g over this unit and every unit ranked before it
     * @param kept            whether its modules keep individual adapters
     */
    public record Group(String name, List<String> modules, double importance, double share, double cumulativeShare,
                        boolean kept) {
        public Group {
            modules = List.copyOf(modules);
        }
    }

    public LoraDropSelection {
        if (options == null || groups == null || groups.isEmpty()) {
            throw new IllegalArgumentException("LoRA-drop selection needs options and at least one group, got "
                    + options + ", " + groups);
        }
        groups = List.copyOf(groups);
    }

    /**
     * Ranks and selects from measured importances ({@link ImportanceMeter#importance()}).
     *
     * @throws IllegalArgumentException no modules, a negative or non-finite importance, or a total of 0 (nothing
     *                                  was measured, or every B is still 0: train stage 1 first)
     */
    public static LoraDropSelection select(Map<String, Double> importance, LoraDropOptions options) {
        if (importance == null || importance.isEmpty() || options == null) {
            throw new IllegalArgumentException("LoRA-drop selection needs importances and options, got " + importance
                    + ", " + options);
        }
        Map<String, List<String>> members = new LinkedHashMap<>();
        Map<String, Double> groupI = new LinkedHashMap<>();
        double total = 0;
        for (Map.Entry<String, Double> e : importance.entrySet()) {
            Double v = e.getValue();
            if (v == null || !Double.isFinite(v) || v < 0) {
                throw new IllegalArgumentException("LoRA-drop importance of " + e.getKey() + " must be finite and >= 0,"
                        + " got " + v);
            }
            String g = options.groupOf(e.getKey());
            members.computeIfAbsent(g, k -> new ArrayList<>()).add(e.getKey());
            groupI.merge(g, v, Double::sum);
            total += v;
        }
        if (!(total > 0)) {
            throw new IllegalArgumentException("LoRA-drop: the total importance is " + total + " over "
                    + importance.size() + " modules; measure after stage-1 training (ΔW = 0 while every B is 0)");
        }
        List<String> order = new ArrayList<>(members.keySet());
        order.sort(Comparator.comparingDouble((String g) -> groupI.get(g)).reversed());   // stable: ties keep order
        List<Group> out = new ArrayList<>();
        double cum = 0;
        for (String g : order) {
            double gi = groupI.get(g);
            boolean kept = cum / total < options.threshold();
            cum += gi;
            out.add(new Group(g, members.get(g), gi, gi / total, cum / total, kept));
        }
        return new LoraDropSelection(options, out);
    }

    /** Modules that keep individual adapters, in ranking order. */
    public Set<String> keptModules() {
        return modules(true);
    }

    /** Modules tied to a shared adapter, in ranking order. */
    public Set<String> droppedModules() {
        return modules(false);
    }

    /** The cumulative share reached by the kept units (>= T). */
    public double keptShare() {
        double s = 0;
        for (Group g : groups) {
            if (g.kept()) {
                s = g.cumulativeShare();
            }
        }
        return s;
    }

    private Set<String> modules(boolean kept) {
        Set<String> out = new LinkedHashSet<>();
        for (Group g : groups) {
            if (g.kept() == kept) {
                out.addAll(g.modules());
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- JSON

    /** The selection as pretty-printed JSON (options, then the groups in ranking order). */
    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("method", "lora-drop");
        ObjectNode o = root.putObject("options");
        o.put("alpha", options.alpha());
        o.put("threshold", options.threshold());
        o.put("grouping", options.grouping().name());
        o.put("stage2", options.stage2().name());
        root.put("kept_share", keptShare());
        root.put("kept_modules", keptModules().size());
        root.put("dropped_modules", droppedModules().size());
        ArrayNode gs = root.putArray("groups");
        for (Group g : groups) {
            ObjectNode n = gs.addObject();
            n.put("name", g.name());
            ArrayNode ms = n.putArray("modules");
            g.modules().forEach(ms::add);
            n.put("importance", g.importance());
            n.put("share", g.share());
            n.put("cumulative_share", g.cumulativeShare());
            n.put("kept", g.kept());
        }
        try {
            return JSON.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("LoRA-drop selection: JSON encoding failed", e);
        }
    }

    /**
     * Parses {@link #toJson()}'s output.
     *
     * @throws IllegalArgumentException invalid JSON or a missing/invalid field
     */
    public static LoraDropSelection fromJson(String json) {
        try {
            JsonNode root = JSON.readTree(json);
            JsonNode o = need(root, "options");
            LoraDropOptions opts = new LoraDropOptions(need(o, "alpha").asDouble(), need(o, "threshold").asDouble(),
                    LoraDropOptions.Grouping.valueOf(need(o, "grouping").asText()),
                    LoraDropOptions.Stage2.valueOf(need(o, "stage2").asText()));
            List<Group> groups = new ArrayList<>();
            for (JsonNode n : need(root, "groups")) {
                List<String> ms = new ArrayList<>();
                need(n, "modules").forEach(m -> ms.add(m.asText()));
                groups.add(new Group(need(n, "name").asText(), ms, need(n, "importance").asDouble(),
                        need(n, "share").asDouble(), need(n, "cumulative_share").asDouble(),
                        need(n, "kept").asBoolean()));
            }
            return new LoraDropSelection(opts, groups);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("LoRA-drop selection: invalid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Writes {@link #toJson()} to {@code file}. */
    public void save(Path file) throws IOException {
        Files.writeString(file, toJson() + "\n", StandardCharsets.UTF_8);
    }

    /** Reads a file written by {@link #save}. */
    public static LoraDropSelection load(Path file) throws IOException {
        return fromJson(Files.readString(file, StandardCharsets.UTF_8));
    }

    private static JsonNode need(JsonNode n, String field) {
        JsonNode v = n == null ? null : n.get(field);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException("LoRA-drop selection JSON: missing field \"" + field + "\"");
        }
        return v;
    }
}
