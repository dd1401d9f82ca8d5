package ai.lorakit.models.data;

import java.nio.file.Path;

/** A bad line of an instruction JSONL file; the message names the file and the 1-based line. */
public class InstructionFormatException extends IllegalArgumentException {
    public InstructionFormatException(Path file, int line, String problem) {
        super(file + ":" + line + ": " + problem);
    }
}
