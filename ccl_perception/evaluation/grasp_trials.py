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
Grasp trials in simulation: the scene schedule, outcome labels, summaries, the benchmark.

ROS-free: :func:`run_trials_in_process` runs reset -> render -> ``GraspPipeline`` -> simulated
Panda in one process (``training/grasp_benchmark.py``, paper Table II); the demo runs the same
schedule over ROS 2 (``ccl_perception.ros_trial_runner``) and scores it with the same
:func:`classify` / :func:`summarise`.
"""
from __future__ import annotations

import json
import logging
import os
import time

from ccl_perception.sim.auto_targets import (make_sim_targets, object_frame_points, oracle_pose,
                                             save_png)
import numpy as np

LOG = logging.getLogger(__name__)

#: Widest object short side (m) that gets a target: the Franka's 8 cm stroke minus a margin.
MAX_OBJECT_WIDTH = 0.075


def classify(present: bool, executed: bool, success: bool) -> str:
    """
    Outcome label of one scene.

    present: ``grasped`` | ``failed_grasp`` | ``abstained``;
    absent: ``correct_abstention`` | ``false_grasp`` (a grasp was attempted at all).
    """
    if present:
        return 'abstained' if not executed else ('grasped' if success else 'failed_grasp')
    return 'false_grasp' if executed else 'correct_abstention'


def summarise(trials: list) -> dict:
    """Success rate over present scenes, abstentions, false grasps over absent scenes."""
    pres = [t for t in trials if t['present']]
    absn = [t for t in trials if not t['present']]
    def n(lst, o): return sum(t['outcome'] == o for t in lst)  # noqa: E731
    return {
        'present_scenes': len(pres), 'grasped': n(pres, 'grasped'),
        'failed_grasps': n(pres, 'failed_grasp'), 'abstained': n(pres, 'abstained'),
        'success_rate': n(pres, 'grasped') / len(pres) if pres else float('nan'),
        'success_rate_when_attempted': (
            n(pres, 'grasped') / max(1, len(pres) - n(pres, 'abstained'))
            if pres else float('nan')),
        'absent_scenes': len(absn), 'false_grasps': n(absn, 'false_grasp'),
        'correct_abstentions': n(absn, 'correct_abstention'),
        'false_grasp_rate': n(absn, 'false_grasp') / len(absn) if absn else float('nan'),
    }


def format_table(rows: dict) -> str:
    """Markdown table of several summaries ``{label: summarise(...)}``."""
    head = ('| run | grasped / present | success rate | abstained | failed grasps | '
            'false grasps / absent |\n|---|---|---|---|---|---|\n')
    lines = []
    for label, s in rows.items():
        lines.append(f"| {label} | {s['grasped']}/{s['present_scenes']} | "
                     f"{100 * s['success_rate']:.0f} % | {s['abstained']} | "
                     f"{s['failed_grasps']} | "
                     f"{s['false_grasps']}/{s['absent_scenes']} |")
    return head + '\n'.join(lines)


def run_trials_in_process(world, pipeline, library: dict, schedule, heatmap_dir=None,
                          progress=True, executor=None) -> list:
    """
    Run the benchmark's ROS-free loop: reset -> render -> GraspPipeline -> sim executor.

    Args:
        world: :class:`ccl_perception.sim.robot.SimWorld`.
        pipeline: :class:`ccl_perception.grasp_pipeline.GraspPipeline`.
        library: ``{name: Target}``.
        schedule: ``[(seed, target, present[, surface, tags])]``
            (``grasp_protocol.schedule``).
        heatmap_dir: folder for one heatmap picture per trial (``<i>_<target>_<outcome>.png``,
            the matched keypoints and the planned grasp drawn on the live view); None: none.
        progress: log one line per trial.
        executor: ``executors.sim_executor.world_executor(world)`` (made here if None).
    """
    from ccl_perception.executors.sim_executor import world_executor
    from ccl_perception.image_conversion import draw_grasp, heatmap_overlay
    from ccl_perception.sim.robot import CAMERA_FRAME
    executor = executor or world_executor(world)
    trials = []
    for i, (seed, name, present, *scene) in enumerate(schedule):
        surface, tags = (scene + [None, ()])[:2]
        info = world.reset(seed, target=name, target_present=present, surface=surface)
        frame = world.render()
        t0 = time.perf_counter()
        res = pipeline.frame_to_pose(frame.rgb, frame.depth, info.camera.K, library[name])
        t_plan = time.perf_counter() - t0
        trial = {'seed': seed, 'target': name, 'present': bool(info.target_present),
                 'objects': info.objects, 'surface': info.surface, 'tags': list(tags),
                 'arrangement': info.attempt, 'rejected_arrangements': info.rejected,
                 'confidence': float(res.confidence),
                 'similarity': (float(res.match.peak_similarity[:2].min())
                                if res.match is not None else float('nan')),
                 'similarities': ([] if res.match is None
                                  else res.match.peak_similarity[:2].round(4).tolist()),
                 'gate': None if res.gate is None else res.gate.round(4).tolist(),
                 'view': res.view, 'inliers': res.inliers,
                 'planner': res.reason, 'plan_s': t_plan}
        executed, success = False, False
        if res.ok:
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = res.pose.rotation, res.pose.position
            g = executor.execute(T, CAMERA_FRAME)
            executed, success = True, bool(g.success)
            trial['grasp'] = g.to_dict()
        trial['outcome'] = classify(trial['present'], executed, success)
        if heatmap_dir is not None and res.match is not None:
            os.makedirs(heatmap_dir, exist_ok=True)
            path = os.path.join(heatmap_dir, f'{i:03d}_{name}_{trial["outcome"]}.png')
            image = heatmap_overlay(frame.rgb, res.match.heatmaps, res.match.keypoints)
            if res.ok:
                image = draw_grasp(image, info.camera.K, res.pose.position, res.pose.rotation,
                                   res.pose.width)
            save_png(path, image)
            trial['heatmap'] = path
        trials.append(trial)
        if progress:
            LOG.info(f'scene {i + 1}/{len(schedule)} seed {seed} target {name} '
                     f'{"present" if present else "ABSENT"}: {trial["outcome"]} '
                     f'(confidence {res.confidence:.2f}; {res.reason if not res.ok else "pose"})')
    return trials


def target_candidates(world) -> list:
    """
    Object names of ``world`` that may become targets, in catalogue order.

    Benchmark v2: the objects its selection marks graspable by a parallel gripper
    (``benchmark_v2.yaml``); v1: every object (too wide ones are skipped when the target is
    made, from the measured reference view).
    """
    if getattr(world.cfg, 'benchmark', 'v1') != 'v2':
        return list(world.object_names)
    from ccl_perception.sim.catalogue_v2 import load_selection
    graspable = {e.key for e in load_selection().objects if e.graspable}
    return [n for n in world.object_names if n in graspable]


def benchmark_world_config(benchmark: str, min_elevation: float, max_elevation: float,
                           protocol: str = 'placed'):
    """
    ``SimWorldConfig`` of the grasp benchmark on ``benchmark`` ('v2': D435 640x480 world).

    ``protocol``: ``ccl_perception.evaluation.grasp_protocol.PROTOCOLS`` ('visible' needs v2:
    its held-out table photos).
    """
    from ccl_perception.evaluation.grasp_protocol import world_fields
    from ccl_perception.sim.robot import SimWorldConfig
    fields = world_fields(protocol)
    if benchmark == 'v2':
        from ccl_perception.sim.grasp_scene import v2_world_config
        return v2_world_config(camera_elevation_deg=(min_elevation, max_elevation), **fields)
    if benchmark == 'v1':
        if protocol != 'placed':
            raise ValueError(f'protocol {protocol!r} needs benchmark v2 (held-out table photos); '
                             "v1 has only 'placed'")
        return SimWorldConfig(camera_elevation_deg=(min_elevation, max_elevation))
    raise ValueError(f"benchmark must be 'v1' or 'v2', got {benchmark!r}")


def benchmark_schedule(world, names, grasps: int, absent: int, seed: int) -> list:
    """
    Return the benchmark's scenes: ``grasp_protocol.schedule`` over ``names``.

    Under the 'visible' protocol (the world has held-out ``surfaces``) with the surface plan of
    the targets; else on the world's own table.
    """
    from ccl_perception.evaluation import grasp_protocol as gp
    plan = None
    if world.cfg.surfaces:
        plan = gp.surface_plan(world, names, world.cfg.surfaces, gp.glossy_surfaces(), seed)
    return gp.schedule(names, grasps, absent, seed, plan)


def run_oracle(world, executor, schedule) -> list:
    """
    Run the oracle on the present scenes of ``schedule`` (executor ceiling); its trials.

    The true reference axis moved with the object's true pose, approach straight down
    (``auto_targets.oracle_pose``); it abstains when an axis point is hidden.
    """
    from ccl_perception.sim.robot import CAMERA_FRAME
    names = sorted({item[1] for item in schedule})
    gt = {n: object_frame_points(world, n) for n in names}
    out = []
    for seed, name, present, *scene in schedule:
        if not present:
            continue
        info = world.reset(seed, target=name, target_present=True, surface=(scene or [None])[0])
        T = oracle_pose(world, name, gt[name], world.render().depth)
        g = None if T is None else executor.execute(T, CAMERA_FRAME)
        out.append({'seed': seed, 'present': info.target_present, 'target': name,
                    'surface': info.surface,
                    'outcome': classify(info.target_present, g is not None,
                                        g is not None and g.success),
                    'grasp': None if g is None else g.to_dict()})
    return out


def run_grasp_benchmark(checkpoint: str, grasps: int = 30, absent: int = 10, n_targets: int = 4,
                        out_dir: str = 'grasp_benchmark', min_elevation: float = 35.0,
                        max_elevation: float = 65.0, oracle: bool = True, seed: int = 5000,
                        planner_config=None, benchmark: str = 'v2', downscale: int = 2,
                        features: str = 'head', protocol: str = 'visible', views: int = 1,
                        calibrate: bool = True) -> dict:
    """
    Run the in-process grasp benchmark (no ROS, paper Table II).

    ``grasps`` cluttered scenes with the target seen from oblique viewpoints (elevation
    ``min..max`` degrees vs. the top-down reference) and ``absent`` scenes without it.

    Args:
        checkpoint: the model (``features='backbone'``: its trunk only, the
            pretrained-features row).
        benchmark: 'v2' (D435 640x480 world, ``downscale`` 2 for a 320x240 model) or 'v1'.
        protocol: 'visible' (every present target in view and graspable, held-out and glossy
            tables; ``grasp_protocol``) or 'placed' (the benchmark before issue 18).
        views: reference views per target (1: top-down; 2-4: and oblique ones,
            ``auto_targets.REFERENCE_VIEWS``).
        calibrate: store each view's calibrated similarity gate in the target
            (``ccl_perception.target_gates``); the planner uses it unless
            ``per_target_gates`` is off.
        planner_config: grasp pipeline overrides.

    Returns:
        ``{'results': {'model': summary, 'oracle keypoints (executor ceiling)': summary}, ...}``;
        the same seed gives the same trials (every scene is restored from a snapshot).
    """
    from ccl_perception import targets as tg
    from ccl_perception.executors.sim_executor import world_executor
    from ccl_perception.grasp_pipeline import GraspPipeline
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.sim.robot import SimWorld

    extractor = DescriptorExtractor(checkpoint, downscale=downscale, features=features)
    world = SimWorld(benchmark_world_config(benchmark, min_elevation, max_elevation, protocol))
    executor = world_executor(world)
    try:
        tdir = os.path.join(out_dir, f'targets_{views}view' + ('' if calibrate else '_nogate'))
        paths = make_sim_targets(world, extractor, tdir, n_targets, MAX_OBJECT_WIDTH,
                                 names=target_candidates(world), views=views,
                                 calibrate=calibrate)
        library = {n: tg.load_target(p, str(extractor.identity)) for n, p in paths.items()}
        names = sorted(library)
        sched = benchmark_schedule(world, names, grasps, absent, seed)
        pipeline = GraspPipeline(extractor, planner_config)
        LOG.info(f'benchmark: {grasps} scenes with the target, {absent} without; targets {names}')
        t0 = time.perf_counter()
        trials = run_trials_in_process(world, pipeline, library, sched,
                                       heatmap_dir=os.path.join(out_dir, 'heatmaps'),
                                       executor=executor)
        wall = time.perf_counter() - t0
        results = {'model': summarise(trials)}
        per_target = {n: summarise([t for t in trials if t['target'] == n]) for n in names}
        per_tag = {tag: summarise([t for t in trials if tag in t['tags']])
                   for tag in ('target-coloured', 'glossy')
                   if any(tag in t['tags'] for t in trials)}
        o_trials = run_oracle(world, executor, sched) if oracle else []
        if oracle:
            results['oracle keypoints (executor ceiling)'] = summarise(o_trials)
        report = {'checkpoint': checkpoint, 'features': features, 'benchmark': benchmark,
                  'protocol': protocol, 'views': views, 'calibrated_gates': calibrate,
                  'downscale': downscale, 'planner': planner_config or {}, 'seed': seed,
                  'results': results, 'per_target': per_target, 'per_tag': per_tag,
                  'trials': trials, 'oracle_trials': o_trials, 'seconds': wall,
                  'targets': {n: target_summary(library[n]) for n in names},
                  'image_size': [world.cfg.width, world.cfg.height],
                  'elevation_deg': [min_elevation, max_elevation]}
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, 'results.json'), 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=1, default=str)
        return report
    finally:
        world.close()


def target_summary(target) -> dict:
    """
    Summarise a target for a benchmark report: views, points, gates and their statistics.

    ``calibration`` holds each view's ``[positive, negative]`` (A, N) lists (None when the
    view has none), so another gate rule can be scored on the recorded trials
    (``training/choose_thresholds.py --gates``).
    """
    def stats(v):
        if v.calibration_pos is None or v.calibration_neg is None:
            return None
        return [np.asarray(v.calibration_pos).tolist(), np.asarray(v.calibration_neg).tolist()]
    return {'views': len(target.views), 'points': [len(v.pixels) for v in target.views],
            'min_similarity': [None if v.gate is None else v.gate.tolist()
                               for v in target.views],
            'calibration': [stats(v) for v in target.views]}
