"""Sphinx configuration of the sklearn-cml documentation site.

Build it from the repository root with the README's documentation command::

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

The Markdown pages are read by myst-parser (they stay Markdown, and their
examples stay doctests run by pytest); the API reference is generated from
the numpydoc docstrings by autosummary; the gallery runs the scripts of
``docs/examples`` with sphinx-gallery.
"""

import logging
import sys

import sklearn_cml
from sklearn_cml._docs import DOCUMENTATION_URL

project = "sklearn-cml"
author = "the sklearn-cml developers"
copyright = "the sklearn-cml developers, BSD-3-Clause"
release = sklearn_cml.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**/sg_execution_times.rst", "examples/README.rst"]
html_extra_path = []

# Every reference must resolve: a broken :func:, :class: or See Also entry,
# or a Markdown link to a missing page or heading, fails the build (-W).
nitpicky = True
# Names of other libraries resolve through intersphinx when their inventories
# can be fetched; offline they are left as plain text rather than failing.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|sklearn|pandas|matplotlib|numba|threadpoolctl)(\..*)?"),
    (r"py:.*", r"(np|sp|pd)\..*"),
]

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Checked on every documented object: a public function, class or method
# without a docstring, with an undocumented or unknown parameter, without its
# Returns section or its summary fails the build.  (That every public class
# and function has an Examples section is a test: tests/test_docs.py.)
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "RT01", "SS01"}

# -- Markdown (myst-parser) --------------------------------------------------
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# -- Links to other projects -------------------------------------------------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
}
intersphinx_timeout = 10

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # A failing example fails the build, with its traceback.
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklearn_cml",),
    "backreferences_dir": "api/generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 0,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-cml {release}"
html_baseurl = DOCUMENTATION_URL
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False


class _OfflineInventories(logging.Filter):
    """Report unreachable intersphinx inventories as a note, not a warning.

    The build must pass where only the package registries are reachable;
    references to numpy, scipy and scikit-learn then stay plain text.
    """

    def filter(self, record):
        if "failed to reach any of the inventories" not in str(record.msg):
            return True
        print("note: an intersphinx inventory is unreachable (offline?); "
              "its references are left as text", file=sys.stderr)
        return False


# Pages written by the benchmark scripts, linked from the benchmarks page but
# not listed in the navigation.
ORPHAN_PAGES = {"benchmarks/results", "benchmarks/large/results", "benchmarks/defaults/results",
                "benchmarks/large-defaults/results"}
# Links from the guides to the benchmark scripts, outside docs/: on the site,
# to the page that includes the scripts' README.
LINKS_OUT_OF_DOCS = {
    "](../benchmarks/README.md)": "](benchmark_scripts.md)",
    "](../benchmarks/peers/)": "](benchmark_scripts.md)",
}


def _adapt_source(app, docname, source):
    """Mark generated pages as orphans and point links out of docs/ at pages of the site."""
    text = source[0]
    if docname in ORPHAN_PAGES:
        text = "---\norphan: true\n---\n" + text
    for link, on_site in LINKS_OUT_OF_DOCS.items():
        text = text.replace(link, on_site)
    source[0] = text


def setup(app):
    app.connect("source-read", _adapt_source)
    # Sphinx loggers are named "sphinx." + the module's name.
    logging.getLogger("sphinx.sphinx.ext.intersphinx").addFilter(_OfflineInventories())
