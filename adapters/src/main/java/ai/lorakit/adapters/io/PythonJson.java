package ai.lorakit.adapters.io;

import java.math.BigDecimal;
import java.util.Collection;
import java.util.Map;
import java.util.TreeMap;

/**
 * Serialises plain values (Map, Collection, boolean[], String, Number, Boolean, null) exactly as Python's
 * {@code json.dumps(obj, indent=2, sort_keys=True)} does, which is how PEFT writes adapter_config.json:
 * {@code "key": value}, one element per line, {@code {}} and {@code []} for empty containers, non-ASCII escaped
 * as \\uXXXX, floats in Python's repr (0.05, 1e-05, 16.0). Integral Integer/Long values print without ".0".
 */
final class PythonJson {
    private PythonJson() {
    }

    static String dumps(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v, int indent) {
        switch (v) {
            case null -> sb.append("null");
            case Boolean b -> sb.append(b ? "true" : "false");
            case String s -> string(sb, s);
            case Float f -> sb.append(pyFloat(f));
            case Double d -> sb.append(pyFloat(d.doubleValue()));
            case Integer i -> sb.append(i);
            case Long l -> sb.append(l);
            case boolean[] a -> {
                java.util.List<Object> l = new java.util.ArrayList<>(a.length);
                for (boolean x : a) {
                    l.add(x);
                }
                write(sb, l, indent);
            }
            case Map<?, ?> m -> {
                if (m.isEmpty()) {
                    sb.append("{}");
                    return;
                }
                TreeMap<String, Object> sorted = new TreeMap<>();
                m.forEach((k, x) -> sorted.put((String) k, x));
                sb.append("{\n");
                int n = 0;
                for (Map.Entry<String, Object> e : sorted.entrySet()) {
                    pad(sb, indent + 2);
                    string(sb, e.getKey());
                    sb.append(": ");
                    write(sb, e.getValue(), indent + 2);
                    sb.append(++n < sorted.size() ? ",\n" : "\n");
                }
                pad(sb, indent);
                sb.append('}');
            }
            case Collection<?> c -> {
                if (c.isEmpty()) {
                    sb.append("[]");
                    return;
                }
                sb.append("[\n");
                int n = 0;
                for (Object x : c) {
                    pad(sb, indent + 2);
                    write(sb, x, indent + 2);
                    sb.append(++n < c.size() ? ",\n" : "\n");
                }
                pad(sb, indent);
                sb.append(']');
            }
            default -> throw new IllegalArgumentException("PythonJson: unsupported value type " + v.getClass());
        }
    }

    private static void pad(StringBuilder sb, int n) {
        sb.append(" ".repeat(n));
    }

    /** Python's ensure_ascii string escaping. */
    static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Python's float repr of the shortest decimal that identifies {@code f} as a float. */
    static String pyFloat(float f) {
        return pyRepr(Float.isFinite(f) ? new BigDecimal(Float.toString(f)) : null, f);
    }

    /** Python's float repr of a double. */
    static String pyFloat(double d) {
        return pyRepr(Double.isFinite(d) ? new BigDecimal(Double.toString(d)) : null, d);
    }

    private static String pyRepr(BigDecimal bd, double v) {
        if (bd == null) {
            return Double.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
        }
        if (v == 0) {
            return (Double.doubleToRawLongBits(v) < 0) ? "-0.0" : "0.0";
        }
        bd = bd.stripTrailingZeros();
        int exp10 = bd.precision() - bd.scale() - 1;
        if (exp10 >= -4 && exp10 < 16) {
            String s = bd.toPlainString();
            return s.contains(".") ? s : s + ".0";
        }
        String digits = bd.unscaledValue().abs().toString();
        String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return (bd.signum() < 0 ? "-" : "") + mant + "e" + (exp10 < 0 ? "-" : "+")
                + (Math.abs(exp10) < 10 ? "0" : "") + Math.abs(exp10);
    }
}
