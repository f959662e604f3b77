#!/usr/bin/env bash
# A mixed-arm population's update against a one-arm one, before and after a change, in one run:
# 48 CartPole size1m members, one arm (seeds 0-47) and the shift study's three arms taking turns
# (`48:mixed`), timed by bench/bench_population.py in the tree at BEFORE (a git worktree made
# here) and in this tree, alternately. The before tree gets this tree's bench_population.py
# (with the import of its population agent, popagent.PopulationAgent, put back).
#
#   bash bench/mixed_before_after.sh d54fab8 [rounds]
#
# Writes bench/results/population_mixed_{before,after}.json (the timings, the last round's) and
# bench/results/mixed_flops_{before,after}.json (bench/bench_mixed_flops.py: the FLOPs of one
# update, traced, which no load on the machine changes, and both updates of 24 members timed
# alternately in one process). A separate-process timing row takes about 15 minutes on 2 shared
# cores and moves with the machine's load; the FLOPs and the alternating timings do not.
set -euo pipefail
BEFORE=${1:?usage: bench/mixed_before_after.sh BEFORE_COMMIT [rounds]}
ROUNDS=${2:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/before" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
git -C "$ROOT" worktree add -q --detach "$WORK/before" "$BEFORE"
cp "$ROOT/bench/bench_population.py" "$ROOT/bench/bench_mixed_flops.py" "$ROOT/bench/record.py" "$WORK/before/bench/"
sed -i 's/from dreamerv3 import learner  # noqa: E402/from dreamerv3 import popagent as learner  # noqa: E402/;
        s/learner.Population(/learner.PopulationAgent(/' "$WORK/before/bench/bench_population.py"
for side in before after; do
  tree=$ROOT; [[ $side == before ]] && tree=$WORK/before
  (cd "$tree" && "$PY" bench/bench_mixed_flops.py --members 48 --time-members 24 --rounds 3 \
    --json "$ROOT/bench/results/mixed_flops_$side.json")
done
for ((round = 1; round <= ROUNDS; round++)); do
  for side in before after; do
    tree=$ROOT; [[ $side == before ]] && tree=$WORK/before
    echo "== round $round, $side ($(git -C "$tree" rev-parse --short HEAD)), load $(cut -d' ' -f1 /proc/loadavg)"
    (cd "$tree" && "$PY" bench/bench_population.py --task cartpole --size size1m --members 48,48:mixed \
      --updates 5 --act-steps 5 --limit 1500 --json "$ROOT/bench/results/population_mixed_$side.json")
  done
done
