"""Quality stage: the evaluation suites, their metrics and reports, the regression gate and model fitting."""
