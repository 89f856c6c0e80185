"""No credentials in the repository, and none in the function's environment."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key assignment": re.compile(
        r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?(?!testing\b)[A-Za-z0-9/+]{40}"
    ),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
}


def tracked_files() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
    )
    return [line for line in result.stdout.splitlines() if line] if result.returncode == 0 else []


def test_no_credentials_in_tracked_files() -> None:
    files = tracked_files() or [
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts
    ]
    hits = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{name}: {label}" for label, pattern in PATTERNS.items() if pattern.search(text)]
    assert hits == []


def test_the_function_environment_holds_no_secrets() -> None:
    lambda_tf = (ROOT / "terraform" / "lambda.tf").read_text()
    block = lambda_tf[lambda_tf.index("variables = merge(") : lambda_tf.index("tracing_config")]
    names = re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*=", block, flags=re.MULTILINE)
    assert names  # the block was found
    assert not [n for n in names if re.search(r"SECRET|PASSWORD|TOKEN|KEY(?!_ID)|CREDENTIAL", n)]


def test_the_patterns_do_catch_credentials() -> None:
    fake_key_id = "AKIA" + "IOSFODNN7EXAMPLE"
    assert PATTERNS["AWS access key id"].search(f"key = {fake_key_id}")
    assert PATTERNS["private key"].search("-----BEGIN " + "RSA PRIVATE KEY-----")
