# Copyright 2026 ccl_perception maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

r"""
Choose the planner's abstention thresholds on validation grasp scenes.

    python training/grasp_benchmark.py --seed 9000 --grasps 24 --absent 12 --no-oracle \
        --set min_confidence=0 --set min_similarity=0 --set per_target_gates=false \
        --out runs/grasp_validation
    python training/choose_thresholds.py runs/grasp_validation/results.json
    python training/choose_thresholds.py --gates runs/grasp_validation/results.json

``--gates`` chooses the ``alpha`` of the calibrated per-target gates instead
(``ccl_perception.target_gates``: per grasp-axis point ``gate = max(s-) + alpha (q(s+) -
max(s-))`` from each target's stored statistics, which the benchmark report carries): every
``alpha`` of a grid turns the recorded scenes where an axis point's peak similarity is below
its gate into abstentions, together with every ``min_confidence`` of the grid, and the pair
with the most grasps and no false grasp wins (ties: the higher confidence gate, then the
middle of the tied alphas).

The benchmark run opens the two gates, so every scene that passes the geometric checks is
executed and its outcome, confidence and peak similarity are recorded. A pair of thresholds
(``min_confidence``, ``min_similarity``) then turns exactly the scenes below either of them
into abstentions; this script scores every pair of the grid on the recorded scenes and picks
the one with the most grasps and no false grasp (ties: the higher thresholds, the safer
margin). Use validation seeds only (the README's tables use 5000 and up; validation 9000).
"""
import argparse
import json
import sys

import numpy as np

CONFIDENCES = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
SIMILARITIES = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def score(trials: list, min_confidence: float, min_similarity: float) -> dict:
    """Outcomes of the recorded trials under the two thresholds."""
    grasped = failed = abstained = false = 0
    for t in trials:
        gate = (t.get('confidence', 0.0) >= min_confidence
                and np.nan_to_num(t.get('similarity', np.nan), nan=-1.0) >= min_similarity)
        executed = gate and t['outcome'] not in ('abstained', 'correct_abstention')
        if t['present']:
            if not executed:
                abstained += 1
            elif t['outcome'] == 'grasped':
                grasped += 1
            else:
                failed += 1
        elif executed:
            false += 1
    return {'grasped': grasped, 'failed': failed, 'abstained': abstained, 'false': false,
            'present': sum(t['present'] for t in trials),
            'absent': sum(not t['present'] for t in trials)}


def choose(trials: list):
    """``((min_confidence, min_similarity), score)`` of the best pair with no false grasp."""
    best = None
    for c in CONFIDENCES:
        for s in SIMILARITIES:
            r = score(trials, c, s)
            if r['false']:
                continue
            key = (r['grasped'], -r['failed'], c + s)
            if best is None or key > best[0]:
                best = (key, (c, s), r)
    if best is None:
        raise ValueError('no threshold pair avoids every false grasp')
    return best[1], best[2]


ALPHAS = tuple(round(a, 2) for a in np.arange(-0.5, 1.01, 0.05))


def target_gate(report: dict, name: str, alpha: float) -> np.ndarray:
    """``(2,)`` gates of target ``name``'s first view under ``alpha``, from the report."""
    from ccl_perception.target_gates import gate
    stats = report['targets'][name]['calibration'][0]
    if stats is None:
        raise ValueError(f'target {name!r} of the report has no calibration statistics')
    pos, neg = (np.asarray(a, float) for a in stats)
    return gate({'positive': pos, 'negative': neg}, {'alpha': alpha})


def score_alpha(reports: list, alpha: float, min_confidence: float = 0.0) -> dict:
    """
    Score the reports' trials under calibrated gates at ``alpha`` and ``min_confidence``.

    :func:`score` with each trial's similarity replaced by its smallest margin over its
    target's per-point gates.
    """
    trials = []
    for rep in reports:
        gates = {n: target_gate(rep, n, alpha) for n in rep['targets']}
        for t in rep['trials']:
            margin = np.asarray(t['similarities']) - gates[t['target']]
            trials.append({**t, 'similarity': float(margin.min())})
    return score(trials, min_confidence, 0.0)


