# Sourced by lorakit's scripts: selects a JDK >= 25 (JAVA_HOME if it is one, else the newest under /usr/lib/jvm).
# The machine's default java is 17, which cannot build or run lorakit.
lorakit_java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
lorakit_find_jdk() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ] && [ "$(lorakit_java_major "$JAVA_HOME")" -ge 25 ] 2>/dev/null; then
    return 0
  fi
  local best="" best_v=0 d v
  for d in /usr/lib/jvm/*/ "$HOME"/.sdkman/candidates/java/*/ /opt/java/*/; do
    [ -x "$d/bin/javac" ] || continue
    v=$(lorakit_java_major "${d%/}")
    if [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null && [ "$v" -gt "$best_v" ]; then best="${d%/}"; best_v=$v; fi
  done
  if [ -z "$best" ]; then
    echo "lorakit: no JDK 25 or newer found (JAVA_HOME='${JAVA_HOME:-}', searched /usr/lib/jvm). Install one, e.g. Temurin 25, and set JAVA_HOME." >&2
    return 1
  fi
  export JAVA_HOME="$best"
}
lorakit_find_jdk || exit 1
export PATH="$JAVA_HOME/bin:$PATH"
