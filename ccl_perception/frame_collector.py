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
Collect sharp, distinct frames from a video file or a rosbag2 image topic.

Two passes over the source: pass 1 measures every frame's sharpness (variance of the
Laplacian of the grey image) and a 32x32 grey thumbnail; the blur threshold is
``blur_ratio x median sharpness of the run`` (so it adapts to the camera). Pass 2 keeps a
frame when it is sharp enough and its thumbnail differs from the last KEPT frame's by a mean
absolute difference >= ``min_difference`` (grey levels 0-255), and writes it as PNG.
Every decision is logged to ``collect_log.csv`` (index, timestamp, sharpness, difference,
decision) and summarised in ``collect_summary.json``.

Rosbags (sqlite3 or mcap, read with ``rosbags``, no ROS needed) may carry
``sensor_msgs/msg/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) or ``sensor_msgs/msg/CompressedImage``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
import json
import os

import cv2
import numpy as np

THUMB = 32


@dataclass
class CollectConfig:
    """
    Frame selection knobs.

    Attributes:
        blur_ratio: drop frames whose sharpness < blur_ratio x median sharpness of the run.
        min_difference: drop frames whose 32x32 grey thumbnail differs from the last kept
            one by less than this mean absolute difference (0-255 grey levels).
        step: consider only every step-th frame.
        max_frames: stop after keeping this many (0 = no limit).
    """

    blur_ratio: float = 0.5
    min_difference: float = 6.0
    step: int = 1
    max_frames: int = 0


def image_from_ros(msg) -> np.ndarray:
    """
    BGR uint8 (H, W, 3) from a deserialised sensor_msgs Image / CompressedImage.

    Raises:
        ValueError: unsupported encoding or inconsistent size.
    """
    if hasattr(msg, 'format') and not hasattr(msg, 'encoding'):  # CompressedImage
        img = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot decode compressed image (format {msg.format!r})')
        return img
    enc = msg.encoding.lower()
    channels = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
    if enc not in channels:
        raise ValueError(
            f'unsupported image encoding {msg.encoding!r}; supported: {sorted(channels)}')
    c = channels[enc]
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if msg.step < msg.width * c or data.size < msg.step * msg.height:
        raise ValueError(f'image data too short for {msg.width}x{msg.height} {enc}')
    img = data[:msg.step * msg.height].reshape(msg.height, msg.step)[:, :msg.width * c]
    img = img.reshape(msg.height, msg.width, c)
    convert = {'rgb8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGBA2BGR, 'bgra8': cv2.COLOR_BGRA2BGR,
               'mono8': cv2.COLOR_GRAY2BGR}
    return cv2.cvtColor(img, convert[enc]) if enc in convert else img.copy()


def iter_frames(source: str, topic: str | None = None):
    """
    Yield ``(index, timestamp_s, bgr uint8 image)`` from a video file or a rosbag2 folder/file.

    Raises:
        ValueError: unreadable input, missing topic.
    """
    if not os.path.exists(source):
        raise ValueError(f'input not found: {source}')
    is_bag = os.path.isdir(source) or source.endswith(('.mcap', '.db3'))
    if not is_bag:
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            raise ValueError(f'cannot open video {source}')
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        i = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield i, (i / fps if fps > 0 else float(i)), frame
                i += 1
        finally:
            cap.release()
        if i == 0:
            raise ValueError(f'no frames could be decoded from {source}')
        return
    from pathlib import Path

    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    path = Path(source)
    if path.is_file():
        path = path.parent
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated types for broken bags
        raise ValueError(f'cannot read rosbag2 {source}: {exc}') from exc
    try:
        image_topics = {c.topic: c.msgtype for c in reader.connections if c.msgtype in (
            'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')}
        if topic is None:
            if len(image_topics) != 1:
                raise ValueError(
                    f'choose an image topic with --topic; bag has {sorted(image_topics)}')
            topic = next(iter(image_topics))
        if topic not in image_topics:
            raise ValueError(f'topic {topic!r} not in bag (image topics: {sorted(image_topics)})')
        conns = [c for c in reader.connections if c.topic == topic]
        for i, (conn, stamp, raw) in enumerate(reader.messages(connections=conns)):
            yield i, stamp * 1e-9, image_from_ros(reader.deserialize(raw, conn.msgtype))
    finally:
        reader.close()


def sharpness(bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher = sharper)."""
    return float(cv2.Laplacian(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def thumbnail(bgr: np.ndarray) -> np.ndarray:
    """Return the 32x32 float32 grey image of ``bgr``, area-averaged."""
    return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (THUMB, THUMB),
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def collect_frames(source: str, out_dir: str, topic: str | None = None,
                   config: CollectConfig | None = None, progress: bool = True) -> dict:
    """
    Write the sharp, distinct frames of ``source`` to ``out_dir`` as ``frame_XXXXXX.png``.

    Returns:
        summary dict: ``{'total', 'kept', 'blurry', 'duplicate', 'skipped_step',
        'blur_threshold', 'kept_indices'}`` (also in ``collect_summary.json``).
    """
    from tqdm import tqdm
    cfg = config or CollectConfig()
    if cfg.step < 1:
        raise ValueError(f'step must be >= 1, got {cfg.step}')
    scores = {}
    for i, _, img in tqdm(iter_frames(source, topic), desc='measure', disable=not progress):
        if i % cfg.step == 0:
            scores[i] = sharpness(img)
    if not scores:
        raise ValueError(f'no frames in {source}')
    threshold = cfg.blur_ratio * float(np.median(list(scores.values())))
    os.makedirs(out_dir, exist_ok=True)
    log, kept, last = [], [], None
    counts = {'blurry': 0, 'duplicate': 0, 'skipped_step': 0}
    for i, stamp, img in tqdm(iter_frames(source, topic), desc='select', disable=not progress):
        if i not in scores:
            counts['skipped_step'] += 1
            continue
        thumb = thumbnail(img)
        diff = float('inf') if last is None else float(np.abs(thumb - last).mean())
        if scores[i] < threshold:
            decision = 'blurry'
        elif diff < cfg.min_difference:
            decision = 'duplicate'
        elif cfg.max_frames and len(kept) >= cfg.max_frames:
            decision = 'limit'
        else:
            decision = 'kept'
        if decision == 'kept':
            name = f'frame_{i:06d}.png'
            if not cv2.imwrite(os.path.join(out_dir, name), img):
                raise OSError(f'could not write {name} in {out_dir}')
            kept.append(i)
            last = thumb
        elif decision in counts:
            counts[decision] += 1
        log.append({'index': i, 'timestamp_s': round(stamp, 6), 'sharpness': round(scores[i], 2),
                    'difference': round(diff, 2) if np.isfinite(diff) else '',
                    'decision': decision})
    with open(os.path.join(out_dir, 'collect_log.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)
    summary = {'source': source, 'topic': topic, 'total': len(log) + counts['skipped_step'],
               'kept': len(kept), **counts, 'blur_threshold': threshold, 'kept_indices': kept,
               'config': vars(cfg)}
    with open(os.path.join(out_dir, 'collect_summary.json'), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1)
    return summary
