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

"""``make demo``: render -> train -> targets -> ROS 2 grasping in simulation -> report.

    python -m ccl_perception.demo [--out demo_output] [--checkpoint ck.pt] [--steps 300]

Stages (each is skipped when its output already exists, so a second run is quick):

1. **render**  ``<out>/train_images``: synthetic unordered RGB frames of the training objects
   (``ccl_perception.sim.dataset.render_training_set``).
2. **train**   ``<out>/run/model.pt``: a short CPU schedule of ``ccl_iv`` (CCL + identical view,
   Eq. 9 + Eq. 10) from the ImageNet EfficientNet-Lite0 via ``ccl_perception.learning.trainer``;
   ``--checkpoint`` reuses an existing model instead.
3. **targets** ``<out>/targets/<name>.npz``: the paper's single top-down reference view per
   object; the two grasp-axis pixels are picked automatically from the object's
   segmentation mask (principal axis; the short side for a parallel gripper), plus three
   more points along the long side for the robust 3D fit (``ccl_perception.targets``).
4. **grasp**   ``<out>/results.json``: the ROS 2 pipeline -- sim world node (camera) ->
   grasp planner node (descriptors, matching, 6D pose) -> grasp executor node (simulated
   Panda) -- over cluttered scenes from random oblique viewpoints, including scenes without
   the target (every grasp there is a false grasp). Nodes talk over DDS inside this process
   (started from the same table as ``bringup``).
5. **report**  ``<out>/report.md`` with the success rate, abstentions and heatmap images.

No rclpy at import time: :func:`auto_grasp_pixels`, :func:`make_sim_targets` and
:func:`run_trials_in_process` are shared with ``training/grasp_benchmark.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

#: Every knob of the demo, with its default.
DEFAULTS = {
    'out': 'demo_output',          # folder for all outputs
    'num_images': 200,             # rendered training frames (320x240)
    # training steps (batch 4, 160x120: 1.7-9 s/step on a shared 2-core CPU)
    'steps': 200,
    'method': 'ccl_iv',            # training method (ccl_perception.learning)
    'lr': 3.0e-4,                  # AdamW learning rate of the short schedule
    'train_size': [160, 120],      # training resolution (width, height): a CPU budget
    'camera_size': [160, 120],     # sim camera (width, height); keep = train_size (object scale)
    'num_keypoints': 200,          # query keypoints per image (paper: 500)
    'threads': 2,                  # torch CPU threads for training
    'checkpoint': '',              # use this model instead of training
    'n_targets': 4,                # objects to make targets for
    'max_object_width': 0.075,     # m: only objects whose short side fits the 8 cm gripper
    'present_per_target': 3,       # cluttered scenes with the target
    'absent_per_target': 1,        # scenes without it (false-grasp test)
    'scene_seed': 1000,            # first scene seed (disjoint from rendering seeds)
    'trial_timeout_s': 40.0,       # per scene: wait for the planner's first frame
    'report_images': 8,            # heatmap images in the report
}


def log(msg: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


# ------------------------------------------------------------------------------------------
# Targets from the reference view
# ------------------------------------------------------------------------------------------
def auto_grasp_pixels(mask: np.ndarray, inset: float = 0.6, n_extra: int = 3) -> np.ndarray:
    """Grasp-axis pixels of an object from its segmentation mask.

    Principal component analysis of the mask pixel coordinates: the minor axis through the
    centroid is the grasp axis (a parallel gripper closes across the short side). Points 1
    and 2 are at ``inset`` of the way from the centroid to the mask border along that axis
    (inside the object, on its top surface in a top-down view); ``n_extra`` further points
    (centroid, then +-half the long extent) help the robust 3D fit.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(2 + n_extra, 2)`` float pixels ``(x, y)``, all inside the mask.

    Raises:
        ValueError: fewer than 20 mask pixels.
    """
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
    if len(xs) < 20:
        raise ValueError(f'object mask has only {len(xs)} pixels: not visible enough for a target')
    pts = np.stack([xs, ys], 1).astype(np.float64)
    c = pts.mean(0)
    evals, evecs = np.linalg.eigh(np.cov((pts - c).T))
    minor, major = evecs[:, 0], evecs[:, 1]
    t_minor = (pts - c) @ minor
    t_major = (pts - c) @ major
    cand = [c + inset * t_minor.min() * minor, c + inset * t_minor.max() * minor, c,
            c + 0.5 * inset * t_major.min() * major, c + 0.5 * inset * t_major.max() * major]
    out = []
    m = np.asarray(mask, dtype=bool)
    for q in cand[:2 + n_extra]:
        # snap to the nearest mask pixel (concave shapes)
        xi, yi = int(round(q[0])), int(round(q[1]))
        if not (0 <= yi < m.shape[0] and 0 <= xi < m.shape[1] and m[yi, xi]):
            q = pts[int(np.argmin(np.linalg.norm(pts - q, axis=1)))]
        out.append(q)
    return np.asarray(out)


def object_short_side(depth: np.ndarray, mask: np.ndarray, K: np.ndarray) -> float:
    """Width in metres of a top-down-viewed object across its minor axis (from depth)."""
    from ccl_perception import geometry
    pts = geometry.depth_to_points(depth, K, np.asarray(mask, bool))
    if len(pts) < 10:
        return float('inf')
    xy = pts[:, :2] - pts[:, :2].mean(0)
    _, evecs = np.linalg.eigh(np.cov(xy.T))
    t = xy @ evecs[:, 0]
    return float(t.max() - t.min())


def graspable_width(spec) -> float:
    """Middle extent (m) of a catalogue object: what a top-down parallel grasp must span when
    the object rests on its largest face (0 for library meshes: measured from the view)."""
    if spec.shape == 'box':
        return float(sorted(spec.size)[1])
    if spec.shape == 'cylinder':
        return float(sorted([2 * spec.size[0], 2 * spec.size[0], spec.size[1]])[1])
    if spec.shape == 'ellipsoid':
        return float(sorted(2 * np.asarray(spec.size))[1])
    return 0.0


def make_sim_targets(world, extractor, out_dir: str, n_targets: int, max_width: float,
                     names=None, seed: int = 0) -> dict:
    """Create (or reuse) target files for objects of ``world`` from top-down reference views.

    Objects too wide for the gripper (short side > ``max_width`` m) are skipped. A target
    file that exists and was made by the same model is reused.

    Returns:
        ``{name: path}`` of at most ``n_targets`` targets.
    """
    from ccl_perception import targets as tg
    os.makedirs(out_dir, exist_ok=True)
    made = {}
    for name in (names or world.object_names):
        if len(made) >= n_targets:
            break
        path = os.path.join(out_dir, f'{name}.npz')
        if os.path.exists(path):
            try:
                t = tg.load_target(path, str(extractor.identity))
                if tuple(t.image_size) != (world.cfg.height, world.cfg.width):
                    raise tg.TargetError(f'reference is {t.image_size[1]}x{t.image_size[0]} px, '
                                         f'the camera {world.cfg.width}x{world.cfg.height}')
                made[name] = path
                log(f'target {name}: exists ({path})')
                continue
            except tg.TargetError as e:
                log(f'target {name}: re-creating ({e})')
        spec_width = graspable_width(world.scene.specs[name])
        if spec_width > max_width + 0.005:
            log(f'target {name}: skipped, {spec_width * 100:.1f} cm across in most resting poses')
            continue
        render, cam = world.reference_view(name, seed=seed)
        mask = render.segmentation == world.body(name)
        width = object_short_side(render.depth, mask, cam.K)
        if width > max_width:
            log(f'target {name}: skipped, short side {width * 100:.1f} cm > {max_width * 100:.1f} cm')
            continue
        try:
            pixels = auto_grasp_pixels(mask)
            target = tg.make_target(
                extractor,
                render.rgb,
                pixels,
                name,
                depth=render.depth,
                K=cam.K)
        except ValueError as e:
            log(f'target {name}: skipped ({e})')
            continue
        tg.save_target(path, target)
        _save_png(os.path.join(out_dir, f'{name}_reference.png'), _draw_points(render.rgb, pixels))
        made[name] = path
        log(f'target {name}: axis {target.axis_length * 100:.1f} cm, short side {width * 100:.1f} cm')
    return made


def _draw_points(rgb, pixels):
    import cv2
    img = np.ascontiguousarray(rgb.copy())
    p = np.round(pixels).astype(int)
    cv2.line(img, tuple(p[0]), tuple(p[1]), (0, 0, 255), 1)
    for i, q in enumerate(p):
        cv2.circle(img, tuple(q), 3, (0, 255, 0) if i < 2 else (255, 255, 0), -1)
    return img


def _save_png(path, rgb):
    import cv2
    cv2.imwrite(path, cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))


# ------------------------------------------------------------------------------------------
# Trials: the scene schedule, in-process (benchmark) and over ROS 2 (demo)
# ------------------------------------------------------------------------------------------
def trial_schedule(target_names, present_per_target: int, absent_per_target: int, seed0: int):
    """``[(seed, target, present)]``: for each target its present scenes, then absent ones."""
    out, s = [], int(seed0)
    for name in target_names:
        for present in [True] * present_per_target + [False] * absent_per_target:
            out.append((s, name, present))
            s += 1
    return out


def classify(present: bool, executed: bool, success: bool) -> str:
    """Outcome label of one scene.

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
        'success_rate_when_attempted': (n(pres, 'grasped') / max(1, len(pres) - n(pres, 'abstained'))
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
                     f"{100 * s['success_rate']:.0f} % | {s['abstained']} | {s['failed_grasps']} | "
                     f"{s['false_grasps']}/{s['absent_scenes']} |")
    return head + '\n'.join(lines)


