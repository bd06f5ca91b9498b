"""The `featurelab` command: `featurelab replay session.jsonl`, `featurelab trust PATH`,
`featurelab mcp --lab NAME`, `featurelab explore --lab NAME`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
    mcp_cmd = commands.add_parser(
        "mcp", help="serve a lab's verbs as MCP tools to a research agent, over stdio "
        "(needs the agents extra: pip install 'featurelab[agents]')")
    mcp_cmd.add_argument("--lab", required=True, help="the lab's name (created if new)")
    mcp_cmd.add_argument("--root", default=".featurelab", help="the folder of lab stores "
                         "(default: .featurelab)")
    mcp_cmd.add_argument("--agent-code", choices=("refuse", "allow"), default="refuse",
                         help="whether the agent may send Python (DIY statistics) that runs "
                         "here (default: refuse)")
    explore_cmd = commands.add_parser(
        "explore", help="run a proposer over a lab's exploration (lab.explore), printing "
        "its trajectory metrics as JSON; new with --base and --menu, else the latest")
    explore_cmd.add_argument("--lab", required=True, help="the lab's name")
    explore_cmd.add_argument("--root", default=".featurelab", help="the folder of lab stores")
    explore_cmd.add_argument("--iterations", type=int, default=10)
    explore_cmd.add_argument("--proposer", choices=("random", "grid"), default="random")
    explore_cmd.add_argument("--seed", type=int, default=0, help="the random proposer's seed")
    explore_cmd.add_argument("--exploration", help="an existing exploration (explore_0)")
    explore_cmd.add_argument("--base", help="a new exploration from this experiment ...")
    explore_cmd.add_argument("--menu", help='... over this JSON menu: {"optimizer.lr": [...]}')
    explore_cmd.add_argument("--metric", default="test_loss")
    explore_cmd.add_argument("--goal", choices=("min", "max"), default="min")
    explore_cmd.add_argument("--budget", help='JSON: {"iterations": 50, "seconds": 600}')
    explore_cmd.add_argument("--tsv", help="also write one row per iteration to this file")
    args = parser.parse_args(argv)
    if args.command == "explore":
        return _explore(args)
    if args.command == "trust":
        return _trust(args.path)
    if args.command == "mcp":
        return _mcp(args.lab, args.root, args.agent_code)

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


def _explore(args: argparse.Namespace) -> int:
    import json

    from featurelab.errors import FeaturelabError
    from featurelab.lab import Lab

    try:
        if not (Path(args.root) / f"{args.lab}.sqlite").exists():  # a typo makes no lab
            raise FeaturelabError(f"no lab {args.lab!r} in {args.root}: create it and its base "
                                  "experiment first (a notebook, or featurelab mcp)")
        lab = Lab(args.lab, root=args.root)
        if args.base or args.menu:
            if not (args.base and args.menu):
                raise FeaturelabError("--base and --menu go together (a new exploration)")
            explorer = lab.explore(args.base, json.loads(args.menu), metric=args.metric,
                                   goal=args.goal,
                                   budget=json.loads(args.budget) if args.budget else None)
        else:
            known = list(lab.explorations)
            name = args.exploration or (known[-1] if known else None)
            if name is None:
                raise FeaturelabError(f"lab {args.lab!r} has no exploration: start one with "
                                      "--base EXPERIMENT --menu JSON")
            explorer = lab.explorer(name)
        ask = _proposer(args)
        with tqdm(total=args.iterations, unit="iteration", file=sys.stderr) as bar:
            def proposer(ex: Any) -> Any:
                bar.update(1)
                return ask(ex)
            metrics = explorer.run(proposer, iterations=args.iterations)
        if args.tsv:
            explorer.to_tsv(args.tsv)
    except (FeaturelabError, OSError, ValueError) as exc:  # ValueError: bad JSON
        print(f"featurelab explore: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=1))
    return 0


def _proposer(args: argparse.Namespace) -> Any:
    from featurelab.actions.explore import PROPOSERS

    return PROPOSERS[args.proposer](args.seed) if args.proposer == "random" else \
        PROPOSERS[args.proposer]()


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


def _mcp(name: str, root: str, agent_code: str) -> int:
    try:  # the SDK is an optional extra: say how to get it instead of a traceback
        from featurelab.agents.mcp_server import serve_stdio
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types"):
            raise
        print(f"featurelab mcp: {exc}; install it with pip install 'featurelab[agents]'",
              file=sys.stderr)
        return 2
    from featurelab.errors import FeaturelabError
    from featurelab.lab import Lab

    try:
        lab = Lab(name, root=root, agent_code=agent_code)
    except (FeaturelabError, OSError) as exc:
        print(f"featurelab mcp: {exc}", file=sys.stderr)
        return 2
    serve_stdio(lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
