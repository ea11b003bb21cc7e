"""Training of the descriptor network: config merge, image-folder pairs, trainer (DDP, AMP, resume).

Entry point: ``training/train.py`` (a thin argparse wrapper around :func:`trainer.main`).
"""
