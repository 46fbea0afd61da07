"""The commands, one module a group; registered on the app in :mod:`sigscore.cli`.

Each imports the library inside the command, so ``sigscore --help`` stays fast.
"""
