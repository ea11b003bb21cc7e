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

"""
The README's grasp table (paper Table II analogue) in one command, for any checkpoint.

    python training/grasp_table.py                                  # the shipped model
    python training/grasp_table.py --checkpoint runs/x/model.pt --out out/grasp_x

Runs every row of :data:`ROWS` with ``training/grasp_benchmark.py``'s code (seed 5000: 30
scenes with the target, 10 without, 35-65 deg; the planner's defaults, ``config/
grasp_planner.yaml``), each into ``<out>/<row>/results.json`` (a row whose file exists is
read, not run again: delete it to re-run), and writes ``<out>/grasp_table.md``: one line per
row with the oracle rows of both protocols, and the 'visible' rows per table kind
(target-coloured, glossy). About 40 min on a quiet 2-core CPU.
"""
import argparse
import datetime
import json
import os
import sys

from ccl_perception import cli

#: ``(key, protocol, reference views, calibrated gates, oracle, label)``.
ROWS = (
    ('visible_calibrated_1view', 'visible', 1, True, True,
     'calibrated per-target gates, 1 view (top-down)'),
    ('visible_global_1view', 'visible', 1, False, False,
     'global min_similarity 0.8 (no per-target gates), 1 view'),
    ('visible_calibrated_3views', 'visible', 3, True, False,
     'calibrated per-target gates, 3 views (top-down + 2 oblique)'),
    ('placed_calibrated_1view', 'placed', 1, True, True,
     'calibrated per-target gates, 1 view'),
    ('placed_global_1view', 'placed', 1, False, False,
     'global min_similarity 0.8 (no per-target gates), 1 view'),
)
ORACLE = 'oracle keypoints (executor ceiling)'
PROTOCOL_NAMES = {'visible': 'visible & graspable, held-out tables (paper protocol)',
                  'placed': 'placed anywhere, training table (before issue 18)'}


def run_rows(checkpoint: str, out: str, rows=ROWS, grasps: int = 30, absent: int = 10,
             seed: int = 5000) -> dict:
    """Run (or read) every row; ``{key: report}``."""
    from ccl_perception.evaluation.grasp_trials import run_grasp_benchmark
    reports = {}
    for key, protocol, views, calibrate, oracle, _ in rows:
        path = os.path.join(out, key, 'results.json')
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                reports[key] = json.load(f)
            print(f'[grasp_table] {key}: read {path}', flush=True)
            continue
        print(f'[grasp_table] {key}: running ({protocol}, {views} view(s), '
              f'{"calibrated" if calibrate else "global"} gates)', flush=True)
        reports[key] = run_grasp_benchmark(
            checkpoint, grasps, absent, 4, os.path.join(out, key), 35.0, 65.0, oracle, seed,
            protocol=protocol, views=views, calibrate=calibrate)
        print(f'[grasp_table] {key}: {reports[key]["seconds"]:.0f} s', flush=True)
    return reports


def table(reports: dict, rows=ROWS) -> str:
    """Return the markdown table: model rows, their share of the oracle's grasps, oracle rows."""
    oracle = {}
    for key, protocol, *_ in rows:
        if ORACLE in reports.get(key, {}).get('results', {}):
            oracle[protocol] = reports[key]['results'][ORACLE]
    lines = ["| benchmark | planner / targets | grasped / present | of the oracle's grasps | "
             'abstained | failed grasps | false grasps / absent |',
             '|---|---|---|---|---|---|---|']
    for protocol in ('visible', 'placed'):
        for key, p, _, _, _, label in rows:
            if p != protocol or key not in reports:
                continue
            s = reports[key]['results']['model']
            o = oracle.get(protocol)
            share = (f"{100 * s['grasped'] / o['grasped']:.0f} %" if o and o['grasped']
                     else '-')
            lines.append(f"| {PROTOCOL_NAMES[protocol]} | {label} | {s['grasped']}/"
                         f"{s['present_scenes']} | {share} | {s['abstained']} | "
                         f"{s['failed_grasps']} | {s['false_grasps']}/{s['absent_scenes']} |")
        if protocol in oracle:
            o = oracle[protocol]
            lines.append(f'| {PROTOCOL_NAMES[protocol]} | oracle keypoints (executor ceiling) | '
                         f"{o['grasped']}/{o['present_scenes']} | - | {o['abstained']} | "
                         f"{o['failed_grasps']} | - |")
    return '\n'.join(lines)


def tag_table(reports: dict, rows=ROWS) -> str:
    """Return the 'visible' rows per table kind: target-coloured and glossy tables."""
    lines = ['| planner / targets | table kind | grasped / present | abstained | failed | '
             'false grasps / absent |', '|---|---|---|---|---|---|']
    for key, protocol, _, _, _, label in rows:
        for tag, s in reports.get(key, {}).get('per_tag', {}).items():
            lines.append(f"| {label} | {tag} | {s['grasped']}/{s['present_scenes']} | "
                         f"{s['abstained']} | {s['failed_grasps']} | "
                         f"{s['false_grasps']}/{s['absent_scenes']} |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    ap = cli.ArgumentParser(prog='grasp_table', description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', default='', help='model (.pt); default: the shipped model')
    ap.add_argument('--out', default='out/grasp_table', help='output folder')
    args = ap.parse_args(argv)

    def run() -> int:
        from ccl_perception.checkpoint import load_checkpoint
        from ccl_perception.model_zoo import default_model_path
        checkpoint = args.checkpoint or default_model_path()
        load_checkpoint(checkpoint)  # missing / corrupt: one line, before any rendering
        reports = run_rows(checkpoint, args.out)
        text = (f'Grasp benchmark (paper Table II analogue), checkpoint `{checkpoint}`, '
                f'{datetime.date.today().isoformat()}; `python training/grasp_table.py '
                f'--checkpoint {checkpoint} --out {args.out}`; seed 5000, 30 scenes with the '
                'target and 10 without, 35-65 deg elevation, 4 targets.\n\n'
                + table(reports) + '\n\n' + tag_table(reports) + '\n')
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'grasp_table.md'), 'w', encoding='utf-8') as f:
            f.write(text)
        print(text)
        return 0

    from ccl_perception.checkpoint import CheckpointError
    return cli.run('grasp_table', run, CheckpointError)


if __name__ == '__main__':
    sys.exit(main())
