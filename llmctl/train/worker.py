"""The entry point each torchrun process runs: ``python -m llmctl.train.worker REQUEST.json [RUN_TO_RESUME]``.

A worker that fails writes its one-line error to ``error-rank<R>.txt`` next to the request file (the exit code, a
tab, the line) instead of printing it, and the launcher shows the first rank's line as the run's one error.
``python -m llmctl.train.worker --torchrun TORCHRUN_ARGS…`` runs torchrun itself without its multi-line failure
report (``ChildFailedError`` and per-rank tables): the launcher reads the workers' lines with :func:`worker_error`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ERROR_FILE = "error-rank{rank}.txt"
TORCHRUN_FLAG = "--torchrun"
QUIET_ENV = "LLMCTL_WORKER_ERRORS_TO_FILE"  # set by run_torchrun: the launcher prints the workers' lines itself


def _debug() -> bool:
    return bool(os.environ.get("LLMCTL_DEBUG"))


def write_worker_error(folder: Path, rank: int, exit_code: int, line: str) -> None:
    """Record this rank's one-line error for the launcher (written whole, then renamed into place).

    Under a torchrun started some other way than :func:`run_torchrun`, the line also goes to stderr, as before.
    """
    if not os.environ.get(QUIET_ENV):
        print(line.replace("error: ", f"error: (rank {rank}) ", 1), file=sys.stderr)
    target = folder / ERROR_FILE.format(rank=rank)
    partial = target.with_suffix(".partial")
    partial.write_text(f"{exit_code}\t{' '.join(line.split())}\n", encoding="utf-8")
    partial.replace(target)


def worker_error(folder: str | Path) -> tuple[int, str] | None:
    """The exit code and one-line message of the lowest failed rank in ``folder``, or ``None`` if none wrote one."""
    def rank_of(path: Path) -> int:
        digits = path.stem.removeprefix("error-rank")
        return int(digits) if digits.isdigit() else 1 << 30

    for path in sorted(Path(folder).glob(ERROR_FILE.format(rank="*")), key=rank_of):
        code, _, line = path.read_text(encoding="utf-8").strip().partition("\t")
        if line:
            return (int(code) if code.isdigit() else 1), line
    return None


def raise_worker_error(folder: str | Path) -> None:
    """Raise the first failed rank's error (its line and exit code) as a ReportedError; nothing if none failed.

    The launcher calls this after a torchrun job that exited non-zero, before its temporary folder goes.
    """
    from llmctl.errors import ReportedError

    found = worker_error(folder)
    if found is not None:
        code, line = found
        raise ReportedError(line.removeprefix("error: "), code)


def main(argv: list[str] | None = None) -> int:
    """Join the process group, train this process's share, leave; a failure becomes this rank's one-line file."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == TORCHRUN_FLAG:
        return run_torchrun(args[1:])
    from llmctl.console import internal_error_line
    from llmctl.errors import LlmctlError
    from llmctl.train.distributed import init_from_environment, shutdown
    from llmctl.train.finetune import FinetuneRequest, run_finetune

    request_file = Path(args[0])
    request = FinetuneRequest.from_dict(json.loads(request_file.read_text()))
    resume = args[1] if len(args) > 1 else None
    rank = int(os.environ.get("RANK", "0"))
    import torch

    try:
        info = init_from_environment("cuda" if torch.cuda.is_available() else "cpu")
        rank = info.rank
        run_finetune(request, resume=resume, dist=info)
    except LlmctlError as error:
        if _debug():
            raise
        write_worker_error(request_file.parent, rank, error.exit_code, f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: one line (the catch-all's) unless LLMCTL_DEBUG asks for the traceback
        if _debug():
            raise
        write_worker_error(request_file.parent, rank, 1, internal_error_line(error))
        return 1
    finally:
        shutdown()
    return 0


def run_torchrun(torchrun_args: list[str]) -> int:
    """Run ``torch.distributed.run`` with ``torchrun_args``; return the job's exit code without its failure report.

    torchrun ends a failed job with a traceback of ``ChildFailedError`` and a table per rank; the workers have
    written their one-line errors already, so that report is dropped (``LLMCTL_DEBUG`` keeps it). Any other
    failure of torchrun itself (a bad rendezvous address, a port in use) is printed as one line.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ[QUIET_ENV] = "1"  # inherited by the workers
    if not _debug():
        logging.getLogger("torch.distributed").setLevel(logging.ERROR)
        logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parse_args(torchrun_args))
    except ChildFailedError as error:
        if _debug():
            raise
        codes = [failure.exitcode for failure in error.failures.values() if failure.exitcode]
        return next((code for code in codes if code > 0), 1)
    except Exception as error:  # torchrun could not start or join the job
        if _debug():
            raise
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        print(f"error: torchrun could not run the job: {lines[0] if lines else 'no details'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
