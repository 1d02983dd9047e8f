# setuptools needs this shim for the package_dir mapping in setup.cfg (PEP 660 editable installs).
from setuptools import setup

setup()
