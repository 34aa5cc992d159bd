"""The wheel carries hcops and, as the data packages ``hcops._policies`` and ``hcops._templates``, the built-in
policy pack and the templates, which live at the top of the repository. Metadata is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["hcops", "hcops.*"]), "hcops._policies", "hcops._templates"],
    package_dir={"hcops._policies": "policies", "hcops._templates": "templates"},
)
