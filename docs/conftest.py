"""What pytest collects under docs/: the Markdown pages' doctests, nothing else.

The Sphinx configuration and the gallery scripts are not test modules
(the scripts run, with their figures, in the documentation build), and the
build's output holds copies of them.
"""

collect_ignore = ["conf.py"]
collect_ignore_glob = ["examples/*", "_build/*", "auto_examples/*", "api/*", "sg_execution_times*"]
