# Reads a timed log of a lesson's checks (each line starts with the
# milliseconds since the run began, see answers.sh) and prints the hint of the
# first failure report, its continuation lines joined into one line.
{ line = substr($0, 8) }
!started && (line ~ /^step [0-9]+[:( ]/ || line ~ /^step [0-9]+$/) { started = 1; next }
started && in_hint && line ~ /^            / { sub(/^ +/, "", line); hint = hint " " line; next }
started && in_hint { print hint; printed = 1; exit }
started && line ~ /^  hint      / { in_hint = 1; hint = substr(line, 13) }
END { if (in_hint && !printed) print hint }
