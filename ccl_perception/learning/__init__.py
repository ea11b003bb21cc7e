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
Training of the descriptor network, one job per module (docs/ARCHITECTURE.md has the picture).

``config`` (YAML merge, validation, ``View``), ``methods`` (the table of training methods),
``dataset`` / ``supervised`` (image-folder and rendered pairs), ``foreground`` / ``keypoints`` /
``backgrounds`` (label-free foreground, ``k_A``, pasted tables), ``views`` (``I_A``, ``Î_A``,
``I_B`` and their correspondences), ``features`` (trunk cache, descriptor maps), ``precision``
(``train.amp``), ``run_state`` (RNG, resume, checkpoints), ``logbook`` (TensorBoard,
``metrics.json``, ``loss.png``), ``selection`` (validation, keep-best), ``trainer`` (build,
step, loop), ``head_init``, ``instruments``, ``distributed``. Entry point:
``training/train.py``.
"""
