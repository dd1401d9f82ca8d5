package ai.lorakit.bench.variants;

import ai.lorakit.models.data.Document;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the learning-rate sweep's bookkeeping on synthetic runs (no training): the lr is chosen by the best MEAN
 * validation loss (not the best single seed, not the test loss, never a diverged or partially-run lr), the table row
 * reports the test loss there and flags a grid-edge choice, the JSON keeps NaN and missing metrics across a resume,
 * a resume with other settings is refused, the three document splits are disjoint and fixed by the seed, and the
 * job list covers every (method, lr, seed) once with AdaLoRA's schedules at its chosen lr; the recorded commit is
 * found from a linked git worktree too (its .git is a file); the closing note classes each verdict.
 */
class VariantsSweepTest {

    private static RunRecord run(String method, double lr, long seed, double val, double test, String schedule) {
        return new RunRecord(method, seed, lr, 150, 100, 200, 100, val, Math.exp(val), 1024, 8, 8192, 20, 300, 800, 0,
                List.of(new double[]{0, 1.8}, new double[]{150, val}), List.of(), "", test, 1024, schedule, null, null);
    }

    private static List<RunRecord> sweep() {
        List<RunRecord> rs = new ArrayList<>();
        // lora: 1e-3 has the better MEAN validation (1.71 vs 1.72); 3e-3 has the best single seed and the best test
        rs.add(run("lora", 1e-3, 42, 1.70, 1.60, ""));
        rs.add(run("lora", 1e-3, 43, 1.72, 1.62, ""));
        rs.add(run("lora", 3e-3, 42, 1.69, 1.50, ""));
        rs.add(run("lora", 3e-3, 43, 1.75, 1.50, ""));
        rs.add(run("lora", 1e-2, 42, Double.NaN, Double.NaN, ""));   // diverged
        rs.add(run("lora", 1e-2, 43, 1.60, 1.40, ""));
        // adalora: 3e-2 is best but only one seed ran (an interrupted sweep)
        rs.add(run("adalora", 1e-3, 42, 1.80, 1.70, ""));
        rs.add(run("adalora", 1e-3, 43, 1.80, 1.70, ""));
        rs.add(run("adalora", 1e-2, 42, 1.74, 1.64, ""));
        rs.add(run("adalora", 1e-2, 43, 1.76, 1.66, ""));
        rs.add(run("adalora", 3e-2, 42, 1.50, 1.40, ""));
        rs.add(run("adalora", 1e-2, 42, 1.00, 1.00, "tinit 0, tfinal 0, deltaT 1"));   // not part of the lr sweep
        return rs;
    }

    @Test
    void choosesTheBestMeanValidationLossAmongCompleteLrs() {
        Map<String, Double> chosen = VariantsReport.chosenLr(sweep());
        assertEquals(1e-3, chosen.get("lora"));
        assertEquals(1e-2, chosen.get("adalora"));
    }

    @Test
    void rowReportsTheTestLossAtTheChosenLrAndFlagsTheGridEdge() {
        Map<String, VariantsReport.Row> rows = VariantsReport.rows(sweep());
        VariantsReport.Row lora = rows.get("lora");
        assertEquals(1.61, lora.loss(), 1e-12);                 // test mean at 1e-3
        assertEquals(1.71, lora.val(), 1e-12);
        assertEquals(Math.sqrt(2e-4), lora.lossSd(), 1e-12);    // sd of {1.60, 1.62}
        assertTrue(lora.edge(), "1e-3 is the smallest lr of lora's grid");
        VariantsReport.Row ada = rows.get("adalora");
        assertEquals(1.65, ada.loss(), 1e-12);
        assertFalse(ada.edge(), "1e-2 lies inside adalora's grid 1e-3..3e-2");
        assertEquals(2, VariantsReport.chosenRuns(sweep()).stream().filter(r -> r.method().equals("lora")).count());
    }

