"""What a run reports: loggers, TensorBoard dashboards and HParams, the verdict, significance tests."""
