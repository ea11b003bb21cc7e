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
``ccl record``: the camera topics into a rosbag2 folder, without the ``ros2`` CLI.

Writes with the ``rosbags`` package (sqlite3 storage, CDR, the same bag ``ros2 bag record``
writes; ``training/collect_frames.py`` and ``ros2 bag play`` read it). The messages are
stored as they arrive (serialised bytes, receive time), nothing is decoded.

Raw 640x480 colour + depth at 30 Hz is about 8 GB per 5 minutes; ``compressed=True``
records ``<topic>/compressed`` (sensor_msgs/CompressedImage) instead, about 0.5 GB: the
camera's own compressed topic when one is published (image_transport's ``compressed``
plugin: realsense-ros with image_transport_plugins), else the raw topic compressed here
(colour JPEG quality :data:`JPEG_QUALITY`, depth 16-bit PNG in millimetres, lossless).
"""

import os
import shutil
import time

#: JPEG quality of colour frames compressed here.
JPEG_QUALITY = 90
#: Seconds given to discovery after the raw topics' publishers were found.
DISCOVERY_S = 1.0
IMAGE, COMPRESSED, INFO = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage',
                           'sensor_msgs/msg/CameraInfo')


def compress_colour(msg):
    """sensor_msgs/Image (rgb8, bgr8, mono8) -> CompressedImage (JPEG), same header."""
    import cv2
    from ccl_perception.nodes.messages import rgb_from_msg
    from sensor_msgs.msg import CompressedImage
    ok, data = cv2.imencode('.jpg', cv2.cvtColor(rgb_from_msg(msg), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError('JPEG encoding failed')
    return CompressedImage(header=msg.header, format=f'{msg.encoding}; jpeg compressed bgr8',
                           data=data.tobytes())


def compress_depth(msg):
    """Depth Image (16UC1 mm, 32FC1 m) -> CompressedImage (16-bit PNG, mm, 0 = none)."""
    import cv2
    from ccl_perception.nodes.messages import depth_from_msg, depth_to_16uc1
    from sensor_msgs.msg import CompressedImage
    ok, data = cv2.imencode('.png', depth_to_16uc1(depth_from_msg(msg)))
    if not ok:
        raise ValueError('PNG encoding failed')
    return CompressedImage(header=msg.header, format='16UC1; png compressed',
                           data=data.tobytes())


def plan_topics(client, camera_ns: str, compressed: bool, timeout: float = 10.0) -> list:
    """
    Return what to record: ``[(bag topic, bag type, compress function or None), ...]``.

    Colour, aligned depth and colour camera_info under ``camera_ns``; with ``compressed``
    the images as ``<topic>/compressed`` (compressed here when nobody publishes that).
    Waits up to ``timeout`` s for the image topics' publishers to be discovered (then
    :data:`DISCOVERY_S` more for their siblings), so the choice is made on a known graph.
    """
    from ccl_perception.nodes import COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC
    from ccl_perception.ros_client import camera_topic
    plan = []
    # not found: record() says that nothing arrived
    client.wait_for_publishers([camera_topic(t, camera_ns) for t in (COLOR_TOPIC, DEPTH_TOPIC)],
                               timeout)
    client.spin_for(DISCOVERY_S)
    for topic, encode in ((COLOR_TOPIC, compress_colour), (DEPTH_TOPIC, compress_depth)):
        name = camera_topic(topic, camera_ns)
        if not compressed:
            plan.append((name, IMAGE, None))
        elif client.node.count_publishers(name + '/compressed'):
            plan.append((name + '/compressed', COMPRESSED, None))
        else:
            plan.append((name + '/compressed', COMPRESSED, (name, encode)))
    plan.append((camera_topic(INFO_TOPIC, camera_ns), INFO, None))
    return plan


def record(client, out: str, camera_ns: str, duration: float, compressed: bool = False,
           timeout: float = 10.0, log=print) -> dict:
    """
    Record the camera topics into the new rosbag2 folder ``out`` until ``duration`` s or Ctrl-C.

    Returns:
        ``{'messages': {topic: count}, 'bytes': bag size, 'seconds': recorded}``.

    Raises:
        ValueError: ``out`` exists (a bag is never overwritten).
        ClientError: not one message within ``timeout`` s (the empty bag is removed).
    """
    from rclpy.executors import ExternalShutdownException
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from ccl_perception.ros_client import ClientError
    if os.path.exists(out):
        raise ValueError(f'{out} exists: a bag is written into a new folder; choose another name')
    plan = plan_topics(client, camera_ns, compressed, timeout)
    types = {IMAGE: Image, COMPRESSED: CompressedImage, INFO: CameraInfo}
    store = get_typestore(Stores.ROS2_KILTED)
    counts = {topic: 0 for topic, _, _ in plan}
    writer = Writer(out, version=9)
    writer.open()
    start = time.monotonic()
    try:
        for topic, msgtype, encode in plan:
            conn = writer.add_connection(topic, msgtype, typestore=store)

            def write(data, conn=conn, topic=topic, encode=encode):
                if encode is not None:
                    data = serialize_message(encode[1](data))
                writer.write(conn, time.time_ns(), data)
                counts[topic] += 1
            source = topic if encode is None else encode[0]
            client.node.create_subscription(types[msgtype] if encode is None else Image, source,
                                            write, client.matching_qos(source),
                                            raw=encode is None)
        log(f'recording {", ".join(t for t, _, _ in plan)} into {out} '
            f'({"until Ctrl-C" if not duration else f"{duration:g} s"})')
        try:
            while not duration or time.monotonic() - start < duration:
                client.executor.spin_once(timeout_sec=0.05)
                if not any(counts.values()) and time.monotonic() - start > timeout:
                    raise ClientError(f'no message on {", ".join(counts)} within {timeout:g} s: '
                                      'check --camera-ns and that the camera publishes')
        except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C: a complete bag
            pass
    except BaseException:
        writer.close()
        if not any(counts.values()):
            shutil.rmtree(out, ignore_errors=True)
        raise
    writer.close()
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    return {'messages': counts, 'bytes': size, 'seconds': time.monotonic() - start}
