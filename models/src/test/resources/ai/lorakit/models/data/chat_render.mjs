// The JS reference for lorakit's ChatTemplate: renders conversations with @huggingface/jinja, the Jinja engine of
// @huggingface/transformers, given the context transformers.js' apply_chat_template(..., {tokenize: false}) gives
// it: messages, add_generation_prompt and the special tokens (bos_token, eos_token, ...) of tokenizer_config.json.
//
// usage: node chat_render.mjs HF_JINJA_DIR TOKENIZER_CONFIG_JSON IN OUT
//   HF_JINJA_DIR  the unpacked npm package @huggingface/jinja (holds dist/index.js)
//   IN            one JSON object per line: {"messages": [{"role", "content"}...], "add_generation_prompt": bool}
//   OUT           written with one JSON object per line: {"text": rendered} or {"error": message}
//                 (written to OUT.tmp, renamed)
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [lib, tokenizerConfig, input, output] = process.argv.slice(2);
if (!output) {
  console.error("usage: node chat_render.mjs HF_JINJA_DIR TOKENIZER_CONFIG_JSON IN OUT");
  process.exit(2);
}
const { Template } = await import(pathToFileURL(path.join(lib, "dist", "index.js")).href);
const config = JSON.parse(fs.readFileSync(tokenizerConfig, "utf8"));
let source = config.chat_template;
if (Array.isArray(source)) {
  source = (source.find((t) => t.name === "default") || {}).template;
}
// transformers.js: SPECIAL_TOKEN_ATTRIBUTES, each given when set (a string, or an AddedToken's content)
const specials = {};
for (const key of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]) {
  const v = config[key];
  const text = typeof v === "string" ? v : v && typeof v.content === "string" ? v.content : null;
  if (text) {
    specials[key] = text;
  }
}
const cases = fs.readFileSync(input, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line));
const template = source ? new Template(source) : null;
const lines = cases.map((c) => {
  if (!template) {
    return JSON.stringify({ error: "no chat_template" });
  }
  try {
    return JSON.stringify({ text: template.render({ messages: c.messages, add_generation_prompt: c.add_generation_prompt, ...specials }) });
  } catch (e) {
    return JSON.stringify({ error: String(e && e.message ? e.message : e) });
  }
});
fs.writeFileSync(output + ".tmp", lines.map((l) => l + "\n").join(""));
fs.renameSync(output + ".tmp", output);
