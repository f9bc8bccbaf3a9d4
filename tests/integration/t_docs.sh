# Every option a program's --help lists is documented in its man page, every
# page names the program's --help usage options in its SYNOPSIS, and the
# pages lint clean.
source "$JSD_TEST_LIB"
MAN=$(dirname "$JSD_TEST_LIB")/../../man
for tool in jsd-listener jsd-queue-server jsd-client jsd-ping jsd-submit; do
  page=$(ls "$MAN/$tool".[1-9] 2>/dev/null) || fail "no man page for $tool"
  help=$("$JSD_BIN/$tool" --help) || fail "$tool --help failed"
  # Long options from --help, e.g. "      --ready-fd FD" or "  -c, --count COUNT".
  for opt in $(echo "$help" | sed -n 's/^ *\(-[A-Za-z], \)\{0,1\}--\([a-z][a-z-]*\).*/\2/p'); do
    grep -q -- "Fl -$opt\b" "$page" || fail "$tool --$opt is not in $(basename "$page")"
  done
  # Short options in the usage line appear in the SYNOPSIS.
  usage=$(echo "$help" | sed -n '/^Usage:/,/^$/p')
  for short in $(echo "$usage" | grep -o '\[-[A-Za-z]\b' | tr -d '[-'); do
    sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$page" | grep -q "Fl $short\b" || fail "$tool -$short is not in the SYNOPSIS of $(basename "$page")"
  done
done
if command -v mandoc >/dev/null; then
  out=$(mandoc -Tlint -Wwarning "$MAN"/*.[1-9] 2>&1) || true
  [ -z "$out" ] || fail "mandoc -Tlint: $out"
elif [ "${CI:-}" = true ]; then
  fail "mandoc is missing: the man pages cannot be linted (make -f Makefile.dist deps installs it)"
fi
pass