def choose_alpha(reports: list):
    """
    Return ``(alpha, min_confidence, score)`` of the best gates.

    Best: the most grasps with no false grasp, then the fewest failed ones, over
    :data:`ALPHAS` x :data:`CONFIDENCES`.

    Ties: the highest confidence gate, then the middle of the tied alphas (the farthest
    from where a false grasp comes back).
    """
    rows = [(a, c, score_alpha(reports, a, c)) for c in CONFIDENCES for a in ALPHAS]
    ok = [(r['grasped'], -r['failed'], c, a, r) for a, c, r in rows if not r['false']]
    if not ok:
        raise ValueError('no alpha and confidence gate avoid every false grasp')
    top = max(ok, key=lambda x: x[:3])[:3]
    tied = sorted(x[3] for x in ok if x[:3] == top)
    alpha = tied[(len(tied) - 1) // 2]
    return alpha, top[2], next(x[4] for x in ok if x[:3] == top and x[3] == alpha)


def main_gates(reports: list) -> int:
    """``--gates``: score every alpha; print the table and the choice."""
    alpha, conf, r = choose_alpha(reports)
    print(f'| alpha | grasped | failed | abstained | false grasps (min_confidence {conf:g}) |')
    print('|---|---|---|---|---|')
    for a in ALPHAS:
        s = score_alpha(reports, a, conf)
        print(f"| {a:g} | {s['grasped']}/{s['present']} | {s['failed']} | {s['abstained']} | "
              f"{s['false']}/{s['absent']} |")
    for rep in reports:
        print(f'gates at alpha {alpha:g}: ' + ', '.join(
            f'{n} {target_gate(rep, n, alpha).round(3).tolist()}' for n in sorted(rep['targets'])))
    print(f"\nchosen: alpha={alpha:g} min_confidence={conf:g}: {r['grasped']}/{r['present']} "
          f"grasped, {r['failed']} failed, {r['false']}/{r['absent']} false grasps")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('results', nargs='+', help='results.json of validation grasp benchmark runs')
    ap.add_argument('--gates', action='store_true',
                    help='choose the alpha of the calibrated per-target gates')
    args = ap.parse_args(argv)
    trials, reports = [], []
    for path in args.results:
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f'choose_thresholds: error: cannot read {path}: {e}', file=sys.stderr)
            return 2
        planner = data.get('planner') or {}
        if planner.get('min_confidence', 1) > 0 or planner.get('min_similarity', 1) > 0 \
                or planner.get('per_target_gates', True):
            print(f'choose_thresholds: error: {path} was not run with min_confidence=0, '
                  'min_similarity=0 and per_target_gates=false (its abstentions would hide '
                  'outcomes)', file=sys.stderr)
            return 2
        if data.get('views', 1) != 1:
            print(f'choose_thresholds: error: {path} has {data["views"]}-view targets; choose '
                  'on one-view runs (the trials do not say which view a gate would pick)',
                  file=sys.stderr)
            return 2
        trials += data['trials']
        reports.append(data)
    if args.gates:
        try:
            return main_gates(reports)
        except (ValueError, KeyError) as e:
            print(f'choose_thresholds: error: {e}', file=sys.stderr)
            return 2
    print('| min_confidence | min_similarity | grasped | failed | abstained | false grasps |')
    print('|---|---|---|---|---|---|')
    for c in CONFIDENCES:
        for s in (0.0, 0.5, 0.7, 0.8):
            r = score(trials, c, s)
            print(f"| {c} | {s} | {r['grasped']}/{r['present']} | {r['failed']} | "
                  f"{r['abstained']} | {r['false']}/{r['absent']} |")
    try:
        (c, s), r = choose(trials)
    except ValueError as e:
        print(f'choose_thresholds: error: {e}', file=sys.stderr)
        return 2
    print(f"\nchosen: min_confidence={c} min_similarity={s}: {r['grasped']}/{r['present']} "
          f"grasped, {r['failed']} failed, {r['false']}/{r['absent']} false grasps on "
          f'{len(trials)} validation scenes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
