# Shared by .ci/wrong-answers/run and .ci/right-answers/run: a scratch copy of
# the workbook in which a lesson's lib.rs is replaced by an answer, and a timed
# run of that lesson's checks.
#
# An answer is a patch against the reference, solutions/NN-step/src/lib.rs.

# What a check may print on libtest's line `test NAME ... ` before its result:
# marks in brackets (seesaw_checks::report): a part, or the whole check,
# skipped on this machine (`[skipped: ...]`), or a failure whose cause an
# earlier step reported (`[same cause as step 1: ...]`, then `FAILED`), or on
# another todo!() left in place (`[the todo!() in serve (...) is still there:
# ...]`, then `FAILED`).
skip_marks='(\[[^]]*\] *)* *'

# Copies the workbook (without build output and .git) into $tree.
prepare_tree() {
  rm -rf "$tree"
  mkdir -p "$tree"
  (cd "$root" && tar --exclude=./target --exclude=./solutions/target --exclude=./.git -cf - .) | tar -C "$tree" -xmf -
}

# apply_answer LESSON PATCH: the reference with PATCH applied becomes the
# lesson's lib.rs in the scratch tree. Fails if the patch does not apply.
apply_answer() {
  local lesson=$1 patch_file=$2
  local lib="$tree/lessons/$lesson/src/lib.rs"
  cp "$root/solutions/$lesson/src/lib.rs" "$lib"
  patch --quiet --no-backup-if-mismatch "$lib" "$patch_file"
}

# run_checks LESSON LOG: builds the lesson's checks, then runs them, writing
# each output line to LOG prefixed with the milliseconds since the run began.
# Sets $status (the exit code) and $compiled (yes or no).
run_checks() {
  local lesson=$1 log=$2
  status=0
  compiled=yes
  if ! (cd "$tree" && cargo test --locked --quiet --no-run -p "lesson-$lesson") >"$log.build" 2>&1; then
    compiled=no
    status=1
    return
  fi
  local start
  start=$(date +%s%3N)
  set +e
  (cd "$tree" && timeout 60 cargo test --locked -p "lesson-$lesson" 2>&1) |
    while IFS= read -r line; do
      printf '%6d %s\n' "$(($(date +%s%3N) - start))" "$line"
    done >"$log"
  status=${PIPESTATUS[0]}
  set -e
}

# hint_says HINT CHOICES: true if HINT contains one of the " | "-separated
# CHOICES, whatever the case.
hint_says() {
  local hint=${1,,} choice
  local IFS='|'
  for choice in $2; do
    choice=${choice#"${choice%%[! ]*}"}
    choice=${choice%"${choice##*[! ]}"}
    [ -n "$choice" ] && [[ "$hint" == *"${choice,,}"* ]] && return 0
  done
  return 1
}
