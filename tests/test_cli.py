"""The pktpath command's own manners (issue #17), without a topology."""

import subprocess
import sys

PKTPATH = [sys.executable, "-m", "pktpath.cli"]


def test_pktpath_alone_says_what_it_can_do_and_succeeds():
    out = subprocess.run(PKTPATH, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage: pktpath")
    for command in ("up", "ping", "traceroute", "tcpdump", "ss", "iptables", "status", "down"):
        assert f"    {command} " in out.stdout, command


def test_version_and_every_positional_argument_has_help():
    from importlib.metadata import version

    out = subprocess.run([*PKTPATH, "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == f"pktpath {version('pktpath')}"
    for command in ("ping", "send", "recv", "traceroute", "up"):
        text = subprocess.run([*PKTPATH, command, "--help"], capture_output=True, text=True, timeout=60).stdout
        positional = text.split("positional arguments:")[1].split("options:")[0]
        lines = [line for line in positional.splitlines() if line.strip()]
        assert all(len(line.split(None, 1)) == 2 or line.startswith("        ") for line in lines), (command, lines)


def test_a_filter_that_does_not_parse_is_tcpdumps_error():
    out = subprocess.run([*PKTPATH, "tcpdump", "-r", "/nonexistent", "host", "and"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and "can't parse filter expression: syntax error" in out.stderr


def test_every_option_with_a_default_says_it_and_every_positional_says_what_it_is():
    import argparse

    from pktpath.cli import parser

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    silent = []
    for name, sub in commands.items():
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            if not action.option_strings and not action.help:
                silent.append(f"{name} {action.dest}: no help")
            shown = action.default is not None and action.default is not False and action.nargs != 0
            if action.option_strings and shown and "default" not in (action.help or ""):
                silent.append(f"{name} {action.option_strings[0]}: default {action.default!r} not said")
    assert silent == []


def test_drill_without_root_says_why_instead_of_a_traceback(monkeypatch, capsys):
    from pktpath import cli

    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert cli.main(["drill", "--kernel", "tests/drill/rst-to-closed-port.pkt"]) == 2
    assert "pktpath drill: needs root" in capsys.readouterr().err
