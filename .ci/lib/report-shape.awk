# Reads a timed log of a lesson's checks (see answers.sh: each line starts with
# the milliseconds since the run began) and prints one line per problem with
# the shape of its failure reports (issue: failures that fit what happened):
#   - a report over 60 lines or 8 KB;
#   - a report without a hint;
#   - a byte shown as a decimal number, like [104, 101, 108];
#   - the first report later than 2 s after the checks start (libtest's
#     `running N tests`: cargo's own start-up is not the checks' doing), or the
#     whole run longer than 5 s;
#   - the whole output over 40 KB.
function close_report() {
  if (in_report) {
    if (lines > 60 || bytes > 8192)
      printf "report of %s is %d lines, %d bytes (over 60 lines or 8 KB)\n", title, lines, bytes
    if (!hinted)
      printf "report of %s has no hint\n", title
  }
  in_report = 0
}
{
  ms = substr($0, 1, 6) + 0
  line = substr($0, 8)
  last_ms = ms
  total += length(line) + 1
}
# The checks that print the first report start here.
first_ms == "" && line ~ /^running [0-9]+ tests?$/ { start_ms = ms }
line ~ /^step [0-9]+[:( ]/ || line ~ /^step [0-9]+$/ {
  close_report()
  in_report = 1; lines = 0; bytes = 0; hinted = 0; title = line
  if (first_ms == "") first_ms = ms - start_ms
}
in_report && (line == "FAILED" || line ~ /^test / || line ~ /^failures:/) { close_report() }
in_report {
  lines++; bytes += length(line) + 1
  if (line ~ /^  (hint|skipped) /) hinted = 1
}
line ~ /\[[0-9]+, [0-9]+, [0-9]+/ { printf "bytes shown as decimal numbers: %s\n", substr(line, 1, 80) }
END {
  close_report()
  if (first_ms == "") print "no failure report at all"
  else if (first_ms > 2000) printf "the first report came %d ms after the checks started (over 2 s)\n", first_ms
  if (last_ms > 5000) printf "the run took %d ms (over 5 s)\n", last_ms
  if (total > 40960) printf "the whole output is %d bytes (over 40 KB)\n", total
}
