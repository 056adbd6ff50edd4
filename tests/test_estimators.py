import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from evolino.estimators import EXPECTED_FAILED_CHECKS, EvolinoClassifier, EvolinoRegressor


@parametrize_with_checks([EvolinoRegressor(random_state=0), EvolinoClassifier(random_state=0)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
