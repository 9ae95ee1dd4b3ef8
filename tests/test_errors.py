"""The messages and docs a user reads: one space between sentences, wherever the parts
come from; rows counted in words; a message that sends the user the right way."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

import numpy as np
import pytest
import typer

from conftest import REPO


def _literals(path: Path):
    with open(path, "rb") as handle:
        for token in tokenize.tokenize(handle.readline):
            if token.type == tokenize.STRING:
                yield token.start[0], re.sub(r"^[a-zA-Z]*('''|\"\"\"|'|\")|('''|\"\"\"|'|\")$",
                                             "", token.string)


def test_no_double_space_between_sentences_in_the_source() -> None:
    """No string joins sentences with two spaces (`knowingly.  Pass`), within itself,
    after a part put in (`{did_you_mean(...)}  Known: ...`) or as the start of a part
    appended to a sentence (`"  Columns: ..."`)."""
    found = []
    for path in sorted((REPO / "src" / "kerastrain").rglob("*.py")):
        for line, text in _literals(path):
            if re.search(r"[.?!}]  +[A-Z(]|[.?!]  +\S", text) or re.match(r" {2}[A-Z(]", text):
                found.append(f"{path.relative_to(REPO)}:{line}: {text[:60]}")
    assert not found, "\n".join(found)


def test_a_hint_joins_its_message_with_one_space(capsys) -> None:
    from kerastrain.cli.app import guard
    from kerastrain.errors import UserError

    def refuse() -> None:
        raise UserError("out.csv exists; choose another name, or replace it knowingly.",
                        option="overwrite")

    with pytest.raises(typer.Exit):
        guard(refuse)
    assert "knowingly. Pass --overwrite" in capsys.readouterr().err


def test_a_missing_column_names_the_columns_after_one_space() -> None:
    from kerastrain.data.table import Table

    table = Table({"alcohol": np.zeros(2), "hue": np.zeros(2)}, origin="wine")
    assert table.no_column("colour") == "no column 'colour' in wine. Columns: alcohol, hue."
    assert "Did you mean 'alcohol'? Columns" in table.no_column("alcohl")


@pytest.mark.parametrize(("values", "counted"), [
    (np.array([1.0, np.nan, 2.0]), "(1 row in all)"),
    (np.array([np.nan, np.nan, 2.0]), "(2 rows in all)"),
    (np.array([1.0, np.inf, 2.0]), "(1 row in all)")])
def test_rows_are_counted_in_words(values, counted) -> None:
    from kerastrain.data.table import Table
    from kerastrain.data.values import check_column
    from kerastrain.errors import DataError

    with pytest.raises(DataError) as raised:
        check_column(Table({"x": values}, origin="wine.csv"), "x", numeric=True)
    assert counted in str(raised.value)


def test_a_diverged_run_is_sent_to_a_lower_learning_rate_not_to_resume(cli, tmp_path) -> None:
    """`evaluate` on a run that failed because its loss became NaN: resuming would go on
    at the same learning rate; the message says to lower it and fit again."""
    import json

    run = tmp_path / "iris-20261120-100000-ab12"
    run.mkdir()
    (run / "config.yaml").write_text("name: iris\n")
    (run / "run.json").write_text(json.dumps({
        "status": "failed", "error": "TrainingDiverged: loss became nan at epoch 3: training "
                                     "diverged. Try a lower compile.optimizer.learning_rate "
                                     "(or clipnorm), and check the data for extreme values; "
                                     "the epochs before are kept in the run directory."}))
    result = cli("evaluate", run)
    assert result.exit_code == 2
    assert "loss became nan at epoch 3" in result.stderr
    assert "Lower the learning rate and fit again" in result.stderr
    assert "kerastrain resume" not in result.stderr
    (run / "run.json").write_text(json.dumps({"status": "failed", "error": "OSError: disk"}))
    assert "kerastrain resume" in cli("evaluate", run).stderr  # other failures: resume


def test_the_docs_start_each_sentence_apart() -> None:
    """No sentence runs into the next without a space or a paragraph break
    (`(docs/architecture.md).What kerastrain guarantees`)."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # code: not prose
        joined = re.findall(r"[a-z)]\.[A-Z][a-z]+ ", prose)
        assert not joined, f"{doc.name}: {joined}"
