"""The Docker files, checked without a Docker engine (none runs on our machines): the compose
file validated by Debian's docker-compose, the Dockerfile's promises read from it, the
package the image installs built for real, and the entrypoint's steps run on this machine
against both databases."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.e2e.test_serve import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-for-the-test",
    "RMA_SECRET_KEY": "s" * 48,
    "RMA_ENCRYPTION_KEYS": "a-fernet-key-in-production",
    "RMA_PUBLIC_URL": "https://returns.example.com",
}


def compose(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: apt-get install docker-compose"
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in SECRETS and name[:4] != "RMA_"
    }
    return subprocess.run(
        [docker_compose, "--env-file", str(env_file), "-f", str(DOCKER / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_the_compose_file_is_valid_and_runs_what_production_needs(tmp_path: Path) -> None:
    result = compose(tmp_path, SECRETS)
    assert result.returncode == 0, result.stderr
    config = result.stdout
    for service in ("postgres:", "migrate:", "api:", "worker-1:", "worker-2:"):
        assert f"  {service}" in config
    assert "--no-worker" in config
    assert "service_completed_successfully" in config and "service_healthy" in config
    assert "pg_isready" in config and "postgres-data:" in config
    assert "RMA_ENV: production" in config


def test_the_compose_file_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    missing = {name: value for name, value in SECRETS.items() if name != "RMA_SECRET_KEY"}
    result = compose(tmp_path, missing)
    assert result.returncode != 0
    assert "RMA_SECRET_KEY" in result.stderr


def test_no_env_file_with_secrets_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "docker"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "docker/.env" not in tracked
    example = (DOCKER / "env.example").read_text()
    assert re.search(r"^RMA_SECRET_KEY=$", example, re.MULTILINE)  # a blank to fill in


def stages(dockerfile: str) -> list[str]:
    return re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]


def test_the_image_is_slim_unprivileged_production_and_checks_readiness() -> None:
    build, final = stages((DOCKER / "Dockerfile").read_text())
    assert build.startswith("python:3.11-slim AS build")
    assert final.startswith("python:3.11-slim")
    assert "build-essential" in build and "build-essential" not in final
    assert re.search(r"^USER rma$", final, re.MULTILINE)
    assert "RMA_ENV=production" in final
    assert re.search(r"^HEALTHCHECK .*\n.*/readyz", final, re.MULTILINE)
    assert 'ENTRYPOINT ["rma-entrypoint"]' in final


def test_the_package_the_image_installs_carries_the_migrations(tmp_path: Path) -> None:
    subprocess.run(
        # Offline (the build tools are dev dependencies): the test also runs with the clock
        # moved ahead, where no certificate would look valid.
        [
            str(BIN / "pip"),
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    newest = max((ROOT / "core/migrations/versions").glob("0*.py")).name
    assert f"core/migrations/versions/{newest}" in names
    assert "core/migrations/script.py.mako" in names
    assert not any(name.startswith(("tests/", "testkit/", "benchmarks/")) for name in names)


def entrypoint(*arguments: str, url: str) -> tuple[list[str], dict[str, str]]:
    environment = {name: value for name, value in os.environ.items() if name[:4] != "RMA_"}
    environment.update(
        PATH=f"{BIN}{os.pathsep}{environment.get('PATH', '')}",
        RMA_ENV="production",
        RMA_DATABASE_URL=url,
        RMA_SECRET_KEY=SECRETS["RMA_SECRET_KEY"],
        RMA_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        RMA_PUBLIC_URL=SECRETS["RMA_PUBLIC_URL"],
    )
    return [str(DOCKER / "entrypoint.sh"), *arguments], environment


def test_the_entrypoints_steps_migrate_then_serve_ready(
    empty_database: str, tmp_path: Path
) -> None:
    command, environment = entrypoint("migrate", url=empty_database)
    migrated = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = free_port()
    command, environment = entrypoint(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker", url=empty_database
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 20
        ready = None
        while time.monotonic() < deadline and ready is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.2)
        assert ready is not None, log.read_text()
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=20)
    # Uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()


def test_the_entrypoint_says_what_is_missing(tmp_path: Path) -> None:
    command, environment = entrypoint("migrate", url="")
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=30)
    assert result.returncode == 64
    assert "RMA_DATABASE_URL is not set" in result.stderr
