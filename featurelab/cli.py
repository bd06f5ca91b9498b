"""The `featurelab` command: `featurelab replay session.jsonl`."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="featurelab", description="featurelab tools")
    commands = parser.add_subparsers(dest="command", required=True)
    replay_cmd = commands.add_parser("replay", help="rebuild a lab from a JSONL log, retrain, "
                                     "and report what differs from the recorded results")
    replay_cmd.add_argument("log", help="a JSONL action log (lab.log.to_jsonl)")
    replay_cmd.add_argument("--no-verify", action="store_true", help="replay without comparing")
    args = parser.parse_args(argv)

    from featurelab.errors import FeaturelabError
    from featurelab.replay import replay

    bar = tqdm(total=0, unit="action", file=sys.stderr)

    def progress(done: int, total: int, entry: object) -> None:
        bar.total = total
        bar.n = done
        bar.set_description(getattr(entry, "type", "") or "")
        bar.refresh()

    try:
        report = replay(args.log, verify=not args.no_verify, progress=progress)
    except (FeaturelabError, OSError) as exc:
        bar.close()
        print(f"featurelab replay: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
