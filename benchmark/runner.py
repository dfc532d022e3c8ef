"""Placeholder: this command module is being written; it adds no commands yet."""


def add_commands(subparsers) -> None:
    return None
