"""Job files: `--save-job FILE.toml` keeps the options of a run, `--job FILE.toml` gives them back
(flags on the command line win), end to end against the sandbox."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, leaks, read_run_report
from tests.conftest import make_leads, write_csv

LEADS = make_leads(3)
IDS = list(LEADS)
MISSING = "f" * 24
#: A Pipedrive "People" export: the lead's SendKit id kept in a custom field, human headers.
PIPEDRIVE = ["Person - SendKit ID", "Person - Name", "Person - First name", "Person - Last name",
             "Organization - Name", "Person - Job title", "Person - Phone", "Person - Labels",
             "Person - Owner"]  # fmt: skip
MAPS = (
    "Person - SendKit ID=id",
    "Person - First name=firstName",
    "Person - Last name=lastName",
    "Organization - Name=companyName",
    "Person - Job title=jobTitle",
    "Person - Phone=phone",
)


def pipedrive(tmp_path: Path, ids: list[str], name: str = "people.csv") -> Path:
    rows = [[lead, f"Ann {n}", "Ann", f"Lee{n}", "Acme", "CTO", f"+1 415 555 010{n}", "Hot",
             "Bob"] for n, lead in enumerate(ids)]  # fmt: skip
    return write_csv(tmp_path / name, PIPEDRIVE, rows)


def flags() -> list[str]:
    return [part for entry in MAPS for part in ("--map", entry)] + ["--ignore-unknown-columns"]


def test_a_saved_job_takes_one_flag_for_the_next_export_and_the_rejects(tmp_path: Path) -> None:
    first = pipedrive(tmp_path, [*IDS[:2], MISSING])
    job = tmp_path / "pipedrive.toml"
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(first, "--base-url", sb.url, "--dry-run", *flags(),
                             "--rate", "50", "--rejects", "rejects.csv", "--limit", "2",
                             "--save-job", job, cwd=tmp_path)  # fmt: skip
        assert code == 0, out + err
        assert sb.state.requests == 0
        saved = tomllib.loads(job.read_text(encoding="utf-8"))
        assert saved == {
            "map": dict(entry.split("=") for entry in MAPS),
            "ignore-unknown-columns": True,
            "rate": "50",
            "rejects": "rejects.csv",
            "base-url": sb.url,
        }  # neither --dry-run nor --limit: they are one run's, not the job's
        assert leaks(KEY, out, err, tmp_path) == []

        code, out, err = cli(first, "--job", job, cwd=tmp_path)
        assert code == 1, out + err  # the missing lead
        assert sb.state.leads[IDS[0]]["lastName"] == "Lee0"
        assert [r["status"] for r in read_run_report(tmp_path / "people.csv.report.csv")] == [
            "updated", "updated", "not_found"]  # fmt: skip

        code, out, err = cli(tmp_path / "rejects.csv", "--job", job, "--rejects", "again.csv",
                             cwd=tmp_path)  # fmt: skip
        assert code == 1, out + err
        assert "unknown column" not in err
        report = read_run_report(tmp_path / "rejects.csv.report.csv")
        assert [(r["id"], r["status"]) for r in report] == [(MISSING, "not_found")]


def test_flags_on_the_command_line_win_over_the_job_file(tmp_path: Path) -> None:
    source = pipedrive(tmp_path, IDS[:1])
    job = tmp_path / "job.toml"
    job.write_text(
        "max-attempts = 0\nignore-unknown-columns = true\nquiet = true\n\n[map]\n"
        + "".join(f'"{e.split("=")[0]}" = "{e.split("=")[1]}"\n' for e in MAPS),
        encoding="utf-8",
    )
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--job", job, cwd=tmp_path)
        assert code == 2, out + err
        assert "--max-attempts: must be 1 or more" in err
        code, out, err = cli(source, "--base-url", sb.url, "--job", job, "--max-attempts", "2",
                             "--map", "Person - Phone=-", "-v", "--save-job", "merged.toml",
                             cwd=tmp_path)  # fmt: skip
        assert code == 0, out + err
        assert "PATCH" in err  # -v set the file's `quiet` aside
        lead = sb.state.leads[IDS[0]]
        assert lead["jobTitle"] == "CTO"
        assert "phone" not in lead  # the command line's --map dropped the column
    merged = tomllib.loads((tmp_path / "merged.toml").read_text(encoding="utf-8"))
    assert merged["map"]["Person - Phone"] == "-"
    assert merged["max-attempts"] == 2
    assert merged["verbose"] is True
    assert "quiet" not in merged


def test_unknown_keys_and_bad_values_are_refused_naming_them(tmp_path: Path) -> None:
    source = pipedrive(tmp_path, IDS[:1])
    cases = {
        "ratee = 5\n": "`ratee` is not an option of run (did you mean `rate`?)",
        "job = 'other.toml'\n": "`job` is not an option of run",
        "concurrency = 'many'\n": "`concurrency`: 'many' is not a valid integer",
        "resume = 'yes'\n": "`resume` must be true or false",
        "rate = [1, 2]\n": "`rate` must be text or a number",
        "map = 3\n": "`map` must be a table",
        "rate = \n": "not a valid TOML file",
        "quiet = true\nverbose = true\n": "`quiet` and `verbose` cannot both be true; choose one",
    }
    with SandboxThread(LEADS, api_key=KEY) as sb:
        for text, message in cases.items():
            (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
            code, out, err = cli(source, "--base-url", sb.url, "--job", "bad.toml", cwd=tmp_path)
            assert code == 2, (text, out + err)
            assert message in err, (text, err)
            assert "Traceback" not in err
        code, out, err = cli(source, "--job", "none.toml", cwd=tmp_path)
        assert code == 2
        assert "none.toml: no such file" in err
        assert sb.state.requests == 0


def test_a_password_is_never_saved(tmp_path: Path) -> None:
    source = pipedrive(tmp_path, IDS[:1])
    redis = "redis://:s3cret-pass@127.0.0.1:1/0"
    code, out, err = cli(source, "--dry-run", *flags(), "--redis", redis, "--rate", "5",
                         "--save-job", "job.toml", cwd=tmp_path)  # fmt: skip
    assert code == 2, out + err
    assert "--redis holds a password, which a job file never keeps" in err
    assert not (tmp_path / "job.toml").exists()
    assert leaks("s3cret-pass", out, err, tmp_path) == []


def test_a_job_file_is_saved_only_as_toml_and_never_over_the_input(tmp_path: Path) -> None:
    source = pipedrive(tmp_path, IDS[:1])
    before = source.read_bytes()
    for target, message in ((source, "is the input file"),
                            ("job.txt", "name the job file FILE.toml")):  # fmt: skip
        code, out, err = cli(source, "--dry-run", *flags(), "--save-job", target, cwd=tmp_path)
        assert code == 2, out + err
        assert message in err
    assert source.read_bytes() == before
    toml_input = tmp_path / "people.toml"
    toml_input.write_bytes(before)
    code, out, err = cli(toml_input, "--format", "csv", "--dry-run", *flags(),
                         "--save-job", toml_input, cwd=tmp_path)  # fmt: skip
    assert code == 2, out + err
    assert "is the input file" in err
    assert toml_input.read_bytes() == before


def test_headers_with_quotes_and_backslashes_come_back_as_written(tmp_path: Path) -> None:
    header = ['Lead "ID" \\ Nº', "Title 'now' é"]
    source = write_csv(tmp_path / "odd.csv", header, [[IDS[0], "CTO"]])
    maps = ("--map", f"{header[0]}=id", "--map", f"{header[1]}=jobTitle")
    code, out, err = cli(source, "--dry-run", *maps, "--save-job", "odd.toml", cwd=tmp_path)
    assert code == 0, out + err
    saved = tomllib.loads((tmp_path / "odd.toml").read_text(encoding="utf-8"))
    assert saved["map"] == {header[0]: "id", header[1]: "jobTitle"}
    code, out, err = cli(source, "--dry-run", "--job", "odd.toml", cwd=tmp_path)
    assert code == 0, out + err
    assert f"{header[0]} → id" in out


def test_every_character_a_header_may_hold_is_written_as_toml_reads_it() -> None:
    from bulk_updater.cli.jobfile import _text

    for text in ('a"b\\c', "tab\there", "del\x7fend", "nul\x00", "ünï €", "line\nbreak"):
        assert tomllib.loads(f"k = {_text('map', text)}\n") == {"k": text}


def test_a_map_flag_wins_over_the_job_file_whatever_the_headers_case(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["Lead ID", "Email", "City"],
                       [[IDS[0], "ann@x.io", "Paris"]])  # fmt: skip
    job = tmp_path / "job.toml"
    job.write_text('[map]\n"Lead ID" = "-"\n"Email" = "email"\n', encoding="utf-8")
    code, out, err = cli(source, "--dry-run", "--job", job, "--map", "lead id=id",
                         "--map", "EMAIL=-", "--save-job", "merged.toml", cwd=tmp_path)  # fmt: skip
    assert code == 0, out + err
    assert "Lead ID → id" in out
    assert "Email → dropped" in out
    assert f"PATCH /v1/leads/{IDS[0]}" in out
    merged = tomllib.loads((tmp_path / "merged.toml").read_text(encoding="utf-8"))
    assert merged["map"] == {"lead id": "id", "EMAIL": "-"}
