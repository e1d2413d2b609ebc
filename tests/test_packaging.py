"""Packaging facts a portal relies on when it installs authguard from its wheel (issue 14, items 3 and 9)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirements(names: list[str]) -> dict[str, Requirement]:
    return {Requirement(spec).name.lower(): Requirement(spec) for spec in names}


def test_dependencies_exclude_versions_that_were_never_tested() -> None:
    deps = _requirements(PROJECT["dependencies"])
    # webauthn 2.5.0 fails on import with our code; 3.x is what the suite runs.
    assert "2.5.0" not in deps["webauthn"].specifier
    assert "3.0.1" in deps["webauthn"].specifier
    # Django: the classifiers name what is tested, and the bound keeps out what is not.
    django: SpecifierSet = deps["django"].specifier
    assert "5.2.19" in django and "6.1.3" in django
    assert "7.0" not in django and "6.2" not in django
    for name in ("django", "django-otp", "webauthn"):
        assert any(spec.operator == "<" for spec in deps[name].specifier), f"{name} has no upper bound"


def test_classifiers_name_the_tested_django_and_python_versions() -> None:
    classifiers = set(PROJECT["classifiers"])
    for version in ("5.2", "6.0", "6.1"):
        assert f"Framework :: Django :: {version}" in classifiers
    for version in ("3.11", "3.12"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert (ROOT / "authguard" / "py.typed").exists()


def test_the_redis_extra_can_publish_celery_tasks() -> None:
    # kombu speaks Redis only with celery's redis extra; without it enqueue() could not publish.
    extra = _requirements(PROJECT["optional-dependencies"]["redis"])
    assert "redis" in extra["celery"].extras
    assert "redis" in extra


def test_the_license_file_is_the_declared_license() -> None:
    assert PROJECT["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert re.search(r"Neither the name of the copyright holder", text)


def test_every_relative_link_in_the_readme_resolves() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative, "the README links to its docs"
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"
