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
``make demo``: the default model grasps in simulation, over ROS 2, and says how it went.

    python -m ccl_perception.demo                  # the shipped default model
    python -m ccl_perception.demo --train          # first train a short model from rendered frames
    python -m ccl_perception.demo --set present_per_target=5 --checkpoint runs/x/model.pt

Every knob and its default is in ``config/demo.yaml``. Stages (each skipped when its output
exists for the same model, so a second run goes straight to the report; targets and grasp
results of another model or other settings are made again, never reported under this one):

1. **model**   the shipped default (``ccl_perception/models/ccl_default.pt``), ``--checkpoint``,
   or with ``--train`` a model trained here: a short fixed-camera capture of the seen objects
   is rendered (benchmark v2 training camera) and CCL + identical view trains on it.
2. **targets** ``<out>/targets/<name>.npz``: a top-down reference view per target object in the
   benchmark v2 grasp world (D435-like 640x480 camera; ``target_views`` > 1 adds oblique ones);
   its two grasp-axis pixels are picked from the object's mask
   (``ccl_perception.sim.auto_targets``), its similarity gate calibrated
   (``ccl_perception.target_gates``).
3. **grasp**   ``<out>/results.json``: sim world node (camera) -> grasp planner node -> grasp
   executor node (simulated Panda) over DDS in this process, over cluttered scenes from oblique
   viewpoints, including scenes without the target (``ccl_perception.ros_trial_runner``); under
   ``protocol: visible`` (the grasp benchmark's rules) every present target is in view and
   graspable and the tables are held-out photos, target-coloured and glossy ones included.
4. **report**  ``<out>/report.md``: the success table, per scene the table, the outcome and why
   (the grasp report, or the planner's reason for abstaining), and per trial the reference
   view(s) with the grasp axis, the live view with both heatmaps and the executed gripper pose.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import yaml

CONFIG_FILE = 'demo.yaml'


def log(msg: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def config_path() -> str:
    """``config/demo.yaml`` of the source tree, else of the installed package share."""
    from ccl_perception.bringup import config_dir
    return os.path.join(config_dir(), CONFIG_FILE)


def load_demo_config(overrides=(), path: str = None) -> dict:
    """
    Load the demo's config: ``config/demo.yaml`` with ``key=value`` overrides (values as YAML).

    Raises:
        ValueError: an unknown key, or a value of another type than its default.
    """
    with open(path or config_path(), encoding='utf-8') as f:
        cfg = yaml.safe_load(f)
    for text in overrides:
        key, sep, raw = text.partition('=')
        if not sep or key not in cfg:
            raise ValueError(f'--set {text!r}: expected key=value with a key of {CONFIG_FILE} '
                             f'({", ".join(cfg)})')
        value = yaml.safe_load(raw) if raw.strip() else ''
        want = type(cfg[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f'--set {key}={raw!r}: must be a {want.__name__} like the default '
                             f'{cfg[key]!r}')
        cfg[key] = value
    from ccl_perception.evaluation.grasp_protocol import PROTOCOLS
    if cfg['protocol'] not in PROTOCOLS:
        raise ValueError(f'protocol = {cfg["protocol"]!r} is not allowed: must be one of '
                         f'{", ".join(sorted(PROTOCOLS))}')
    if not 1 <= cfg['target_views'] <= 4:
        raise ValueError(f'target_views = {cfg["target_views"]!r} is not allowed: must be 1-4')
    for key in ('n_targets', 'present_per_target', 'train_images', 'train_steps', 'downscale'):
        if cfg[key] < (0 if key == 'present_per_target' else 1):
            raise ValueError(f'{key} = {cfg[key]!r} is not allowed: must be a positive integer')
    if cfg['absent_per_target'] < 0:
        raise ValueError(f'absent_per_target = {cfg["absent_per_target"]!r} must be >= 0')
    if not 0 < cfg['min_elevation_deg'] <= cfg['max_elevation_deg'] <= 90:
        raise ValueError('elevations must satisfy '
                         '0 < min_elevation_deg <= max_elevation_deg <= 90')
    return cfg


def world_config(cfg: dict):
    """
    Return the benchmark v2 grasp world of the demo (``SimWorldConfig``).

    Under ``protocol: visible`` (the grasp benchmark's rules): every present target in view
    and graspable, scenes on the held-out table photos.
    """
    from ccl_perception.evaluation.grasp_protocol import world_fields
    from ccl_perception.sim.grasp_scene import v2_world_config
    return v2_world_config(
        camera_elevation_deg=(cfg['min_elevation_deg'], cfg['max_elevation_deg']),
        **world_fields(cfg['protocol']))


# ------------------------------------------------------------------------------------ stages
def stage_model(cfg: dict) -> str:
    """Return the checkpoint the demo runs: given, trained here (``train``), or the default."""
    if cfg['checkpoint']:
        if not os.path.isfile(cfg['checkpoint']):
            raise SystemExit(f'--checkpoint {cfg["checkpoint"]} does not exist')
        log(f'[1/4 model] {cfg["checkpoint"]}')
        return cfg['checkpoint']
    if not cfg['train']:
        from ccl_perception.model_zoo import default_model_path
        path = default_model_path()
        log(f'[1/4 model] the shipped default model {path}')
        return path
    images = os.path.join(cfg['out'], 'train_images')
    n = len([f for f in os.listdir(images) if f.endswith('.png')]) if os.path.isdir(images) else 0
    if n < cfg['train_images']:
        from ccl_perception.sim.dataset import render_training_set
        log(f'[1/4 model] rendering {cfg["train_images"]} training frames (fixed top-down camera, '
            f're-arranged seen objects) -> {images}')
        stats = render_training_set(images, {'benchmark': 'v2', 'num_images': cfg['train_images']})
        log(f'[1/4 model] rendered in {stats["seconds"]:.0f} s')
    run = os.path.join(cfg['out'], 'run')
    final = os.path.join(run, 'model.pt')
    if os.path.isfile(final):
        log(f'[1/4 model] {final} exists')
        return final
    from ccl_perception.learning.config import CONFIG_DIR, load_config
    from ccl_perception.learning.trainer import CHECKPOINT_NAME, Trainer
    overrides = [f'data.root={images}', f'train.steps={cfg["train_steps"]}',
                 'train.device=cpu', 'train.image_every=0', 'train.checkpoint_every=100',
                 'train.progress=true']
    resume = 'auto' if os.path.isfile(os.path.join(run, CHECKPOINT_NAME)) else None
    log(f'[1/4 model] training CCL + identical view, {cfg["train_steps"]} steps on the CPU '
        f'-> {run}')
    trainer = Trainer(load_config(CONFIG_DIR / 'ccl_iv.yaml', overrides), run, resume=resume)
    metrics = trainer.run()
    trainer.close()
    log(f'[1/4 model] trained: {metrics.get("final_step")} steps, '
        f'{metrics.get("images_per_s", float("nan")):.1f} images/s')
    return final


def stage_targets(cfg: dict, checkpoint: str):
    """
    Targets of the first ``n_targets`` graspable seen objects, and the scene schedule.

    Returns ``({name: target path}, [(seed, target, present, surface, tags)])``: the scenes of
    ``grasp_trials.benchmark_schedule`` (under ``protocol: visible`` on the held-out tables of
    each target's surface plan).
    """
    from ccl_perception.evaluation.grasp_trials import (benchmark_schedule, MAX_OBJECT_WIDTH,
                                                        target_candidates)
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.sim.auto_targets import make_sim_targets
    from ccl_perception.sim.robot import SimWorld
    out = os.path.join(cfg['out'], 'targets')
    log(f'[2/4 targets] {cfg["target_views"]} reference view(s) per target (top-down first), '
        f'grasp axis from the object mask, calibrated gates {cfg["calibrate_gates"]} -> {out}')
    extractor = DescriptorExtractor(checkpoint, downscale=cfg['downscale'])
    world = SimWorld(world_config(cfg))
    try:
        made = make_sim_targets(world, extractor, out, cfg['n_targets'], MAX_OBJECT_WIDTH,
                                names=target_candidates(world), views=cfg['target_views'],
                                calibrate=cfg['calibrate_gates'])
        if not made:
            raise SystemExit('no object fits the gripper: no targets')
        n = len(made)
        schedule = benchmark_schedule(world, sorted(made), n * cfg['present_per_target'],
                                      n * cfg['absent_per_target'], cfg['scene_seed'])
    finally:
        world.close()
    for name, path in made.items():
        log(f'[2/4 targets] {name}: {path}')
    return made, schedule


#: The demo settings the grasp results depend on (besides the model, checked by identity).
RESULT_KEYS = ('downscale', 'n_targets', 'target_views', 'calibrate_gates', 'protocol',
               'present_per_target', 'absent_per_target', 'scene_seed',
               'min_elevation_deg', 'max_elevation_deg', 'trial_timeout_s', 'planner')


def earlier_trials(path: str, identity: str, cfg: dict):
    """
    Return the trials of ``results.json`` if the same model and settings made them, else None.

    An ``--out`` folder of an earlier run with another ``--checkpoint`` (or other settings)
    must not have its results reported under this model's name.
    """
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            saved = json.load(f)
        same = (saved.get('model_identity') == identity
                and all(saved['config'].get(k) == cfg[k] for k in RESULT_KEYS))
        trials = saved['trials']
    except (ValueError, KeyError, TypeError, AttributeError):
        same = False
    if not same:
        log(f'[3/4 grasp] {path} is from another model or other settings: running the scenes '
            'again')
        return None
    log(f'[3/4 grasp] {path} exists for this model ({len(trials)} scenes; delete it to run '
        'them again)')
    return trials


def stage_grasp(cfg: dict, checkpoint: str, target_paths: dict, schedule: list) -> list:
    """Every scene of ``schedule`` through the ROS 2 nodes; ``<out>/results.json``."""
    from ccl_perception.checkpoint import load_checkpoint, model_identity
    from ccl_perception.ros_trial_runner import RosTrialRunner
    from ccl_perception.sim.auto_targets import save_png
    path = os.path.join(cfg['out'], 'results.json')
    identity = model_identity(load_checkpoint(checkpoint))
    trials = earlier_trials(path, identity, cfg)
    if trials is not None:
        return trials
    log('[3/4 grasp] starting the ROS 2 nodes: sim_world, grasp_planner, grasp_executor (sim)')
    runner = RosTrialRunner(checkpoint, os.path.dirname(next(iter(target_paths.values()))),
                            world_config(cfg), downscale=cfg['downscale'], planner=cfg['planner'])
    trials = []
    img_dir = os.path.join(cfg['out'], 'heatmaps')
    shutil.rmtree(img_dir, ignore_errors=True)  # pictures of an earlier run would be mixed in
    os.makedirs(img_dir)
    try:
        for i, (seed, name, present, surface, tags) in enumerate(schedule):
            t = runner.trial(name, present, cfg['trial_timeout_s'], seed, surface)
            t['tags'] = list(tags)
            rgb = t.pop('heatmap_rgb', None)
            if rgb is not None:  # the planner's ~/heatmap of the scene's first frame
                t['heatmap'] = os.path.join(img_dir, f'{i:03d}_{name}_{t["outcome"]}.png')
                save_png(t['heatmap'], rgb)
            trials.append(t)
            g = t.get('grasp') or {}
            log(f'[3/4 grasp] scene {i + 1}/{len(schedule)} target {name} '
                f'{"present" if t["present"] else "ABSENT "} on {surface or "the training table"}'
                f': {t["outcome"]:<18} {g.get("reason", t.get("planner", ""))}')
    finally:
        runner.close()
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'config': cfg, 'checkpoint': checkpoint, 'model_identity': identity,
                   'trials': trials}, f, indent=1)
    return trials


def trial_picture(trial: dict, target_dir: str):
    """
    Return the report picture of a trial, or None.

    Reference view with its grasp axis | live view with the heatmaps and the executed gripper
    pose (the planner's ``~/heatmap``).
    """
    import cv2
    ref = os.path.join(target_dir, f'{trial["target"]}_reference.png')
    live = trial.get('heatmap')
    if not (os.path.isfile(ref) and live and os.path.isfile(live)):
        return None
    a, b = cv2.imread(ref), cv2.imread(live)
    if a is None or b is None:
        return None
    if b.shape[0] != a.shape[0]:  # same height, aspect kept (a holds one picture per view)
        b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]))
    return np.hstack([a, b])


