"""The training config file: estimator and parameters come from it, not from code."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import DEFAULT_CONFIG_PATH, load_config
from training.exceptions import ConfigError
from training.model import build_estimator, estimator_name


def test_default_config_is_isolation_forest_on_the_seed_columns() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.data.features == ["one", "two", "three"]
    assert config.model.estimator == "isolation_forest"
    estimator = build_estimator(config.model)
    assert estimator_name(estimator) == "sklearn.ensemble.IsolationForest"
    assert estimator.get_params()["n_estimators"] == config.model.params["n_estimators"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[data]\nfeatures = []\n", "data.features"),
        ('[data]\nfeatures = ["a", "a"]\n', "distinct"),
        ('[data]\nfeatures = ["a"]\n[model]\nestimator = "xgboost"\n', "model.estimator"),
        ('[data]\nfeatures = ["a"]\nsurprise = 1\n', "data.surprise"),
        ("not toml ][", "not valid TOML"),
    ],
)
def test_invalid_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")


def test_unknown_estimator_parameter_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[data]\nfeatures = ["a"]\n[model.params]\nno_such_param = 1\n')
    with pytest.raises(ConfigError, match="no_such_param"):
        build_estimator(load_config(path).model)
