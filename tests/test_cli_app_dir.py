"""Authors' modules found the way the README says: the installed `runservice` script run from a
directory outside the repository puts that directory (or --app-dir / RUNSERVICE_APP_DIR) first
on the import path. `runservice check` reports what the modules define, or what is wrong."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from clitools import RUNSERVICE, clean_env, runservice

from runservice.client import Client
from runservice.model import RunStatus

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent

HELLO = """
from pydantic import BaseModel
from runservice import StepContext, create_step, create_workflow


class Name(BaseModel):
    name: str


class Greeting(BaseModel):
    text: str


@create_step("greet", input_schema=Name, output_schema=Greeting)
async def greet(ctx: StepContext) -> Greeting:
    return Greeting(text=f"Hello, {Name.model_validate(ctx.input_data).name}!")


WORKFLOWS = [create_workflow("hello", input_schema=Name, output_schema=Greeting).then(greet).commit()]
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """An author's project outside the repository: APP/my_app/workflows.py (the README's example)."""
    root = tmp_path / "project"
    (root / "my_app").mkdir(parents=True)
    (root / "my_app" / "__init__.py").write_text("")
    (root / "my_app" / "workflows.py").write_text(HELLO)
    assert not root.is_relative_to(ROOT)
    return root


async def serve_and_greet(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Start the console script, greet through the Python client, stop it with SIGTERM; its log."""
    proc = await asyncio.create_subprocess_exec(
        str(RUNSERVICE), "serve", "--address", "127.0.0.1:0", "--data-dir", str(cwd / "data"), *args,
        cwd=cwd, env=env or clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    log = ""
    try:
        async with asyncio.timeout(20):
            while not (found := re.search(r"listening on (\S+)", log)):
                line = (await proc.stderr.readline()).decode()
                if not line:
                    pytest.fail(f"the server exited ({await proc.wait()}) before listening:\n{log}")
                log += line
        async with Client(found[1], timeout=10.0) as client:
            run = await client.get_workflow("hello").create_run()
            done = await run.start_async({"name": "Ada"})
        assert done.status is RunStatus.SUCCESS and done.result == {"text": "Hello, Ada!"}
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), 15)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        return log + rest.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_from_the_authors_directory(app: Path) -> None:
    log = await serve_and_greet(app, "--workflows", "my_app.workflows")
    assert "serving 1 workflows" in log and "Traceback" not in log


async def test_serve_with_an_app_dir_flag_or_variable(app: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    await serve_and_greet(elsewhere, "--workflows", "my_app.workflows", "--app-dir", str(app))
    env = clean_env(RUNSERVICE_APP_DIR=str(app), RUNSERVICE_WORKFLOWS="my_app.workflows")
    await serve_and_greet(elsewhere, env=env)


async def test_serve_elsewhere_says_where_it_looked(app: Path, tmp_path: Path) -> None:
    where = tmp_path.resolve()  # noqa: ASYNC240 (a path computation, no I/O worth a thread)
    done = await runservice(
        "serve", "--workflows", "my_app.workflows", "--data-dir", str(tmp_path), cwd=tmp_path
    )
    assert done.code == 2
    assert done.error_lines == [
        "runservice: error: cannot import workflows module 'my_app.workflows': No module named 'my_app' "
        f"(looked in the app directory {where}; see --app-dir)"
    ]
    missing = await runservice(
        "serve", "--workflows", "my_app.workflows", "--app-dir", str(tmp_path / "nope")
    )
    assert missing.code == 2 and "is not a directory" in missing.err


# -- check ----------------------------------------------------------------------------------------


async def test_check_reports_what_modules_define(app: Path) -> None:
    text = await runservice("check", "--workflows", "my_app.workflows", cwd=app)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0].startswith("my_app.workflows  ") and lines[0].endswith("my_app/workflows.py")
    assert "  workflow hello" in lines
    assert "    input: {name: string}" in lines and "    output: {text: string}" in lines
    assert any(re.fullmatch(r"\s+greet\s+\{name: string\}\s+\{text: string\}", line) for line in lines)
    assert lines[-1] == "ok: 1 workflow, 1 step"
    # A module named twice is one module, as `serve` counts it (it was reported twice, 2 workflows).
    twice = await runservice("check", "--workflows", "my_app.workflows,my_app.workflows", cwd=app)
    assert twice.code == 0, twice.err
    assert twice.out.splitlines()[-1] == "ok: 1 workflow, 1 step"

    both = await runservice(
        "check", "--workflows", "my_app.workflows,runservice.examples", "--json", "--app-dir", str(app)
    )
    report = both.json()
    assert report["ok"] is True and [m["module"] for m in report["modules"]] == [
        "my_app.workflows",
        "runservice.examples",
    ]
    hello = report["modules"][0]["workflows"][0]
    assert hello["id"] == "hello" and hello["input_schema"]["required"] == ["name"]
    examples = {wf["id"]: wf for wf in report["modules"][1]["workflows"]}
    approval = {step["id"]: step for step in examples["human-approval"]["steps"]}
    assert list(approval) == ["draft", "approve", "notify"]
    assert approval["approve"]["can_suspend"] and approval["approve"]["resume_schema"]["required"] == [
        "approved",
        "approver",
    ]


async def test_check_nested_steps_use_dotted_ids() -> None:
    env = clean_env(PYTHONPATH=str(ROOT / "tests"))
    report = await runservice("check", "--workflows", "flows", "--json", env=env)
    assert report.code == 0, report.err
    outer = next(wf for wf in report.json()["modules"][0]["workflows"] if wf["id"] == "outer")
    ids = [step["id"] for step in outer["steps"]]
    assert ids == ["middle", "middle.add-one", "middle.innermost", "middle.innermost.double",
                   "middle.innermost.approve", "finish"]  # fmt: skip


BROKEN = {
    "syntax": ("def broken(:\n", r"SyntaxError at .*my_app/bad\.py:1: "),
    "definition": (
        HELLO + "\nTWICE = create_workflow('twice').then(greet).then(greet).commit()\n",
        r"WorkflowDefinitionError at .*my_app/bad\.py:\d+: workflow 'twice' uses step id 'greet' twice",
    ),
    "schedule": (  # raised in Schedule's generated __init__, which has no file of its own
        HELLO + "\nNEVER = create_workflow('never').then(greet).schedule('s1', '0 0 30 2 *').commit()\n",
        r"WorkflowDefinitionError at .*my_app/bad\.py:\d+: schedule 's1': cron expression",
    ),
    "schedule input": (  # refused by the workflow's input schema where the schedule is declared
        HELLO + "\nNOBODY = create_workflow('nobody', input_schema=Name).then(greet)"
        ".schedule('s2', '0 9 * * *', input_data={'nom': 'x'}).commit()\n",
        r"WorkflowDefinitionError at .*my_app/bad\.py:\d+: schedule 's2': "
        "input_data fails the workflow's schema: name: Field required",
    ),
    "import": (
        "import no_such_dependency_here\n",
        r"ModuleNotFoundError at .*my_app/bad\.py:1: No module named",
    ),
    "empty": ("X = 1\n", r"module 'my_app\.bad' defines no workflows"),
    # Before, `check` exited 3 ("run failed" in the CLI's table) without a word, and a module
    # that raised KeyboardInterrupt printed a traceback (audit).
    "exit": (
        "import sys\nX = 1\nsys.exit(3)\n",
        r"SystemExit at .*my_app/bad\.py:3: the module exited while it was imported \(sys\.exit\(3\)\)$",
    ),
    "argparse exit": (  # argparse's own line is not the one to fix: the author's call is
        "import argparse\nargparse.ArgumentParser(prog='bad').parse_args(['--nope'])\n",
        r"SystemExit at .*my_app/bad\.py:2: the module exited while it was imported \(sys\.exit\(2\)\)$",
    ),
    "interrupt": (
        "X = 1\nraise KeyboardInterrupt\n",
        r"KeyboardInterrupt at .*my_app/bad\.py:2: the module raised it while it was imported$",
    ),
    "uncommitted": (
        HELLO.replace(".commit()]", "]"),
        r"workflow 'hello' in module 'my_app\.bad' is not committed: call \.commit\(\) on it",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_check_says_exactly_what_is_wrong(app: Path, case: str) -> None:
    source, expected = BROKEN[case]
    (app / "my_app" / "bad.py").write_text(textwrap.dedent(source))
    done = await runservice("check", "--workflows", "my_app.bad", cwd=app)
    assert done.code == 1 and done.out == ""
    ours = [line for line in done.error_lines if not line.startswith(("usage: bad", "bad: error"))]
    assert len(ours) == 1 and "Traceback" not in done.err, done.err  # (argparse's lines are the module's)
    assert re.search(
        r"^runservice: error: (cannot import workflows module 'my_app\.bad': )?" + expected, ours[0]
    ), ours[0]
    at = re.search(r"bad\.py:(\d+)", done.err)
    if at:  # the line named is the author's line that failed
        failing = textwrap.dedent(source).splitlines()[int(at[1]) - 1]
        assert failing.startswith(
            ("def broken", "TWICE", "NEVER", "NOBODY", "import no_such", "sys.exit", "argparse.", "raise")
        ), failing

    as_json = await runservice("check", "--workflows", "my_app.bad", "--json", cwd=app)
    assert (
        as_json.code == 1 and as_json.json()["ok"] is False and re.search(expected, as_json.json()["error"])
    )


async def test_check_duplicate_ids_and_usage(app: Path) -> None:
    (app / "my_app" / "copy.py").write_text(HELLO)
    dup = await runservice("check", "--workflows", "my_app.workflows,my_app.copy", cwd=app)
    assert dup.code == 1
    assert dup.error_lines == [
        "runservice: error: two workflows have the id 'hello' and version '1'"
        " (in 'my_app.workflows' and 'my_app.copy')"
    ]
    nothing = await runservice("check", "--workflows", " , ", cwd=app)
    assert nothing.code == 2 and "--workflows" in nothing.err
    # Without --workflows, what `serve` serves without it (a usage error, exit 2, in an audit).
    served = await runservice("check", "--json", cwd=app)
    assert served.code == 0, served.err
    assert [module["module"] for module in served.json()["modules"]] == ["runservice.examples"]
    from_env = await runservice("check", cwd=app, env=clean_env(RUNSERVICE_WORKFLOWS="my_app.workflows"))
    assert from_env.code == 0 and "workflow hello" in from_env.out


# The configuration's schedules (--schedules, RUNSERVICE_SCHEDULES): `check` printed "ok" for
# schedules `serve` refuses (a cron that never fires, an unknown zone, a workflow not served).
BAD_SCHEDULES: dict[str, tuple[list[dict[str, object]], str]] = {
    "never": (
        [{"cron": "0 0 30 2 *"}],
        "schedules (environment): schedule 's': cron expression '0 0 30 2 *' never matches a date",
    ),
    "zone": (
        [{"timezone": "Europe/Berln"}],
        "schedules (environment): schedule 's': unknown time zone 'Europe/Berln'",
    ),
    "workflow": (
        [{"workflow": "nope"}],
        "schedules: schedule 's' names workflow 'nope', which is not served (served: hello)",
    ),
    "input": (
        [{"input_data": {"nom": "Ada"}}],
        "schedules: schedule 's': input_data fails the workflow's schema: name: Field required",
    ),
    "twice": (  # `serve` refused it only once the database was open ("cannot serve", exit 1)
        [{}, {"cron": "0 10 * * *"}],
        "schedules: two schedules have the id 's' (the setting gives it twice)",
    ),
}


def schedules_json(*changes: dict[str, object]) -> str:
    """A `schedules` setting: one good schedule of `hello` per item of `changes`, changed by it."""
    good = {"id": "s", "workflow": "hello", "cron": "0 9 * * 1-5", "input_data": {"name": "Ada"}}
    return json.dumps([good | change for change in changes])


@pytest.mark.parametrize("case", sorted(BAD_SCHEDULES))
async def test_check_refuses_the_schedules_serve_refuses(app: Path, case: str) -> None:
    changes, expected = BAD_SCHEDULES[case]
    env = clean_env(RUNSERVICE_SCHEDULES=schedules_json(*changes))
    done = await runservice("check", "--workflows", "my_app.workflows", cwd=app, env=env)
    assert done.code == 1 and done.out == "", done.out
    assert len(done.error_lines) == 1 and done.error_lines[0].startswith(f"runservice: error: {expected}")
    as_json = await runservice("check", "--workflows", "my_app.workflows", "--json", cwd=app, env=env)
    error = done.error_lines[0].removeprefix("runservice: error: ")
    assert as_json.code == 1 and as_json.json() == {"ok": False, "error": error}
    # `serve` refuses it with the same words (its line also quotes the variable's value).
    served = await runservice(
        "serve", "--workflows", "my_app.workflows", "--address", "127.0.0.1:0", "--data-dir",
        str(app / "data"), cwd=app, env=env,
    )  # fmt: skip
    assert served.code == 2 and len(served.error_lines) == 1, served.err
    assert expected.split(": ", 1)[1] in served.err


async def test_check_reports_the_schedules_it_checked(app: Path, tmp_path: Path) -> None:
    two = schedules_json({}, {"id": "t", "cron": "0 8 * * *", "timezone": "Europe/Berlin"})
    done = await runservice(
        "check", "--workflows", "my_app.workflows", cwd=app, env=clean_env(RUNSERVICE_SCHEDULES=two)
    )
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert "schedules (RUNSERVICE_SCHEDULES)" in lines
    assert any(re.fullmatch(r"\s+t\s+hello\s+0 8 \* \* \*\s+Europe/Berlin", line) for line in lines), lines
    assert lines[-1] == "ok: 1 workflow, 1 step, 2 schedules"
    # The flag wins over the variable, as it does for `serve`; a TOML file, as `serve` reads it.
    toml = tmp_path / "schedules.toml"
    toml.write_text(
        '[[schedules]]\nid = "t"\nworkflow = "hello"\ncron = "0 8 * * *"\ninput_data = {name = "x"}\n'
    )
    env = clean_env(RUNSERVICE_SCHEDULES=schedules_json(*BAD_SCHEDULES["never"][0]))
    flag = await runservice(
        "check", "--workflows", "my_app.workflows", "--schedules", str(toml), "--json", cwd=app, env=env
    )
    assert flag.code == 0, flag.err
    assert [(s["id"], s["workflow_id"], s["timezone"]) for s in flag.json()["schedules"]] == [
        ("t", "hello", "UTC")
    ]
    bad = await runservice("check", "--workflows", "my_app.workflows", "--schedules", "[{", cwd=app)
    assert bad.code == 1 and bad.error_lines[0].startswith(
        "runservice: error: schedules (flag): is not valid JSON"
    )
    # Without the setting, the text is as it was and the JSON lists no schedules.
    none = await runservice("check", "--workflows", "my_app.workflows", "--json", cwd=app)
    assert none.code == 0 and none.json()["schedules"] == []
