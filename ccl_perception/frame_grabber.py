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
``ccl grab-frame``: the live colour + aligned depth + camera_info, saved for ``make_target``.

Waits for one time-synchronised colour/depth pair (:class:`ccl_perception.sync.
ApproximateSynchronizer`, the planner's pairing) and a camera_info of the same size, and
writes three files into a folder:

* ``color.png``: the colour image (8-bit, as any viewer shows it);
* ``depth.png``: the aligned depth, 16-bit PNG in millimetres, 0 = no depth (``make_target
  --depth``, default ``--depth-scale 0.001``);
* ``camera_info.yaml``: ``width``, ``height``, ``frame_id``, ``stamp``, ``k`` (row-major 3x3),
  ``d`` and ``distortion_model`` (``make_target --intrinsics`` reads ``k``).
"""

import os

#: The files one grab writes.
FILES = ('color.png', 'depth.png', 'camera_info.yaml')


def write_frame(out_dir: str, rgb, depth_m, info) -> dict:
    """
    Write ``rgb`` (H, W, 3 uint8), ``depth_m`` (H, W metres, NaN = none) and ``info``.

    Returns:
        ``{file name: path}``.

    Raises:
        ValueError: one of :data:`FILES` exists in ``out_dir`` (nothing is overwritten).
        OSError: the folder cannot be written.
    """
    import cv2
    import yaml

    from ccl_perception.nodes.messages import depth_to_16uc1
    paths = {f: os.path.join(out_dir, f) for f in FILES}
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing:
        raise ValueError(f'{existing[0]} exists: choose another --out (a grab never overwrites)')
    os.makedirs(out_dir, exist_ok=True)
    if not cv2.imwrite(paths['color.png'], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {paths["color.png"]}')
    if not cv2.imwrite(paths['depth.png'], depth_to_16uc1(depth_m)):
        raise OSError(f'cannot write {paths["depth.png"]}')
    meta = {'width': int(info.width), 'height': int(info.height),
            'frame_id': str(info.header.frame_id),
            'stamp': {'sec': int(info.header.stamp.sec),
                      'nanosec': int(info.header.stamp.nanosec)},
            'k': [float(v) for v in info.k], 'd': [float(v) for v in info.d],
            'distortion_model': str(info.distortion_model)}
    with open(paths['camera_info.yaml'], 'w', encoding='utf-8') as f:
        yaml.safe_dump(meta, f, sort_keys=False)
    return paths


def grab_frame(client, camera_ns: str, slop: float = 0.02, timeout: float = None):
    """
    Wait for the next synchronised colour/depth pair and a camera_info; return the messages.

    Returns:
        ``(rgb (H, W, 3) uint8, depth (H, W) metres, camera_info message)``.

    Raises:
        ClientError: nothing within ``timeout`` s (names what did and did not arrive).
        ValueError: the messages do not fit together (encoding, sizes).
    """
    from sensor_msgs.msg import CameraInfo, Image

    from ccl_perception.nodes import COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC
    from ccl_perception.nodes.messages import rgbd_from_msgs
    from ccl_perception.ros_client import camera_topic, ClientError
    from ccl_perception.sync import ApproximateSynchronizer
    pairs, seen = [], {'colour': 0, 'depth': 0}
    sync = ApproximateSynchronizer(2, slop, 10, lambda c, d: pairs.append((c, d)))
    names = [camera_topic(t, camera_ns) for t in (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC)]
    client.wait_for_publishers(names, timeout)  # then the QoS the camera offers
    for i, (key, topic) in enumerate(zip(seen, names)):
        def add(msg, i=i, key=key):
            seen[key] += 1
            sync.add(i, msg)
        client.node.create_subscription(Image, topic, add, client.matching_qos(topic))
    infos = client.collect(CameraInfo, names[2], client.matching_qos(names[2]))
    try:
        client.wait_for(lambda: pairs and infos, 'colour/depth pair with camera_info', timeout)
    except ClientError as e:
        raise ClientError(f'{e} (received: colour {seen["colour"]} on {names[0]}, depth '
                          f'{seen["depth"]} on {names[1]}, camera_info {len(infos)} on '
                          f'{names[2]}); check --camera-ns (realsense-ros 4.x: camera/camera) '
                          'and align_depth.enable:=true') from None
    color, depth = pairs[-1]
    rgb, depth_m, _ = rgbd_from_msgs(color, depth, infos[-1])
    return rgb, depth_m, infos[-1]
