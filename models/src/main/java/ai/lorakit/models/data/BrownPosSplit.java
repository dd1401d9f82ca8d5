package ai.lorakit.models.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Train / validation / test splits of the Brown part-of-speech instruction set ({@link BrownPosInstructions}) BY
 * DOCUMENT: the Brown files are shuffled with the split seed ({@code java.util.Random}, from the sorted file ids),
 * the first round(F·testFraction) files are the test split, the next round(F·valFraction) the validation split,
 * the rest training, so no file contributes to two splits. Only sentences of at most {@code maxTags} tokens
 * (tags) are kept (short examples keep training and generation cheap); examples keep their file order.
 *
 * @param train           training examples
 * @param validation      validation examples (choosing the learning rate)
 * @param test            test examples (the reported metrics)
 * @param trainFiles      file ids of each split, sorted
 * @param validationFiles see trainFiles
 * @param testFiles       see trainFiles
 */
public record BrownPosSplit(List<BrownPosInstructions.Example> train, List<BrownPosInstructions.Example> validation,
                            List<BrownPosInstructions.Example> test, List<String> trainFiles,
                            List<String> validationFiles, List<String> testFiles) {

    /**
     * @param byFile       examples by file id ({@link BrownPosInstructions#byFile})
     * @param maxTags      longest sentence kept, in tags (>= 1)
     * @param valFraction  share of the files held out for validation, in (0, 1)
     * @param testFraction share of the files held out for test, in (0, 1)
     * @throws IllegalArgumentException bad fractions or maxTags, or too few files to give every split one
     */
    public static BrownPosSplit of(Map<String, List<BrownPosInstructions.Example>> byFile, int maxTags,
                                   double valFraction, double testFraction, long seed) {
        if (maxTags < 1) {
            throw new IllegalArgumentException("maxTags must be >= 1, got " + maxTags);
        }
        if (!(valFraction > 0 && testFraction > 0 && valFraction + testFraction < 1)) {
            throw new IllegalArgumentException("validation and test fractions must be > 0 with a sum < 1, got "
                    + valFraction + " and " + testFraction);
        }
        List<String> files = new ArrayList<>(byFile.keySet());
        Collections.sort(files);
        Collections.shuffle(files, new Random(seed));
        int n = files.size();
        int nTest = (int) Math.round(n * testFraction);
        int nVal = (int) Math.round(n * valFraction);
        if (nTest < 1 || nVal < 1 || nTest + nVal >= n) {
            throw new IllegalArgumentException(n + " files cannot give a test (" + nTest + "), validation (" + nVal
                    + ") and training split at least one file each; use more files or larger fractions");
        }
        List<String> test = sorted(files.subList(0, nTest));
        List<String> val = sorted(files.subList(nTest, nTest + nVal));
        List<String> train = sorted(files.subList(nTest + nVal, n));
        return new BrownPosSplit(examples(byFile, train, maxTags), examples(byFile, val, maxTags),
                examples(byFile, test, maxTags), train, val, test);
    }

    private static List<String> sorted(List<String> ids) {
        List<String> out = new ArrayList<>(ids);
        Collections.sort(out);
        return List.copyOf(out);
    }

    private static List<BrownPosInstructions.Example> examples(Map<String, List<BrownPosInstructions.Example>> byFile,
                                                               List<String> files, int maxTags) {
        List<BrownPosInstructions.Example> out = new ArrayList<>();
        for (String f : files) {
            for (BrownPosInstructions.Example e : byFile.get(f)) {
                if (e.tagCount() <= maxTags) {
                    out.add(e);
                }
            }
        }
        return List.copyOf(out);
    }
}
