"""The `featurelab` command: `featurelab replay session.jsonl`, `featurelab trust PATH`."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

# `featurelab replay`'s exit codes: scripts and CI tell the outcomes apart by them.
VERIFIED, DIFFERS, BAD_LOG, UNVERIFIED = 0, 1, 2, 3
REPLAY_EXIT = f"""exit codes:
  {VERIFIED}  verified: results were compared and every one matches (with --no-verify:
     the log replayed without error)
  {DIFFERS}  some recorded result differs from the replay's
  {BAD_LOG}  the log cannot be replayed: unreadable, not JSON lines, an unknown action or
     invalid parameters, an action that fails (the message names the file and line)
  {UNVERIFIED}  nothing or not all was verified: an empty log, a log without recorded
     results (runs' series, fit tables), or code that was not run (see --trust)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="featurelab", description="featurelab tools")
    commands = parser.add_subparsers(dest="command", required=True)
    replay_cmd = commands.add_parser("replay", help="rebuild a lab from a JSONL log, retrain, "
                                     "and report what differs from the recorded results",
                                     epilog=REPLAY_EXIT,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    replay_cmd.add_argument("log", help="a JSONL action log (lab.log.to_jsonl)")
    replay_cmd.add_argument("--no-verify", action="store_true", help="replay without comparing")
    replay_cmd.add_argument("--trust", action="store_true",
                            help="run the log's code (DIY statistics) even where it is not "
                            "signed by you; read it first")
    trust_cmd = commands.add_parser(
        "trust", help="trust the code in a lab store (.sqlite or its folder), a log (.jsonl) "
        "or a notebook (.ipynb): sign it with your secret, so featurelab runs it")
    trust_cmd.add_argument("path", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "trust":
        return _trust(args.path)

    from featurelab.errors import FeaturelabError
    from featurelab.replay import replay

    bar = tqdm(total=0, unit="action", file=sys.stderr)

    def progress(done: int, total: int, entry: object) -> None:
        bar.total = total
        bar.n = done
        bar.set_description(getattr(entry, "type", "") or "")
        bar.refresh()

    try:
        report = replay(args.log, verify=not args.no_verify, progress=progress,
                        trust=args.trust)
    except (FeaturelabError, OSError) as exc:
        bar.close()
        print(f"featurelab replay: {exc}", file=sys.stderr)
        return BAD_LOG
    bar.close()
    print(report)
    if not report.ok:
        return DIFFERS
    if report.verified or (args.no_verify and report.entries and not report.untrusted):
        return VERIFIED
    return UNVERIFIED


def _trust(paths: list[str]) -> int:
    from featurelab.errors import FeaturelabError
    from featurelab.trust import trust

    failed = 0
    for path in paths:
        try:
            print(trust(path))
        except (FeaturelabError, OSError) as exc:
            print(f"featurelab trust: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