def run_trials_in_process(world, pipeline, library: dict, schedule, heatmap_dir=None,
                          progress=True, executor=None) -> list:
    """The benchmark's ROS-free loop: reset -> render -> GraspPipeline -> sim executor.

    Args:
        world: :class:`ccl_perception.sim.robot.SimWorld`.
        pipeline: :class:`ccl_perception.grasp_pipeline.GraspPipeline`.
        library: ``{name: Target}``.
        schedule: :func:`trial_schedule` output.
        executor: ``executors.sim_executor.world_executor(world)`` (made here if None).
    """
    from ccl_perception.executors.sim_executor import world_executor
    from ccl_perception.image_conversion import heatmap_overlay
    from ccl_perception.sim.robot import CAMERA_FRAME
    executor = executor or world_executor(world)
    trials = []
    for i, (seed, name, present) in enumerate(schedule):
        info = world.reset(seed, target=name, target_present=present)
        frame = world.render()
        t0 = time.perf_counter()
        res = pipeline.frame_to_pose(frame.rgb, frame.depth, info.camera.K, library[name])
        t_plan = time.perf_counter() - t0
        trial = {'seed': seed, 'target': name, 'present': bool(info.target_present),
                 'objects': info.objects, 'confidence': float(res.confidence),
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
            _save_png(path, heatmap_overlay(frame.rgb, res.match.heatmaps, res.match.keypoints))
            trial['heatmap'] = path
        trials.append(trial)
        if progress:
            log(f'scene {i + 1}/{len(schedule)} seed {seed} target {name} '
                f'{"present" if present else "ABSENT"}: {trial["outcome"]} '
                f'(confidence {res.confidence:.2f}; {res.reason if not res.ok else "pose"})')
    return trials


class RosTrialRunner:
    """Drives the ROS 2 nodes of one process: the demo's grasp stage.

    Starts sim world (+ hosted sim executor) and grasp planner from ``bringup.node_specs``
    and a client node, spun by one ``nodes.NodeRunner`` (a single-threaded executor on a
    background thread); per scene: set the target parameters, call ``/sim_world/reset``,
    take the planner's first frame after the reset (its ``~/heatmap`` carries the frame
    stamp), and if a ``grasp_pose`` with that stamp arrives start it with
    ``/grasp_executor/execute`` and wait for its outcome on ``/grasp_executor/result``.
    """

    def __init__(self, checkpoint: str, target_dir: str, image_size=(320, 240)):
        from geometry_msgs.msg import PoseStamped
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from ccl_perception import bringup
        from ccl_perception import nodes as n

        self._Parameter, self._Trigger = Parameter, Trigger
        specs = [s for s in bringup.node_specs({'checkpoint': checkpoint, 'target_dir': target_dir,
                                                'sim': 'true', 'executor_backend': 'sim'})
                 if s.name not in ('descriptor_node', 'target_maker')]  # not needed: saves CPU
        for s in specs:
            if s.name == 'sim_world':  # the camera at the resolution the model was trained at
                s.parameters.update(width=int(image_size[0]), height=int(image_size[1]))
        self.heatmaps, self.poses, self.status, self.results = [], [], [], []

        def factory(context):
            nodes = bringup.create_nodes(specs, context=context)
            nodes['grasp_executor'].set_parameters([Parameter('auto_execute', value=False)])
            client = nodes['ccl_demo'] = rclpy_create_node('ccl_demo', context)
            client.create_subscription(Image, n.private('grasp_planner', n.HEATMAP_TOPIC),
                                       self.heatmaps.append, n.OUTPUT_QOS)
            client.create_subscription(
                PoseStamped,
                '/' + n.GRASP_POSE_TOPIC,
                self.poses.append,
                10)
            client.create_subscription(String, n.private('grasp_planner', n.STATUS_TOPIC),
                                       lambda m: self.status.append(m.data), n.STATUS_QOS)
            client.create_subscription(String, n.private('grasp_executor', n.RESULT_TOPIC),
                                       lambda m: self.results.append(json.loads(m.data)),
                                       n.LATCHED_QOS)
            self.reset_cli = client.create_client(Trigger, n.private('sim_world', n.RESET_SERVICE))
            self.exec_cli = client.create_client(Trigger, n.private('grasp_executor',
                                                                    n.EXECUTE_SERVICE))
            return nodes

        def rclpy_create_node(name, context):
            import rclpy
            return rclpy.create_node(name, context=context)

        self.runner = n.NodeRunner(factory)
        self.nodes = self.runner.nodes
        self.runner.spin_in_background()
        for cli in (self.reset_cli, self.exec_cli):
            if not cli.wait_for_service(timeout_sec=30.0):
                raise RuntimeError(f'service {cli.srv_name} not available')

    def _call(self, cli, timeout: float):
        fut = cli.call_async(self._Trigger.Request())
        end = time.monotonic() + timeout
        while not fut.done():
            if time.monotonic() > end:
                raise RuntimeError(f'{cli.srv_name} did not answer within {timeout:.0f} s')
            time.sleep(0.02)
        return fut.result()

    def trial(self, name: str, present: bool, timeout: float, seed: int) -> dict:
        from ccl_perception import image_conversion as ic
        P = self._Parameter
        res = self.nodes['grasp_planner'].set_parameters([P('target', value=name)])[0]
        if not res.successful:
            raise RuntimeError(f'planner refused target {name!r}: {res.reason}')
        self.nodes['sim_world'].set_parameters([P('target', value=name), P('seed', value=int(seed)),
                                                P('target_present', value=bool(present))])
        resp = self._call(self.reset_cli, 30.0)
        if not resp.success:
            raise RuntimeError(f'reset failed: {resp.message}')
        scene = json.loads(resp.message)
        t_scene = int(scene['camera_stamp_ns'])
        def stamp(m): return m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec  # noqa: E731
        end = time.monotonic() + timeout
        hm = None
        while time.monotonic() < end and hm is None:
            hm = next((m for m in list(self.heatmaps) if stamp(m) >= t_scene), None)
            time.sleep(0.02)
        trial = {'seed': scene['seed'], 'target': name, 'present': bool(scene['target_present']),
                 'objects': scene['objects']}
        if hm is None:
            trial.update(outcome='timeout', planner=(
                self.status[-1] if self.status else 'no status'))
            return trial
        s_frame = stamp(hm)
        trial['heatmap_rgb'] = ic.image_to_numpy(hm, 'rgb8')
        pose = None
        end = time.monotonic() + 1.0
        while time.monotonic() < end and pose is None:
            pose = next((m for m in list(self.poses) if stamp(m) == s_frame), None)
            time.sleep(0.02)
        executed, success = False, False
        if pose is None:
            trial['planner'] = next((s for s in reversed(self.status) if s.startswith('abstain')),
                                    'abstained')
        else:
            trial['planner'] = 'pose'
            g = self._execute()
            if g is None:  # the executor never got this scene's pose
                trial.update(outcome='timeout', planner='pose not executed')
                self.heatmaps.clear()
                self.poses.clear()
                return trial
            trial['grasp'] = g
            executed, success = True, bool(g.get('success'))
        self.heatmaps.clear()
        self.poses.clear()
        trial['outcome'] = classify(trial['present'], executed, success)
        return trial

    def _execute(self, timeout: float = 120.0):
        """Start the executor's last pose with ``~/execute`` and wait for the outcome on
        ``~/result`` (None: it was not run)."""
        n_before = len(self.results)
        r = None
        for _ in range(10):  # the executor may not have received this scene's pose yet
            r = self._call(self.exec_cli, 30.0)
            if r.success or not r.message.startswith(('stale', 'no grasp pose')):
                break
            time.sleep(0.2)
        if r is None or not r.success:
            return None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.results) > n_before:
                return self.results[n_before]
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self.runner.close()


