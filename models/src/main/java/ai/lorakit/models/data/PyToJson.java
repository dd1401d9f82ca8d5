package ai.lorakit.models.data;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;

import java.util.Iterator;
import java.util.Map;

/**
 * The {@code tojson} filter as Hugging Face defines it for chat templates: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=indent)}, so {@code ", "} and {@code ": "} separators (or
 * newlines and indent spaces with {@code indent=n}), non-ASCII characters kept, keys in insertion order.
 * Jinjava's own tojson is compact, which would render tool lists differently.
 */
final class PyToJson implements AdvancedFilter {

    @Override
    public String getName() {
        return "tojson";
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object ind = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
        int indent = ind == null ? -1 : ((Number) ind).intValue();
        StringBuilder out = new StringBuilder();
        write(var, indent, 0, out);
        return out.toString();
    }

    static void write(Object v, int indent, int depth, StringBuilder out) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long || v instanceof Short) {
            out.append(v);
        } else if (v instanceof Number n) {
            out.append(n.doubleValue());   // Python's repr for ordinary magnitudes (1.5, 0.1); 1e-05 differs
        } else if (v instanceof Map<?, ?> m) {
            container('{', '}', m.entrySet().iterator(), m.isEmpty(), indent, depth, out, (e, o) -> {
                Map.Entry<?, ?> en = (Map.Entry<?, ?>) e;
                string(String.valueOf(en.getKey()), o);
                o.append(": ");
                write(en.getValue(), indent, depth + 1, o);
            });
        } else if (v instanceof Iterable<?> it) {
            container('[', ']', it.iterator(), !it.iterator().hasNext(), indent, depth, out,
                    (e, o) -> write(e, indent, depth + 1, o));
        } else if (v instanceof Object[] arr) {
            write(java.util.Arrays.asList(arr), indent, depth, out);
        } else {
            string(v.toString(), out);
        }
    }

    private interface Item {
        void write(Object e, StringBuilder out);
    }

    private static void container(char open, char close, Iterator<?> it, boolean empty, int indent, int depth,
                                  StringBuilder out, Item item) {
        out.append(open);
        if (empty) {
            out.append(close);
            return;
        }
        boolean first = true;
        while (it.hasNext()) {
            if (!first) {
                out.append(indent >= 0 ? "," : ", ");
            }
            if (indent >= 0) {
                out.append('\n').append(" ".repeat(indent * (depth + 1)));
            }
            item.write(it.next(), out);
            first = false;
        }
        if (indent >= 0) {
            out.append('\n').append(" ".repeat(indent * depth));
        }
        out.append(close);
    }

    /** A JSON string as Python writes it with ensure_ascii=False. */
    private static void string(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
