"""`python -m llmctl.bench.worker REQUEST_JSON OUTPUT_JSON`: measure one artefact in a fresh process."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    """Read the request, measure, write the record (or the error) as JSON."""
    from llmctl.bench.measure import BenchRequest, measure
    from llmctl.errors import LlmctlError

    request = BenchRequest(**json.loads(Path(sys.argv[1]).read_text()))
    try:
        record = measure(request)
    except LlmctlError as error:
        record = {"model": request.model, "error": str(error)}
    Path(sys.argv[2]).write_text(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