def object_frame_points(world, name: str, seed: int = 0) -> np.ndarray:
    """Ground truth for the oracle: the auto grasp pixels of ``name``'s reference view as
    (N, 3) points in the object's own frame (metres)."""
    render, cam = world.reference_view(name, seed=seed)
    mask = render.segmentation == world.body(name)
    px = auto_grasp_pixels(mask)
    z = render.depth[np.round(px[:, 1]).astype(int), np.round(px[:, 0]).astype(int)]
    P_world = cam.backproject(px, z)
    T = world.scene.object_poses([name])[name]
    return (P_world - T[:3, 3]) @ T[:3, :3]


def oracle_pose(world, name: str, P_obj: np.ndarray, depth: np.ndarray, tol: float = 0.005):
    """(4, 4) camera-frame grasp from the TRUE object pose (perfect keypoints): the reference
    axis points moved with the object, approach straight down; None when either axis point
    is hidden in this view (rendered ``depth`` (H, W) m differs from its depth by > ``tol``),
    as a keypoint pipeline could not see it either."""
    from ccl_perception import geometry
    T_obj = world.scene.object_poses([name])[name]
    P_world = P_obj @ T_obj[:3, :3].T + T_obj[:3, 3]
    T_cw = world.camera.camera_from_world
    P_cam = P_world @ T_cw[:3, :3].T + T_cw[:3, 3]
    uv, z = world.camera.project(P_world[:2])
    if not world.camera.in_image(uv).all():
        return None
    d = depth[np.round(uv[:, 1]).astype(int), np.round(uv[:, 0]).astype(int)]
    if not np.all(np.abs(d - z) < tol):
        return None
    down = T_cw[:3, :3] @ np.array([0.0, 0.0, -1.0])
    g = geometry.grasp_from_axis(P_cam[0], P_cam[1], approach_hint=down)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = g.rotation, g.position
    return T


