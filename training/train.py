"""Train the dense descriptor network (identical view, CCL, CCL + identical view, supervised).

    training/train.py --config training/configs/ccl.yaml [--set key=value ...] [--resume] [--out runs/ccl]
    torchrun --nproc_per_node=K training/train.py --config ...      # DDP, one process per GPU/CPU shard

A thin wrapper: everything lives in ccl_perception.learning.trainer.
"""
import sys

from ccl_perception.learning.trainer import main

if __name__ == '__main__':
    sys.exit(main())
