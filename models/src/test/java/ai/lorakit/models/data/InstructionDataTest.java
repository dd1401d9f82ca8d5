package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link InstructionData} reads both JSONL forms from a tokenizer folder's config (BOS/EOS and chat
 * template from tokenizer_config.json) and that each kind of bad input fails with the file and line in the message.
 */
class InstructionDataTest {

    @TempDir
    Path dir;

    private InstructionEncoder encoder() throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"bos_token": "^", "eos_token": "$", "add_bos_token": true,
                 "chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}${% endfor %}",
                 "added_tokens_decoder": {"1": {"content": "$", "special": true}}}
                """);
        return InstructionEncoder.forTokenizerDir(new CharTokenizer(), dir);
    }

    @Test
    void readsBothForms() throws IOException {
        Path f = Files.writeString(dir.resolve("d.jsonl"), """
                {"prompt": "Q", "completion": "A"}

                {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
                """);
        List<InstructionExample> ex = InstructionData.read(f, encoder());
        assertEquals(2, ex.size(), "the blank line is skipped");
        CharTokenizer tok = new CharTokenizer();
        assertEquals("^QA$", tok.decode(ex.get(0).ids()));
        assertEquals(2, ex.get(0).trainedTokens());
        assertEquals("<user>hi$<assistant>yo$", tok.decode(ex.get(1).ids()));
        assertEquals(3, ex.get(1).trainedTokens(), "yo and its end-of-turn $");
    }

    private void bad(String content, int line, String expected) throws IOException {
        Path f = Files.writeString(dir.resolve("bad.jsonl"), content);
        InstructionEncoder enc = encoder();
        InstructionFormatException e = assertThrows(InstructionFormatException.class,
                () -> InstructionData.read(f, enc));
        assertTrue(e.getMessage().startsWith(f + ":" + line + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void badInputNamesFileAndLine() throws IOException {
        String ok = "{\"prompt\": \"Q\", \"completion\": \"A\"}\n";
        bad(ok + "{\"prompt\": \"Q\", \n", 2, "invalid JSON");
        bad(ok + ok + "{\"prompt\": \"Q\"}\n", 3, "\"completion\" is missing");
        bad("{\"prompt\": 3, \"completion\": \"A\"}\n", 1, "\"prompt\" is not a string");
        bad("{\"text\": \"x\"}\n", 1, "expected \"prompt\" and \"completion\", or \"messages\"");
        bad(ok + "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n", 2, "unknown role \"robot\"");
        bad("{\"messages\": []}\n", 1, "non-empty array");
        bad("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n", 1, "no assistant text");
        bad("[1, 2]\n", 1, "expected a JSON object");
        bad("", 1, "the file is empty");
        bad("\n  \n", 1, "the file is empty");
    }
}
