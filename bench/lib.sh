# shellcheck shell=bash
# Variables flow both ways between this file and the script that sources it:
# shellcheck disable=SC2034,SC2154
# What bench/compare and bench/compare-room share: the open-file limit,
# pinning, starting a fresh server and finding its address, the server's peak
# memory, how busy the rest of the machine was, and the quiet-machine rule.
# Sourced, not run. Linux only (/proc).
#
# The script that sources it sets, before calling anything here:
#   bench_name       its name, for messages ("bench/compare")
#   scratch          a scratch folder of its own
# and defines:
#   become_server NAME   execs the server called NAME on 127.0.0.1:0, run in
#                        the background with ${pin_server[@]} (its $! is then
#                        the server itself, whose memory /proc shows)
#   run_load ADDR        runs the load generator against ADDR with
#                        ${pin_load[@]}, its report on stdout (one line); its
#                        status says whether it worked

bench_fail() {
  echo "$bench_name: $*" >&2
  exit 1
}

# Linux, for /proc; and Go, the yardstick.
bench_need_linux_and_go() {
  [ -r /proc/self/status ] || bench_fail "this needs Linux: the peak memory comes from /proc/PID/status."
  command -v go >/dev/null ||
    bench_fail "Go is not installed, and the Go server is the yardstick. Debian, Ubuntu: sudo apt-get install golang-go."
}

# Raises the soft open-file limit (ulimit -n) as far as the hard one allows,
# for this run only, when it is below FILES (each connection costs one file
# descriptor in the load generator and one in the server). ADVICE says what
# to run instead when even the hard limit is too low.
bench_raise_file_limit() {
  local files_needed=$1 advice=$2 soft hard
  soft=$(ulimit -Sn)
  if [ "$soft" != unlimited ] && [ "$soft" -lt "$files_needed" ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
    ulimit -Sn "$hard" 2>/dev/null || true
    echo "$bench_name: raised the open-file limit (ulimit -n) from $soft to $(ulimit -Sn), for this run only"
    if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$files_needed" ]; then
      bench_fail "this run needs about $files_needed open files, and the hard limit is $(ulimit -Hn).
Ask for more (ulimit -Hn, /etc/security/limits.conf), or measure fewer: $advice"
    fi
  fi
}

# One core for the server, another for the load generator: sets pin_server,
# pin_load (commands to put before a program) and pinning (what was done).
bench_pin() {
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0)
    pin_load=(taskset -c 1)
    pinning="server on CPU 0, load generator on CPU 1 (taskset)"
  else
    pin_server=()
    pin_load=()
    pinning="not pinned (needs taskset and two cores)"
  fi
  echo "$bench_name: $pinning"
}

# Prints the ADDR of a server's `listening on ADDR` line, looking in its log
# every 0.1 s for at most 5 s. (A benchmark's start-up; the checks never poll.)
address_in() {
  local line
  for _ in $(seq 50); do
    # Whole lines only (`read` leaves out a last line without its newline
    # yet): a server may write its line in pieces.
    while IFS= read -r line; do
      case $line in
        "listening on "*)
          line=${line#listening on }
          echo "${line%% *}"
          return 0
          ;;
      esac
    done <"$1"
    sleep 0.1
  done
  echo "no server started within 5 s; its log: $(head -3 "$1" | tr '\n' ' ')" >&2
  return 1
}

# CPU time, in clock ticks: the whole machine's, busy (user, nice, system,
# irq, softirq, steal), and one process's.
ticks_per_second=$(getconf CLK_TCK)
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Sets $children_ticks to the CPU time of this shell's children that have
# ended. (`times` must run in this shell: in a $(...) subshell it would count
# the subshell's own children.)
count_children() {
  times >"$scratch/times"
  children_ticks=$(awk -v hz="$ticks_per_second" 'NR == 2 {
    split($1, user, /[ms]/); split($2, kernel, /[ms]/)
    printf "%d\n", ((user[1] + kernel[1]) * 60 + user[2] + kernel[2]) * hz }' "$scratch/times")
}

# Sets idle_check: how busy the machine is before we start, in percent of
# one core, over 2 s.
bench_idle_check() {
  local before
  before=$(machine_ticks)
  sleep 2
  idle_check=$((($(machine_ticks) - before) * 100 / (2 * ticks_per_second)))
}

