"""``python -m ml.backbones.check``: check or export a backbone file in a process of its own.

The API never imports torch (docs/architecture.md), and a user's file is untrusted: loading it may take
seconds, gigabytes, or crash the interpreter inside a native library. So the service runs this in a
child process with a timeout and reads one JSON object from stdout:

    check FILE --format F [--architecture A] [--input-size S] [--normalization N]
        -> {"ok": true, "embedding_dim": ..., "input_size": ..., ...}
    export CHECKPOINT OUT
        writes a project's backbone (a Loupe checkpoint) as TorchScript, then checks that file
        -> the check of OUT, plus "exported": {its input contract}

A file that is refused answers {"ok": false, "error": "..."} with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml.backbones.check")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load a backbone file and run a dummy batch")
    check.add_argument("file")
    check.add_argument("--format", required=True)
    check.add_argument("--architecture", default=None)
    check.add_argument("--input-size", type=int, default=None)
    check.add_argument("--normalization", default=None)
    export = sub.add_parser("export", help="write a Loupe checkpoint as a TorchScript file")
    export.add_argument("checkpoint")
    export.add_argument("out")
    return parser


def run(argv: list[str]) -> dict:
    import warnings

    import torch

    warnings.filterwarnings("ignore")  # deprecation notes of torch.jit/onnx: stdout stays one JSON object

    torch.set_num_threads(min(2, torch.get_num_threads()))
    from ml.backbones.export import export_torchscript

    args = _parser().parse_args(argv)
    if args.command == "export":
        from ml.checkpoint import Checkpoint

        try:
            ckpt = Checkpoint.load(args.checkpoint)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"the backbone version's checkpoint cannot be read: {exc}") from None
        contract = export_torchscript(ckpt, args.out)
        return {**check_backbone(args.out, "torchscript"), "exported": contract}
    return check_backbone(args.file, args.format, args.architecture, args.input_size, args.normalization)


def check_backbone(path: str | os.PathLike, fmt: str, architecture: str | None = None,
                   input_size: int | None = None, normalization: str | None = None) -> dict[str, Any]:
    """Load a backbone file, embed a dummy batch with it, and describe it.

    Returns:
        ``embedding_dim`` (width of the "last" layer), ``input_size``, ``in_channels``, ``block_dims``,
        ``normalization`` with ``norm_mean``/``norm_std``, ``parameters`` and ``trainable``.

    Raises:
        ValueError: the file does not load, does not fit the architecture, or does not run.
    """
    import torch  # here, not at the top: ``run`` quiets torch's warnings first

    from ml.backbones.external import _first_line, load_external, registered_checkpoint
    from ml.embedding import embed_batch, embedding_dim

    ckpt = registered_checkpoint(path, fmt, architecture, input_size, normalization)
    net = load_external(ckpt).eval()
    size, chans = ckpt.config["image_size"], ckpt.config["in_channels"]
    dummy = torch.randint(0, 256, (2, chans, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    try:
        out = embed_batch(net, dummy, "last")
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"the backbone failed on a dummy batch: {_first_line(exc)}") from None
    if not torch.isfinite(out).all():
        raise ValueError("the backbone gives non-finite values on a dummy batch")
    return {"format": fmt, "architecture": architecture, "embedding_dim": embedding_dim(net, "last"),
            "input_size": size, "in_channels": chans, "block_dims": list(net.block_dims),
            "normalization": ckpt.config["normalization"], "norm_mean": ckpt.config["norm_mean"],
            "norm_std": ckpt.config["norm_std"], "parameters": int(sum(p.numel() for p in net.parameters())),
            "trainable": net.trainable}


def main(argv: list[str] | None = None) -> int:
    try:
        report = run(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    except MemoryError:
        print(json.dumps({"ok": False, "error": "the backbone needs more memory than this machine has"}))
        return 2
    print(json.dumps({"ok": True, **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