def stage_report(cfg: dict, trials: list, checkpoint: str) -> str:
    """``<out>/report.md``: the success table and one picture per trial."""
    import cv2
    from ccl_perception.evaluation.grasp_trials import format_table, summarise
    summary = summarise([t for t in trials if t['outcome'] != 'timeout'])
    timeouts = sum(t['outcome'] == 'timeout' for t in trials)
    target_dir = os.path.join(cfg['out'], 'targets')
    path = os.path.join(cfg['out'], 'report.md')
    lines = ['# ccl_perception demo: grasping in simulation', '',
             f'Model: `{checkpoint}`. Pipeline: sim camera (640x480, benchmark v2 grasp world) -> '
             'grasp planner -> simulated Panda, over ROS 2 topics and services. Cluttered scenes '
             f'seen from {cfg["min_elevation_deg"]:.0f}-{cfg["max_elevation_deg"]:.0f} deg '
             f'elevation, protocol {cfg["protocol"]!r}'
             + (' (every present target in view and graspable, held-out table photos incl. '
                'target-coloured and glossy ones)' if cfg['protocol'] == 'visible' else '')
             + f'; each target has {cfg["target_views"]} reference view(s) (top-down first), '
             + ('calibrated similarity gates.' if cfg['calibrate_gates']
                else "the planner's global similarity gate."), '',
             format_table({'demo': summary}), '',
             f'{summary["grasped"]} of {summary["present_scenes"]} scenes with the target grasped '
             f'({summary["abstained"]} abstentions, {summary["failed_grasps"]} failed grasps); '
             f'{summary["false_grasps"]} false grasps in {summary["absent_scenes"]} scenes '
             'without it.'
             + (f' {timeouts} scenes timed out.' if timeouts else ''), '',
             'Per scene: the table, the outcome, and why: the grasp report (executed grasps) or '
             "the planner's reason for abstaining (its `~/status`).", '',
             '| # | target | present | table | outcome | why |', '|---|---|---|---|---|---|']
    for i, t in enumerate(trials):
        g = t.get('grasp') or {}
        why = str(g.get('reason', t.get('planner', ''))).replace('|', '/')[:240]
        table = (t.get('surface') or 'training table') + ''.join(
            f' ({tag})' for tag in t.get('tags', []))
        lines.append(f"| {i} | {t['target']} | {t['present']} | {table} | {t['outcome']} | "
                     f'{why} |')
    lines += ['', '## Trials', '',
              "Left: the target's top-down reference view with its two grasp-axis points (green) "
              'and the extra points of the 3D check (cyan). Right: the live view as the planner '
              'publishes it on `~/heatmap` (red: the two grasp-keypoint heatmaps, green crosses: '
              'the matched keypoints, cyan/yellow: the gripper pose that was executed).', '']
    pic_dir = os.path.join(cfg['out'], 'pictures')
    shutil.rmtree(pic_dir, ignore_errors=True)
    os.makedirs(pic_dir)
    shown = 0
    for i, t in enumerate(trials):
        if shown >= cfg['report_images']:
            break
        pic = trial_picture(t, target_dir)
        if pic is None:
            continue
        pic_path = os.path.join(pic_dir, f'{i:03d}_{t["target"]}_{t["outcome"]}.png')
        cv2.imwrite(pic_path, pic)
        lines += [f"![{t['target']} {t['outcome']}]({os.path.relpath(pic_path, cfg['out'])})  ",
                  f"scene {i}: {t['target']} ({'present' if t['present'] else 'absent'}): "
                  f"**{t['outcome']}**", '']
        shown += 1
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print()
    print(format_table({'demo': summary}))
    print()
    log(f'[4/4 report] {path}')
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--checkpoint', help='use this model (default: the shipped one)')
    ap.add_argument('--train', action='store_true',
                    help='train a short model here first and use it')
    ap.add_argument('--out', help='output folder (default from config/demo.yaml)')
    ap.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                    help='override a key of config/demo.yaml (repeatable)')
    args = ap.parse_args(argv)
    try:
        cfg = load_demo_config(args.overrides)
    except (ValueError, OSError) as e:
        print(f'demo: error: {e}', file=sys.stderr)
        return 2
    if args.checkpoint:
        cfg['checkpoint'] = args.checkpoint
    if args.train:
        cfg['train'] = True
    if args.out:
        cfg['out'] = args.out
    os.makedirs(cfg['out'], exist_ok=True)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    t0 = time.monotonic()
    checkpoint = stage_model(cfg)
    targets, schedule = stage_targets(cfg, checkpoint)
    trials = stage_grasp(cfg, checkpoint, targets, schedule)
    stage_report(cfg, trials, checkpoint)
    log(f'done in {time.monotonic() - t0:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
