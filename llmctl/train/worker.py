"""The entry point each torchrun process runs: ``python -m llmctl.train.worker REQUEST.json [RUN_TO_RESUME]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Join the process group, train this process's share, leave."""
    from llmctl.cli.output import err_console
    from llmctl.errors import LlmctlError
    from llmctl.train.distributed import init_from_environment, shutdown
    from llmctl.train.finetune import FinetuneRequest, run_finetune

    args = sys.argv[1:] if argv is None else argv
    request = FinetuneRequest.from_dict(json.loads(Path(args[0]).read_text()))
    resume = args[1] if len(args) > 1 else None
    import torch

    info = init_from_environment("cuda" if torch.cuda.is_available() else "cpu")
    try:
        run_finetune(request, resume=resume, dist=info)
    except LlmctlError as error:
        err_console.print(f"[red]error:[/] (rank {info.rank}) {error}")
        return error.exit_code
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
