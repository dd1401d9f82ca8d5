/**
 * Fuzz targets (Jazzer): the safetensors parser, adapter_config.json, HF config.json, the PEFT loader against a
 * model, and tokenizer.json (loading, then encoding and decoding hostile texts). {@link ai.lorakit.fuzz.FuzzGuard} is the oracle: success or the entry point's documented error type with a
 * message, within time and allocation bounds.
 *
 * <p>Corpora: {@code src/test/resources/ai/lorakit/fuzz/<Target>Inputs/<method>/} (seeds and regression inputs,
 * committed; every test run replays them). What fuzzing discovers goes to {@code models/.cifuzz-corpus/} (not
 * committed) and is read back by the next fuzzing run.
 *
 * <ul>
 *   <li>CI ({@code ci/test.sh}): each target fuzzes 10 s ({@code @FuzzTest(maxDuration)}).</li>
 *   <li>A longer run of one target (each pass fuzzes 10 s more, resuming from the corpus of the last; 180 passes
 *       are about 30 min of fuzzing):
 *   <pre>
 *   . ci/jdk.sh; for i in $(seq 180); do JAZZER_FUZZ=1 mvn -B -o -q -pl models -am test \
 *     -Dtest=SafetensorsFuzzTest -Dsurefire.failIfNoSpecifiedTests=false -Djazzer.hooks=true \
 *     -Djazzer.disabled_hooks=com.code_intelligence.jazzer.sanitizers.RegexInjection \
 *     -Djunit.jupiter.execution.timeout.mode=disabled || break; done
 *   </pre></li>
 *   <li>A finding: the run fails and writes {@code crash-<sha1>} into the target's Inputs folder; rename it to
 *       {@code regression-<what>}, fix the bug, commit both.</li>
 * </ul>
 *
 * <p>Findings so far: adapter_config.json and config.json whose first bytes made Jackson decode them as UTF-32
 * escaped as a raw CharConversionException instead of the loaders' format exceptions (fixed;
 * {@code regression-utf32-*}). Jazzer's regex-injection sanitizer flagged tokenizer.json's Split patterns, which are
 * regexes by format: that sanitizer is off ({@code regression-regex-syntax-error} keeps the input; a pattern that does
 * not compile is a TokenizerFormatException, and a slow one is caught by the time bound). A tokenizer.json with a
 * vocabulary id of 444...447 made the loader size its id table from the id's low 32 bits (over 5 s per input): ids
 * must now fit an int and be dense (fixed; {@code regression-sparse-huge-id}).
 */
package ai.lorakit.fuzz;
