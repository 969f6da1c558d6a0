"""The version of cnnspec: the one place it is written (pyproject.toml reads it from here)."""

__version__ = "0.1.0"
# where users read about cnnspec (SARIF's tool.driver.informationUri); the repository's address once public
__url__ = "https://github.com/OWNER/cnnspec"
