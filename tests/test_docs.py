"""The documentation site's sources stay in step with the package.

The site itself is built (warnings as errors, gallery run) by .ci/run; these
checks catch what the build cannot: a public name nobody added to the API
reference, and links that point where no page will be.
"""

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import sklearn_cml
from sklearn_cml._docs import DOCUMENTATION_URL

ROOT = Path(__file__).resolve().parents[1]
API_INDEX = ROOT / "docs" / "api" / "index.rst"


def public_modules():
    """``sklearn_cml`` and each of its modules whose name has no leading underscore."""
    names = [info.name for info in pkgutil.iter_modules(sklearn_cml.__path__)]
    return ["sklearn_cml"] + [f"sklearn_cml.{n}" for n in sorted(names) if not n.startswith("_")]


def api_reference_entries():
    """{module: names} listed by the autosummary tables of the API reference."""
    entries, module, in_table = {}, None, False
    for line in API_INDEX.read_text().splitlines():
        if match := re.match(r"\.\. (?:module|currentmodule):: (\S+)", line):
            module = match.group(1)
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and (match := re.fullmatch(r" {3}([A-Za-z_]\w*)", line)):
            entries.setdefault(module, set()).add(match.group(1))
        elif in_table and line and not line.startswith(" "):
            in_table = False
    return entries


def public_names(module_name):
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__: list its public names"
    return set(module.__all__) - {"__version__"}


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_name_is_in_the_api_reference(module_name):
    listed = api_reference_entries().get(module_name, set())
    missing = public_names(module_name) - listed
    assert not missing, (
        f"{sorted(missing)} of {module_name}.__all__ missing from {API_INDEX.relative_to(ROOT)}: "
        f"add them to the autosummary table under '.. module:: {module_name}'"
    )


def test_the_api_reference_lists_only_public_names():
    for module_name, listed in api_reference_entries().items():
        assert module_name in public_modules(), f"{module_name} is not a public module"
        unknown = listed - public_names(module_name)
        assert not unknown, f"{sorted(unknown)} are not in {module_name}.__all__"


def test_the_html_repr_links_to_the_api_page_of_each_estimator():
    from sklearn.base import BaseEstimator

    entries = api_reference_entries()
    estimators = [
        getattr(importlib.import_module(module), name)
        for module, names in entries.items()
        for name in names
        if isinstance(getattr(importlib.import_module(module), name), type)
        and issubclass(getattr(importlib.import_module(module), name), BaseEstimator)
    ]
    assert {cls.__name__ for cls in estimators} >= {"CMLRecommender", "InteractionEncoder",
                                                    "RecommenderPipeline"}
    for cls in estimators:
        module = next(m for m, names in entries.items() if cls.__name__ in names)
        page = f"{DOCUMENTATION_URL}api/generated/{module}.{cls.__name__}.html"
        # A Pipeline has no default steps: give it the two it is made for.
        estimator = cls([("encoder", sklearn_cml.preprocessing.InteractionEncoder()),
                         ("cml", sklearn_cml.CMLRecommender())]) \
            if issubclass(cls, sklearn_cml.RecommenderPipeline) else cls()
        assert estimator._get_doc_link() == page
        assert f'href="{page}"' in estimator._repr_html_inner()  # the "?" icon in Jupyter


def test_the_doc_link_is_only_for_the_package_classes():
    class Mine(sklearn_cml.CMLRecommender):
        pass

    Mine.__module__ = "my_project.models"
    assert Mine()._get_doc_link() == ""


def test_pyproject_names_the_documentation_url():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Documentation"] == DOCUMENTATION_URL
    assert DOCUMENTATION_URL.startswith("https://") and DOCUMENTATION_URL.endswith("/")


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_class_and_function_has_an_examples_section(module_name):
    module = importlib.import_module(module_name)
    for name in public_names(module_name):
        obj = getattr(module, name)
        if callable(obj):
            assert "\n    Examples\n    --------\n" in (obj.__doc__ or ""), f"{module_name}.{name}"