def run_grasp_benchmark(checkpoint: str, grasps: int = 30, absent: int = 10, n_targets: int = 4,
                        out_dir: str = 'grasp_benchmark', min_elevation: float = 35.0,
                        max_elevation: float = 65.0, oracle: bool = True, seed: int = 5000,
                        planner_config=None, image_size=(320, 240)) -> dict:
    """In-process grasp benchmark (no ROS): ``grasps`` cluttered scenes with the target seen
    from oblique viewpoints (elevation ``min..max`` degrees vs. the top-down reference) and
    ``absent`` scenes without it. Returns ``{'model': summary, 'oracle': summary, ...}``."""
    from ccl_perception import targets as tg
    from ccl_perception.executors.sim_executor import world_executor
    from ccl_perception.grasp_pipeline import GraspPipeline
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.sim.robot import CAMERA_FRAME, SimWorld, SimWorldConfig

    extractor = DescriptorExtractor(checkpoint)
    world = SimWorld(SimWorldConfig(camera_elevation_deg=(min_elevation, max_elevation),
                                    width=int(image_size[0]), height=int(image_size[1])))
    executor = world_executor(world)
    try:
        paths = make_sim_targets(world, extractor, os.path.join(out_dir, 'targets'), n_targets,
                                 DEFAULTS['max_object_width'])
        library = {n: tg.load_target(p, str(extractor.identity)) for n, p in paths.items()}
        names = sorted(library)
        # spread the grasps and absent scenes over the targets
        sched, s = [], seed
        for i in range(grasps + absent):
            sched.append((s, names[i % len(names)], i < grasps))
            s += 1
        pipeline = GraspPipeline(extractor, planner_config)
        log(f'benchmark: {grasps} scenes with the target, {absent} without; targets {names}')
        t0 = time.perf_counter()
        trials = run_trials_in_process(world, pipeline, library, sched,
                                       heatmap_dir=os.path.join(out_dir, 'heatmaps'),
                                       executor=executor)
        wall = time.perf_counter() - t0
        results = {'model': summarise(trials)}
        per_target = {n: summarise([t for t in trials if t['target'] == n]) for n in names}
        if oracle:
            gt = {n: object_frame_points(world, n) for n in names}
            o_trials = []
            for seed_i, name, present in sched:
                if not present:
                    continue
                info = world.reset(seed_i, target=name, target_present=True)
                T = oracle_pose(world, name, gt[name], world.render().depth)
                g = None if T is None else executor.execute(T, CAMERA_FRAME)
                o_trials.append({'present': info.target_present, 'target': name,
                                 'outcome': classify(info.target_present, g is not None,
                                                     g is not None and g.success),
                                 'grasp': None if g is None else g.to_dict()})
            results['oracle keypoints (executor ceiling)'] = summarise(o_trials)
        report = {'checkpoint': checkpoint, 'results': results, 'per_target': per_target,
                  'trials': trials, 'seconds': wall, 'image_size': list(image_size),
                  'elevation_deg': [min_elevation, max_elevation]}
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, 'results.json'), 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=1, default=str)
        return report
    finally:
        world.close()