# The machine, as comment lines for the top of a CSV.
bench_machine_header() {
  local cpu
  cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  echo "# nproc: $(nproc)"
  echo "# cpu: ${cpu:-unknown}"
  echo "# memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "# kernel: $(uname -sr)"
  echo "# rustc: $(rustc --version)"
  echo "# go: $(go version | sed 's/^go version //')"
  echo "# pinning: $pinning"
  echo "# other work before the start: $idle_check% of one core, over 2 s"
  echo "# peak memory: VmHWM of the server process (Linux /proc/PID/status), KiB"
  echo "# other work: CPU time the rest of the machine used during a measurement, percent of one core"
}

# A measurement during which the rest of the machine took more than this
# (percent of one core) is marked busy, left out of the medians, and done
# again, at most twice: a shared machine gets a second and a third chance to
# be quiet. (Not zero: with 10,000 clients the kernel's own threads work for
# our sockets too, a few percent, and count as the rest of the machine.)
most_other_work=15
server_pid=

# One measurement: a fresh server on its core, the load generator (run_load)
# on the other, then the server's peak memory. LABEL names it in messages
# ("go, 100 clients"); the load generator's timeout is SECONDS plus a minute.
# Sets measured_status (ok, failed, server-died, no-start or busy),
# measured_peak (KiB), measured_others (percent of one core that the rest of
# the machine used meanwhile: more than a few, and this measurement is
# suspect) and measured_result (the load generator's line).
measure_once() {
  local server=$1 label=$2 seconds=$3
  local log=$scratch/$server.log
  measured_status=ok
  measured_peak=''
  measured_others=''
  measured_result=''
  become_server "$server" >/dev/null 2>"$log" &
  server_pid=$!
  local addr
  if ! addr=$(address_in "$log"); then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    measured_status=no-start
    return
  fi
  local machine_before server_before load_before began_ns
  machine_before=$(machine_ticks)
  server_before=$(process_ticks "$server_pid")
  count_children
  load_before=$children_ticks
  began_ns=$(date +%s%N)
  # Connecting thousands takes a few seconds; a load generator that is still
  # going after a minute more than planned is stopped.
  if ! run_load "$addr" "$((seconds + 60))" >"$scratch/load.out" 2>"$scratch/load.err"; then
    measured_status=failed
    echo "  $label: the load generator failed: $(tail -1 "$scratch/load.err")" >&2
    echo "  the server's last words: $(tail -2 "$log" | tr '\n' ' ')" >&2
  fi
  if kill -0 "$server_pid" 2>/dev/null; then
    measured_peak=$(awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status")
    local busy=$(($(machine_ticks) - machine_before))
    count_children
    local ours=$(($(process_ticks "$server_pid") - server_before + children_ticks - load_before))
    local wall_ticks=$((($(date +%s%N) - began_ns) * ticks_per_second / 1000000000))
    measured_others=$(((busy - ours) * 100 / (wall_ticks > 0 ? wall_ticks : 1)))
    if [ "$measured_others" -lt 0 ]; then measured_others=0; fi
    kill "$server_pid"
  else
    measured_status="server-died"
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  measured_result=$(cat "$scratch/load.out")
  if [ "$measured_status" = ok ] && [ "$measured_others" -gt "$most_other_work" ]; then
    measured_status=busy
  fi
}

# Runs MEASURE ARGS... (a function that ends by setting last_status) until a
# measurement is not busy, three times at most. No new tries after 20 minutes
# from $began: the run stays bounded on a machine that is never quiet.
measure_until_quiet() {
  for attempt in 1 2 3; do
    if [ "$attempt" -gt 1 ]; then
      [ $(($(date +%s) - began)) -lt 1200 ] || return 0
      wait_for_quiet
    fi
    "$@"
    [ "$last_status" = busy ] || return 0
  done
}

# Waits until the machine has been quiet for a second (other programs using
# less than most_other_work), at most 10 s.
wait_for_quiet() {
  local before
  for _ in $(seq 10); do
    before=$(machine_ticks)
    sleep 1
    if [ $((($(machine_ticks) - before) * 100 / ticks_per_second)) -le "$most_other_work" ]; then
      return 0
    fi
  done
  return 0 # not quiet yet: measure all the same
}
