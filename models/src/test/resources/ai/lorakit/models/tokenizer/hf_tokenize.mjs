// The JS reference for lorakit's HfTokenizer: encodes texts with @lenml/tokenizers (a port of transformers.js).
//
// usage: node hf_tokenize.mjs LENML_TOKENIZERS_DIR TOKENIZER_JSON TOKENIZER_CONFIG_JSON (IN OUT SPECIAL)...
//   LENML_TOKENIZERS_DIR  the unpacked npm package @lenml/tokenizers (holds dist/main.mjs)
//   IN                    one JSON string per line (the texts)
//   OUT                   written with one line per text: its ids, space-separated (written to OUT.tmp, renamed)
//   SPECIAL               1: add_special_tokens true (BOS/EOS template), 0: false
// The tokenizer is built as @lenml/tokenizer-<model>'s fromPreTrained() builds it: TokenizerLoader over the two
// JSON files.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [lib, tokenizerJson, tokenizerConfig, ...jobs] = process.argv.slice(2);
if (!lib || !tokenizerConfig || jobs.length === 0 || jobs.length % 3 !== 0) {
  console.error("usage: node hf_tokenize.mjs LENML_TOKENIZERS_DIR TOKENIZER_JSON TOKENIZER_CONFIG_JSON (IN OUT SPECIAL)...");
  process.exit(2);
}
const { TokenizerLoader } = await import(pathToFileURL(path.join(lib, "dist", "main.mjs")).href);
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(tokenizerJson, "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(tokenizerConfig, "utf8")),
});
for (let j = 0; j < jobs.length; j += 3) {
  const [input, output, special] = jobs.slice(j, j + 3);
  const texts = fs.readFileSync(input, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line));
  const lines = texts.map((t) => tokenizer.encode(t, { add_special_tokens: special === "1" }).join(" "));
  fs.writeFileSync(output + ".tmp", lines.map((l) => l + "\n").join(""));
  fs.renameSync(output + ".tmp", output);
}