# ------------------------------------------------------------------------------------------
# Stages
# ------------------------------------------------------------------------------------------
def stage_render(cfg: dict) -> str:
    out = os.path.join(cfg['out'], 'train_images')
    if cfg['checkpoint']:
        log('[1/5 render] skipped: a checkpoint is given, nothing to train')
        return out
    n = len([f for f in os.listdir(out) if f.endswith('.png')]) if os.path.isdir(out) else 0
    if n >= cfg['num_images']:
        log(f'[1/5 render] skipped: {n} images in {out}')
        return out
    from ccl_perception.sim.dataset import render_training_set
    log(f'[1/5 render] {cfg["num_images"]} training images -> {out}')
    stats = render_training_set(out, {'num_images': cfg['num_images']})
    log(f'[1/5 render] done in {stats["seconds"]:.0f} s')
    return out


def stage_train(cfg: dict, images: str) -> str:
    if cfg['checkpoint']:
        if not os.path.isfile(cfg['checkpoint']):
            raise SystemExit(f'--checkpoint {cfg["checkpoint"]} does not exist')
        log(f'[2/5 train] skipped: using {cfg["checkpoint"]}')
        return cfg['checkpoint']
    run = os.path.join(cfg['out'], 'run')
    final = os.path.join(run, 'model.pt')
    if os.path.isfile(final):
        log(f'[2/5 train] skipped: {final} exists')
        return final
    from ccl_perception.learning.config import load_config
    from ccl_perception.learning.trainer import CHECKPOINT_NAME, Trainer
    overrides = [f'method={cfg["method"]}', f'data.root={images}', f'train.steps={cfg["steps"]}',
                 f'optim.lr={cfg["lr"]}', 'train.device=cpu', f'train.threads={cfg["threads"]}',
                 f'data.width={cfg["train_size"][0]}', f'data.height={cfg["train_size"][1]}',
                 f'data.num_keypoints={cfg["num_keypoints"]}',
                 'train.image_every=0', 'train.checkpoint_every=50', 'train.progress=true']
    resume = 'auto' if os.path.isfile(os.path.join(run, CHECKPOINT_NAME)) else None
    log(f'[2/5 train] {cfg["method"]}, {cfg["steps"]} steps on the CPU -> {run}'
        + (' (resuming)' if resume else ''))
    trainer = Trainer(load_config(None, overrides), run, resume=resume)
    metrics = trainer.run()
    trainer.close()
    log(f'[2/5 train] done: {metrics.get("final_step")} steps, '
        f'{metrics.get("images_per_s", float("nan")):.1f} images/s')
    return final


