"""`vitalbridge cloud user add|passwd|disable|enable|list`: users of the API, straight in the database.

Passwords are read from a prompt (twice) or, with ``--password-stdin``, from the first line of standard
input; never from the command line, where other users of the machine could read them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from typing import Any

__all__ = ["add_user_parser"]

_ROLES = ("admin", "doctor", "nurse", "family")


def add_user_parser(commands: Any) -> None:
    """Register ``cloud user ...`` under the ``cloud`` command group."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "user", help="manage the API's users (the first admin, password changes, disabling)",
        description="Manage the API's users in the database named by --database-url or VB_DATABASE_URL.")
    parser.add_argument("--database-url", help="SQLAlchemy URL of the relational store (VB_DATABASE_URL)")
    actions = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=_ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd = actions.add_parser("passwd", help="set a user's password (their tokens stop working)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for name, help_text in (("disable", "disable a user (their tokens stop working)"), ("enable", "enable a user")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("username")
    actions.add_parser("list", help="list users, their roles and whether they are disabled")
    parser.set_defaults(func=_run)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _run(args: argparse.Namespace) -> int:
    from cloud.auth import AuthError, Identity
    from vitalbridge.commands._cloud_store import open_cloud_store

    name = f"vitalbridge cloud user {args.user_command}"
    opened = open_cloud_store(name, database_url=args.database_url)
    if isinstance(opened, int):
        return opened
    _config, store = opened
    try:
        identity = Identity(store.engine)
        if args.user_command == "list":
            for user in identity.users():
                print(f"{user.username}\t{user.role.value}\t{'disabled' if user.disabled else 'enabled'}")
        elif args.user_command == "add":
            user = identity.add_user(args.username, args.role, _password(args), now=dt.datetime.now(dt.UTC))
            print(f"added {user.username} ({user.role.value})")
        elif args.user_command == "passwd":
            identity.set_password(args.username, _password(args))
            print(f"password of {args.username} changed; their tokens no longer work")
        else:
            identity.set_disabled(args.username, args.user_command == "disable")
            print(f"{args.username} {args.user_command}d")
    except (AuthError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print(f"{name}: no password given", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0
