"""`python -m harness.train RECIPE.yaml`: the entry point for `torchrun` and `accelerate launch`.

Each rank runs the same recipe; the trainers share the work through torch.distributed, the main process
writes the output. The process group is destroyed before exit, so the launcher sees every rank end cleanly.
"""

from __future__ import annotations

import argparse
import sys

from harness.core.api import UserError
from harness.train import check, train


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m harness.train")
    parser.add_argument("recipe")
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.check:
            print(check(args.recipe, merge=args.merge, force=args.force))
            return 0
        out = train(args.recipe, merge=args.merge, force=args.force)
        print(f"wrote {out}")
        return 0
    except UserError as exc:
        print(f"tunegate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        _teardown()


def _teardown() -> None:
    """Leave the process group explicitly; an implicit teardown at exit can race the other rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
