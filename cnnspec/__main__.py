from cnnspec.cli import entry

entry()
