"""``python -m training list``: every version and every alias with its history, on a local registry and
on the same registry copied to S3 (moto), as a table for people and JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from training.__main__ import main
from training.data.synthetic import generate

CONFIG = (
    '[model]\nestimator = "isolation_forest"\n[model.params]\nn_estimators = 10\n[tuning]\nenabled = false\n'
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions; production moved to the second, then rolled back to the first; a half-published
    version folder (no manifest yet)."""
    root = tmp_path_factory.mktemp("listing")
    (root / "config.toml").write_text(CONFIG)
    generate(600, seed=3).to_csv(root / "flows.csv", index=False)
    registry = root / "registry"
    for _ in range(2):
        args = ["--data", str(root / "flows.csv"), "--model-uri", str(registry), "--config"]
        assert main([*args, str(root / "config.toml"), "--allow-worse-than-baseline"]) == 0
    assert main(["rollback", "--model-uri", str(registry)]) == 0
    (registry / "20991231T000000Z-00000000").mkdir()  # a publish still in flight
    return registry


def versions(registry: Path) -> list[str]:
    return sorted(p.name for p in registry.iterdir() if (p / "manifest.json").is_file())


def test_the_table_lists_versions_and_where_each_alias_points_with_its_history(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = versions(registry)
    capsys.readouterr()
    assert main(["list", "--model-uri", str(registry)]) == 0
    out = capsys.readouterr().out
    assert f"registry {registry}: 3 versions, 1 aliases" in out
    row = next(line for line in out.splitlines() if line.startswith(f"| {first} "))
    assert "| anomaly | sklearn.ensemble.IsolationForest | pr_auc 0." in row
    assert row.endswith("| production |")
    assert "MB" in row
    assert next(line for line in out.splitlines() if line.startswith(f"| {second} ")).endswith("|  |")
    assert "| 20991231T000000Z-00000000 | unreadable: " in out  # said, not skipped
    alias = out.split("\nproduction -> ", 1)[1].splitlines()
    assert alias[0].startswith(f"{first} (since ")
    assert "rollback" in alias[0]
    assert alias[1].startswith(f"  before: {second} (since ")  # newest first
    assert alias[2].startswith(f"  before: {first} (since ")


def test_json_for_scripts_and_the_same_listing_from_s3(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["list", "--model-uri", str(registry), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in local["versions"]][:2] == versions(registry)
    assert local["versions"][0]["aliases"] == ["production"]
    assert local["versions"][0]["metric"] == "pr_auc"
    assert local["versions"][0]["bytes"] > 0
    assert local["versions"][2]["problem"]
    assert local["aliases"][0]["alias"] == "production"
    assert len(local["aliases"][0]["history"]) == 2

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        for path in registry.rglob("*"):
            if path.is_file():
                key = f"team/detector/{path.relative_to(registry).as_posix()}"
                s3.put_object(Bucket="models", Key=key, Body=path.read_bytes())
        assert main(["list", "--model-uri", "s3://models/team/detector", "--json"]) == 0
        remote = json.loads(capsys.readouterr().out)
        # the folder without a manifest holds no object, so S3 has no such folder: two versions there
        assert remote["versions"] == local["versions"][:2]
        assert remote["aliases"] == local["aliases"]
        assert main(["list", "--model-uri", "s3://models/nothing-here"]) == 0
        assert "0 versions, 0 aliases" in capsys.readouterr().out