    @Test
    void jsonKeepsNanAndMissingMetricsAndRefusesAResumeWithOtherSettings(@TempDir Path dir) throws Exception {
        Path json = dir.resolve("variants-brown.json");
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("data", "brown:fiction");
        config.put("steps", 150);
        config.put("batch", 8);
        VariantsReport.writeJson(json, "cmd", new LinkedHashMap<>(), "2026-01-01T00:00:00Z", config, sweep(), 12.5);
        VariantsReport.Saved saved = VariantsReport.readJson(json);
        assertEquals(sweep().size(), saved.runs().size());
        RunRecord diverged = saved.runs().get(4);
        assertTrue(Double.isNaN(diverged.valLoss()));
        assertNull(diverged.exactMatch());
        assertEquals(run("lora", 1e-2, 42, 0, 0, "").key(), diverged.key());
        assertEquals("tinit 0, tfinal 0, deltaT 1", saved.runs().getLast().schedule());
        assertEquals(12.5, saved.totalS());
        VariantsReport.checkResumable(json, saved.config(), config);
        Map<String, Object> other = new LinkedHashMap<>(config);
        other.put("steps", 100);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VariantsReport.checkResumable(json, saved.config(), other));
        assertTrue(e.getMessage().contains("steps 150") && e.getMessage().contains("--resume false"), e.getMessage());
    }

    @Test
    void threeSplitsAreDisjointByDocumentAndFixedBySeed() {
        List<Document> docs = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            docs.add(new Document("doc" + i, "text of document " + i + ". "));
        }
        TextDataset ds = TextDataset.of("synthetic", docs, new ByteTokenizer());
        BenchSetup.Splits s = BenchSetup.threeWay(ds, 42);
        assertEquals(5, s.test().documentCount());
        assertEquals(5, s.validation().documentCount());
        assertEquals(40, s.train().documentCount());
        Set<String> seen = new HashSet<>();
        for (TextDataset part : List.of(s.train(), s.validation(), s.test())) {
            for (Document d : part.documents()) {
                assertTrue(seen.add(d.name()), d.name() + " is in two splits");
            }
        }
        assertEquals(50, seen.size());
        assertEquals(names(s.test()), names(BenchSetup.threeWay(ds, 42).test()));
        assertFalse(names(s.test()).equals(names(BenchSetup.threeWay(ds, 7).test())), "another seed, other documents");
    }

    private static List<String> names(TextDataset d) {
        return d.documents().stream().map(Document::name).toList();
    }

    @Test
    void jobsCoverEveryMethodLrAndSeedOnceAndAdaLoraSchedulesAtItsChosenLr() throws Exception {
        VariantsTable.Options o = VariantsTable.parse(new String[]{"--methods", "lora,adalora", "--seeds", "2",
            "--work", "/tmp/unused"});
        List<VariantsTable.Job> jobs = VariantsTable.sweepJobs(o, List.of());
        assertEquals(2 * (4 + 5), jobs.size());
        assertEquals(jobs.size(), jobs.stream().map(VariantsTable.Job::key).distinct().count());
        assertTrue(jobs.subList(0, 9).stream().allMatch(j -> j.seed() == 42), "seed-major order");
        assertEquals(List.of("lora", "adalora", "lora", "adalora"),
                jobs.subList(0, 4).stream().map(j -> j.method().cliName()).toList(), "methods side by side");
        // a later seed runs the lrs best first by the earlier seeds' mean validation loss; not yet run, then NaN, last
        List<VariantsTable.Job> later = VariantsTable.seedJobs(o, 44, sweep());
        assertEquals(List.of(3e-2, 1e-2, 1e-3, 3e-3, 1e-1), later.stream()
                .filter(j -> j.method().cliName().equals("adalora")).map(VariantsTable.Job::lr).toList());
        assertEquals(List.of(1e-3, 3e-3, 3e-4, 1e-2), later.stream()
                .filter(j -> j.method().cliName().equals("lora")).map(VariantsTable.Job::lr).toList());
        assertEquals(o.grid("lora"), VariantsTable.seedJobs(o, 42, sweep()).stream()
                .filter(j -> j.method().cliName().equals("lora")).map(VariantsTable.Job::lr).toList(), "first seed");
        List<VariantsTable.Job> sched = VariantsTable.scheduleJobs(o, sweep());
        assertEquals(2 * 3, sched.size());
        assertTrue(sched.stream().allMatch(j -> j.lr() == 1e-2 && j.schedule() != null));
        assertThrows(IllegalArgumentException.class, () -> VariantsTable.parse(new String[]{"--lrs", "1e-3,-1"}));
        assertThrows(IllegalArgumentException.class, () -> VariantsTable.parse(new String[]{"--task", "nope"}));
    }

    @Test
    void closingNoteSortsVerdictsByWhetherTheClaimHolds() {
        assertEquals("the claim holds", VariantsReport.closing("holds: LoRA within the tie band of full fine-tuning"));
        assertEquals("the claim does not hold", VariantsReport.closing("differs: worse than LoRA by 0.02 nats"));
        assertTrue(VariantsReport.closing("ties: within the band of LoRA").contains("tie"));
        assertEquals("the claim holds in part", VariantsReport.closing("parameters hold (56%); quality differs: worse"));
        assertEquals("the claim holds", VariantsReport.closing("parameters hold (9x fewer); quality holds: slightly"));
    }

    @Test
    void commitIsReadFromALinkedWorktree(@TempDir Path dir) throws Exception {
        Path common = dir.resolve("main/.git");
        Path linked = common.resolve("worktrees/wt");
        java.nio.file.Files.createDirectories(linked);
        java.nio.file.Files.createDirectories(common.resolve("refs/heads"));
        java.nio.file.Files.writeString(common.resolve("refs/heads/topic"), "0123456789abcdef0123\n");
        java.nio.file.Files.writeString(linked.resolve("HEAD"), "ref: refs/heads/topic\n");
        java.nio.file.Files.writeString(linked.resolve("commondir"), "../..\n");
        Path wt = java.nio.file.Files.createDirectories(dir.resolve("wt/sub"));
        java.nio.file.Files.writeString(dir.resolve("wt/.git"), "gitdir: " + linked + "\n");
        assertEquals("0123456789ab (refs/heads/topic)", Machine.commit(wt));
        java.nio.file.Files.writeString(dir.resolve("wt/.git"), "garbage\n");
        assertEquals("?", Machine.commit(wt));
    }
}
