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
Collect evaluation JSONs (training/evaluate.py) and run metrics into markdown tables.

    python training/summarize_results.py out/eval_*.json runs/*/metrics.json \
        out/grasp_*/results.json

An ``eval_<name>.json`` becomes a row ``<name>``; ``runs/<name>/metrics.json`` adds that run's
steps, training speed and peak memory; ``grasp_<name>/results.json``
(training/grasp_benchmark.py) a grasp-success row. Accuracy values are mean ± std over pairs
(paper Table I style).
"""
import argparse
import json
import os
import sys

THRESHOLDS = ('3', '5', '10', '25', '50')


def _pm(mean, std) -> str:
    return f'{mean:.3f} ± {std:.3f}' if std is not None else f'{mean:.3f}'


def accuracy_table(evals: dict, runs: dict = None, prefix: str = '') -> str:
    """Make one row per evaluation; ``best step`` from the run's metrics when ``runs`` has it."""
    head = ('| model | ' + ' | '.join(f'PCK@{t}' for t in THRESHOLDS) +
            ' | AUC PCK@[1..50] | norm. mean px error | AUC seen / unseen objects | pairs | '
            'best step |')
    lines = [head, '|' + '---|' * (len(THRESHOLDS) + 6)]
    for name, r in evals.items():
        m = (runs or {}).get(prefix.replace('same_table_', '') + name) or {}
        best = f"{m['best_step']} / {m['final_step']}" if m.get('best_step') is not None else '-'
        pck = ' | '.join(_pm(r['pck'][t], r.get('pck_std', {}).get(t)) for t in THRESHOLDS)
        split = r.get('per_split', {})
        seen = (f"{split['seen']['auc']:.3f} / {split['unseen']['auc']:.3f}"
                if {'seen', 'unseen'} <= set(split) else '-')
        lines.append(f"| {name} | {pck} | {_pm(r['auc'], r.get('auc_std'))} | "
                     f"{_pm(r['norm_mean_px_error'], r.get('norm_mean_px_error_std'))} | {seen} | "
                     f"{r['num_pairs']} | "
                     f'{best} |')
    return '\n'.join(lines)


def speed_table(runs: dict) -> str:
    lines = ['| run | method | steps | resolution | AMP | s/step | images/s (I_A) | '
             'images/s (all forwarded) | peak memory MiB | wall time s |', '|' + '---|' * 10]
    for name, m in runs.items():
        res = 'x'.join(str(v) for v in m.get('resolution', []))
        lines.append(f"| {name} | {m['method']} | {m['start_step']}→{m['final_step']} | {res} | "
                     f"{m['amp']} | {m['step_time_s']:.2f} | {m['images_per_s']:.2f} | "
                     f"{m['forwarded_images_per_s']:.2f} | "
                     f"{m['peak_memory_mib']:.0f} | {m['wall_time_s']:.0f} |")
    return '\n'.join(lines)


def grasp_table(grasps: dict) -> str:
    lines = ['| model | grasped / scenes with target | success rate | abstained | '
             'failed grasps | false grasps / scenes without target |', '|' + '---|' * 6]
    oracle = None
    for name, g in grasps.items():
        for row, r in g['results'].items():
            if row.startswith('oracle'):
                oracle = oracle or (row, r)
                continue
            lines.append(f"| {name} | {r['grasped']}/{r['present_scenes']} | "
                         f"{r['success_rate']:.0%} | {r['abstained']} | {r['failed_grasps']} | "
                         f"{r['false_grasps']}/{r['absent_scenes']} |")
    if oracle:
        row, r = oracle
        lines.append(f"| {row} | {r['grasped']}/{r['present_scenes']} | {r['success_rate']:.0%} | "
                     f"{r['abstained']} | {r['failed_grasps']} | - |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        'files',
        nargs='+',
        help='eval_<name>.json and runs/<name>/metrics.json files')
    args = parser.parse_args(argv)
    evals, runs, grasps = {}, {}, {}
    for path in args.files:
        try:
            with open(path, encoding='utf-8') as handle:
                data = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            print(f'error: cannot read {path}: {exc}', file=sys.stderr)
            return 2
        base = os.path.basename(path)
        if base == 'metrics.json':
            runs[os.path.basename(os.path.dirname(os.path.abspath(path)))] = data
        elif base == 'results.json' and os.path.basename(
                os.path.dirname(os.path.abspath(path))).startswith('grasp_'):
            grasps[os.path.basename(os.path.dirname(os.path.abspath(path)))[len('grasp_'):]] = data
        elif base.startswith('eval_') and base.endswith('.json'):
            evals[base[len('eval_'):-len('.json')]] = data
        else:
            print(f'error: {path} is not eval_<name>.json, metrics.json or '
                  'grasp_<name>/results.json', file=sys.stderr)
            return 2
    sections = (('v2_same_table_', 'Benchmark v2, same-table split (training table and camera, '
                 'new arrangements)'),
                ('v2_', 'Benchmark v2 (data/v2/eval: held-out tables, 0-45 deg off-vertical '
                 'views, cross-scene pairs)'),
                ('v1_', 'Benchmark v1 (data/eval)'), ('', 'Other evaluations'))
    left = dict(evals)
    for prefix, title in sections:
        rows = {k[len(prefix):] or k: v for k, v in left.items() if k.startswith(prefix)}
        left = {k: v for k, v in left.items() if not k.startswith(prefix)}
        if rows:
            print(f'### {title}, mean ± std over pairs\n')
            print(accuracy_table(rows, runs, prefix))
            print()
    if grasps:
        print('\n### Grasp success (training/grasp_benchmark.py)\n')
        print(grasp_table(grasps))
    if runs:
        print('\n### Training runs\n')
        print(speed_table(runs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
