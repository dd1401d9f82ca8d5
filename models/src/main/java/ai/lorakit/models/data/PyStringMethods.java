package ai.lorakit.models.data;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * The Python {@code str} methods that Hugging Face chat templates call ({@code content.strip()},
 * {@code .startswith(x)}, {@code .split(sep)}, ...), for Jinjava, whose strings are Java strings. Resolves a
 * method call on a String whose name is one of {@link #METHODS}; everything else falls through to the next
 * resolver. Semantics follow Python: {@code strip()} without argument strips Unicode whitespace, with an argument
 * strips any of its characters; {@code split()} without argument splits on runs of whitespace and drops empty
 * parts, {@code split(sep)} keeps them.
 */
final class PyStringMethods extends ELResolver {

    static final Set<String> METHODS = Set.of("strip", "lstrip", "rstrip", "startswith", "endswith", "split", "lower",
            "upper", "title", "capitalize", "replace", "find", "count", "isdigit", "isspace");

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof String s) || method == null || !METHODS.contains(method.toString())) {
            return null;
        }
        Object[] p = params == null ? new Object[0] : params;
        Object r = call(s, method.toString(), p);
        context.setPropertyResolved(true);
        return r;
    }

    private static Object call(String s, String m, Object[] p) {
        String a0 = p.length > 0 && p[0] != null ? p[0].toString() : null;
        return switch (m) {
            case "strip" -> rstrip(lstrip(s, a0), a0);
            case "lstrip" -> lstrip(s, a0);
            case "rstrip" -> rstrip(s, a0);
            case "startswith" -> a0 != null && s.startsWith(a0);
            case "endswith" -> a0 != null && s.endsWith(a0);
            case "split" -> split(s, a0);
            case "lower" -> s.toLowerCase(java.util.Locale.ROOT);
            case "upper" -> s.toUpperCase(java.util.Locale.ROOT);
            case "title", "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT)
                    + (m.equals("capitalize") ? s.substring(1).toLowerCase(java.util.Locale.ROOT) : s.substring(1));
            case "replace" -> s.replace(a0, p.length > 1 ? String.valueOf(p[1]) : "");
            case "find" -> s.indexOf(a0);
            case "count" -> a0.isEmpty() ? s.length() + 1 : (s.length() - s.replace(a0, "").length()) / a0.length();
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isspace" -> !s.isEmpty() && s.chars().allMatch(PyStringMethods::isSpace);
            default -> throw new IllegalStateException(m);
        };
    }

    /** Python's str.isspace for one char (Unicode whitespace, as str.strip() strips it). */
    private static boolean isSpace(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x1c || c == 0x1d || c == 0x1e
                || c == 0x1f || c == 0x85;
    }

    private static boolean strips(char c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strips(s.charAt(i), chars)) {
            i++;
        }
        return s.substring(i);
    }

    static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && strips(s.charAt(j - 1), chars)) {
            j--;
        }
        return s.substring(0, j);
    }

    private static List<String> split(String s, String sep) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            for (String part : s.split("[\\s\\u0085\\u001c-\\u001f]+")) {
                if (!part.isEmpty()) {
                    out.add(part);
                }
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("chat template: str.split() got an empty separator");
        }
        int from = 0;
        for (int at = s.indexOf(sep); at >= 0; at = s.indexOf(sep, from)) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    // ---------------------------------------------------------------- no properties: the next resolver's job

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return Arrays.<FeatureDescriptor>asList().iterator();
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
