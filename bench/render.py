"""Renders bench/README.md from the benchmarks' JSON files (bench/results/*.json).

    python bench/render.py            # rewrite bench/README.md
    python bench/render.py --check    # exit 1 if bench/README.md is not what the files give

Every figure in the README comes from a file a benchmark wrote (`record.py`); a benchmark
without its file gets the command that makes it instead of numbers. The dated history of
past measurements is bench/LOG.md.
"""

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "README.md")

# (name, heading, what it measures, the command that writes bench/results/<name>.json)
BENCHES = (
    (
        "bench_train",
        "Update speed",
        "seconds per update of the agent, its compile time, peak memory and FLOPs "
        "per conv implementation, on Atari100k Alien inputs (random data)",
        "python bench/bench_train.py --size size1m --impls auto,xla,auto@default,xla@default --updates 6",
    ),
    (
        "bench_imag_adapt",
        "Cost of the adaptive mask",
        "the update with the mask on against off, timed alternately in one process",
        "python bench/bench_imag_adapt.py --size size1m --rounds 6",
    ),
    (
        "bench_population",
        "Population updates",
        "aggregate updates/s of a population against its number of members, with the solo agent in the same run",
        "python bench/bench_population.py --task cartpole",
    ),
    (
        "mixed_flops_before",
        "Mixed-arm population: FLOPs and alternating timings, before",
        "FLOPs of one update of 48 CartPole size1m "
        "members, one arm against the shift study's three arms, with the actor-critic computed twice for mixed "
        "arms (commit d54fab8); then both updates of 24 members timed alternately in one process",
        "bash bench/mixed_before_after.sh d54fab8",
    ),
    (
        "mixed_flops_after",
        "Mixed-arm population: FLOPs and alternating timings, after",
        "the same, the mask applied as where(enabled, mask, 1); then both updates of 24 members timed "
        "alternately in one process",
        "bash bench/mixed_before_after.sh d54fab8",
    ),
    (
        "population_mixed_before",
        "Mixed-arm population, before",
        "48 CartPole size1m members: one arm against "
        "the shift study's three arms taking turns, with the actor-critic computed twice for mixed arms (commit "
        "d54fab8); the ratio of the two rows is the cost of mixing",
        "bash bench/mixed_before_after.sh d54fab8",
    ),
    (
        "population_mixed_after",
        "Mixed-arm population, after",
        "the same, the mask applied as where(enabled, mask, 1): one actor-critic pass for every member",
        "bash bench/mixed_before_after.sh d54fab8",
    ),
    (
        "bench_conv",
        "Convolutions",
        "the encoder's and decoder's convolution layers, XLA against the fast CPU path",
        "python bench/bench_conv.py --sizes size1m,size12m",
    ),
    (
        "bench_params",
        "Parameters",
        "parameters per size preset, counted without allocating",
        "python bench/bench_params.py",
    ),
    (
        "bench_env",
        "Environment",
        "Alien env steps per second, bare and through the trainer's obs pipeline",
        "python bench/bench_env.py",
    ),
    (
        "bench_cartpole",
        "CartPole learning",
        "when each seed of the CartPole sweep reaches a mean of 10 episodes of 200, against the wall clock",
        "python bench/bench_cartpole.py",
    ),
    (
        "bench_ingest",
        "Ingest",
        "reading 260 synthetic runs uncached, cached and with pandas",
        "python bench/bench_ingest.py --repeats 3",
    ),
    ("bench_compare", "Compare", "`compare` on 260 runs: ingest, statistics, figures", "python bench/bench_compare.py"),
    (
        "bench_watch",
        "Watch",
        "`dreamer-report watch` on runs being appended to: CPU per refresh and write-to-display latency",
        "python bench/bench_watch.py --runs 260 --seconds 40 --interval 2",
    ),
)

HEAD = """# Benchmarks

Speed and size measurements of the trainer and the toolkit; correctness lives in `tests/`.
Each benchmark writes its figures to `bench/results/<name>.json` (command, commit, date,
machine, load average, jax version); `python bench/render.py` writes this file from them,
and `tests/test_bench_render.py` fails when the two disagree. Nothing here is typed by hand:
a benchmark without its file shows the command that makes it. The machine may be shared:
compare rows of one file, whose variants ran interleaved in one process, not rows of
different files. The GPU machine's calls (`ops/`) print their tables into what they bring
back. What was measured before, with dates and commits: `bench/LOG.md`.
"""


def load(results):
    out = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        out[os.path.basename(path)[:-5]] = data  # the file's name: one benchmark may write several
    return out


def markdown_table(table):
    lines = ["| " + " | ".join(table["columns"]) + " |", "|" + "---|" * len(table["columns"])]
    lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
    return lines


def section(name, heading, what, command, data):
    lines = [f"## {heading}", "", f"{what[0].upper()}{what[1:]}.", ""]
    if data is None:
        return lines + [
            f"Not measured yet (no `bench/results/{name}.json`): `{command}` writes it, "
            "then `python bench/render.py` renders it here.",
            "",
        ]
    load = data.get("load_average", {})
    lines += [
        f"`{data['command']}` at commit {data['commit']}, {data['date']}; {data['machine']}; "
        f"jax {data['jax']}; load average {load.get('before', '?')} before, {load.get('after', '?')} after.",
        "",
    ]
    for table in data["tables"]:
        lines += [f"{table['title']}:", "", *markdown_table(table), ""]
    lines += [f"- {note}" for note in data.get("notes", [])]
    return lines + ([""] if data.get("notes") else [])


def render(results=os.path.join(HERE, "results")):
    found = load(results)
    lines = [HEAD]
    for name, heading, what, command in BENCHES:
        lines += section(name, heading, what, command, found.pop(name, None))
    for name, data in sorted(found.items()):  # a file no entry above names
        lines += section(name, name, "results of " + name, data["command"], data)
    return "\n".join(lines).rstrip("\n") + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    text = render()
    if args.check:
        with open(README) as f:
            same = f.read() == text
        print("bench/README.md is up to date" if same else "bench/README.md differs: run python bench/render.py")
        return 0 if same else 1
    with open(README, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(README)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
