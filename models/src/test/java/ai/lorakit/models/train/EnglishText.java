package ai.lorakit.models.train;

import ai.lorakit.models.data.Document;

import java.util.ArrayList;
import java.util.List;

/**
 * About 6 KB of plain English prose (written for these tests), as documents: training tests need real text
 * whose statistics a tiny model can learn in a few dozen steps.
 */
public final class EnglishText {

    private EnglishText() {
    }

    private static final String[] PARAGRAPHS = {
        "The village stood at the edge of a wide river, and every morning the fishermen pushed their boats into the"
            + " grey water before the sun was up. The women walked to the market with baskets of bread and fruit,"
            + " and the children ran along the bank, shouting at the birds that rose from the reeds.",
        "In the spring the river was high and fast. The old bridge shook when the carts went over it, and the men"
            + " of the village met in the square to talk about building a new one. They talked for many years, but"
            + " the old bridge was still there, and the carts still went over it, slowly and with care.",
        "The school was a small house with a red door. There was one teacher, a tall man who had come from the"
            + " city, and he taught the children to read and to write and to count. In the evening he sat at his"
            + " window with a book, and the light of his lamp could be seen from the other side of the river.",
        "One summer a stranger came to the village. He carried a heavy bag on his back and he asked for a room"
            + " at the inn. He said that he was a painter and that he had come to paint the river and the hills."
            + " The people watched him with interest, for they had never seen a painter before.",
        "Every day the painter went out early with his easel and his box of colours. He sat for hours on the hill"
            + " above the village, and when he came back in the evening his hands and his coat were marked with"
            + " blue and green and yellow. The children followed him and asked to see his pictures.",
        "The weather changed at the end of the summer. Dark clouds came over the hills, and the wind blew cold"
            + " across the water. The fishermen stayed at home and mended their nets, and the painter sat by the"
            + " fire at the inn and looked at the rain through the small window.",
        "When the rain stopped, the river had risen higher than anyone could remember. The water came up to the"
            + " first houses and into the gardens, and the old bridge was under the water for three days. The men"
            + " worked together to carry the animals and the grain to the houses on the hill.",
        "After the flood the people of the village decided, at last, to build the new bridge. They cut stone"
            + " from the hills and brought it down on carts, and the work went on through the autumn and the"
            + " winter. The painter stayed to watch it, and he made many pictures of the men at their work.",
        "The new bridge was finished in the spring. It was made of grey stone and it had three wide arches, and"
            + " it stood high above the water. On the day it was opened the whole village walked across it, and"
            + " there was music and dancing in the square until late in the night.",
        "The painter left the village a few days later. He gave one of his pictures to the teacher and one to the"
            + " keeper of the inn, and he said that he would come back one day. The children stood on the new"
            + " bridge and waved to him until he was gone over the hill.",
        "Years passed, and the village grew. A road was built from the city, and people came to see the river"
            + " and the stone bridge. The inn was made larger, and a second school was opened near the market,"
            + " with two teachers and a garden where the children grew beans and flowers.",
        "The teacher who had come from the city was old now. He still sat at his window in the evening with a"
            + " book, and on the wall behind him hung the picture that the painter had given him: the river in the"
            + " morning, the boats on the grey water, and the old bridge that was no longer there.",
        "Sometimes the children asked him about the painter. He told them that the painter had been a quiet man"
            + " who liked to work alone, and that he had loved the river more than any place he had seen. He said"
            + " that a good picture keeps a moment that would otherwise be lost.",
        "In the market the women still sold bread and fruit, but now they also sold small pictures of the bridge"
            + " to the visitors from the city. The pictures were not as good as the painter's, but the visitors"
            + " bought them, and the women were glad of the money.",
        "One morning in the autumn a letter came for the teacher. It was from the painter, who wrote that he was"
            + " old and ill and could not travel, but that he often thought of the village and the river. He asked"
            + " whether the stone bridge was still standing and whether the children still waved from it.",
        "The teacher read the letter to the children at school. Then they all walked down to the bridge, and the"
            + " teacher took a photograph of them standing on it and waving. He sent the photograph to the painter"
            + " with a long letter about the village, the new road and the market.",
    };

    /** Each paragraph one document. */
    public static List<Document> documents() {
        List<Document> out = new ArrayList<>();
        for (int i = 0; i < PARAGRAPHS.length; i++) {
            out.add(new Document("para" + i, PARAGRAPHS[i]));
        }
        return out;
    }

    /** All paragraphs, separated by blank lines. */
    public static String text() {
        return String.join("\n\n", PARAGRAPHS) + "\n";
    }
}
