#!/usr/bin/env bash
# Stops the test OpenStack that test/openstack/up.sh started in DIR: exactly the process
# groups listed in DIR/pids (TERM, up to 15 s, then KILL), nothing else. Leaves DIR;
# DIR/pids is emptied (its lines move to DIR/pids.stopped), so running it twice is safe.
#
#   bash test/openstack/down.sh DIR
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: bash test/openstack/down.sh DIR" >&2
  exit 2
fi
PIDS="$1/pids"
if [ ! -f "$PIDS" ]; then
  echo "down.sh: no $PIDS; nothing to stop" >&2
  exit 0
fi

groups=()
while read -r name pid started; do
  case $pid in '' | *[!0-9]*) continue ;; esac
  [ "$pid" -gt 1 ] || continue
  # A leader that is alive but started at another time is someone else under a reused PID.
  # (While any member of our group lives, Linux hands its id to no new process.)
  if stat=$(cat "/proc/$pid/stat" 2>/dev/null); then
    now=$(echo "${stat##*) }" | awk '{ print $20 }')
    if [ -n "$started" ] && [ "$now" != "$started" ]; then
      echo "down.sh: $name: PID $pid now belongs to another process; leaving it"
      continue
    fi
  fi
  groups+=("$pid")
  kill -TERM -- "-$pid" 2>/dev/null && echo "down.sh: stopping $name (group $pid)"
done <"$PIDS"

# wait_gone TICKS: waits up to TICKS quarter-seconds for the groups in `left` to go.
wait_gone() {
  local i g still
  for ((i = 0; i < $1 && ${#left[@]} > 0; i++)); do
    sleep 0.25
    still=()
    for g in "${left[@]}"; do kill -0 -- "-$g" 2>/dev/null && still+=("$g"); done
    left=("${still[@]}")
  done
}
left=("${groups[@]}")
wait_gone 60
for g in "${left[@]}"; do
  echo "down.sh: group $g still there after 15 s; KILL"
  kill -KILL -- "-$g" 2>/dev/null
done
wait_gone 20
if [ ${#left[@]} -gt 0 ]; then
  echo "down.sh: groups still alive: ${left[*]}" >&2
  exit 1
fi
: >"$PIDS.stopped"
cat "$PIDS" >>"$PIDS.stopped"
: >"$PIDS"
echo "down.sh: stopped"
