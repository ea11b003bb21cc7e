"""Benchmark pairs, PCK/AUC metrics and model evaluation (no rclpy here)."""
