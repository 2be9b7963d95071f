"""The LE/H emulator: training, evaluation, SHAP, registry, regional prediction and jobs."""
