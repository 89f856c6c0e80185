"""The training config file: estimator and parameters come from it, not from code."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import DEFAULT_CONFIG_PATH
from training.estimators.families import build_estimator, estimator_name
from training.exceptions import ConfigError
from training.tasks import gate_metric, tuning_metric
from training.tasks.checks import load_config


def test_default_config_is_isolation_forest_on_the_seed_columns() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.data.features == "auto"
    assert config.model.estimator == "isolation_forest"
    estimator = build_estimator(config.model)
    assert estimator_name(estimator) == "sklearn.ensemble.IsolationForest"
    assert estimator.get_params()["n_estimators"] == config.model.params["n_estimators"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[data]\nfeatures = []\n", 'list at least one feature, or use features = "auto"'),
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[data]\nfeatures = ["a"]\n[model.params]\nn_trees = 5\n',
            "model.params: IsolationForest has no parameter 'n_trees'",
        ),
        (
            '[data]\nfeatures = ["a"]\n[tuning.space]\ndepth = [1, 2]\n',
            "tuning.space: IsolationForest has no parameter 'depth'",
        ),
        (
            '[data]\nfeatures = ["a"]\nlabel = "y"\n[model]\ntask = "regression"\n'
            'estimator = "sklearn.linear_model.Ridge"\n[promotion]\nmetric = "pr_auc"\n',
            "promotion.metric 'pr_auc' does not fit a regression model: use one of rmse, mae, r2",
        ),
        ('[data]\nfeatures = ["a"]\n[model]\ntask = "ranking"\n', "model.task"),
        (
            '[data]\nfeatures = ["a"]\n[model]\nestimator = "sklearn.ensemble.NoSuchForest"\n',
            "cannot be imported",
        ),
    ],
)
def test_task_estimator_and_parameters_are_checked_when_the_config_loads(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_classification_config_states_only_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[data]\nfeatures = ["a", "b"]\nlabel = "target"\n[model]\ntask = "classification"\n'
        'estimator = "sklearn.ensemble.RandomForestClassifier"\n'
    )
    config = load_config(path)
    assert (config.name, gate_metric(config), tuning_metric(config)) == ("classifier", "f1_macro", "f1_macro")
    assert estimator_name(build_estimator(config.model)) == "sklearn.ensemble.RandomForestClassifier"


def test_an_estimator_of_another_task_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[data]\nfeatures = ["a"]\nlabel = "y"\n[model]\ntask = "classification"\n'
        'estimator = "sklearn.linear_model.Ridge"\n'
    )
    with pytest.raises(ConfigError, match="Ridge is not a classification estimator"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[model]\nestimater = "auto"\n',
            "model.estimater: no such setting; did you mean 'estimator'? [model] takes task, estimator,",
        ),
        ("[tuning]\nbudget_sec = 5\n", "tuning.budget_sec: no such setting; did you mean 'budget_s'?"),
        ('nmae = "x"\n', "nmae: no such setting; did you mean 'name'? the top level takes name, data,"),
        ("[data]\nzzz = 1\n", "data.zzz: no such setting; [data] takes features, exclude, label,"),
    ],
)
def test_a_mistyped_key_gets_the_nearest_valid_key_and_the_sections_keys(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert message in str(refused.value)
    assert "Extra inputs" not in str(refused.value)
