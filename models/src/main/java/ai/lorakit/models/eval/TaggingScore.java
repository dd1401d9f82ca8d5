package ai.lorakit.models.eval;

import java.util.List;

/**
 * Task metrics of generated tag sequences against gold ones (the Brown part-of-speech instruction set, issue 14):
 * <ul>
 *   <li><b>exact match</b>: the prediction equals the gold completion after whitespace normalisation (leading and
 *       trailing whitespace removed, every run of whitespace one space);</li>
 *   <li><b>tag accuracy</b>: position-wise matches of the whitespace-separated tags over the gold tags,
 *       Σ_i #{j &lt; |gold_i| : pred_i[j] = gold_i[j]} / Σ_i |gold_i| (missing predicted tags count as wrong,
 *       extra ones are ignored), so a prediction that is nearly right still scores.</li>
 * </ul>
 *
 * @param examples     prompts scored
 * @param exact        predictions equal to the gold completion (normalised)
 * @param tagsCorrect  position-wise tag matches
 * @param tagsGold     gold tags
 */
public record TaggingScore(int examples, int exact, long tagsCorrect, long tagsGold) {

    /**
     * @throws IllegalArgumentException lists of different sizes, or no examples
     */
    public static TaggingScore of(List<String> predicted, List<String> gold) {
        if (predicted.size() != gold.size()) {
            throw new IllegalArgumentException(predicted.size() + " predictions for " + gold.size() + " gold answers");
        }
        if (gold.isEmpty()) {
            throw new IllegalArgumentException("no examples to score");
        }
        int exact = 0;
        long correct = 0;
        long total = 0;
        for (int i = 0; i < gold.size(); i++) {
            String p = normalise(predicted.get(i));
            String g = normalise(gold.get(i));
            exact += p.equals(g) ? 1 : 0;
            String[] pt = p.isEmpty() ? new String[0] : p.split(" ");
            String[] gt = g.isEmpty() ? new String[0] : g.split(" ");
            for (int j = 0; j < gt.length; j++) {
                correct += j < pt.length && pt[j].equals(gt[j]) ? 1 : 0;
            }
            total += gt.length;
        }
        return new TaggingScore(gold.size(), exact, correct, total);
    }

    /** Leading/trailing whitespace removed, inner runs of whitespace as one space. */
    public static String normalise(String s) {
        return s.strip().replaceAll("\\s+", " ");
    }

    /** exact / examples. */
    public double exactMatch() {
        return (double) exact / examples;
    }

    /** tagsCorrect / tagsGold (0 when there are no gold tags). */
    public double tagAccuracy() {
        return tagsGold == 0 ? 0 : (double) tagsCorrect / tagsGold;
    }
}