def stage_targets(cfg: dict, world, extractor) -> dict:
    out = os.path.join(cfg['out'], 'targets')
    log(f'[3/5 targets] top-down reference views, grasp axis from the segmentation mask -> {out}')
    made = make_sim_targets(world, extractor, out, cfg['n_targets'], cfg['max_object_width'])
    if not made:
        raise SystemExit('no object fits the gripper: no targets')
    return made


def stage_grasp(cfg: dict, checkpoint: str, target_paths: dict) -> list:
    path = os.path.join(cfg['out'], 'results.json')
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            trials = json.load(f)['trials']
        log(f'[4/5 grasp] skipped: {path} exists ({len(trials)} scenes; delete it to re-run)')
        return trials
    schedule = trial_schedule(sorted(target_paths), cfg['present_per_target'],
                              cfg['absent_per_target'], cfg['scene_seed'])
    log(f'[4/5 grasp] starting ROS 2 nodes: sim_world (+ sim executor), grasp_planner')
    runner = RosTrialRunner(checkpoint, os.path.dirname(next(iter(target_paths.values()))),
                            cfg['camera_size'])
    trials = []
    img_dir = os.path.join(cfg['out'], 'heatmaps')
    os.makedirs(img_dir, exist_ok=True)
    try:
        for i, (seed, name, present) in enumerate(schedule):
            t = runner.trial(name, present, cfg['trial_timeout_s'], seed)
            rgb = t.pop('heatmap_rgb', None)
            if rgb is not None:
                t['heatmap'] = os.path.join(img_dir, f'{i:03d}_{name}_{t["outcome"]}.png')
                _save_png(t['heatmap'], rgb)
            trials.append(t)
            g = t.get('grasp') or {}
            log(f'[4/5 grasp] scene {i + 1}/{len(schedule)} target {name} '
                f'{"present" if t["present"] else "ABSENT "}: {t["outcome"]:<18} '
                f'{g.get("reason", t.get("planner", ""))}')
    finally:
        runner.close()
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'config': cfg, 'trials': trials}, f, indent=1)
    return trials


