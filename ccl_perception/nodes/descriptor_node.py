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
Descriptor node: colour image -> dense descriptor image + PCA visualisation.

Subscribes (sensor-data QoS): ``camera/color/image_raw`` (rgb8, bgr8 or mono8).
Publishes (reliable, keep last 1), stamped with the input header:

* ``descriptors`` -- sensor_msgs/Image, encoding ``32FC<D>`` (e.g. ``32FC64``), size
  ``ceil(H/8) x ceil(W/8)``, float32 little-endian, channels last; unit-norm
  descriptors of :class:`ccl_perception.model.DescriptorNet` (grid cell ``j`` is centred
  on full-res pixel ``8 j + 3.5``).
* ``descriptors/visualization`` -- rgb8 at full resolution: the first three principal
  components (basis frozen after the first frame), for rviz.
* ``~/status`` -- std_msgs/String, why a frame was skipped.

Only the newest frame is processed (a one-slot mailbox filled by the subscription and
emptied by a timer at up to ``max_rate_hz``), so no backlog builds when frames arrive
faster than the model runs.
"""

from ccl_perception import image_conversion as ic
from ccl_perception.node_limits import check_descriptor, DESCRIPTOR_RUN_TIME
from ccl_perception.nodes import (COLOR_TOPIC, declare_parameters, DESCRIPTORS_TOPIC,
                                  DESCRIPTORS_VIS_TOPIC, LatestFrame, load_extractor, MODEL_PARAMS,
                                  node_main, OUTPUT_QOS, param_values, refuse_bad_changes,
                                  SENSOR_QOS, shutdown_tolerant, STATUS_QOS, STATUS_TOPIC,
                                  watch_input)
from ccl_perception.nodes.messages import image_msg, rgb_from_msg
import cv2
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

#: Every parameter with its default (config/descriptor_node.yaml is checked against it).
PARAMS = {
    **MODEL_PARAMS,
    'max_rate_hz': 30.0,         # upper bound of processed frames per second
    'publish_visualization': True,
    'input_timeout_s': 5.0,      # warn (log + ~/status) when no colour frame arrived for this long
}


class DescriptorNode(Node):
    """Runs :class:`ccl_perception.inference.DescriptorExtractor` on the newest colour frame."""

    def __init__(self, **kwargs):
        super().__init__('descriptor_node', **kwargs)
        declare_parameters(self, PARAMS)
        p = check_descriptor(param_values(self, PARAMS))  # a bad value stops the start
        refuse_bad_changes(self, PARAMS, DESCRIPTOR_RUN_TIME, check_descriptor)
        self.extractor, self.load_error = load_extractor(self)
        self.coloriser = ic.PCAColoriser()
        self.mailbox = LatestFrame()
        self.counts = {'processed': 0, 'bad_input': 0}
        self.pub_desc = self.create_publisher(Image, DESCRIPTORS_TOPIC, OUTPUT_QOS)
        self.pub_vis = self.create_publisher(Image, DESCRIPTORS_VIS_TOPIC, OUTPUT_QOS)
        self.pub_status = self.create_publisher(String, STATUS_TOPIC, STATUS_QOS)
        self.create_subscription(Image, COLOR_TOPIC, self.mailbox.put, SENSOR_QOS)
        self.timer = self.create_timer(
            1.0 / p['max_rate_hz'],
            shutdown_tolerant(
                self,
                self._process))
        self.watchdog = watch_input(self, p['input_timeout_s'],
                                    lambda: {'colour frame': self.mailbox.received},
                                    self.pub_status, 'skipped: ')

    def _status(self, text: str) -> None:
        self.pub_status.publish(String(data=text))

    def _process(self) -> None:
        msg = self.mailbox.take()
        if msg is None or not self.context.ok():  # nothing new, or shutting down
            return
        if self.extractor is None:
            self._status(self.load_error)
            return
        try:
            rgb = rgb_from_msg(msg)
        except ValueError as e:
            self.counts['bad_input'] += 1
            self.get_logger().warning(f'skipping colour frame: {e}', throttle_duration_sec=1.0)
            self._status(f'skipped frame: {e}')
            return
        try:
            desc = self.extractor(rgb).float().cpu().numpy()  # (D, h, w)
        except Exception as e:  # noqa: BLE001 - a failing frame must not take the node down
            self.get_logger().error(
                f'descriptor extraction failed: {e}',
                throttle_duration_sec=1.0)
            self._status(f'skipped frame: {type(e).__name__}: {e}')
            return
        d = desc.shape[0]
        self.pub_desc.publish(image_msg(np.ascontiguousarray(desc.transpose(1, 2, 0)), f'32FC{d}',
                                        msg.header))
        if self.get_parameter('publish_visualization').value:
            vis = self.coloriser(desc)
            vis = cv2.resize(vis, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
            self.pub_vis.publish(image_msg(vis, 'rgb8', msg.header))
        self.counts['processed'] += 1


def main(args=None):
    return node_main(DescriptorNode, args, 'descriptor_node')


if __name__ == '__main__':
    raise SystemExit(main())
