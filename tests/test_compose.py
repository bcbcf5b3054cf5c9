"""docker-compose.temporal.yml, checked without a Docker engine: it follows the Compose Specification
(its JSON schema as shipped in the pinned check-jsonschema package), pins its images, checks every
long-running service's health and starts nothing before what it needs is healthy; the twister
services use only real setting names and commands the image's CLI has."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.main
import yaml

from twister.cli import app
from twister.config import Settings

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker-compose.temporal.yml"
SETTING_NAMES = {f"TWISTER_{name.upper()}" for name in Settings.model_fields}
COMPLETED = "service_completed_successfully"
HEALTHY = "service_healthy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose_schema() -> dict[str, Any]:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def twister_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from this repository."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def test_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose)]
    assert errors == []


def test_images_are_pinned_services_checked_and_started_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    waits = {
        (name, dependency): condition["condition"]
        for name, service in services.items()
        for dependency, condition in service.get("depends_on", {}).items()
    }
    one_shots = {dependency for (_, dependency), condition in waits.items() if condition == COMPLETED}
    assert set(twister_services(compose)) == {"gateway", "worker"}
    for name, service in services.items():
        if "build" not in service:
            tag = service["image"].rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", (name, service["image"])
        assert name in one_shots or "healthcheck" in service, f"{name} has no health check"
    for (name, dependency), condition in waits.items():
        assert condition in (HEALTHY, COMPLETED), (name, dependency, condition)
        assert condition == COMPLETED or "healthcheck" in services[dependency], (name, dependency)
    assert all(waits.get((name, "temporal")) == HEALTHY for name in twister_services(compose))


def test_twister_services_use_setting_names_and_share_the_deployment(compose: dict[str, Any]) -> None:
    for name, service in twister_services(compose).items():
        environment = service["environment"]
        assert set(environment) <= SETTING_NAMES, (name, set(environment) - SETTING_NAMES)
        # every host of a deployment must share the server key and reach the same services
        shared = {"TWISTER_SECRET_KEY", "TWISTER_TEMPORAL_ADDRESS", "TWISTER_DATABASE_URL", "TWISTER_S3_ENDPOINT_URL"}
        assert shared <= set(environment), name
    for service in compose["services"].values():
        twister_names = {key for key in service.get("environment", {}) if key.startswith("TWISTER_")}
        assert twister_names <= SETTING_NAMES
    # ${TWISTER_...} variables of the operator's .env are setting names too
    interpolated = set(re.findall(r"\$\{(TWISTER_[A-Z0-9_]+)", COMPOSE.read_text()))
    assert interpolated and interpolated <= SETTING_NAMES, interpolated - SETTING_NAMES


def test_the_image_runs_the_cli_commands_compose_asks_for(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)
    assert entrypoint is not None
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(entrypoint.group(1)) == ["twister"] and scripts["twister"] == "twister.cli:main"
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name, service in twister_services(compose).items():
        assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert service["command"].split()[0] in commands, (name, service["command"])