def stage_report(cfg: dict, trials: list, checkpoint: str) -> str:
    summary = summarise([t for t in trials if t['outcome'] != 'timeout'])
    timeouts = sum(t['outcome'] == 'timeout' for t in trials)
    path = os.path.join(cfg['out'], 'report.md')
    lines = ['# ccl_perception demo: grasping in simulation', '',
             f'Model: `{checkpoint}`. Pipeline: sim camera -> grasp planner -> simulated Panda, over '
             'ROS 2 topics. Cluttered scenes seen from random oblique viewpoints; the target '
             'references are single top-down views.', '',
             format_table({'demo': summary}), '',
             f'Success rate {100 * summary["success_rate"]:.0f} % over {summary["present_scenes"]} '
             f'scenes with the target ({summary["abstained"]} abstentions); '
             f'{summary["false_grasps"]} false grasps in {summary["absent_scenes"]} scenes without it.'
             + (f' {timeouts} scenes timed out.' if timeouts else ''), '',
             '| # | target | present | outcome | detail |', '|---|---|---|---|---|']
    for i, t in enumerate(trials):
        g = t.get('grasp') or {}
        detail = str(g.get('reason', t.get('planner', ''))).replace('|', '/')[:120]
        lines.append(f"| {i} | {t['target']} | {t['present']} | {t['outcome']} | {detail} |")
    lines += ['', '## Heatmaps (red: grasp-keypoint heatmaps; green: expected keypoints)', '']
    for t in [t for t in trials if 'heatmap' in t][:cfg['report_images']]:
        rel = os.path.relpath(t['heatmap'], cfg['out'])
        lines.append(f"![{t['target']} {t['outcome']}]({rel})  ")
        lines.append(f"{t['target']} ({'present' if t['present'] else 'absent'}): {t['outcome']}")
        lines.append('')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print()
    print(format_table({'demo': summary}))
    print()
    log(f'[5/5 report] {path}')
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=DEFAULTS['out'])
    ap.add_argument(
        '--checkpoint',
        default=DEFAULTS['checkpoint'],
        help='reuse this model (skip training)')
    ap.add_argument('--images', type=int, default=DEFAULTS['num_images'])
    ap.add_argument('--steps', type=int, default=DEFAULTS['steps'])
    ap.add_argument('--targets', type=int, default=DEFAULTS['n_targets'])
    ap.add_argument('--present', type=int, default=DEFAULTS['present_per_target'])
    ap.add_argument('--absent', type=int, default=DEFAULTS['absent_per_target'])
    args = ap.parse_args(argv)
    cfg = dict(DEFAULTS, out=args.out, checkpoint=args.checkpoint, num_images=args.images,
               steps=args.steps, n_targets=args.targets, present_per_target=args.present,
               absent_per_target=args.absent)
    os.makedirs(cfg['out'], exist_ok=True)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    t0 = time.monotonic()
    images = stage_render(cfg)
    checkpoint = stage_train(cfg, images)
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.sim.robot import SimWorld, SimWorldConfig
    extractor = DescriptorExtractor(checkpoint)
    world = SimWorld(SimWorldConfig(width=cfg['camera_size'][0], height=cfg['camera_size'][1]))
    try:
        targets = stage_targets(cfg, world, extractor)
    finally:
        world.close()
    trials = stage_grasp(cfg, checkpoint, targets)
    stage_report(cfg, trials, checkpoint)
    log(f'done in {time.monotonic() - t0:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
