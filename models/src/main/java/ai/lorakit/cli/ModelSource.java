package ai.lorakit.cli;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import ai.lorakit.models.tokenizer.Tokenizer;
import ai.lorakit.models.tokenizer.TokenizerFiles;
import ai.lorakit.models.tokenizer.TokenizerFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Where the base model, its tokenizer and the backend come from.
 * <ul>
 *   <li>{@code --model DIR}: a Hugging Face model folder (config.json + model.safetensors) of a registered
 *       family. Without it, the embedded default model: the classpath folder {@value #DEFAULT_RESOURCE}
 *       (config.json + model.safetensors, optional tokenizer files), copied to a temporary folder.
 *       {@code --model default-llama} (when no folder of that name exists) picks the embedded Llama-family
 *       default {@value #DEFAULT_LLAMA_RESOURCE} instead, and {@code --model default} the GPT-2 one.</li>
 *   <li>{@code --tokenizer auto|bytes|DIR}: auto = the model folder's tokenizer when it has one
 *       ({@link TokenizerFiles}: tokenizer.json, else vocab.json + merges.txt), else byte-level when vocab_size is
 *       257 (bytes + end-of-text) or 256 (bytes only), else an error; bytes = byte-level (vocab_size must be
 *       >= 256); DIR = the tokenizer of that folder (tokenizer.json, else vocab.json + merges.txt).</li>
 *   <li>{@code --backend}: a {@link BackendRegistry} name ({@code auto} = the first available).</li>
 * </ul>
 */
final class ModelSource {

    static final String DEFAULT_RESOURCE = "ai/lorakit/models/default/";
    static final String DEFAULT_NAME = "lorakit:default";
    static final String DEFAULT_LLAMA_RESOURCE = "ai/lorakit/models/default-llama/";
    static final String DEFAULT_LLAMA_NAME = "lorakit:default-llama";
    private static final String[] DEFAULT_FILES = {"config.json", "model.safetensors", "vocab.json", "merges.txt",
        "tokenizer.json", "tokenizer_config.json"};

    /** The --model help text of every command. */
    static final String MODEL_HELP = "HF model folder (config.json + model.safetensors, any registered model_type), or"
            + " an embedded model: 'default' (GPT-2, byte vocabulary) or 'default-llama' (Llama, byte vocabulary +"
            + " chat tokens, tokenizer.json). Default: the embedded default model.";

    /** A model folder and the name it goes by (base_model_name_or_path). */
    record Resolved(Path dir, String name, boolean embedded) {
    }

    private ModelSource() {
    }

    /** {@code --model} (null = the embedded default). */
    static Resolved resolve(Path model) throws IOException {
        if (model != null && !Files.exists(model)) {
            switch (model.toString()) {
                case "default" -> model = null;
                case "default-llama" -> {
                    return new Resolved(extract(DEFAULT_LLAMA_RESOURCE), DEFAULT_LLAMA_NAME, true);
                }
                default -> throw new UsageException("--model: no such folder: " + model + " (the embedded models"
                        + " are 'default' and 'default-llama')");
            }
        }
        if (model != null) {
            if (!Files.isDirectory(model)) {
                throw new UsageException("--model: " + model + " is a file; give the folder that holds config.json"
                        + " and model.safetensors");
            }
            return new Resolved(model, model.toString(), false);
        }
        return new Resolved(extract(DEFAULT_RESOURCE), DEFAULT_NAME, true);
    }

    /** True when this build carries the embedded default model. */
    static boolean hasDefault() {
        return ModelSource.class.getClassLoader().getResource(DEFAULT_RESOURCE + "config.json") != null;
    }

    /** The embedded model in classpath folder {@code resource}, copied to a temporary folder. */
    private static Path extract(String resource) throws IOException {
        ClassLoader cl = ModelSource.class.getClassLoader();
        if (cl.getResource(resource + "config.json") == null
                || cl.getResource(resource + "model.safetensors") == null) {
            throw new UsageException("the embedded model is not in this build yet (classpath folder "
                    + resource + " with config.json and model.safetensors is missing); pass --model <HF folder>"
                    + " or pretrain one with 'lorakit train --method full --init random ...'");
        }
        Path dir = Files.createTempDirectory("lorakit-default-model");
        dir.toFile().deleteOnExit();
        for (String f : DEFAULT_FILES) {
            URL u = cl.getResource(resource + f);
            if (u == null) {
                continue;
            }
            Path dst = dir.resolve(f);
            dst.toFile().deleteOnExit();
            try (InputStream in = u.openStream()) {
                Files.copy(in, dst, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return dir;
    }

    static DecoderModel load(Resolved r, Backend be) throws IOException {
        return load(r, be, Precision.FP32);
    }

    static DecoderModel load(Resolved r, Backend be, Precision precision) throws IOException {
        return DecoderModel.load(r.dir(), be, precision);
    }

    static Backend openBackend(String name) {
        try {
            return BackendRegistry.open(name);
        } catch (GpuException e) {
            throw new UsageException("--backend: " + e.getMessage(), e);
        }
    }

    /** The tokenizer for a model of {@code vocabSize} ids ({@code modelDir} may be null: random init). */
    static Tokenizer tokenizer(String spec, Path modelDir, int vocabSize) throws IOException {
        Tokenizer t;
        switch (spec) {
            case "bytes" -> t = bytes(vocabSize, "--tokenizer bytes");
            case "auto" -> {
                if (modelDir != null && hasTokenizerFiles(modelDir)) {
                    t = fromFolder(modelDir, "--tokenizer auto (the model folder's)");
                } else if (vocabSize == 257 || vocabSize == 256) {
                    t = bytes(vocabSize, "--tokenizer auto");
                } else {
                    throw new UsageException("--tokenizer auto: the model has vocab_size " + vocabSize + " but its"
                            + " folder has no tokenizer.json nor vocab.json + merges.txt (byte-level needs vocab_size 256"
                            + " or 257); pass --tokenizer <folder with tokenizer.json> or --tokenizer bytes");
                }
            }
            default -> {
                Path d = Path.of(spec);
                if (!Files.isDirectory(d) || !hasTokenizerFiles(d)) {
                    throw new UsageException("--tokenizer: '" + spec + "' is not auto, bytes or a folder with"
                            + " tokenizer.json, or vocab.json and merges.txt");
                }
                t = fromFolder(d, "--tokenizer " + spec);
            }
        }
        if (t.vocabSize() > vocabSize) {
            throw new UsageException("--tokenizer: " + t + " has " + t.vocabSize() + " ids but the model's vocab_size"
                    + " is " + vocabSize);
        }
        return t;
    }

    private static Tokenizer bytes(int vocabSize, String what) {
        if (vocabSize >= 257) {
            return new ByteTokenizer();
        }
        if (vocabSize == 256) {
            return ByteTokenizer.withoutEndOfText();
        }
        throw new UsageException(what + ": byte-level needs vocab_size >= 256, the model has " + vocabSize);
    }

    /** The folder's tokenizer ({@link TokenizerFiles}); a corrupt file is a usage error naming it. */
    private static Tokenizer fromFolder(Path dir, String what) throws IOException {
        try {
            return TokenizerFiles.forDirectory(dir);
        } catch (TokenizerFormatException e) {
            throw new UsageException(what + ": " + Main.describe(e), e);
        }
    }

    /** tokenizer.json, or vocab.json + merges.txt. */
    static boolean hasTokenizerFiles(Path dir) {
        return Files.isRegularFile(dir.resolve("tokenizer.json")) || hasBpeFiles(dir);
    }

    static boolean hasBpeFiles(Path dir) {
        return Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt"));
    }

    /** The tokenizer files a written model folder carries when its source has them. */
    private static final String[] TOKENIZER_FILES = {"vocab.json", "merges.txt", "tokenizer.json",
        "tokenizer_config.json"};

    /**
     * Copies the tokenizer files {@code from} has (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json) so
     * a written model folder carries its tokenizer and chat template.
     */
    static void copyTokenizerFiles(Path from, Path to) throws IOException {
        if (from == null) {
            return;
        }
        for (String f : TOKENIZER_FILES) {
            if (Files.isRegularFile(from.resolve(f))) {
                Files.createDirectories(to);
                Files.copy(from.resolve(f), to.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }
}
