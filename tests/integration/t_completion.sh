# Bash completion (contrib/bash-completion/jsd) for the five programs:
# options from each program's --help, NODE words (peers, @groups, the node
# itself, the next member of NODE,NODE) and this node's jobs from the
# configuration, as `jsd-listener -t` reads it. No daemon is started.
source "$JSD_TEST_LIB"
COMPLETION=$(dirname "$JSD_TEST_LIB")/../../contrib/bash-completion/jsd
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455"}' \
  '"groups": {"web": ["beta", "gamma"], "db": ["gamma"]},
  "jobs": {"hello": {"command": ["/bin/true"]}, "backup": {"command": ["/bin/true"]}}'
conf=$T/alpha.json

# complete FUNCTION WORD...: what FUNCTION offers for the last WORD, sorted,
# on one line; in a fresh bash that knows nothing but the completion file.
complete_words() {
  local fn=$1
  shift
  env -u JSD_CONFIG ${COMPLETE_ENV:-} bash --norc --noprofile -c '
    source "$1" || exit 1
    fn=$2
    shift 2
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    "$fn"
    printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ $//"
  ' bash "$COMPLETION" "$fn" "$@"
}
expect() {
  local want=$1 got
  shift
  got=$(complete_words "$@")
  [ "$got" = "$want" ] || fail "completing '$*': '$got', expected '$want'"
}

expect "@db @web alpha beta gamma" _jsd_submit jsd-submit -f "$conf" ""
expect "beta" _jsd_submit jsd-submit -f "$conf" be
expect "@db @web" _jsd_submit jsd-submit -p X=1,Y=2 --config "$conf" @
expect "beta,gamma" _jsd_submit jsd-submit -f "$conf" beta,g
expect "beta,@db beta,@web" _jsd_submit jsd-submit -f "$conf" beta,@
# JOB: this node's jobs for the node itself; nothing known for others.
expect "backup hello" _jsd_submit jsd-submit -f "$conf" -q alpha ""
expect "" _jsd_submit jsd-submit -f "$conf" beta ""
expect "" _jsd_submit jsd-submit -f "$conf" --status abc alpha ""
expect "--no-wait" _jsd_submit jsd-submit --no-w
expect "--detach-on-interrupt" _jsd_submit jsd-submit -f "$conf" --det
# An option's argument is not a NODE: --id's value is the user's.
expect "" _jsd_submit jsd-submit -f "$conf" --id ""
expect "$(cd "$T" && compgen -f -- "$T/al" | sort | tr '\n' ' ' | sed 's/ $//')" _jsd_submit jsd-submit -f "$T/al"
# JSD_CONFIG instead of -f.
COMPLETE_ENV="JSD_CONFIG=$conf" expect "beta" _jsd_ping jsd-ping b
expect "ping status" _jsd_ping jsd-ping -f "$conf" -c 3 beta ""
expect "--count" _jsd_ping jsd-ping --cou
expect "--gen-ca --gen-key --gen-psk" _jsd_listener jsd-listener --gen
expect "--check-config" _jsd_listener jsd-listener --check
expect "beta gamma" _jsd_client jsd-client -f "$conf" ""
expect "--instance" _jsd_client jsd-client --ins
expect "beta gamma" _jsd_queue_server jsd-queue-server -f "$conf" ""
# Every program has its completion registered under its name.
for p in jsd-submit jsd-ping jsd-listener jsd-client jsd-queue-server; do
  bash --norc --noprofile -c 'source "$1"; complete -p "$2"' bash "$COMPLETION" "$p" > /dev/null ||
    fail "no completion registered for $p"
done
pass
