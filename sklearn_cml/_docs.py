"""Where the documentation site lives, and the link to it from an estimator's HTML repr.

The site is built from ``docs/`` and is to be published on Read the Docs at
``DOCUMENTATION_URL``; ``pyproject.toml`` (``project.urls``) and the Sphinx
configuration name the same address.
"""

DOCUMENTATION_URL = "https://sklearn-cml.readthedocs.io/en/latest/"


class DocLinkMixin:
    """Link an estimator's HTML repr (the "?" icon in Jupyter) to its API page.

    scikit-learn's ``BaseEstimator`` builds the link from these two class
    attributes; the page name is the public module and the class name, as
    the API reference's autosummary generates it
    (``api/generated/sklearn_cml.CMLRecommender.html``).
    """

    _doc_link_module = "sklearn_cml"
    _doc_link_template = (
        DOCUMENTATION_URL + "api/generated/{estimator_module}.{estimator_name}.html"
    )
