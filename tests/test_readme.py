"""The README's examples run as tests: a README that lies fails the build."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_readme_has_a_ten_line_example() -> None:
    blocks = python_blocks()
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 12


def test_readme_first_example_runs() -> None:
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(python_blocks()[0], str(README), "exec"), namespace)  # the example asserts its own results
    assert "items" in namespace


def test_readme_names_the_two_setup_commands_that_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in text
    assert "make bench-quick" in text
    assert "exec make test" in ci


def test_readme_nats_commands_parse() -> None:
    """The three NATS commands of the README are valid: each `rpcwire` line parses, its address too."""
    import shlex

    from rpcwire import cli
    from rpcwire._options import connection_options

    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- nats-commands:start -->\n```bash\n(.*?)```", text, flags=re.DOTALL)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("rpcwire ")]
    assert [c[0] for c in commands] == ["bridge", "connect"]
    for argv in commands:
        args = cli.build_parser().parse_args(argv)
        address = args.listen if argv[0] == "bridge" else args.address
        assert connection_options(args, "ADDRESS", address, server=argv[0] == "bridge") == {}
        assert address.startswith("nats://")
