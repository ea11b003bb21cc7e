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
Render speed of the benchmark v2 scene, candidates side by side in one run (640x480 RGB-D).

    python training/render_benchmark.py          # pybullet TinyRenderer vs EGL (+ MuJoCo)
    python training/render_benchmark.py --out docs/img/renderers.jpg --frames 10

The scene: 8 benchmark v2 objects arranged on the training table photo (seed 0), seen by
the D435 colour camera from 0.45 m at 55 deg elevation. Every renderer draws the same meshes,
textures and object poses (MuJoCo gets the poses mirrored from pybullet) and returns RGB,
metric depth and a per-object segmentation. Each is warmed up (2 frames), then timed over
``--frames`` frames; the median is printed with the frames per second. MuJoCo is measured
when the ``mujoco`` package is importable (``MUJOCO_GL=egl``; it is not a dependency of this
package). ``--out`` writes one image per renderer next to each other.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np


def _scene(renderer: str, specs, surface: str, seed: int):
    from ccl_perception.sim.scene import TabletopScene
    scene = TabletopScene(specs, renderer=renderer, surface=surface)
    scene.arrange(np.random.default_rng(seed), workspace_half=(0.09, 0.09), spacing=0.8)
    return scene


def _time(fn, frames: int) -> tuple:
    for _ in range(2):
        out = fn()
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _mujoco_renderer(scene, camera, surface: str):
    """Build a MuJoCo model of the same meshes, textures and poses; return ``render()``."""
    os.environ.setdefault('MUJOCO_GL', 'egl')
    import mujoco
    from ccl_perception.sim.scene import TABLE_TOP_Z
    assets, bodies = [], []
    for name in scene.active:
        spec = scene.specs[name]
        T = scene.object_poses([name])[name]
        quat = _wxyz(T[:3, :3])
        geoms = []
        for k, part in enumerate(spec.parts):
            mesh = f'{name}_{k}'
            assets.append(f'<mesh name="{mesh}" file="{part.obj_file}"/>')
            if part.texture_file:
                assets.append(f'<texture name="t_{mesh}" type="2d" file="{part.texture_file}"/>')
                assets.append(f'<material name="m_{mesh}" texture="t_{mesh}" '
                              f'rgba="{_rgba(part.rgba)}"/>')
            else:
                assets.append(f'<material name="m_{mesh}" rgba="{_rgba(part.rgba)}"/>')
            geoms.append(f'<geom type="mesh" mesh="{mesh}" material="m_{mesh}"/>')
        bodies.append(f'<body name="{name}" pos="{T[0, 3]} {T[1, 3]} {T[2, 3]}" quat="{quat}">'
                      + ''.join(geoms) + '</body>')
    xml = f"""<mujoco><compiler angle="radian"/>
      <visual>
        <global offwidth="{camera.width}" offheight="{camera.height}" fovy="{camera.fov_y_deg}"/>
        <quality shadowsize="2048"/>
        <headlight ambient="0.4 0.4 0.4" diffuse="0.3 0.3 0.3"/></visual>
      <asset><texture name="table" type="2d" file="{surface}"/>
        <material name="table" texture="table" texrepeat="1 1" texuniform="false"/>
        {''.join(assets)}</asset>
      <worldbody><light directional="true" pos="0.3 0.2 1" dir="-0.3 -0.2 -1" castshadow="true"/>
        <geom type="box" size="0.675 0.6 0.02" pos="-0.075 0 {TABLE_TOP_Z - 0.02}"
              material="table"/>
        {''.join(bodies)}</worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = mujoco.Renderer(model, camera.height, camera.width)
    cam = mujoco.MjvCamera()
    eye = camera.world_from_camera[:3, 3]
    look = eye + camera.world_from_camera[:3, 2] * 0.35
    cam.lookat[:] = look
    d = eye - look
    cam.distance = float(np.linalg.norm(d))
    cam.azimuth = float(np.degrees(np.arctan2(-d[1], -d[0])))
    cam.elevation = float(-np.degrees(np.arcsin(d[2] / np.linalg.norm(d))))

    def render():
        renderer.update_scene(data, camera=cam)
        rgb = renderer.render().copy()
        renderer.enable_depth_rendering()
        renderer.update_scene(data, camera=cam)
        depth = renderer.render().copy()
        renderer.disable_depth_rendering()
        renderer.enable_segmentation_rendering()
        renderer.update_scene(data, camera=cam)
        seg = renderer.render().copy()
        renderer.disable_segmentation_rendering()
        return rgb, depth, seg
    return render


def _rgba(c) -> str:
    return ' '.join(f'{v:.4f}' for v in c)


def _wxyz(R) -> str:
    from ccl_perception.geometry import rotation_to_quaternion
    x, y, z, w = rotation_to_quaternion(R)
    return f'{w} {x} {y} {z}'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--frames', type=int, default=10)
    ap.add_argument('--objects', type=int, default=8)
    ap.add_argument('--out', default=None, help='side-by-side image of the renderers (.jpg/.png)')
    args = ap.parse_args(argv)
    if args.frames < 1 or not 1 <= args.objects <= 12:
        ap.error('--frames must be >= 1 and --objects in 1..12')
    from ccl_perception.sim.camera import Camera
    from ccl_perception.sim.catalogue_v2 import build_catalogue
    from ccl_perception.sim.furniture import FurnitureMissing
    from ccl_perception.sim.scene import photo_lighting
    try:
        cat = build_catalogue()
    except FurnitureMissing as exc:
        print(f'render_benchmark: error: {exc}', file=sys.stderr)
        return 2
    specs = cat.seen[:args.objects]
    surface = cat.surface_path('oak_light')
    el, dist = np.radians(55.0), 0.45
    cam = Camera.d435_looking_at((dist * np.cos(el), 0.0, dist * np.sin(el)), (0.0, 0.0, 0.0))
    rows, images = [], []
    for renderer in ('tiny', 'egl'):
        scene = _scene(renderer, specs, surface, 0)
        light = photo_lighting() if renderer == 'egl' else None
        sec, out = _time(lambda: scene.render(cam, light), args.frames)
        name = ('pybullet TinyRenderer (CPU)' if renderer == 'tiny'
                else 'pybullet EGL plugin (OpenGL, llvmpipe), shadows')
        rows.append((name, sec, 'RGB + depth + segmentation'))
        images.append(out.rgb)
        if renderer == 'egl':
            mj_scene = scene
        else:
            scene.close()
    try:
        render = _mujoco_renderer(mj_scene, cam, surface)
        sec, out = _time(render, args.frames)
        rows.append(('MuJoCo 4.0 (MUJOCO_GL=egl), shadows, poses mirrored', sec,
                     'RGB + depth + segmentation'))
        images.append(out[0])
    except ImportError:
        rows.append(('MuJoCo: not installed (pip install mujoco to measure it)', float('nan'), ''))
    except Exception as exc:  # a renderer that does not start here is reported, not fatal
        rows.append((f'MuJoCo: failed ({type(exc).__name__}: {str(exc)[:80]})', float('nan'), ''))
    mj_scene.close()
    load = os.getloadavg()
    print(f'\n640x480, {len(specs)} objects + table photo, median of {args.frames} frames after '
          f'2 warm-up; {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} '
          f'{load[2]:.2f}\n')
    print('| renderer | ms / frame | frames / s | outputs |')
    print('|---|---|---|---|')
    for name, sec, what in rows:
        if sec == sec:
            print(f'| {name} | {sec * 1000:.0f} | {1.0 / sec:.1f} | {what} |')
        else:
            print(f'| {name} | - | - | |')
    if args.out:
        import cv2
        from ccl_perception.sim.contact_sheet import write_sheet
        sheet = np.concatenate([cv2.cvtColor(im, cv2.COLOR_RGB2BGR) for im in images], axis=1)
        sheet = cv2.resize(sheet, (sheet.shape[1] // 2, sheet.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)
        print(f'wrote {args.out} ({write_sheet(sheet, args.out) / 1024:.0f} KB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
