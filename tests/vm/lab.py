"""Run one command inside the kernel-SCTP lab VM (``bash scripts/sctp-lab.sh -- COMMAND``).

The command runs as root with ``/bin/sh -c`` in the repository (this machine's root is
visible read-only, writes go to guest memory), with the repository's ``.venv/bin``
first on PATH. Files it writes to ``$LAB_OUT`` land in ``--out`` on this machine
(default ``out/sctp-lab``). The exit status is the command's; 124 when the VM had
to be killed on the timeout, 125 when the lab cannot run here (the reason is printed).
Without a command, an interactive shell starts on the VM's console.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.vm.guest import fast_python_prelude, guest_environment, prepare_host
from tests.vm.image import LabUnavailable
from tests.vm.machine import NO_STATUS, VmSettings, describe_failure, run_in_vm

REPO = Path(__file__).resolve().parents[2]
EXIT_TIMEOUT = 124
EXIT_UNAVAILABLE = 125


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sctp-lab",
        description="Boot the kernel-SCTP lab VM, run COMMAND in it, power off.",
    )
    defaults = VmSettings()
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "out" / "sctp-lab",
        help="result directory, $LAB_OUT in the guest (default: out/sctp-lab)",
    )
    parser.add_argument(
        "--cwd",
        type=Path,
        default=REPO,
        help="working directory in the guest (default: the repository)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=defaults.timeout,
        help="seconds before the VM is killed (default: %(default)s)",
    )
    parser.add_argument("--cpus", type=int, default=defaults.cpus)
    parser.add_argument("--memory", type=int, default=defaults.memory_mb, help="MiB")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable for the command (repeatable)",
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="the command and its arguments (after --)"
    )
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env expects NAME=VALUE, got {item!r}")
    if not args.command and not sys.stdin.isatty():
        parser.error("no command given (an interactive shell needs a terminal)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    env = guest_environment(REPO)
    env.update(item.split("=", 1) for item in args.env)
    interactive = not args.command
    command = shlex.join(args.command) if args.command else "exec /bin/bash -i"
    settings = VmSettings(cpus=args.cpus, memory_mb=args.memory, timeout=args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        prepare_host(REPO)
        run = run_in_vm(
            command,
            out_dir=args.out,
            cwd=args.cwd.resolve(),
            env=env,
            prelude=fast_python_prelude(REPO),
            settings=settings,
            echo=None if interactive else sys.stdout.buffer,
            interactive=interactive,
        )
    except LabUnavailable as exc:
        print(f"sctp-lab: cannot run the lab here: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    boot = f"{run.boot_seconds:.1f} s" if run.boot_seconds is not None else "unknown"
    print(
        f"sctp-lab: status {run.status}, boot {boot}, total {run.total_seconds:.1f} s, "
        f"results in {run.out_dir}",
        file=sys.stderr,
    )
    if run.timed_out:
        print(f"sctp-lab: {describe_failure(run, 0)}", file=sys.stderr)
        return EXIT_TIMEOUT
    if run.status == NO_STATUS:
        print(f"sctp-lab: {describe_failure(run, 0)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return run.status


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
