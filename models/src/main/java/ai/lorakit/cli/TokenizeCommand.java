package ai.lorakit.cli;

import ai.lorakit.models.tokenizer.HfTokenizer;
import ai.lorakit.models.tokenizer.Tokenizer;
import ai.lorakit.models.tokenizer.TokenizerFiles;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code lorakit tokenize --tokenizer DIR (--file F | --text T) [--special]}: the token ids of each input line,
 * space-separated, one output line per input line (an empty line gives an empty line). The tokenizer is chosen
 * by the files in DIR ({@link TokenizerFiles}). Without {@code --special} no BOS/EOS is added (HF's
 * {@code add_special_tokens=False}); special-token strings typed in the text still become their ids.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids of text, space-separated, one output line per input line.")
final class TokenizeCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--tokenizer", required = true, paramLabel = "DIR",
            description = "Folder with tokenizer.json (Hugging Face), else vocab.json + merges.txt (GPT-2); a folder"
                    + " with neither tokenizes bytes.")
    Path tokenizer;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--file", paramLabel = "F", description = "UTF-8 text file to tokenize, line by line.")
        Path file;

        @Option(names = "--text", paramLabel = "T", description = "Text to tokenize (newlines split it into lines).")
        String text;
    }

    @Option(names = "--special", description = "Add the tokenizer's special tokens (BOS/EOS template of tokenizer.json).")
    boolean special;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    TokenizeCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        if (!Files.isDirectory(tokenizer)) {
            throw new UsageException("--tokenizer: folder " + tokenizer + " not found");
        }
        Tokenizer t;
        try {
            t = TokenizerFiles.forDirectory(tokenizer);
        } catch (IOException e) {
            throw new UsageException("--tokenizer " + tokenizer + ": " + Main.describe(e), e);
        }
        if (special && !(t instanceof HfTokenizer)) {
            cli.warn("tokenize", t + " has no special-token template: --special adds nothing");
        }
        StringBuilder out = new StringBuilder();
        for (String line : lines()) {
            int[] ids = t instanceof HfTokenizer hf ? hf.encode(line, special) : t.encode(line);
            for (int i = 0; i < ids.length; i++) {
                if (i > 0) {
                    out.append(' ');
                }
                out.append(ids[i]);
            }
            out.append('\n');
        }
        cli.out.print(out);
        cli.out.flush();
        return 0;
    }

    private List<String> lines() throws IOException {
        if (input.text != null) {
            return input.text.lines().toList();
        }
        if (!Files.isRegularFile(input.file)) {
            throw new UsageException("--file: " + input.file + " not found");
        }
        try {
            return Files.readAllLines(input.file, StandardCharsets.UTF_8);
        } catch (CharacterCodingException e) {
            throw new UsageException("--file: " + input.file + " is not valid UTF-8", e);
        }
    }
}
