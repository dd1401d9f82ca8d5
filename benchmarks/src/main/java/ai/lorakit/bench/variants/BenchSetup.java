package ai.lorakit.bench.variants;

import ai.lorakit.models.data.BrownCorpus;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.Families;
import ai.lorakit.models.decoder.Family;
import ai.lorakit.models.decoder.ModelConfig;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import ai.lorakit.models.tokenizer.Gpt2BpeTokenizer;
import ai.lorakit.models.tokenizer.HfTokenizer;
import ai.lorakit.models.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * What the benchmarks share with {@code lorakit train}: the base model folder (--model, or the embedded default
 * copied out of the classpath folder {@value #DEFAULT_RESOURCE}; {@code --model default-llama}: the embedded Llama
 * default {@value #DEFAULT_LLAMA_RESOURCE}), its tokenizer (tokenizer.json when the folder has one, else GPT-2 BPE
 * when it has vocab.json + merges.txt, else bytes, as the CLI's --tokenizer auto) and Brown fiction split by document with
 * the CLI's defaults (--val-fraction 0.1, split seed = --seed).
 */
final class BenchSetup {

    static final String DEFAULT_RESOURCE = "ai/lorakit/models/default/";
    static final String DEFAULT_LLAMA_RESOURCE = "ai/lorakit/models/default-llama/";
    static final double VAL_FRACTION = 0.1;

    private BenchSetup() {
    }

    /** {@code model} if given (default-llama: the embedded Llama), else the embedded default, extracted to a temp folder. */
    static Path modelDir(Path model) throws IOException {
        boolean llama = model != null && model.toString().equals("default-llama") && !Files.exists(model);
        if (model != null && !llama) {
            return model;
        }
        String resource = llama ? DEFAULT_LLAMA_RESOURCE : DEFAULT_RESOURCE;
        ClassLoader cl = BenchSetup.class.getClassLoader();
        if (cl.getResource(resource + "model.safetensors") == null) {
            throw new IOException("the embedded model (classpath " + resource + ") is not in this build;"
                    + " pass --model <HF model folder>");
        }
        Path dir = Files.createTempDirectory("lorakit-bench-model");
        for (String f : new String[]{"config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json",
            "tokenizer_config.json"}) {
            URL u = cl.getResource(resource + f);
            if (u != null) {
                try (InputStream in = u.openStream()) {
                    Files.copy(in, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
                }
                dir.resolve(f).toFile().deleteOnExit();
            }
        }
        dir.toFile().deleteOnExit();
        return dir;
    }

    /** "the embedded default base model (GPT-2 architecture, 4 layers, n_embd 192, vocab 257, 1.88 M parameters)". */
    static String describe(Path model, Path modelDir) throws IOException {
        ModelConfig mc = Families.readConfig(modelDir);
        if (!(mc instanceof Gpt2Config c)) {
            return String.format(java.util.Locale.ROOT, "%s (%s, %.2f M parameters)", model == null
                    || model.toString().equals("default-llama") ? "the embedded Llama default base model, pretrained by"
                    + " lorakit on Brown non-fiction" : "the base model " + model, mc.describe(),
                    parameterCount(mc) / 1e6);
        }
        return String.format(java.util.Locale.ROOT, "%s (GPT-2 architecture, %d layers, n_embd %d, %d heads, vocab %d%s,"
                        + " %.2f M parameters)", model == null ? "the embedded default base model, pretrained by lorakit"
                        + " on Brown non-fiction" : "the base model " + model, c.nLayer(), c.nEmbd(), c.nHead(),
                c.vocabSize(), c.vocabSize() <= 257 ? " (byte-level)" : "", c.parameterCount() / 1e6);
    }

    /** The base parameters of a model of this config (tied weights counted once). */
    @SuppressWarnings({"unchecked", "rawtypes"})
    static long parameterCount(ModelConfig c) {
        long n = 0;
        for (Object shape : ((Family) c.family()).shapes(c).values()) {
            n += java.util.Arrays.stream((int[]) shape).asLongStream().reduce(1, (a, b) -> a * b);
        }
        return n;
    }

    static Tokenizer tokenizer(Path modelDir) throws IOException {
        if (Files.isRegularFile(modelDir.resolve("tokenizer.json"))) {
            return HfTokenizer.load(modelDir);
        }
        if (Files.isRegularFile(modelDir.resolve("vocab.json")) && Files.isRegularFile(modelDir.resolve("merges.txt"))) {
            return Gpt2BpeTokenizer.loadDirectory(modelDir);
        }
        int v = Families.readConfig(modelDir).vocabSize();
        return v == 256 ? ByteTokenizer.withoutEndOfText() : new ByteTokenizer();
    }

    /** Brown fiction (categories k-r), split as {@code lorakit train --data brown:fiction --seed seed}. */
    static TextDataset.Split brownFiction(Tokenizer tok, long seed) throws IOException {
        TextDataset ds = TextDataset.of("brown:fiction", BrownCorpus.load().documents(BrownCorpus.Group.FICTION), tok);
        return ds.split(VAL_FRACTION, seed);
    }

    /** Train, validation and test parts of a dataset, disjoint by document. */
    record Splits(TextDataset train, TextDataset validation, TextDataset test) {
    }

    /**
     * Brown fiction split three ways by document for the learning-rate sweep: {@value #TEST_FRACTION} of the
     * documents are held out as the test split first, then {@value #VAL_FRACTION} of ALL documents (a 1/9 share of
     * the rest) become the validation split that chooses the lr; the remaining ~80 % train. Both splits shuffle
     * with {@code seed} (TextDataset#split), so the parts are fixed by the seed.
     */
    static Splits brownFictionSplits(Tokenizer tok, long seed) throws IOException {
        TextDataset ds = TextDataset.of("brown:fiction", BrownCorpus.load().documents(BrownCorpus.Group.FICTION), tok);
        return threeWay(ds, seed);
    }

    static Splits threeWay(TextDataset ds, long seed) {
        TextDataset.Split heldOut = ds.split(TEST_FRACTION, seed);        // validation part = the test split
        TextDataset.Split rest = heldOut.train().split(VAL_FRACTION / (1 - TEST_FRACTION), seed);
        return new Splits(rest.train(), rest.validation(), heldOut.validation());
    }

    static final double TEST_FRACTION = 0.1;
}
