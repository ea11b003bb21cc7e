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

r"""
Train the dense descriptor network (identical view, CCL, CCL + identical view, supervised).

    training/train.py --config training/configs/ccl.yaml [--set key=value ...] [--resume] \
        [--out runs/ccl]
    torchrun --nproc_per_node=K training/train.py --config ...  # DDP, a process per GPU/CPU shard

A thin wrapper: everything lives in ccl_perception.learning.trainer.
"""
import sys

from ccl_perception.learning.trainer import main

if __name__ == '__main__':
    sys.exit(main())
