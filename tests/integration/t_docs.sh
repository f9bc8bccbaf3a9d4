# Every option a program's --help lists is documented in its man page, every
# page names the program's --help usage options in its SYNOPSIS, a wrong
# command line exits with the status the page's EXIT STATUS gives for it,
# and the pages lint clean.
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
  # The EXIT STATUS item that mentions a wrong command line (items joined
  # into one line each, since the phrase may wrap) names the status.
  want=$(awk 'function item() { if (code != "" && text ~ /command line/) print code; code = ""; text = "" }
    /^\.Sh EXIT STATUS/ { in_es = 1; next }
    in_es && /^\.(Sh|El)/ { item(); in_es = 0; next }
    in_es && /^\.It/ { item(); if ($2 ~ /^[0-9]+$/) code = $2; next }
    in_es { text = text " " $0 }' "$page")
  [ -n "$want" ] || fail "the EXIT STATUS of $(basename "$page") says nothing of a wrong command line"
  got=0
  "$JSD_BIN/$tool" --bogus-option >/dev/null 2>&1 || got=$?
  [ "$got" = "$want" ] || fail "$tool --bogus-option exits $got, $(basename "$page") says $want"
done
if command -v mandoc >/dev/null; then
  out=$(mandoc -Tlint -Wwarning "$MAN"/*.[1-9] 2>&1) || true
  [ -z "$out" ] || fail "mandoc -Tlint: $out"
elif [ "${CI:-}" = true ]; then
  fail "mandoc is missing: the man pages cannot be linted (make -f Makefile.dist deps installs it)"
fi
pass
